//! Prometheus remote_write 1.0: a Snappy-compressed (block format) protobuf
//! `WriteRequest { repeated TimeSeries timeseries = 1; }` with
//! `TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }`,
//! `Label { string name = 1; string value = 2; }` and
//! `Sample { double value = 1; int64 timestamp = 2; }` (milliseconds).
//! Decoded by hand: four messages do not justify a code generator. Unknown
//! fields (metadata, exemplars, histograms of later versions) are skipped.

use crate::model::{Labels, NAME_LABEL, Sample};

/// Largest decompressed request accepted.
pub const MAX_DECOMPRESSED: usize = 64 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RemoteWriteError {
    #[error("snappy: {0}")]
    Snappy(String),
    #[error("decompressed request is larger than {MAX_DECOMPRESSED} bytes")]
    TooLarge,
    #[error("{0}")]
    Protobuf(String),
}

/// Decompresses and decodes a request body.
pub fn decode(body: &[u8]) -> Result<Vec<(Labels, Vec<Sample>)>, RemoteWriteError> {
    let len = snap::raw::decompress_len(body).map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    if len > MAX_DECOMPRESSED {
        return Err(RemoteWriteError::TooLarge);
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    decode_uncompressed(&raw)
}

/// Decodes an uncompressed `WriteRequest`.
pub fn decode_uncompressed(buf: &[u8]) -> Result<Vec<(Labels, Vec<Sample>)>, RemoteWriteError> {
    let mut out = Vec::new();
    let mut r = Reader { buf, pos: 0 };
    while !r.done() {
        let (field, wire) = r.key()?;
        if field == 1 && wire == LEN {
            let n = out.len() + 1;
            let msg = r.bytes()?;
            out.push(time_series(msg).map_err(|e| RemoteWriteError::Protobuf(format!("timeseries {n}: {e}")))?);
        } else {
            r.skip(wire)?;
        }
    }
    Ok(out)
}

fn time_series(buf: &[u8]) -> Result<(Labels, Vec<Sample>), String> {
    let mut r = Reader { buf, pos: 0 };
    let mut pairs = Vec::new();
    let mut samples = Vec::new();
    while !r.done() {
        let (field, wire) = r.key().map_err(|e| e.to_string())?;
        match (field, wire) {
            (1, LEN) => {
                let n = pairs.len() + 1;
                let msg = r.bytes().map_err(|e| e.to_string())?;
                pairs.push(label(msg).map_err(|e| format!("label {n}: {e}"))?);
            }
            (2, LEN) => {
                let n = samples.len() + 1;
                let msg = r.bytes().map_err(|e| e.to_string())?;
                samples.push(sample(msg).map_err(|e| format!("sample {n}: {e}"))?);
            }
            _ => r.skip(wire).map_err(|e| e.to_string())?,
        }
    }
    if !pairs.iter().any(|(k, v): &(String, String)| k == NAME_LABEL && !v.is_empty()) {
        return Err("no __name__ label".into());
    }
    if let Some((k, _)) = pairs.iter().find(|(k, _)| k.is_empty()) {
        return Err(format!("empty label name {k:?}"));
    }
    Ok((Labels::new(pairs), samples))
}

fn label(buf: &[u8]) -> Result<(String, String), String> {
    let mut r = Reader { buf, pos: 0 };
    let (mut name, mut value) = (String::new(), String::new());
    while !r.done() {
        let (field, wire) = r.key().map_err(|e| e.to_string())?;
        match (field, wire) {
            (1, LEN) => name = utf8(r.bytes().map_err(|e| e.to_string())?, "name")?,
            (2, LEN) => value = utf8(r.bytes().map_err(|e| e.to_string())?, "value")?,
            _ => r.skip(wire).map_err(|e| e.to_string())?,
        }
    }
    Ok((name, value))
}

fn utf8(b: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| format!("{what} is not valid UTF-8"))
}

fn sample(buf: &[u8]) -> Result<Sample, String> {
    let mut r = Reader { buf, pos: 0 };
    let mut s = Sample { t: 0, v: 0.0 };
    while !r.done() {
        let (field, wire) = r.key().map_err(|e| e.to_string())?;
        match (field, wire) {
            (1, I64) => s.v = f64::from_bits(r.fixed64().map_err(|e| e.to_string())?),
            (2, VARINT) => s.t = r.varint().map_err(|e| e.to_string())? as i64,
            _ => r.skip(wire).map_err(|e| e.to_string())?,
        }
    }
    Ok(s)
}

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn fail(&self, what: &str) -> RemoteWriteError {
        RemoteWriteError::Protobuf(format!("{what} at byte {}", self.pos))
    }

    fn varint(&mut self) -> Result<u64, RemoteWriteError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else { return Err(self.fail("truncated varint")) };
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.fail("varint longer than 10 bytes"))
    }

    fn key(&mut self) -> Result<(u64, u8), RemoteWriteError> {
        let k = self.varint()?;
        let wire = (k & 7) as u8;
        if k >> 3 == 0 {
            return Err(self.fail("field number 0"));
        }
        Ok((k >> 3, wire))
    }

    fn bytes(&mut self) -> Result<&'a [u8], RemoteWriteError> {
        let len = self.varint()? as usize;
        let end =
            self.pos.checked_add(len).filter(|&e| e <= self.buf.len()).ok_or_else(|| self.fail("truncated field"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn fixed(&mut self, n: usize) -> Result<&'a [u8], RemoteWriteError> {
        let end = self.pos + n;
        let out = self.buf.get(self.pos..end).ok_or_else(|| self.fail("truncated fixed-size field"))?;
        self.pos = end;
        Ok(out)
    }

    fn fixed64(&mut self) -> Result<u64, RemoteWriteError> {
        Ok(u64::from_le_bytes(self.fixed(8)?.try_into().expect("8 bytes")))
    }

    fn skip(&mut self, wire: u8) -> Result<(), RemoteWriteError> {
        match wire {
            VARINT => self.varint().map(drop),
            I64 => self.fixed(8).map(drop),
            LEN => self.bytes().map(drop),
            I32 => self.fixed(4).map(drop),
            other => Err(self.fail(&format!("unsupported wire type {other}"))),
        }
    }
}

/// Encodes series as a compressed request (tests, the benchmark).
pub fn encode(series: &[(Labels, Vec<Sample>)]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(&encode_uncompressed(series)).expect("snappy compresses any input")
}

pub fn encode_uncompressed(series: &[(Labels, Vec<Sample>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (labels, samples) in series {
        let mut ts = Vec::new();
        for (k, v) in labels.iter() {
            let mut l = Vec::new();
            put_bytes(&mut l, 1, k.as_bytes());
            put_bytes(&mut l, 2, v.as_bytes());
            put_bytes(&mut ts, 1, &l);
        }
        for s in samples {
            let mut m = Vec::with_capacity(20);
            put_varint(&mut m, (1 << 3) | I64 as u64);
            m.extend_from_slice(&s.v.to_bits().to_le_bytes());
            put_varint(&mut m, (2 << 3) | VARINT as u64);
            put_varint(&mut m, s.t as u64);
            put_bytes(&mut ts, 2, &m);
        }
        put_bytes(&mut out, 1, &ts);
    }
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    put_varint(out, (field << 3) | LEN as u64);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}
