//! Bit-level writer and reader for chunk encoding (most significant bit first).

#[derive(Clone, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0 = the last byte is full or there is none).
    used: u8,
}

impl BitWriter {
    pub fn with_capacity(bytes: usize) -> BitWriter {
        BitWriter { bytes: Vec::with_capacity(bytes), used: 0 }
    }

    pub fn bit(&mut self, bit: bool) {
        if self.used == 0 {
            self.bytes.push(0);
        }
        if bit {
            *self.bytes.last_mut().expect("pushed above") |= 0x80 >> self.used;
        }
        self.used = (self.used + 1) % 8;
    }

    /// The low `n` bits of `value`, most significant first (`n` <= 64).
    pub fn bits(&mut self, value: u64, mut n: u32) {
        while n > 0 {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let free = 8 - self.used as u32;
            let take = free.min(n);
            let chunk = ((value >> (n - take)) & ((1u64 << take) - 1)) as u8;
            *self.bytes.last_mut().expect("pushed above") |= chunk << (free - take);
            self.used = ((self.used as u32 + take) % 8) as u8;
            n -= take;
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

pub struct BitReader<'a> {
    bytes: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(bytes: &'a [u8]) -> BitReader<'a> {
        BitReader { bytes, pos: 0 }
    }

    /// The 64 bits from byte `i` on, zero-padded past the end.
    fn word(&self, i: usize) -> u64 {
        match self.bytes.get(i..i + 8) {
            Some(b) => u64::from_be_bytes(b.try_into().expect("8 bytes")),
            None => {
                let mut buf = [0u8; 8];
                let rest = self.bytes.get(i..).unwrap_or_default();
                buf[..rest.len()].copy_from_slice(rest);
                u64::from_be_bytes(buf)
            }
        }
    }

    pub fn bit(&mut self) -> Option<bool> {
        self.bits(1).map(|b| b == 1)
    }

    pub fn bits(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if self.pos + n as usize > self.bytes.len() * 8 {
            return None;
        }
        let off = (self.pos % 8) as u32;
        let value = if off + n <= 64 {
            (self.word(self.pos / 8) << off) >> (64 - n)
        } else {
            // 64 bits starting mid-byte span nine bytes.
            let high = (self.word(self.pos / 8) << off) >> off;
            let low_bits = off + n - 64;
            let low = (self.bytes[self.pos / 8 + 8] as u64) >> (8 - low_bits);
            (high << low_bits) | low
        };
        self.pos += n as usize;
        Some(value)
    }

    /// Counts leading one bits, up to `max`, consuming them and the terminating zero (if under `max`).
    pub fn unary(&mut self, max: u32) -> Option<u32> {
        let ones = (self.word(self.pos / 8) << (self.pos % 8)).leading_ones().min(max);
        let used = ones + u32::from(ones < max);
        if self.pos + used as usize > self.bytes.len() * 8 {
            return None;
        }
        self.pos += used as usize;
        Some(ones)
    }
}

/// LEB128 varints, for headers and index records.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads varints from a byte slice, remembering where it is.
pub struct Cursor<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, pos: 0 }
    }

    pub fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.pos)?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    pub fn ivarint(&mut self) -> Option<i64> {
        self.uvarint().map(unzigzag)
    }

    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    pub fn f64(&mut self) -> Option<f64> {
        self.take(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos.min(self.bytes.len())..]
    }
}
