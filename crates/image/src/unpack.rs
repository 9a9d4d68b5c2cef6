//! Layer unpacking: a (gzip, zstd or plain) tar stream into a directory of
//! its own, in the form overlayfs takes as a lower directory.
//!
//! A layer is untrusted input. Every path is taken apart into components:
//! `..` is refused, and each directory on the way is opened relative to its
//! parent's descriptor with `O_NOFOLLOW`, so a symbolic link the same layer
//! created earlier (`etc -> /etc`) is never followed and nothing is written
//! outside the directory. Hard links must name a target inside the layer.
//!
//! Whiteouts become what overlayfs reads: `.wh.NAME` a 0/0 character device
//! NAME, `.wh..wh..opq` the `trusted.overlay.opaque` attribute on its
//! directory.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;

/// The attribute overlayfs reads to hide a lower directory's content.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// Most entries one layer may hold: far above real images (a full Debian is
/// about 10,000 files), far below what would exhaust inodes by accident.
pub const MAX_ENTRIES: u64 = 2_000_000;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {entry:?}: {reason}")]
    Refused { entry: String, reason: String },
    #[error("layer entry {entry:?}: {error}")]
    Io { entry: String, error: io::Error },
    #[error("reading the layer: {0}")]
    Read(io::Error),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Device nodes left out (creating them needs privileges this process lacks).
    pub skipped_devices: u64,
}

/// The compression of a layer, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// A decompressing reader for `reader`, whatever its compression.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut reader = io::BufReader::with_capacity(64 * 1024, reader);
    let head = io::BufRead::fill_buf(&mut reader)?;
    Ok(match Compression::detect(head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(reader)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
        ),
        Compression::None => Box::new(reader),
    })
}

/// Unpacks an uncompressed tar stream into `dest`, an existing empty directory.
pub fn unpack(tar: impl Read, dest: &Path) -> Result<Stats, UnpackError> {
    let root = rustix::fs::open(dest, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| UnpackError::Io { entry: dest.display().to_string(), error: e.into() })?;
    let as_root = rustix::process::geteuid().is_root();
    let mut archive = tar::Archive::new(tar);
    let mut stats = Stats::default();
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut entry = entry.map_err(UnpackError::Read)?;
        stats.entries += 1;
        if stats.entries > MAX_ENTRIES {
            return Err(UnpackError::Refused {
                entry: String::new(),
                reason: format!("the layer has more than {MAX_ENTRIES} entries"),
            });
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let refused = |reason: &str| UnpackError::Refused { entry: name.clone(), reason: reason.to_owned() };
        let io_err = |error: io::Error| UnpackError::Io { entry: name.clone(), error };
        let parts = components(&raw).ok_or_else(|| refused("the path leaves the layer (`..`)"))?;
        let Some((leaf, parents)) = parts.split_last() else { continue }; // the layer's root itself
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            continue;
        }
        let dir = walk(&root, parents, true).map_err(|e| match e {
            Errno::LOOP | Errno::NOTDIR => refused("a directory on its path is a symbolic link or a file"),
            e => io_err(e.into()),
        })?;
        if *leaf == OPAQUE_MARKER {
            rustix::fs::fsetxattr(&dir, OPAQUE_XATTR, b"y", XattrFlags::empty()).map_err(|e| io_err(e.into()))?;
            continue;
        }
        if let Some(hidden) = leaf.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(refused("a whiteout without a name"));
            }
            remove_at(&dir, hidden).map_err(|e| io_err(e.into()))?;
            rustix::fs::mknodat(&dir, hidden, FileType::CharacterDevice, Mode::empty(), rustix::fs::makedev(0, 0))
                .map_err(|e| io_err(e.into()))?;
            continue;
        }
        let header = entry.header();
        let mode = Mode::from_raw_mode(header.mode().map_err(io_err)? & 0o7777);
        // An unreadable owner is root's, as GNU tar takes it.
        let owner = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
        let mtime = header.mtime().unwrap_or(0);
        match kind {
            tar::EntryType::Directory => {
                match rustix::fs::statat(&dir, *leaf, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
                    Ok(_) => {
                        remove_at(&dir, leaf).map_err(|e| io_err(e.into()))?;
                        rustix::fs::mkdirat(&dir, *leaf, Mode::from_raw_mode(0o700)).map_err(|e| io_err(e.into()))?;
                    }
                    Err(_) => {
                        rustix::fs::mkdirat(&dir, *leaf, Mode::from_raw_mode(0o700)).map_err(|e| io_err(e.into()))?
                    }
                }
                let fd = rustix::fs::openat(
                    &dir,
                    *leaf,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err(e.into()))?;
                finish_fd(&fd, as_root, owner, mode, None).map_err(|e| io_err(e.into()))?;
                set_xattrs(&mut entry, &fd).map_err(io_err)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                remove_at(&dir, leaf).map_err(|e| io_err(e.into()))?;
                let fd = rustix::fs::openat(
                    &dir,
                    *leaf,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| io_err(e.into()))?;
                let mut file = File::from(fd);
                stats.bytes += io::copy(&mut entry, &mut file).map_err(io_err)?;
                // Owner first: chown clears setuid bits, which the mode then sets.
                finish_fd(&file, as_root, owner, mode, Some(mtime)).map_err(|e| io_err(e.into()))?;
                set_xattrs(&mut entry, &file).map_err(io_err)?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| refused("a symbolic link without a target"))?;
                remove_at(&dir, leaf).map_err(|e| io_err(e.into()))?;
                rustix::fs::symlinkat(target.as_ref(), &dir, *leaf).map_err(|e| io_err(e.into()))?;
                if as_root {
                    rustix::fs::chownat(&dir, *leaf, Some(uid(owner.0)), Some(gid(owner.1)), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| io_err(e.into()))?;
                }
                let times = timestamps(mtime);
                let _ = rustix::fs::utimensat(&dir, *leaf, &times, AtFlags::SYMLINK_NOFOLLOW);
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(|| refused("a hard link without a target"))?;
                let target = components(&target).ok_or_else(|| refused("the hard link's target leaves the layer"))?;
                let Some((tleaf, tparents)) = target.split_last() else {
                    return Err(refused("a hard link to the layer's root"));
                };
                let tdir =
                    walk(&root, tparents, false).map_err(|_| refused("the hard link's target is not in the layer"))?;
                remove_at(&dir, leaf).map_err(|e| io_err(e.into()))?;
                rustix::fs::linkat(&tdir, *tleaf, &dir, *leaf, AtFlags::empty()).map_err(|e| match e {
                    Errno::NOENT => refused("the hard link's target is not in the layer"),
                    e => io_err(e.into()),
                })?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = rustix::fs::makedev(
                    header.device_major().ok().flatten().unwrap_or(0),
                    header.device_minor().ok().flatten().unwrap_or(0),
                );
                remove_at(&dir, leaf).map_err(|e| io_err(e.into()))?;
                match rustix::fs::mknodat(&dir, *leaf, file_type, mode, dev) {
                    Ok(()) => {}
                    Err(Errno::PERM) => stats.skipped_devices += 1,
                    Err(e) => return Err(io_err(e.into())),
                }
            }
            _ => return Err(refused(&format!("entry type {kind:?} is not supported"))),
        }
    }
    Ok(stats)
}

