//! Docker's multiplexed stream (`logs`, `attach` and `exec` without a TTY):
//! frames of an 8-byte header (stream, 0, 0, 0, big-endian length) and the
//! payload. Read as it arrives, in pieces of bounded size.

use std::io::{self, Read};

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdin,
    Stdout,
    Stderr,
}

/// Reads frames from `reader` until it ends, handing each payload to `sink`
/// in pieces of at most 64 KiB. An end inside a frame is an error; an end
/// between frames is the stream's end.
pub fn demux(mut reader: impl Read, mut sink: impl FnMut(StreamKind, &[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut header = [0u8; 8];
        let mut filled = 0;
        while filled < header.len() {
            let n = reader.read(&mut header[filled..])?;
            if n == 0 {
                return if filled == 0 {
                    Ok(())
                } else {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ended inside a frame header"))
                };
            }
            filled += n;
        }
        let kind = match header[0] {
            0 => StreamKind::Stdin,
            1 => StreamKind::Stdout,
            // 3 is the daemon's own error stream (API 1.41+), shown as stderr.
            2 | 3 => StreamKind::Stderr,
            other => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a frame of unknown stream {other}")));
            }
        };
        let mut left = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        while left > 0 {
            let want = left.min(buf.len());
            let n = reader.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ended inside a frame"));
            }
            sink(kind, &buf[..n])?;
            left -= n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![stream, 0, 0, 0];
        out.extend((payload.len() as u32).to_be_bytes());
        out.extend(payload);
        out
    }

    fn split(input: &[u8]) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        demux(input, |kind, bytes| {
            match kind {
                StreamKind::Stderr => err.extend(bytes),
                _ => out.extend(bytes),
            }
            Ok(())
        })?;
        Ok((out, err))
    }

    #[test]
    fn frames_go_to_their_streams() {
        let mut input = frame(1, b"out1 ");
        input.extend(frame(2, b"err"));
        input.extend(frame(1, b""));
        input.extend(frame(1, b"out2"));
        assert_eq!(split(&input).unwrap(), (b"out1 out2".to_vec(), b"err".to_vec()));
        assert_eq!(split(&[]).unwrap(), (Vec::new(), Vec::new()));
    }

    #[test]
    fn a_cut_or_unknown_frame_is_an_error() {
        let input = frame(1, b"hello");
        assert_eq!(split(&input[..6]).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(split(&input[..10]).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(split(&frame(9, b"x")).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    proptest::proptest! {
        #[test]
        fn any_input_ends_without_panic(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = split(&input);
        }
    }
}
