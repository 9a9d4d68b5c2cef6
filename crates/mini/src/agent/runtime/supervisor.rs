//! The per-container supervisor process (`m3s supervise --run-dir DIR`).
//!
//! It is the m3s binary re-executed, so it stays deliberately small: plain
//! `std` + `rustix`/`libc`, no async runtime, no threads, a handful of small
//! allocations. m3s starts it in a process group of its own (so neither a
//! signal to m3s's group nor a Ctrl-C on m3s's terminal reaches it), with
//! stdin `/dev/null`, stdout a pipe to m3s and stderr the sandbox's `stderr`
//! file (where its rare diagnostics go, as Mesos executors log to the
//! sandbox). It
//!
//! 1. ignores SIGHUP, SIGINT, SIGTERM and SIGPIPE, and becomes a child
//!    subreaper, so that orphaned descendants of its task come back to it,
//! 2. records itself in `supervisor.json`,
//! 3. spawns the task described by `launch.json` as a session leader (so its
//!    process group and session ids are its pid): stdin `/dev/null`, stdout
//!    appended to the sandbox's `stdout`, stderr inherited, in the requested
//!    working directory, with m3s's environment plus the spec's variables,
//!    in the container's cgroups (joined by the child before `exec`, so the
//!    supervisor itself stays outside them), as the requested user,
//! 4. records the task in `task.json` and reports `ready <pid>` (or
//!    `error <message>`) on the pipe, then closes it,
//! 5. waits for the task's leader to exit (reaping adopted orphans
//!    meanwhile), kills what is left of the task (its process group, then
//!    every remaining descendant, as Mesos destroys a container), reaps
//!    everything, checks its memory cgroup for OOM kills (a memory
//!    limitation then is the outcome), removes its cgroups, and
//! 6. writes `status.json` before exiting.
//!
//! If m3s is gone meanwhile, nothing changes: the report is lost (EPIPE is
//! ignored) and the status is found by the next m3s on recovery.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rustix::process::{Pid, Signal, WaitIdOptions, WaitOptions};

use super::TaskCommand;
use super::cgroups::{self, TaskCgroups};
use super::launcher;
use super::procfs;
use super::records::{self, LaunchRecord, Outcome, ProcId, StatusRecord};
use super::user;

const HANDLED_SIGNALS: [libc::c_int; 4] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGPIPE];

/// Entry point of the supervisor process: `m3s supervise --run-dir DIR`
/// calls this and exits with its return value (0: the task ran and its status
/// is recorded; 1: it could not be started or its status not recorded).
///
/// Started with a socket as its stdin, the process is instead the
/// supervisor launcher, which forks supervisors (running
/// [`supervise_run_dir`]) on request (see the `launcher` module).
pub fn supervise(run_dir: &Path) -> i32 {
    if launcher::is_launcher() {
        return launcher::serve(supervise_run_dir);
    }
    supervise_run_dir(run_dir)
}