/// A tar path's components, without empty ones and `.`; `None` when one is `..`.
fn components(path: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            p if p.contains(&0) => return None,
            p => out.push(p),
        }
    }
    Some(out)
}

/// Opens the directory `parts` below `root` without following any link,
/// creating missing directories (0755) when `create`.
fn walk(root: &OwnedFd, parts: &[&[u8]], create: bool) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut fd = rustix::io::dup(root)?;
    for part in parts {
        fd = match rustix::fs::openat(&fd, *part, flags, Mode::empty()) {
            Ok(next) => next,
            Err(Errno::NOENT) if create => {
                rustix::fs::mkdirat(&fd, *part, Mode::from_raw_mode(0o755))?;
                rustix::fs::openat(&fd, *part, flags, Mode::empty())?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(fd)
}

/// Removes whatever is at `name` in `dir` (a directory with its content), never following links.
pub(crate) fn remove_at(dir: &OwnedFd, name: &[u8]) -> Result<(), Errno> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            let sub = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let names: Vec<Vec<u8>> = rustix::fs::Dir::read_from(&sub)?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_bytes().to_vec())
                .filter(|n| n != b"." && n != b"..")
                .collect();
            for n in names {
                remove_at(&sub, &n)?;
            }
            rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
        }
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()),
    }
}

fn uid(raw: u64) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(raw as u32)
}

fn gid(raw: u64) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(raw as u32)
}

fn timestamps(mtime: u64) -> Timestamps {
    let t = Timespec { tv_sec: mtime.min(i64::MAX as u64) as i64, tv_nsec: 0 };
    Timestamps { last_access: t, last_modification: t }
}

fn finish_fd(fd: impl AsFd, as_root: bool, owner: (u64, u64), mode: Mode, mtime: Option<u64>) -> Result<(), Errno> {
    if as_root {
        rustix::fs::fchown(&fd, Some(uid(owner.0)), Some(gid(owner.1)))?;
    }
    rustix::fs::fchmod(&fd, mode)?;
    if let Some(m) = mtime {
        rustix::fs::futimens(&fd, &timestamps(m))?;
    }
    Ok(())
}

