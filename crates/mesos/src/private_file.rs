//! Files only their owner may read (tokens, credentials, kubeconfigs), written
//! whole or not at all: a crash mid-write leaves the old content, never half;
//! and logs only their owner may read, appended a line at a time.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Replaces `path` with `bytes`, mode 0600, through a temporary file renamed over it.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Appends `line` (a newline is added) to a log only its owner may read,
/// renaming the log to `<path>.1` first once it is past `rotate_bytes` (one
/// generation kept). One `write` of the whole line: concurrent appends never
/// interleave within it.
pub fn append_line(path: &Path, line: &[u8], rotate_bytes: u64) -> std::io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > rotate_bytes) {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        std::fs::rename(path, old)?;
    }
    let mut record = Vec::with_capacity(line.len() + 1);
    record.extend_from_slice(line);
    record.push(b'\n');
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?.write_all(&record)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn replaces_content_and_closes_an_older_file() {
        let dir = std::env::temp_dir().join(format!("m3s-private-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "old, world-readable").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::write(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!dir.join("token.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_log_grows_by_lines_and_rotates_once() {
        let dir = std::env::temp_dir().join(format!("m3s-append-line-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log.jsonl");
        super::append_line(&log, b"one", 3).unwrap();
        super::append_line(&log, b"two", 3).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("log.jsonl.1")).unwrap(), "one\n");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "two\n");
        assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