/// The supervisor proper, in a process executed or forked for it.
fn supervise_run_dir(run_dir: &Path) -> i32 {
    for signal in HANDLED_SIGNALS {
        // SAFETY: installing SIG_IGN has no preconditions.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
    // An ignored SIGCHLD (inherited across exec) would make children
    // unwaitable: make sure it is not.
    // SAFETY: as above.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    let me = std::process::id();
    if let Err(e) = rustix::process::set_child_subreaper(Pid::from_raw(me as i32)) {
        log(&format!("cannot become a child subreaper: {e}"));
    }
    if let Some(me) = procfs::proc_id(me) {
        if let Err(e) = records::write_json(&run_dir.join(records::SUPERVISOR), &me, false) {
            log(&format!("writing {}: {e}", records::SUPERVISOR));
        }
    }

    let launch_path = run_dir.join(records::LAUNCH);
    let record: Result<LaunchRecord, LaunchFailure> = match records::read_json(&launch_path) {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err(LaunchFailure::NoRecord(launch_path.clone())),
        Err(e) => Err(LaunchFailure::Record { path: launch_path.clone(), message: e.to_string() }),
    };
    let started = match &record {
        Ok(record) => start_task(record).map(|c| (c, record)),
        Err(e) => Err(e.clone()),
    };
    let (mut child, record) = match started {
        Ok(started) => started,
        Err(failure) => {
            // The agent hears of it as text: the status record and the report line.
            let message = failure.to_string();
            log(&message);
            if let Some(cgroups) = record.ok().and_then(|record| record.cgroups) {
                remove_cgroups(&cgroups);
            }
            write_status(run_dir, Outcome::LaunchError(message.clone()));
            report(&format!("error {}\n", message.replace('\n', " ")));
            return 1;
        }
    };
    let pid = child.id();
    let task = procfs::proc_id(pid).unwrap_or(ProcId { pid, start_time: 0 });
    if let Err(e) = records::write_json(&run_dir.join(records::TASK), &task, false) {
        log(&format!("writing {}: {e}", records::TASK));
    }
    // The task has its environment now: the values (passwords, tokens) leave
    // the disk; the names stay for whoever reads the record.
    let mut redacted = record.clone();
    redacted.spec.env.iter_mut().for_each(|(_, value)| value.clear());
    if let Err(e) = records::write_json(&launch_path, &redacted, false) {
        log(&format!("writing {} without the environment's values: {e}", records::LAUNCH));
    }
    report(&format!("ready {pid}\n"));

    wait_for_leader(pid);
    // The leader is a zombie now: its pid, which is also the task's process
    // group and session id, cannot be reused until it is reaped.
    if let Some(group) = Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(group, Signal::KILL);
    }
    let outcome = match child.wait() {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Outcome::ExitCode(code),
            (None, Some(signal)) => Outcome::Signal(signal),
            (None, None) => Outcome::Lost(format!("unrecognized wait status {status}")),
        },
        Err(e) => Outcome::Lost(format!("waiting for the task (pid {pid}): {e}")),
    };
    kill_descendants(me);
    let outcome = match &record.cgroups {
        Some(task_cgroups) => {
            let limit = record.spec.limits.as_ref().and_then(cgroups::memory_limit);
            finish_cgroups(task_cgroups, limit, outcome)
        }
        None => outcome,
    };
    if let Some(container) = &record.spec.container {
        after_exit(&container.after_exit);
    }
    if write_status(run_dir, outcome) { 0 } else { 1 }
}

/// After the task: a memory limitation if the OOM killer struck in its
/// cgroup (`limit`: the one m3s set, should the cgroup not tell); then the
/// cgroups are emptied and removed.
fn finish_cgroups(task_cgroups: &TaskCgroups, limit: Option<u64>, outcome: Outcome) -> Outcome {
    let sigkill = matches!(outcome, Outcome::Signal(libc::SIGKILL) | Outcome::ExitCode(137));
    let limitation = if task_cgroups.oom_killed(sigkill) {
        task_cgroups.memory_limit().or(limit).map(|limit_bytes| Outcome::MemoryLimit {
            limit_bytes,
            max_used_bytes: task_cgroups.max_usage(),
            stats: task_cgroups.memory_stat(),
        })
    } else {
        None
    };
    remove_cgroups(task_cgroups);
    limitation.unwrap_or(outcome)
}

fn remove_cgroups(task_cgroups: &TaskCgroups) {
    task_cgroups.kill_all();
    if let Err(error) = task_cgroups.remove() {
        log(&error.to_string());
    }
}

