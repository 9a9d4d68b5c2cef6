//! User database lookups through the C library (so NSS sources such as LDAP
//! or sssd work as they do for Mesos), done by m3s before a launch; and the
//! credential switch done in the task's child process before `exec`.

use std::ffi::CString;
use std::io;

use super::records::RunAs;

/// `getpwnam_r`: the user's uid and primary gid, `None` if there is no such user.
pub(crate) fn lookup(name: &str) -> io::Result<Option<(u32, u32)>> {
    let Ok(c_name) = CString::new(name) else { return Ok(None) };
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: passwd is plain old data; all-zero is a valid value.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, `buf.len()` is the
        // buffer's real size, and `entry`'s strings (unused) point into `buf`.
        let rc = unsafe { libc::getpwnam_r(c_name.as_ptr(), &mut entry, buf.as_mut_ptr(), buf.len(), &mut result) };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => return Ok(Some((entry.pw_uid, entry.pw_gid))),
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 2, 0),
            // Some NSS modules report "not found" as an error.
            libc::ENOENT | libc::ESRCH => return Ok(None),
            errno => return Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

/// `getpwuid_r` of the effective uid: the name of the user this process runs as.
pub fn current_user_name() -> Option<String> {
    let uid = rustix::process::geteuid().as_raw();
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: as in `lookup`.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf.len()` is the buffer's real size.
        let rc = unsafe { libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut result) };
        match rc {
            0 if result.is_null() => return None,
            // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buf`.
            0 => return unsafe { std::ffi::CStr::from_ptr(entry.pw_name) }.to_str().ok().map(str::to_owned),
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 2, 0),
            _ => return None,
        }
    }
}

/// `getgrouplist`: the user's supplementary groups (including `gid`).
pub(crate) fn group_list(name: &str, gid: u32) -> Vec<u32> {
    let Ok(c_name) = CString::new(name) else { return vec![gid] };
    let mut capacity: libc::c_int = 32;
    loop {
        let mut groups: Vec<libc::gid_t> = vec![0; capacity.unsigned_abs() as usize];
        let mut count = capacity;
        // SAFETY: `groups` has room for `count` entries.
        let rc = unsafe { libc::getgrouplist(c_name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count.max(0).unsigned_abs() as usize);
            return groups;
        }
        if capacity >= 65536 {
            return vec![gid];
        }
        capacity = if count > capacity { count } else { capacity * 2 };
    }
}

/// Switches the calling (forked, single-threaded) process to `run_as`:
/// supplementary groups, then gid, then uid. Only async-signal-safe system
/// calls: meant for `pre_exec`.
pub(crate) fn switch_to(run_as: &RunAs) -> io::Result<()> {
    // SAFETY: `groups` is a valid array of `len` gids; the other calls take
    // plain integers.
    unsafe {
        if libc::setgroups(run_as.groups.len(), run_as.groups.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setgid(run_as.gid) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setuid(run_as.uid) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_user_this_process_runs_as() {
        let name = current_user_name().expect("a name");
        let uid = lookup(&name).unwrap().expect("the user exists").0;
        assert_eq!(uid, rustix::process::geteuid().as_raw());
    }

    #[test]
    fn looks_up_root_and_misses_unknown_users() {
        assert_eq!(lookup("root").unwrap().map(|(uid, _)| uid), Some(0));
        assert_eq!(lookup("no-such-user-m3s").unwrap(), None);
        assert_eq!(lookup("bad\0name").unwrap(), None);
        assert!(group_list("root", 0).contains(&0));
    }
}
