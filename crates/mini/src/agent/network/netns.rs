//! Network namespaces that outlive whoever made them: a namespace made on a
//! thread of its own and bind-mounted onto a file, as `ip netns add` does, so
//! that CNI plugins and the OCI runtime join it by path and a restart of m3s
//! finds it again.

use std::path::Path;

/// Makes a new network namespace held by a bind mount at `path`.
pub fn create(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::File::create(path)?;
    let target = path.to_owned();
    // unshare(CLONE_NEWNET) moves only the calling thread: a thread that ends
    // right after leaves m3s in the host's namespace.
    let made = std::thread::spawn(move || -> std::io::Result<()> {
        // SAFETY: only the network namespace is unshared, never the file table.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET)? };
        rustix::mount::mount_bind("/proc/thread-self/ns/net", &target)?;
        Ok(())
    })
    .join()
    .map_err(|_| std::io::Error::other("the namespace thread panicked"))?;
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Unmounts and removes a namespace file; the namespace ends with its last user.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether `path` holds a network namespace (a restart checks before reuse).
pub fn is_namespace(path: &Path) -> bool {
    // An nsfs file reports the nsfs magic; a plain empty file does not.
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type == 0x6e73_6673)
}

/// The IPv4 addresses (`10.90.0.5/24`) of interface `ifname` in the namespace
/// at `path`, read with `nsenter` and `ip`; empty if there are none or they
/// cannot be read.
pub fn ipv4_addresses(path: &Path, ifname: &str) -> Vec<String> {
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", path.display()))
        .args(["ip", "-4", "-o", "addr", "show", "dev", ifname])
        .output();
    let Ok(out) = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()) else { return Vec::new() };
    // `2: eth0    inet 10.90.0.5/24 brd 10.90.0.255 scope global eth0 ...`
    out.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace().skip_while(|w| *w != "inet");
            words.next()?;
            words.next().map(str::to_owned)
        })
        .collect()
}
