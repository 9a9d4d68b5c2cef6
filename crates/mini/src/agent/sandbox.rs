//! Opening files inside task sandboxes for the files API, safe against the
//! task itself: it owns its sandbox and can swap any file for a symbolic link
//! (to `/etc/shadow`, say) at any moment, so a check of the path followed by an
//! open of the path is a race it can win.
//!
//! Every path component below the sandboxes' root is opened relative to its
//! parent's descriptor with `O_NOFOLLOW` (`..` is refused before any IO), and
//! what is returned is the opened descriptor, checked by `fstat`: a regular
//! file or a directory, never a FIFO or a device (which could block a reader
//! or do worse).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// What a sandbox path opened to.
#[derive(Debug)]
pub enum Opened {
    File(File),
    /// A directory, with its entries (symbolic links are listed, not followed).
    Dir(Vec<DirEntry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct DirEntry {
    pub name: String,
    pub size: u64,
    pub mtime: i64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub is_dir: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("path {0} is not inside the task sandboxes")]
    Outside(PathBuf),
    #[error("no such file or directory: {0}")]
    NotFound(PathBuf),
    #[error("{0} is a symbolic link, which the files API does not follow")]
    Symlink(PathBuf),
    #[error("{0} is neither a regular file nor a directory")]
    NotRegular(PathBuf),
    #[error("opening {path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
}

/// Opens `path` (absolute, as the agent's state reports sandbox directories)
/// if it lies under `root`, without following any symbolic link below it.
pub fn open_beneath(root: &Path, path: &Path) -> Result<Opened, OpenError> {
    let outside = || OpenError::Outside(path.to_owned());
    let relative = match path.strip_prefix(root) {
        Ok(r) => r.to_owned(),
        Err(_) => {
            let canonical = root.canonicalize().map_err(|_| outside())?;
            path.strip_prefix(&canonical).map_err(|_| outside())?.to_owned()
        }
    };
    let mut names = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return Err(outside()),
        }
    }
    let io = |error: Errno| match error {
        Errno::NOENT | Errno::NOTDIR => OpenError::NotFound(path.to_owned()),
        Errno::LOOP => OpenError::Symlink(path.to_owned()),
        e => OpenError::Io { path: path.to_owned(), error: e.into() },
    };
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut fd: OwnedFd = rustix::fs::open(root, dir_flags, Mode::empty()).map_err(io)?;
    // NONBLOCK: opening a FIFO a task left there must not hang the agent.
    let last_flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    for (i, name) in names.iter().enumerate() {
        let flags = if i + 1 == names.len() { last_flags } else { dir_flags | OFlags::NOFOLLOW };
        fd = match rustix::fs::openat(&fd, *name, flags, Mode::empty()) {
            Ok(next) => next,
            // A link met as a directory is ENOTDIR, as a file ELOOP: say which it was.
            Err(Errno::LOOP | Errno::NOTDIR)
                if rustix::fs::statat(&fd, *name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink) =>
            {
                return Err(OpenError::Symlink(path.to_owned()));
            }
            Err(e) => return Err(io(e)),
        };
    }
    let stat = rustix::fs::fstat(&fd).map_err(io)?;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => {
            // Reads block as usual from here on.
            rustix::fs::fcntl_setfl(&fd, OFlags::empty()).map_err(io)?;
            Ok(Opened::File(File::from(fd)))
        }
        FileType::Directory => list(fd).map(Opened::Dir).map_err(io),
        _ => Err(OpenError::NotRegular(path.to_owned())),
    }
}

fn list(fd: OwnedFd) -> Result<Vec<DirEntry>, Errno> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(&fd)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        // Gone since the listing began: skipped, as `ls` does.
        let Ok(stat) = rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) else { continue };
        out.push(DirEntry {
            name: name.to_string_lossy().into_owned(),
            size: stat.st_size as u64,
            mtime: stat.st_mtime,
            mode: stat.st_mode,
            nlink: stat.st_nlink,
            uid: stat.st_uid,
            gid: stat.st_gid,
            is_dir: FileType::from_raw_mode(stat.st_mode) == FileType::Directory,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("m3s-sandbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("slaves/a/runs/c")).unwrap();
        dir.join("slaves")
    }

    fn read(opened: Opened) -> String {
        let Opened::File(mut f) = opened else { panic!("not a file") };
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn files_and_directories_under_the_root_open() {
        let root = root("plain");
        std::fs::write(root.join("a/runs/c/stdout"), "hello").unwrap();
        assert_eq!(read(open_beneath(&root, &root.join("a/runs/c/stdout")).unwrap()), "hello");
        assert_eq!(read(open_beneath(&root, &root.join("a/./runs/c/stdout")).unwrap()), "hello");
        let Opened::Dir(entries) = open_beneath(&root, &root.join("a/runs/c")).unwrap() else { panic!() };
        assert_eq!(entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["stdout"]);
        assert_eq!(entries[0].size, 5);
        std::fs::remove_dir_all(root.parent().unwrap()).unwrap();
    }

    #[test]
    fn links_parents_and_other_places_are_refused() {
        let root = root("escape");
        let sandbox = root.join("a/runs/c");
        std::os::unix::fs::symlink("/etc/passwd", sandbox.join("file-link")).unwrap();
        std::os::unix::fs::symlink("/etc", sandbox.join("dir-link")).unwrap();
        std::os::unix::fs::symlink("stdout", sandbox.join("inner-link")).unwrap();
        std::fs::write(sandbox.join("stdout"), "x").unwrap();
        for (path, what) in [
            (sandbox.join("file-link"), "symlink"),
            (sandbox.join("dir-link/passwd"), "symlink"),
            (sandbox.join("inner-link"), "symlink"),
            (sandbox.join("../../../../etc/passwd"), "outside"),
            (PathBuf::from("/etc/passwd"), "outside"),
            (sandbox.join("missing"), "missing"),
        ] {
            let err = open_beneath(&root, &path).unwrap_err();
            let ok = match what {
                "symlink" => matches!(err, OpenError::Symlink(_)),
                "outside" => matches!(err, OpenError::Outside(_)),
                _ => matches!(err, OpenError::NotFound(_)),
            };
            assert!(ok, "{}: {err}", path.display());
        }
        let Opened::Dir(entries) = open_beneath(&root, &sandbox).unwrap() else { panic!() };
        let link = entries.iter().find(|e| e.name == "dir-link").unwrap();
        assert!(!link.is_dir, "a link to a directory is listed as what it is");
        std::fs::remove_dir_all(root.parent().unwrap()).unwrap();
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let root = root("fifo");
        let fifo = root.join("a/runs/c/pipe");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        assert!(matches!(open_beneath(&root, &fifo), Err(OpenError::NotRegular(_))));
        std::fs::remove_dir_all(root.parent().unwrap()).unwrap();
    }
}
