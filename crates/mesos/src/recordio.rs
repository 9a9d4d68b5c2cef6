//! RecordIO, the framing of Mesos event streams (`docs/recordio.md`): each record
//! is its length in ASCII decimal, a `\n`, then exactly that many bytes.
//!
//! The decoder is incremental and knows nothing of HTTP: feed it bytes as they
//! arrive, in chunks of any size, and take out whole records. Records are split
//! off the internal buffer without copying. A length above the configured maximum
//! is refused before any of the record is buffered, so a hostile or broken peer
//! cannot make the client allocate without bound.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Default cap on one record. A SUBSCRIBED event of the operator API carries the
/// whole cluster state, which on large clusters runs to tens of megabytes; 64 MiB
/// leaves room for that while still bounding memory.
pub const DEFAULT_MAX_RECORD_LEN: usize = 64 * 1024 * 1024;

/// The longest length header accepted: `u64::MAX` has 20 digits.
const MAX_HEADER_DIGITS: usize = 20;

/// Why a RecordIO stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    #[error("RecordIO: record length header {header:?} is not a decimal number")]
    InvalidLength { header: String },
    #[error("RecordIO: record length header is longer than {MAX_HEADER_DIGITS} digits")]
    HeaderTooLong,
    #[error("RecordIO: zero-length record (Mesos never sends one)")]
    EmptyRecord,
    #[error("RecordIO: record of {len} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge { len: u64, max: usize },
    #[error("RecordIO: stream ended inside a record ({buffered} bytes buffered{})",
        match .expected { Some(n) => format!(", {n} expected"), None => String::new() })]
    Truncated { buffered: usize, expected: Option<usize> },
}

/// Appends one record to `out`.
pub fn encode(payload: &[u8], out: &mut BytesMut) {
    let mut digits = [0u8; MAX_HEADER_DIGITS];
    let mut start = digits.len();
    let mut n = payload.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.reserve(digits.len() - start + 1 + payload.len());
    out.put_slice(&digits[start..]);
    out.put_u8(b'\n');
    out.put_slice(payload);
}

/// One record as a fresh buffer.
pub fn encode_to_bytes(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    encode(payload, &mut out);
    out.freeze()
}

/// Incremental RecordIO decoder.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max_len: usize,
    /// Length of the record being read, once its header is complete.
    pending_len: Option<usize>,
    /// Set after an error: the stream cannot be resynchronised, so every later
    /// call repeats the error instead of guessing where the next record starts.
    failed: Option<RecordIoError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_RECORD_LEN)
    }
}

impl Decoder {
    pub fn new(max_len: usize) -> Self {
        Decoder { buf: BytesMut::new(), max_len, pending_len: None, failed: None }
    }

    /// Adds bytes as they arrive from the transport.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes buffered but not yet returned as records.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next complete record, `Ok(None)` if more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.try_next() {
            Err(err) => {
                self.failed = Some(err.clone());
                Err(err)
            }
            ok => ok,
        }
    }

    fn try_next(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        let len = match self.pending_len {
            Some(len) => len,
            None => {
                let Some(newline) = self.buf.iter().take(MAX_HEADER_DIGITS + 1).position(|&b| b == b'\n') else {
                    if self.buf.len() > MAX_HEADER_DIGITS {
                        return Err(RecordIoError::HeaderTooLong);
                    }
                    // A non-digit can be reported before the newline arrives.
                    if self.buf.iter().any(|b| !b.is_ascii_digit()) {
                        return Err(invalid_header(&self.buf[..]));
                    }
                    return Ok(None);
                };
                let header = &self.buf[..newline];
                let len = parse_len(header)?;
                if len == 0 {
                    return Err(RecordIoError::EmptyRecord);
                }
                if len > self.max_len as u64 {
                    return Err(RecordIoError::RecordTooLarge { len, max: self.max_len });
                }
                self.buf.advance(newline + 1);
                let len = len as usize;
                self.pending_len = Some(len);
                len
            }
        };
        if self.buf.len() < len {
            // Reserve once for the whole record instead of growing chunk by chunk.
            self.buf.reserve(len - self.buf.len());
            return Ok(None);
        }
        self.pending_len = None;
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Checks that the stream ended on a record boundary.
    pub fn finish(&self) -> Result<(), RecordIoError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.buf.is_empty() && self.pending_len.is_none() {
            Ok(())
        } else {
            Err(RecordIoError::Truncated { buffered: self.buf.len(), expected: self.pending_len })
        }
    }
}

