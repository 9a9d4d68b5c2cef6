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
    Snappy(#[source] snap::Error),
    #[error("decompressed request is larger than {MAX_DECOMPRESSED} bytes")]
    TooLarge,
    #[error(transparent)]
    Protobuf(#[from] WireError),
    #[error("timeseries {index}: {problem}")]
    Series { index: usize, problem: SeriesError },
}

/// A broken protobuf encoding, at a byte offset of its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated varint at byte {0}")]
    TruncatedVarint(usize),
    #[error("varint longer than 10 bytes at byte {0}")]
    LongVarint(usize),
    #[error("field number 0 at byte {0}")]
    FieldZero(usize),
    #[error("truncated field at byte {0}")]
    TruncatedField(usize),
    #[error("truncated fixed-size field at byte {0}")]
    TruncatedFixed(usize),
    #[error("unsupported wire type {wire} at byte {at}")]
    WireType { wire: u8, at: usize },
}

/// What is wrong with one `TimeSeries`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("label {index}: {problem}")]
    Label { index: usize, problem: LabelError },
    #[error("sample {index}: {problem}")]
    Sample { index: usize, problem: WireError },
    #[error("no __name__ label")]
    NoName,
    #[error("empty label name")]
    EmptyLabelName,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
}

/// Decompresses and decodes a request body.
pub fn decode(body: &[u8]) -> Result<Vec<(Labels, Vec<Sample>)>, RemoteWriteError> {
    let len = snap::raw::decompress_len(body).map_err(RemoteWriteError::Snappy)?;
    if len > MAX_DECOMPRESSED {
        return Err(RemoteWriteError::TooLarge);
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(RemoteWriteError::Snappy)?;
    decode_uncompressed(&raw)
}

/// Decodes an uncompressed `WriteRequest`.
pub fn decode_uncompressed(buf: &[u8]) -> Result<Vec<(Labels, Vec<Sample>)>, RemoteWriteError> {
    let mut out = Vec::new();
    let mut r = Reader { buf, pos: 0 };
    while !r.done() {
        let (field, wire) = r.key()?;
        if field == 1 && wire == LEN {
            let index = out.len() + 1;
            let msg = r.bytes()?;
            out.push(time_series(msg).map_err(|problem| RemoteWriteError::Series { index, problem })?);
        } else {
            r.skip(wire)?;
        }
    }
    Ok(out)
}

fn time_series(buf: &[u8]) -> Result<(Labels, Vec<Sample>), SeriesError> {
    let mut r = Reader { buf, pos: 0 };
    let mut pairs = Vec::new();
    let mut samples = Vec::new();
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, LEN) => {
                let index = pairs.len() + 1;
                let msg = r.bytes()?;
                pairs.push(label(msg).map_err(|problem| SeriesError::Label { index, problem })?);
            }
            (2, LEN) => {
                let index = samples.len() + 1;
                let msg = r.bytes()?;
                samples.push(sample(msg).map_err(|problem| SeriesError::Sample { index, problem })?);
            }
            _ => r.skip(wire)?,
        }
    }
    if !pairs.iter().any(|(k, v): &(String, String)| k == NAME_LABEL && !v.is_empty()) {
        return Err(SeriesError::NoName);
    }
    if pairs.iter().any(|(k, _)| k.is_empty()) {
        return Err(SeriesError::EmptyLabelName);
    }
    Ok((Labels::new(pairs), samples))
}

fn label(buf: &[u8]) -> Result<(String, String), LabelError> {
    let mut r = Reader { buf, pos: 0 };
    let (mut name, mut value) = (String::new(), String::new());
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, LEN) => name = utf8(r.bytes()?, "name")?,
            (2, LEN) => value = utf8(r.bytes()?, "value")?,
            _ => r.skip(wire)?,
        }
    }
    Ok((name, value))
}

fn utf8(b: &[u8], what: &'static str) -> Result<String, LabelError> {
    String::from_utf8(b.to_vec()).map_err(|_| LabelError::NotUtf8(what))
}

fn sample(buf: &[u8]) -> Result<Sample, WireError> {
    let mut r = Reader { buf, pos: 0 };
    let mut s = Sample { t: 0, v: 0.0 };
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, I64) => s.v = f64::from_bits(r.fixed64()?),
            (2, VARINT) => s.t = r.varint()? as i64,
            _ => r.skip(wire)?,
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

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else { return Err(WireError::TruncatedVarint(self.pos)) };
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError::LongVarint(self.pos))
    }

    fn key(&mut self) -> Result<(u64, u8), WireError> {
        let k = self.varint()?;
        let wire = (k & 7) as u8;
        if k >> 3 == 0 {
            return Err(WireError::FieldZero(self.pos));
        }
        Ok((k >> 3, wire))
    }

    fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()? as usize;
        let end =
            self.pos.checked_add(len).filter(|&e| e <= self.buf.len()).ok_or(WireError::TruncatedField(self.pos))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn fixed(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos + n;
        let out = self.buf.get(self.pos..end).ok_or(WireError::TruncatedFixed(self.pos))?;
        self.pos = end;
        Ok(out)
    }

    fn fixed64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.fixed(8)?.try_into().expect("8 bytes")))
    }

    fn skip(&mut self, wire: u8) -> Result<(), WireError> {
        match wire {
            VARINT => self.varint().map(drop),
            I64 => self.fixed(8).map(drop),
            LEN => self.bytes().map(drop),
            I32 => self.fixed(4).map(drop),
            other => Err(WireError::WireType { wire: other, at: self.pos }),
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
