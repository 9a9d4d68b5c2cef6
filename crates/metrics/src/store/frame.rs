//! Checksummed records for the append-only files (series log, write-ahead log):
//! `u32 length, u32 crc32, payload`, little-endian. A torn or corrupt tail
//! (a crash mid-append) ends the valid prefix; nothing after it is trusted.

pub fn append(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The payloads of the valid prefix of `bytes`, and that prefix's length.
pub fn read_all(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(header) = bytes.get(pos..pos + 8) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else { break };
        if crc32fast::hash(payload) != crc {
            break;
        }
        out.push(payload);
        pos += 8 + len;
    }
    (out, pos)
}

#[cfg(test)]
mod tests {
    #[test]
    fn torn_and_corrupt_tails_end_the_valid_prefix() {
        let mut buf = Vec::new();
        super::append(&mut buf, b"one");
        super::append(&mut buf, b"two");
        let whole = buf.len();
        super::append(&mut buf, b"three");
        let (records, valid) = super::read_all(&buf[..buf.len() - 1]);
        assert_eq!(records, vec![&b"one"[..], b"two"]);
        assert_eq!(valid, whole);
        let mut corrupt = buf.clone();
        corrupt[whole + 9] ^= 1;
        assert_eq!(super::read_all(&corrupt).0.len(), 2);
        assert_eq!(super::read_all(&buf).0.len(), 3);
    }
}
