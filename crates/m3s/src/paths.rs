//! Where m3s keeps its files, and how they are kept private. A leaf module:
//! it imports no other module of the binary, so every command can use it.
//!
//! Layout of a work directory (`/var/lib/m3s` as root, else `~/.local/share/m3s`):
//!
//! ```text
//! api-token            the API's bearer token (0600)
//! framework.redb       the compose framework's state (0600)
//! metrics/             M3trics' store
//! volumes/             named volumes of compose projects
//! mini/                the embedded cluster (`m3s mini --work-dir`)
//!   credentials.json   principals and secrets for its Mesos port (0600)
//!   master/, meta/     checkpoints and the runtime's records
//!   slaves/...         task sandboxes, owned by the tasks' users
//! ```
//!
//! m3s runs with umask 077, so everything it creates is private to its user.
//! The directories on the way to the sandboxes are 0711 instead: a task that
//! runs as another user must reach its own sandbox (`$MESOS_SANDBOX`), but
//! nobody else can list what is there.

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// Traversable, not listable: on the path from the work directory to the sandboxes.
const TRAVERSE_ONLY: u32 = 0o711;

/// `/var/lib/m3s` as root, else `$XDG_DATA_HOME/m3s` or `~/.local/share/m3s`.
pub fn default_work_dir() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/m3s");
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("m3s")
}

/// The embedded cluster's directory inside a work directory (`m3s up`'s, and `m3s mini`'s default).
pub fn mini_dir(work_dir: &Path) -> PathBuf {
    work_dir.join("mini")
}

/// The bearer token `m3s up` and `m3s serve` generate.
pub fn token_file(work_dir: &Path) -> PathBuf {
    work_dir.join("api-token")
}

/// The embedded cluster's Mesos credentials (`{"credentials":[{"principal":..,"secret":..}]}`).
pub fn credentials_file(mini_dir: &Path) -> PathBuf {
    mini_dir.join("credentials.json")
}

/// Makes everything this process creates private to its user. Tasks get the
/// usual 022 back from their supervisor.
pub fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Creates a work directory (and the embedded cluster's, when `with_sandboxes`)
/// and takes back what earlier versions, which ran with the default umask, left
/// readable by others: the directory itself is 0711, everything in it but the
/// task sandboxes and what containers use (images, bundles, volumes, whose
/// directories only are closed) loses group and other permissions.
pub fn prepare_work_dir(work_dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(work_dir)?;
    std::fs::set_permissions(work_dir, std::fs::Permissions::from_mode(TRAVERSE_ONLY))?;
    for entry in std::fs::read_dir(work_dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let is_dir = entry.file_type()?.is_dir();
        if name == "mini" && is_dir {
            prepare_work_dir(&path)?;
        } else if name == "slaves" && is_dir {
            // The sandboxes' tree: made traversable by `sandbox_dirs`, left as it is here.
        } else if is_dir && CONTAINERS_CONTENT.iter().any(|c| name == *c) {
            // What containers see keeps its own modes (an image's files, a
            // volume's data, a bundle's rootfs): only the way in is closed.
            make_private_dir_only(&path)?;
        } else {
            make_private(&path)?;
        }
    }
    Ok(())
}

/// Directories whose content containers use with its own modes: the image
/// store, the bundles and the volumes; and the networks, whose namespace
/// files are mounts that refuse chmod.
const CONTAINERS_CONTENT: [&str; 4] = ["images", "containers", "volumes", "networks"];

fn make_private_dir_only(path: &Path) -> io::Result<()> {
    let mode = std::fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o077))
}

/// `chmod go-rwx`, recursively, without following symbolic links.
fn make_private(path: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o077))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            make_private(&entry?.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_old_work_dir_is_made_private_except_the_way_to_the_sandboxes() {
        let dir = std::env::temp_dir().join(format!("m3s-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sandbox = dir.join("mini/slaves/a/runs/c");
        std::fs::create_dir_all(&sandbox).unwrap();
        std::fs::create_dir_all(dir.join("mini/master/frameworks")).unwrap();
        for (path, m) in [
            (dir.join("framework.redb"), 0o644),
            (dir.join("mini/master/frameworks/f.json"), 0o644),
            (sandbox.join("stdout"), 0o644),
        ] {
            std::fs::write(&path, "x").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
        }
        for d in [&dir, &dir.join("mini"), &dir.join("mini/master"), &dir.join("mini/master/frameworks")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::os::unix::fs::symlink("/etc/hostname", dir.join("link")).unwrap();
        let target_mode = mode(Path::new("/etc/hostname"));

        // What containers see: an image layer's files, a named volume's data.
        for content in ["mini/images/layers/sha256/l/bin", "volumes/p_data/www"] {
            std::fs::create_dir_all(dir.join(content)).unwrap();
            std::fs::set_permissions(dir.join(content), std::fs::Permissions::from_mode(0o755)).unwrap();
        }

        prepare_work_dir(&dir).unwrap();
        assert_eq!(mode(&dir.join("mini/images/layers/sha256/l/bin")), 0o755, "an image's files keep their modes");
        assert_eq!(mode(&dir.join("volumes/p_data/www")), 0o755, "a volume's data keeps its modes");
        assert_eq!(mode(&dir.join("volumes")) & 0o077, 0, "only the way in is closed");
        assert_eq!(mode(&dir), 0o711);
        assert_eq!(mode(&dir.join("mini")), 0o711);
        assert_eq!(mode(&dir.join("framework.redb")), 0o600);
        assert_eq!(mode(&dir.join("mini/master")), 0o700);
        assert_eq!(mode(&dir.join("mini/master/frameworks/f.json")), 0o600);
        assert_eq!(mode(&sandbox.join("stdout")), 0o644, "sandboxes belong to their tasks");
        assert_eq!(mode(Path::new("/etc/hostname")), target_mode, "links are not followed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
