//! Just enough of `/proc` for the runtime: process identity (guarding
//! against pid reuse), liveness, the members of a task's session, signals
//! to all of them, and resource usage.

use std::fs;

use rustix::process::{Pid, Signal, kill_process, kill_process_group};

use super::records::ProcId;

/// The fields of `/proc/<pid>/stat` the runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// Field 3: `R`, `S`, `D`, `Z`, ...
    pub state: u8,
    /// Field 4.
    pub ppid: i32,
    /// Field 5.
    pub pgrp: i32,
    /// Field 6.
    pub session: i32,
    /// Fields 14 and 15, in clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// Field 20.
    pub num_threads: u64,
    /// Field 22, in clock ticks since boot.
    pub start_time: u64,
    /// Field 24, in pages.
    pub rss_pages: u64,
}

impl Stat {
    fn is_zombie(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Parses a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses: the fields
/// after it start after the *last* `)`.
pub(crate) fn parse_stat(buf: &[u8]) -> Option<Stat> {
    let close = buf.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(buf.get(close + 1..)?).ok()?;
    let mut fields = [""; 22];
    let mut count = 0;
    for (slot, field) in fields.iter_mut().zip(rest.split_ascii_whitespace()) {
        *slot = field;
        count += 1;
    }
    if count < fields.len() {
        return None;
    }
    // fields[0] is field 3 of proc(5).
    let field = |n: usize| fields[n - 3];
    let num = |n: usize| field(n).parse::<u64>().ok();
    Some(Stat {
        state: *field(3).as_bytes().first()?,
        ppid: field(4).parse().ok()?,
        pgrp: field(5).parse().ok()?,
        session: field(6).parse().ok()?,
        utime: num(14)?,
        stime: num(15)?,
        num_threads: num(20)?,
        start_time: num(22)?,
        rss_pages: field(24).parse::<i64>().ok()?.max(0).unsigned_abs(),
    })
}

pub(crate) fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read(format!("/proc/{pid}/stat")).ok()?)
}

/// The identity of a live (or zombie) process.
/// The environment a process was started with (`/proc/<pid>/environ`); empty
/// when it cannot be read.
pub(crate) fn environ(pid: u32) -> std::collections::HashMap<String, String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            let (name, value) = entry.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

pub(crate) fn proc_id(pid: u32) -> Option<ProcId> {
    read_stat(pid).map(|stat| ProcId { pid, start_time: stat.start_time })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Running (or sleeping, stopped, ...): the same process as recorded.
    Alive,
    /// Exited but not yet reaped: its pid (and process group id) are still
    /// reserved, so signalling them is safe.
    Zombie,
    /// No such process, or the pid now belongs to another process.
    Gone,
}

pub(crate) fn liveness(process: ProcId) -> Liveness {
    match read_stat(process.pid) {
        Some(stat) if stat.start_time == process.start_time => {
            if stat.is_zombie() {
                Liveness::Zombie
            } else {
                Liveness::Alive
            }
        }
        _ => Liveness::Gone,
    }
}

/// The processes of the task whose leader is `leader`: tasks are started as
/// session leaders, so this is its session plus its process group (the same
/// set unless a member moved itself elsewhere).
pub(crate) fn task_members(leader: u32) -> Vec<(u32, Stat)> {
    let Ok(leader_id) = i32::try_from(leader) else { return Vec::new() };
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| read_stat(pid).map(|stat| (pid, stat)))
        .filter(|(_, stat)| stat.session == leader_id || stat.pgrp == leader_id)
        .collect()
}

/// The children of `pid` (of all its threads, with a fallback for kernels
/// without `/proc/<pid>/task/<tid>/children`).
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    let mut listed = false;
    if let Ok(threads) = fs::read_dir(format!("/proc/{pid}/task")) {
        for thread in threads.flatten() {
            if let Ok(text) = fs::read_to_string(thread.path().join("children")) {
                listed = true;
                children.extend(text.split_ascii_whitespace().filter_map(|child| child.parse::<u32>().ok()));
            }
        }
    }
    if listed {
        return children;
    }
    let Ok(dir) = fs::read_dir("/proc") else { return children };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| read_stat(*child).is_some_and(|stat| i64::from(stat.ppid) == i64::from(pid)))
        .collect()
}

/// Sends `signal` to the task's process group and to every other member of
/// its session. Refuses pids that could hit unrelated processes (0, 1, our
/// own).
pub(crate) fn signal_task(leader: u32, signal: Signal) {
    if leader <= 1 || leader == std::process::id() {
        return;
    }
    let Some(group) = i32::try_from(leader).ok().and_then(Pid::from_raw) else { return };
    let _ = kill_process_group(group, signal);
    for (pid, stat) in task_members(leader) {
        if stat.pgrp != group.as_raw_nonzero().get() && !stat.is_zombie() && pid != std::process::id() {
            if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
                let _ = kill_process(pid, signal);
            }
        }
    }
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value).ok().filter(|v| *v > 0)
}

/// Resource usage of the task led by `leader`, summed over its live
/// processes; `None` when none is left.
pub(crate) fn usage(leader: u32) -> Option<mesos::v1::ResourceStatistics> {
    let members: Vec<Stat> =
        task_members(leader).into_iter().map(|(_, stat)| stat).filter(|stat| !stat.is_zombie()).collect();
    if members.is_empty() {
        return None;
    }
    let ticks = sysconf(libc::_SC_CLK_TCK).unwrap_or(100) as f64;
    let page = sysconf(libc::_SC_PAGESIZE).unwrap_or(4096);
    let sum = |f: fn(&Stat) -> u64| members.iter().map(f).sum::<u64>();
    Some(mesos::v1::ResourceStatistics {
        timestamp: super::records::now_secs(),
        processes: u32::try_from(members.len()).ok(),
        threads: u32::try_from(sum(|s| s.num_threads)).ok(),
        cpus_user_time_secs: Some(sum(|s| s.utime) as f64 / ticks),
        cpus_system_time_secs: Some(sum(|s| s.stime) as f64 / ticks),
        mem_rss_bytes: Some(sum(|s| s.rss_pages).saturating_mul(page)),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let line = b"4242 (we ird) (name)) S 1 4242 4242 0 -1 4194560 120 0 0 0 7 3 0 0 20 0 2 0 987654 \
                     5000000 321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.state, b'S');
        assert_eq!(stat.ppid, 1);
        assert_eq!((stat.pgrp, stat.session), (4242, 4242));
        assert_eq!((stat.utime, stat.stime), (7, 3));
        assert_eq!(stat.num_threads, 2);
        assert_eq!(stat.start_time, 987654);
        assert_eq!(stat.rss_pages, 321);
        assert_eq!(parse_stat(b"12 (truncated) S 1 2"), None);
    }

    #[test]
    fn knows_itself() {
        let me = proc_id(std::process::id()).unwrap();
        assert_eq!(liveness(me), Liveness::Alive);
        assert_eq!(liveness(ProcId { start_time: me.start_time + 1, ..me }), Liveness::Gone);
        let mut child = std::process::Command::new("sleep").arg("10").spawn().unwrap();
        assert!(children_of(std::process::id()).contains(&child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
