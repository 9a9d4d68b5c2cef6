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
//!    as the requested user,
//! 4. records the task in `task.json` and reports `ready <pid>` (or
//!    `error <message>`) on the pipe, then closes it,
//! 5. waits for the task's leader to exit (reaping adopted orphans
//!    meanwhile), kills what is left of the task (its process group, then
//!    every remaining descendant, as Mesos destroys a container), reaps
//!    everything, and
//! 6. writes `status.json` before exiting.
//!
//! If m3s is gone meanwhile, nothing changes: the report is lost (EPIPE is
//! ignored) and the status is found by the next m3s on recovery.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use rustix::process::{Pid, Signal, WaitIdOptions, WaitOptions};

use super::TaskCommand;
use super::procfs;
use super::records::{self, LaunchRecord, Outcome, ProcId, StatusRecord};
use super::user;

const HANDLED_SIGNALS: [libc::c_int; 4] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGPIPE];

/// Entry point of the supervisor process: `m3s supervise --run-dir DIR`
/// calls this and exits with its return value (0: the task ran and its status
/// is recorded; 1: it could not be started or its status not recorded).
pub fn supervise(run_dir: &Path) -> i32 {
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

    let mut child = match start_task(run_dir) {
        Ok(child) => child,
        Err(message) => {
            log(&message);
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
    if write_status(run_dir, outcome) { 0 } else { 1 }
}

fn start_task(run_dir: &Path) -> Result<Child, String> {
    let launch_path = run_dir.join(records::LAUNCH);
    let record: LaunchRecord = match records::read_json(&launch_path) {
        Ok(Some(record)) => record,
        Ok(None) => return Err(format!("{} is missing", launch_path.display())),
        Err(e) => return Err(format!("reading {}: {e}", launch_path.display())),
    };
    let stdout_path = record.sandbox.join("stdout");
    let stdout = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&stdout_path)
        .map_err(|e| format!("opening {}: {e}", stdout_path.display()))?;

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
        return Err(format!("working directory {} does not exist", cwd.display()));
    }
    command
        .envs(spec.env.iter().map(|(name, value)| (name, value)))
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit());
    let run_as = record.run_as.clone();
    // SAFETY: the closure runs in the forked child of this single-threaded
    // process and only makes async-signal-safe system calls (setsid, signal,
    // setgroups/setgid/setuid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            rustix::process::setsid()?;
            for signal in HANDLED_SIGNALS {
                libc::signal(signal, libc::SIG_DFL);
            }
            if let Some(run_as) = &run_as {
                user::switch_to(run_as)?;
            }
            Ok(())
        });
    }
    command.spawn().map_err(|e| match &record.run_as {
        Some(run_as) => format!("cannot execute '{program}' as user '{}': {e}", run_as.user),
        None => format!("cannot execute '{program}': {e}"),
    })
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