fn invalid_header(header: &[u8]) -> RecordIoError {
    let shown = &header[..header.len().min(MAX_HEADER_DIGITS + 1)];
    RecordIoError::InvalidLength { header: String::from_utf8_lossy(shown).into_owned() }
}

fn parse_len(header: &[u8]) -> Result<u64, RecordIoError> {
    if header.is_empty() || !header.iter().all(u8::is_ascii_digit) {
        return Err(invalid_header(header));
    }
    // Digits only and at most 20 of them, so only overflow can fail here.
    std::str::from_utf8(header)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(RecordIoError::RecordTooLarge { len: u64::MAX, max: usize::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(chunks: &[&[u8]], max: usize) -> Result<Vec<Vec<u8>>, RecordIoError> {
        let mut d = Decoder::new(max);
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c);
            while let Some(r) = d.next_record()? {
                out.push(r.to_vec());
            }
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn decodes_records_split_anywhere() {
        let stream = b"5\nhello3\nabc11\n{\"a\":12345}";
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            let got = decode_all(&[a, b], 100).unwrap();
            assert_eq!(got, vec![b"hello".to_vec(), b"abc".to_vec(), b"{\"a\":12345}".to_vec()], "split at {split}");
        }
    }

    #[test]
    fn rejects_non_numeric_length_before_newline() {
        let mut d = Decoder::new(100);
        d.feed(b"1x");
        assert_eq!(d.next_record(), Err(RecordIoError::InvalidLength { header: "1x".into() }));
        // The error sticks: a broken stream is not resynchronised by guesswork.
        d.feed(b"\n5\nhello");
        assert!(d.next_record().is_err());
    }

    #[test]
    fn rejects_oversized_length_without_buffering_it() {
        let mut d = Decoder::new(10);
        d.feed(b"11\n");
        assert_eq!(d.next_record(), Err(RecordIoError::RecordTooLarge { len: 11, max: 10 }));
        let mut d = Decoder::new(10);
        d.feed(b"99999999999999999999\n");
        assert!(matches!(d.next_record(), Err(RecordIoError::RecordTooLarge { .. })));
        let mut d = Decoder::new(10);
        d.feed(b"999999999999999999999");
        assert_eq!(d.next_record(), Err(RecordIoError::HeaderTooLong));
    }

    #[test]
    fn rejects_empty_and_carriage_return_headers() {
        assert_eq!(decode_all(&[b"0\n"], 10), Err(RecordIoError::EmptyRecord));
        assert_eq!(decode_all(&[b"\nabc"], 10), Err(RecordIoError::InvalidLength { header: "".into() }));
        assert_eq!(decode_all(&[b"3\r\nabc"], 10), Err(RecordIoError::InvalidLength { header: "3\r".into() }));
    }

    #[test]
    fn reports_truncation_at_end_of_stream() {
        assert_eq!(decode_all(&[b"5\nhel"], 10), Err(RecordIoError::Truncated { buffered: 3, expected: Some(5) }));
        assert_eq!(decode_all(&[b"12"], 100), Err(RecordIoError::Truncated { buffered: 2, expected: None }));
    }

    proptest! {
        #[test]
        fn round_trips_under_any_chunking(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 0..20),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let mut stream = BytesMut::new();
            for r in &records {
                encode(r, &mut stream);
            }
            let stream = stream.freeze();
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut last = 0;
            for p in points {
                chunks.push(&stream[last..p]);
                last = p;
            }
            chunks.push(&stream[last..]);
            prop_assert_eq!(decode_all(&chunks, 1000).unwrap(), records);
        }

        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut d = Decoder::new(64);
            d.feed(&bytes);
            while let Ok(Some(_)) = d.next_record() {}
            let _ = d.finish();
        }
    }
}