/// Why the supervisor could not start its task.
#[derive(Debug, Clone, thiserror::Error)]
enum LaunchFailure {
    #[error("{} is missing", .0.display())]
    NoRecord(PathBuf),
    #[error("reading {}: {message}", path.display())]
    Record { path: PathBuf, message: String },
    #[error("opening {}: {source}", path.display())]
    Open { path: PathBuf, source: std::sync::Arc<io::Error> },
    #[error("working directory {} does not exist", .0.display())]
    NoWorkingDir(PathBuf),
    #[error("creating a pipe: {0}")]
    Pipe(std::sync::Arc<io::Error>),
    #[error("a path with a NUL byte")]
    NulByte,
    #[error("the image has too many layers ({0}) for one overlay mount")]
    TooManyLayers(usize),
    #[error("cannot move the task into its cgroups ({cgroups}): {source}")]
    JoinCgroups { cgroups: String, source: std::sync::Arc<io::Error> },
    #[error("cannot execute '{program}'{}: {source}", user.as_ref().map(|u| format!(" as user '{u}'")).unwrap_or_default())]
    Exec { program: String, user: Option<String>, source: std::sync::Arc<io::Error> },
}

fn start_task(record: &LaunchRecord) -> Result<Child, LaunchFailure> {
    let open = |path: &Path| {
        let path = path.to_path_buf();
        move |e: io::Error| LaunchFailure::Open { path, source: std::sync::Arc::new(e) }
    };
    let stdout_path = record.sandbox.join("stdout");
    let stdout = OpenOptions::new().create(true).append(true).open(&stdout_path).map_err(open(&stdout_path))?;

    let spec = &record.spec;
    let (mut command, program) = match &spec.command {
        TaskCommand::Shell(script) => {
            let mut command = Command::new("/bin/sh");
            command.arg("-c").arg(script);
            (command, "/bin/sh")
        }
        TaskCommand::Argv { program, args } => {
            let mut command = Command::new(program);
            if let Some((argv0, rest)) = args.split_first() {
                command.arg0(argv0).args(rest);
            }
            (command, program.as_str())
        }
    };
    let cwd = match &spec.working_dir {
        Some(dir) => record.sandbox.join(dir),
        None => record.sandbox.clone(),
    };
    if !cwd.is_dir() {
        return Err(LaunchFailure::NoWorkingDir(cwd));
    }
    command
        .env_clear()
        .envs(super::inherited_env())
        .envs(spec.env.iter().map(|(name, value)| (name, value)))
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit());
    // The cgroups to join: their `cgroup.procs`, opened here (close-on-exec)
    // and written by the child, so that the task is inside them before it
    // runs a single instruction of its own and this process never is.
    let procs_files = record.cgroups.as_ref().map(TaskCgroups::procs_files).unwrap_or_default();
    let mut joins = Vec::with_capacity(procs_files.len());
    for path in &procs_files {
        let file = OpenOptions::new().write(true).open(path).map_err(open(path))?;
        joins.push(file);
    }
    let join_fds: Vec<libc::c_int> = joins.iter().map(AsRawFd::as_raw_fd).collect();
    // Tells a failed join from a failed exec: the child writes a byte here
    // before giving up (close-on-exec, so a successful exec writes nothing).
    let (join_failed, join_failed_tx) = if join_fds.is_empty() {
        (None, None)
    } else {
        cloexec_pipe().map(|(r, w)| (Some(r), Some(w))).map_err(|e| LaunchFailure::Pipe(std::sync::Arc::new(e)))?
    };
    let join_failed_fd = join_failed_tx.as_ref().map(AsRawFd::as_raw_fd);
    let run_as = record.run_as.clone();
    let isolation = spec.container.as_ref().map(|c| Isolation::new(c, &cwd)).transpose()?;
    // SAFETY: the closure runs in the forked child of this single-threaded
    // process and only makes async-signal-safe system calls (setsid, umask,
    // signal, write, setgroups/setgid/setuid, unshare, mount, umount2, chdir)
    // on data prepared beforehand; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            rustix::process::setsid()?;
            if let Some(isolation) = &isolation {
                isolation.enter()?;
            }
            // m3s keeps its own files private (umask 077); a task gets the usual default.
            libc::umask(0o022);
            for signal in HANDLED_SIGNALS {
                libc::signal(signal, libc::SIG_DFL);
            }
            for &fd in &join_fds {
                // "0": the writing process itself.
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    let error = io::Error::last_os_error();
                    if let Some(flag) = join_failed_fd {
                        libc::write(flag, b"j".as_ptr().cast(), 1);
                    }
                    return Err(error);
                }
            }
            if let Some(run_as) = &run_as {
                user::switch_to(run_as)?;
            }
            Ok(())
        });
    }
    let spawned = command.spawn();
    drop(join_failed_tx);
    drop(joins);
    spawned.map_err(|e| {
        let mut flag = [0u8; 1];
        let failed_join = join_failed.map(File::from).is_some_and(|mut r| r.read(&mut flag).is_ok_and(|n| n == 1));
        let source = std::sync::Arc::new(e);
        if failed_join {
            LaunchFailure::JoinCgroups { cgroups: describe(&procs_files), source }
        } else {
            LaunchFailure::Exec {
                program: program.to_owned(),
                user: record.run_as.as_ref().map(|r| r.user.clone()),
                source,
            }
        }
    })
}