/// PAX `SCHILY.xattr.*` records (file capabilities such as ping's) on the opened file.
fn set_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>, fd: &impl AsFd) -> io::Result<()> {
    let Some(extensions) = entry.pax_extensions()? else { return Ok(()) };
    let fd: BorrowedFd<'_> = fd.as_fd();
    for ext in extensions {
        let ext = ext?;
        let Ok(key) = ext.key() else { continue };
        let Some(name) = key.strip_prefix("SCHILY.xattr.") else { continue };
        // Overlay's own attributes would change what the layer means.
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        match rustix::fs::fsetxattr(fd, name, ext.value_bytes(), XattrFlags::empty()) {
            Ok(()) | Err(Errno::NOTSUP) | Err(Errno::PERM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("m3s-unpack-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A tar built entry by entry; paths are written raw, so hostile ones can be made.
    struct Tar(tar::Builder<Vec<u8>>);

    impl Tar {
        fn new() -> Tar {
            Tar(tar::Builder::new(Vec::new()))
        }

        fn entry(mut self, kind: tar::EntryType, path: &str, link: &str, data: &[u8]) -> Tar {
            let mut h = tar::Header::new_gnu();
            h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_entry_type(kind);
            h.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
            h.set_size(data.len() as u64);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            if !link.is_empty() {
                h.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_cksum();
            self.0.append(&h, data).unwrap();
            self
        }

        fn file(self, path: &str, data: &str) -> Tar {
            self.entry(tar::EntryType::Regular, path, "", data.as_bytes())
        }

        fn bytes(self) -> Vec<u8> {
            self.0.into_inner().unwrap()
        }
    }

    #[test]
    fn files_dirs_links_and_whiteouts_land_as_overlay_wants_them() {
        let d = dest("plain");
        let tar = Tar::new()
            .entry(tar::EntryType::Directory, "./etc/", "", b"")
            .file("etc/hostname", "box\n")
            .entry(tar::EntryType::Symlink, "etc/localtime", "/usr/share/zoneinfo/UTC", b"")
            .entry(tar::EntryType::Link, "etc/hostname2", "etc/hostname", b"")
            .file("usr/bin/tool", "#!/bin/sh\n")
            .file("var/.wh.cache", "")
            .file("opt/.wh..wh..opq", "")
            .bytes();
        let stats = unpack(&tar[..], &d).unwrap();
        assert_eq!(stats.entries, 7);
        assert_eq!(std::fs::read_to_string(d.join("etc/hostname")).unwrap(), "box\n");
        assert_eq!(std::fs::read_link(d.join("etc/localtime")).unwrap(), Path::new("/usr/share/zoneinfo/UTC"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(d.join("etc/hostname2")).unwrap().ino(),
            std::fs::metadata(d.join("etc/hostname")).unwrap().ino()
        );
        let whiteout = std::fs::symlink_metadata(d.join("var/cache")).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0, "{whiteout:?}");
        if rustix::process::geteuid().is_root() {
            let mut v = [0u8; 1];
            rustix::fs::getxattr(d.join("opt"), OPAQUE_XATTR, &mut v).unwrap();
            assert_eq!(&v, b"y");
        }
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn nothing_is_written_outside_the_layer() {
        let outside = dest("outside");
        for (name, tar) in [
            ("parent", Tar::new().file("../escaped", "x").bytes()),
            ("deep parent", Tar::new().file("a/../../escaped", "x").bytes()),
            ("through a link", {
                let link = outside.to_str().unwrap().to_owned();
                Tar::new().entry(tar::EntryType::Symlink, "evil", &link, b"").file("evil/escaped", "x").bytes()
            }),
            ("hard link out", Tar::new().entry(tar::EntryType::Link, "pw", "../../../../etc/passwd", b"").bytes()),
            ("hard link absent", Tar::new().entry(tar::EntryType::Link, "pw", "etc/passwd", b"").bytes()),
        ] {
            let d = dest("escape");
            let err = unpack(&tar[..], &d).unwrap_err();
            assert!(matches!(err, UnpackError::Refused { .. }), "{name}: {err}");
            assert!(!outside.join("escaped").exists(), "{name}: wrote outside");
            std::fs::remove_dir_all(d).unwrap();
        }
        // An absolute path is taken relative to the layer, as Docker does.
        let d = dest("absolute");
        unpack(&Tar::new().file("/etc/x", "y").bytes()[..], &d).unwrap();
        assert!(d.join("etc/x").exists());
        std::fs::remove_dir_all(d).unwrap();
        std::fs::remove_dir_all(outside).unwrap();
    }

    #[test]
    fn a_later_entry_replaces_an_earlier_one_whatever_it_was() {
        let d = dest("replace");
        let tar = Tar::new()
            .file("x/inner", "1")
            .file("x", "now a file")
            .entry(tar::EntryType::Symlink, "y", "/etc", b"")
            .entry(tar::EntryType::Directory, "y", "", b"")
            .file("y/z", "inside")
            .bytes();
        unpack(&tar[..], &d).unwrap();
        assert_eq!(std::fs::read_to_string(d.join("x")).unwrap(), "now a file");
        assert!(std::fs::symlink_metadata(d.join("y")).unwrap().is_dir());
        assert_eq!(std::fs::read_to_string(d.join("y/z")).unwrap(), "inside");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn compression_is_detected() {
        let plain = Tar::new().file("a", "hello").bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &plain).unwrap();
        let gz = gz.finish().unwrap();
        for (name, bytes) in [("plain", plain.clone()), ("gzip", gz)] {
            let d = dest(name);
            unpack(decompress(&bytes[..]).unwrap(), &d).unwrap();
            assert_eq!(std::fs::read_to_string(d.join("a")).unwrap(), "hello", "{name}");
            std::fs::remove_dir_all(d).unwrap();
        }
        assert_eq!(Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Compression::Zstd);
    }
}
