//! HTTP/1.1 over a Unix socket, as much of it as the Engine API needs: one
//! request per connection (`Connection: close`), response bodies framed by
//! Content-Length, chunked, or read to the end (the raw streams of `exec`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// The most a response head may take; the Engine's are a few hundred bytes.
const MAX_HEAD: usize = 64 * 1024;

/// A request to send.
pub(crate) struct Request<'a> {
    pub method: &'a str,
    /// Path and query, already encoded.
    pub target: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Option<(&'a str, &'a [u8])>,
    /// A body streamed from a file instead (a build context): content type and path.
    pub upload: Option<(&'a str, &'a Path)>,
    /// The longest wait for any one read; `None` for streams that may stay quiet
    /// as long as a container runs (`wait`, `logs?follow`).
    pub read_timeout: Option<Duration>,
}

/// A response whose body is read as it arrives.
pub(crate) struct Response {
    pub status: u16,
    pub body: Body,
}

/// Connects, sends `request` and reads the response head. An error from
/// `connect` is kept apart: it means no daemon answers at `socket`.
pub(crate) fn send(socket: &Path, request: &Request<'_>) -> Result<Response, SendError> {
    let mut stream = UnixStream::connect(socket).map_err(SendError::Connect)?;
    stream.set_read_timeout(request.read_timeout).map_err(SendError::Io)?;
    stream.set_write_timeout(Some(Duration::from_secs(60))).map_err(SendError::Io)?;
    let mut head = format!("{} {} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n", request.method, request.target);
    for (name, value) in request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut upload = match request.upload {
        Some((content_type, path)) => {
            let file = std::fs::File::open(path).map_err(SendError::Io)?;
            let length = file.metadata().map_err(SendError::Io)?.len();
            Some((content_type, file, length))
        }
        None => None,
    };
    match (request.body, &upload) {
        (Some((content_type, body)), _) => {
            head.push_str(&format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n", body.len()))
        }
        (None, Some((content_type, _, length))) => {
            head.push_str(&format!("Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"))
        }
        (None, None) => head.push_str("Content-Length: 0\r\n\r\n"),
    }
    stream.write_all(head.as_bytes()).map_err(SendError::Io)?;
    if let Some((_, body)) = request.body {
        stream.write_all(body).map_err(SendError::Io)?;
    } else if let Some((_, file, _)) = &mut upload {
        io::copy(file, &mut stream).map_err(SendError::Io)?;
    }
    let mut reader = BufReader::new(stream);
    let (status, framing) = read_head(&mut reader).map_err(SendError::Io)?;
    Ok(Response { status, body: Body { reader, framing, done: false } })
}

#[derive(Debug)]
pub(crate) enum SendError {
    Connect(io::Error),
    Io(io::Error),
}

fn read_head(reader: &mut impl BufRead) -> io::Result<(u16, Framing)> {
    let mut head = Vec::with_capacity(512);
    loop {
        let before = head.len();
        let n = reader.take((MAX_HEAD - head.len()) as u64 + 1).read_until(b'\n', &mut head)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the connection closed before a response"));
        }
        if head.len() > MAX_HEAD {
            return Err(invalid("a response head over 64 KiB"));
        }
        if head[before..] == *b"\r\n" || head[before..] == *b"\n" {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(invalid("an incomplete response head")),
        Err(e) => return Err(invalid(&format!("a malformed response head ({e})"))),
    }
    let status = parsed.code.unwrap_or(0);
    let mut framing = Framing::Close;
    for h in parsed.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked") {
            framing = Framing::Chunked { left: 0, last: false };
        } else if h.name.eq_ignore_ascii_case("content-length") && !matches!(framing, Framing::Chunked { .. }) {
            let length = value.trim().parse().map_err(|_| invalid("a Content-Length that is not a number"))?;
            framing = Framing::Length(length);
        }
    }
    if status == 204 || status == 304 {
        framing = Framing::Length(0);
    }
    Ok((status, framing))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the Docker daemon sent {what}"))
}

#[derive(Debug)]
enum Framing {
    Length(u64),
    /// `left` bytes remain in the current chunk; `last` once the zero chunk came.
    Chunked {
        left: u64,
        last: bool,
    },
    Close,
}

/// A response body, its framing removed.
pub(crate) struct Body<R = BufReader<UnixStream>> {
    reader: R,
    framing: Framing,
    done: bool,
}