/// A container task's mount namespace, prepared before the fork: every
/// string the child needs is a C string already.
struct Isolation {
    detach: Vec<std::ffi::CString>,
    overlay: Option<(std::ffi::CString, std::ffi::CString, std::ffi::CString)>,
    cwd: std::ffi::CString,
}

impl Isolation {
    fn new(setup: &super::ContainerSetup, cwd: &std::path::Path) -> Result<Isolation, LaunchFailure> {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &[u8]| std::ffi::CString::new(p).map_err(|_| LaunchFailure::NulByte);
        let overlay = match &setup.overlay {
            Some(o) => {
                let options = o.options();
                // The mount options are one page; relative lower paths keep many layers within it.
                if options.len() >= 4096 {
                    return Err(LaunchFailure::TooManyLayers(o.lower.len()));
                }
                Some((
                    c(o.lower_root.as_os_str().as_bytes())?,
                    c(o.target.as_os_str().as_bytes())?,
                    c(options.as_bytes())?,
                ))
            }
            None => None,
        };
        Ok(Isolation {
            detach: setup.detach.iter().map(|p| c(p.as_os_str().as_bytes())).collect::<Result<_, _>>()?,
            overlay,
            cwd: c(cwd.as_os_str().as_bytes())?,
        })
    }

    /// In the forked child: a private mount namespace with the rootfs mounted.
    fn enter(&self) -> io::Result<()> {
        let check = |rc: libc::c_int| if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) };
        // SAFETY: plain system calls on valid NUL-terminated strings.
        unsafe {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for path in &self.detach {
                // Absent already (another layout) is fine.
                libc::umount2(path.as_ptr(), libc::MNT_DETACH);
            }
            if let Some((lower_root, target, options)) = &self.overlay {
                check(libc::chdir(lower_root.as_ptr()))?;
                check(libc::mount(
                    c"overlay".as_ptr(),
                    target.as_ptr(),
                    c"overlay".as_ptr(),
                    0,
                    options.as_ptr().cast(),
                ))?;
                check(libc::chdir(self.cwd.as_ptr()))?;
            }
        }
        Ok(())
    }
}

/// The container runtime's cleanup once the task ended (`crun delete --force ID`).
fn after_exit(argv: &[String]) {
    let Some((program, args)) = argv.split_first() else { return };
    match Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::null()).status() {
        Ok(s) if s.success() => {}
        Ok(s) => log(&format!("{} exited with {s}", argv.join(" "))),
        Err(e) => log(&format!("cannot run {program}: {e}")),
    }
}