/// Reads a whole response (head, then at most `limit` bytes of body) from
/// `reader`, as the client reads a daemon's answer.
pub(crate) fn read_response(mut reader: impl BufRead, limit: usize) -> io::Result<(u16, Vec<u8>)> {
    let (status, framing) = read_head(&mut reader)?;
    let body = Body { reader, framing, done: false };
    Ok((status, body.read_limited(limit)?))
}

impl<R: BufRead> Body<R> {
    /// Reads the whole body, refusing more than `limit` bytes.
    pub fn read_limited(mut self, limit: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        (&mut self).take(limit as u64 + 1).read_to_end(&mut out)?;
        if out.len() > limit {
            return Err(invalid(&format!("a response body over {limit} bytes")));
        }
        Ok(out)
    }
}

impl Body {
    /// Lifts the read timeout: the rest of the body may take as long as it takes.
    pub fn without_timeout(&self) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(None)
    }
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = match &mut self.framing {
            Framing::Length(left) => {
                if *left == 0 {
                    0
                } else {
                    let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = self.reader.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the body ended early"));
                    }
                    *left -= n as u64;
                    n
                }
            }
            Framing::Chunked { left, last } => {
                if *last {
                    0
                } else {
                    if *left == 0 {
                        *left = read_chunk_size(&mut self.reader)?;
                        if *left == 0 {
                            *last = true;
                            skip_trailers(&mut self.reader)?;
                            self.done = true;
                            return Ok(0);
                        }
                    }
                    let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = self.reader.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a chunk ended early"));
                    }
                    *left -= n as u64;
                    if *left == 0 {
                        let mut crlf = [0u8; 2];
                        self.reader.read_exact(&mut crlf)?;
                        if crlf != *b"\r\n" {
                            return Err(invalid("a chunk without its CRLF"));
                        }
                    }
                    n
                }
            }
            Framing::Close => self.reader.read(buf)?,
        };
        if n == 0 {
            self.done = true;
        }
        Ok(n)
    }
}

fn read_line(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    reader.take(4097).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(if line.len() > 4096 {
            invalid("a chunk line over 4 KiB")
        } else {
            io::Error::new(io::ErrorKind::UnexpectedEof, "the body ended inside a chunk line")
        });
    }
    Ok(line)
}

fn read_chunk_size(reader: &mut impl BufRead) -> io::Result<u64> {
    let line = read_line(reader)?;
    let text = std::str::from_utf8(&line).map_err(|_| invalid("a chunk size that is not text"))?;
    let size = text.trim_end().split(';').next().unwrap_or("").trim();
    u64::from_str_radix(size, 16).map_err(|_| invalid("a chunk size that is not hexadecimal"))
}

fn skip_trailers(reader: &mut impl BufRead) -> io::Result<()> {
    for _ in 0..64 {
        if read_line(reader)?.trim_ascii().is_empty() {
            return Ok(());
        }
    }
    Err(invalid("too many trailers"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// Serves one canned response on a fresh socket and returns what the client read.
    fn exchange(answer: &'static [u8]) -> (u16, io::Result<Vec<u8>>) {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("m3s-docker-http-{}-{n}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let socket = dir.join("s");
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).unwrap();
            conn.write_all(answer).unwrap();
        });
        let request =
            Request { method: "GET", target: "/x", headers: &[], body: None, upload: None, read_timeout: None };
        let response = send(&socket, &request).map_err(|_| ()).unwrap();
        let status = response.status;
        let body = response.body.read_limited(1 << 20);
        server.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        (status, body)
    }

    #[test]
    fn bodies_by_length_chunks_and_close() {
        let (status, body) = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA");
        assert_eq!((status, body.unwrap()), (200, b"hello".to_vec()));
        let (status, body) = exchange(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
        );
        assert_eq!((status, body.unwrap()), (201, b"abcde".to_vec()));
        let (status, body) = exchange(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nraw");
        assert_eq!((status, body.unwrap()), (200, b"raw".to_vec()));
        let (status, body) = exchange(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!((status, body.unwrap()), (204, Vec::new()));
    }

    #[test]
    fn broken_framing_is_an_error_not_a_short_body() {
        let (_, body) = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        assert_eq!(body.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let (_, body) = exchange(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc");
        assert!(body.unwrap_err().to_string().contains("hexadecimal"));
        let (_, body) = exchange(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY");
        assert!(body.unwrap_err().to_string().contains("CRLF"));
    }
}