fn describe(paths: &[std::path::PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// A pipe whose ends are closed on exec: (read, write).
pub(super) fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both are open descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Waits until the task's leader has exited, leaving it a zombie; reaps the
/// orphans adopted meanwhile (this process is their subreaper).
fn wait_for_leader(leader: u32) {
    loop {
        // SAFETY: siginfo_t is plain old data; waitid fills it in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is valid for writing.
        let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc != 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            log(&format!("waiting for the task (pid {leader}): {error}"));
            return;
        }
        // SAFETY: waitid succeeded with WEXITED, so the child fields are set.
        let pid = unsafe { info.si_pid() };
        if pid.unsigned_abs() == leader {
            return;
        }
        if let Some(pid) = Pid::from_raw(pid) {
            let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
        }
    }
}

/// Kills and reaps every remaining child of this process until none is
/// left: processes of the task that left its process group and session
/// come back to us as orphans, as do their children once they are killed.
fn kill_descendants(me: u32) {
    loop {
        let children = procfs::children_of(me);
        for &child in &children {
            if let Some(pid) = i32::try_from(child).ok().and_then(Pid::from_raw) {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
        let options = if children.is_empty() {
            // Any child now appeared after the listing: look again rather
            // than block on one that was not killed.
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG
        } else {
            WaitIdOptions::EXITED
        };
        match rustix::process::waitid(rustix::process::WaitId::All, options) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            // ECHILD: no child left.
            Err(_) => return,
        }
    }
}

fn write_status(run_dir: &Path, outcome: Outcome) -> bool {
    let record = StatusRecord { outcome, finished_at: records::now_secs() };
    match records::write_json(&run_dir.join(records::STATUS), &record, true) {
        Ok(()) => true,
        Err(e) => {
            log(&format!("writing {}: {e}", records::STATUS));
            false
        }
    }
}

/// Writes the launch report to m3s (stdout is a pipe m3s reads to its end),
/// then points stdout at /dev/null so m3s sees the end of the report.
fn report(line: &str) {
    {
        let mut out = io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
    if let Ok(null) = File::open("/dev/null") {
        // SAFETY: both descriptors are open; dup2 replaces fd 1 atomically.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}

/// Diagnostics go to stderr: the sandbox's `stderr` file.
fn log(message: &str) {
    let _ = writeln!(io::stderr(), "m3s supervisor [{}]: {message}", std::process::id());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::runtime::LaunchSpec;

    fn record(sandbox: &Path, cgroup: &Path) -> LaunchRecord {
        let spec = LaunchSpec {
            framework_id: "f".into(),
            executor_id: "e".into(),
            task_id: "t".into(),
            container_id: "c".into(),
            command: TaskCommand::Shell("exit 0".into()),
            env: Vec::new(),
            user: None,
            working_dir: None,
            limits: None,
            container: None,
        };
        let cgroups = Some(TaskCgroups::V2 { path: cgroup.to_path_buf() });
        LaunchRecord { spec, sandbox: sandbox.to_path_buf(), run_as: None, cgroups }
    }

    #[test]
    fn the_task_joins_its_cgroup_before_exec_and_a_failed_join_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let cgroup = dir.path().join("cgroup");
        std::fs::create_dir(&cgroup).unwrap();
        // A plain file stands in for cgroup.procs: the child writes "0" (itself).
        std::fs::write(cgroup.join("cgroup.procs"), "").unwrap();
        let mut child = start_task(&record(dir.path(), &cgroup)).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap(), "0");

        // A write that fails (ENOSPC from /dev/full) fails the launch with
        // the cgroup named, not as an exec failure.
        std::fs::remove_file(cgroup.join("cgroup.procs")).unwrap();
        std::os::unix::fs::symlink("/dev/full", cgroup.join("cgroup.procs")).unwrap();
        let error = start_task(&record(dir.path(), &cgroup)).unwrap_err();
        assert!(
            matches!(&error, LaunchFailure::JoinCgroups { cgroups, .. } if cgroups.contains("cgroup.procs")),
            "{error}"
        );
    }
}
