//! The supervisor launcher: a small single-threaded process that forks
//! supervisors on request, so that a launch costs a `fork` of a small
//! process instead of an `exec` of the whole m3s binary (dynamic loading,
//! relocations, page faults, and the teardown of a large address space,
//! which together cost about 1.5 ms of CPU per task).
//!
//! m3s starts it once, at its first launch, as the m3s binary re-executed
//! (`<supervisor_exe> supervise --run-dir <runtime_dir>/launcher`) with its
//! stdin one end of a `SOCK_SEQPACKET` socket pair: that is how
//! [`supervise`](super::supervise) knows it is the launcher. It is started
//! with `posix_spawn`: m3s itself (multi-threaded) never forks.
//!
//! A request is one datagram: the container's run directory, with two
//! descriptors attached (`SCM_RIGHTS`): the sandbox's `stderr` file and the
//! write end of the launch-report pipe. The launcher forks; the child sets
//! itself up exactly as a freshly executed supervisor would be (a process
//! group of its own, `/` as its working directory, stdin `/dev/null`,
//! stdout the report pipe, stderr the sandbox's `stderr`, default signal
//! mask and dispositions) and runs the supervisor's code; it never returns
//! to the launcher's loop. The launcher answers `ok <pid> <start time>` with a
//! pidfd of the child attached (opened before the child can be reaped, so it
//! is race-free), or `error <message>`. It reaps its children as they exit
//! (m3s watches them through the pidfds, which it can also open afresh for
//! non-children after a restart), and exits when m3s closes its end of the
//! socket (m3s stopped, or was killed): supervisors keep running, as they
//! do when m3s stops.
//!
//! If the launcher cannot be started or stops answering, m3s falls back to
//! executing a supervisor per task (and tries a new launcher next time).

use std::ffi::OsStr;
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags, SocketFlags, SocketType,
};
use rustix::process::{Pid, PidfdFlags};

use super::procfs;
use super::records::ProcId;

/// Room for a request (a path) or an answer.
const MAX_MESSAGE: usize = 8192;

/// m3s's handle on its launcher (started on first use).
pub(super) struct Launcher {
    exe: PathBuf,
    name: PathBuf,
    connection: Mutex<Option<Connection>>,
}

struct Connection {
    socket: OwnedFd,
    child: Child,
}

impl Connection {
    /// Closes the socket, which makes the launcher exit (its supervisors
    /// stay), and reaps it; `kill`: one that stopped answering.
    fn close(self, kill: bool) {
        let Connection { socket, mut child } = self;
        drop(socket);
        if kill {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        let connection = self.connection.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(connection) = connection.take() {
            connection.close(false);
        }
    }
}

impl Launcher {
    pub(super) fn new(exe: PathBuf, runtime_dir: &Path) -> Launcher {
        Launcher { exe, name: runtime_dir.join("launcher"), connection: Mutex::new(None) }
    }

    /// Starts a supervisor for `run_dir` through the launcher: its identity
    /// and a pidfd.
    pub(super) fn launch(
        &self,
        run_dir: &Path,
        stderr: BorrowedFd<'_>,
        report: BorrowedFd<'_>,
    ) -> Result<(ProcId, OwnedFd), Failure> {
        let mut connection = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        if connection.is_none() {
            *connection = Some(self.start().map_err(Failure::Unavailable)?);
        }
        let Some(current) = connection.as_ref() else { unreachable!("just set") };
        let result = request(&current.socket, run_dir, stderr, report);
        if matches!(result, Err(Failure::Unavailable(_)) | Err(Failure::NoAnswer(_))) {
            // Gone or broken: a new one next time.
            if let Some(broken) = connection.take() {
                broken.close(true);
            }
        }
        result
    }

    fn start(&self) -> io::Result<Connection> {
        let (mine, theirs) =
            rustix::net::socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)?;
        // No pre_exec hook: std spawns it with posix_spawn (no fork of m3s).
        let child = Command::new(&self.exe)
            .arg("supervise")
            .arg("--run-dir")
            .arg(&self.name)
            .current_dir("/")
            .process_group(0)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Connection { socket: mine, child })
    }
}

/// Why [`Launcher::launch`] failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The request did not reach a launcher (none could be started, or it
    /// is gone): no supervisor was started, the caller may start one itself.
    Unavailable(io::Error),
    /// The launcher got the request but did not answer (it died meanwhile):
    /// a supervisor may have been started.
    NoAnswer(io::Error),
    /// The launcher answered that it could not start the supervisor.
    Refused(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unavailable(error) => write!(f, "the supervisor launcher is unavailable: {error}"),
            Failure::NoAnswer(error) => write!(f, "the supervisor launcher did not answer: {error}"),
            Failure::Refused(message) => write!(f, "the supervisor launcher could not start the supervisor: {message}"),
        }
    }
}

/// One request and its answer.
fn request(
    socket: &OwnedFd,
    run_dir: &Path,
    stderr: BorrowedFd<'_>,
    report: BorrowedFd<'_>,
) -> Result<(ProcId, OwnedFd), Failure> {
    let path = run_dir.as_os_str().as_bytes();
    if path.is_empty() || path.len() > MAX_MESSAGE {
        return Err(Failure::Refused(format!("run directory path of {} bytes", path.len())));
    }
    let fds = [stderr, report];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(socket, &[IoSlice::new(path)], &mut control, SendFlags::NOSIGNAL)
        .map_err(|e| Failure::Unavailable(e.into()))?;

    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        match rustix::net::recvmsg(socket, &mut [IoSliceMut::new(&mut buf)], &mut control, RecvFlags::CMSG_CLOEXEC) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other.map_err(|e| Failure::NoAnswer(e.into()))?,
        }
    };
    if received.bytes == 0 {
        return Err(Failure::NoAnswer(io::Error::new(io::ErrorKind::UnexpectedEof, "it exited")));
    }
    let mut pidfds: Vec<OwnedFd> = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            pidfds.extend(fds);
        }
    }
    let text = String::from_utf8_lossy(&buf[..received.bytes.min(buf.len())]).into_owned();
    if let Some(message) = text.strip_prefix("error ") {
        return Err(Failure::Refused(message.to_owned()));
    }
    let mut words = text.strip_prefix("ok ").unwrap_or_default().split_ascii_whitespace();
    let pid = words.next().and_then(|w| w.parse().ok());
    let start_time = words.next().and_then(|w| w.parse().ok());
    match (pid, start_time, pidfds.pop()) {
        (Some(pid), Some(start_time), Some(pidfd)) => Ok((ProcId { pid, start_time }, pidfd)),
        _ => Err(Failure::NoAnswer(io::Error::new(io::ErrorKind::InvalidData, format!("bad answer: {text}")))),
    }
}

/// Whether this process was started as the launcher (stdin is a socket).
pub(super) fn is_launcher() -> bool {
    rustix::fs::fstat(std::io::stdin().as_fd())
        .is_ok_and(|stat| rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Socket)
}

extern "C" fn on_child(_: libc::c_int) {}

/// The launcher's loop (see the module docs); returns its exit status.
/// `supervise` runs in each forked child and never returns here.
pub(super) fn serve(supervise: fn(&Path) -> i32) -> i32 {
    for signal in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGPIPE] {
        // SAFETY: installing SIG_IGN has no preconditions.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
    // SIGCHLD stays blocked except while waiting in ppoll, whose wake-up
    // (EINTR) then reaps: no exited child is left a zombie for long.
    // SAFETY: plain libc calls on local, initialised signal sets; the
    // handler does nothing.
    let (wait_mask, old_mask) = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_child as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut());
        let mut block: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut block);
        libc::sigaddset(&mut block, libc::SIGCHLD);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &block, &mut old);
        let mut wait_mask = old;
        libc::sigdelset(&mut wait_mask, libc::SIGCHLD);
        (wait_mask, old)
    };
    let socket = std::io::stdin().as_fd().try_clone_to_owned();
    let Ok(socket) = socket else { return 1 };
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        reap();
        let mut poll = libc::pollfd { fd: socket.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd; the mask is initialised.
        let rc = unsafe { libc::ppoll(&mut poll, 1, std::ptr::null(), &wait_mask) };
        if rc < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return 1;
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = match rustix::net::recvmsg(
            &socket,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
        ) {
            Ok(received) => received,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
            Err(_) => return 1,
        };
        if received.bytes == 0 {
            // m3s closed its end.
            return 0;
        }
        let mut fds: Vec<OwnedFd> = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        let run_dir = PathBuf::from(OsStr::from_bytes(&buf[..received.bytes.min(buf.len())]));
        let answer = match <[OwnedFd; 2]>::try_from(fds) {
            Ok([stderr, report]) => fork_supervisor(&run_dir, [stderr, report], &socket, &old_mask, supervise),
            Err(_) => Err(ForkError::Descriptors),
        };
        let sent = match &answer {
            Ok((id, pidfd)) => {
                let fds = [pidfd.as_fd()];
                let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
                let mut control = SendAncillaryBuffer::new(&mut space);
                control.push(SendAncillaryMessage::ScmRights(&fds));
                let text = format!("ok {} {}", id.pid, id.start_time);
                rustix::net::sendmsg(&socket, &[IoSlice::new(text.as_bytes())], &mut control, SendFlags::NOSIGNAL)
            }
            Err(message) => {
                let text = format!("error {message}");
                let mut control = SendAncillaryBuffer::default();
                rustix::net::sendmsg(&socket, &[IoSlice::new(text.as_bytes())], &mut control, SendFlags::NOSIGNAL)
            }
        };
        if sent.is_err() {
            return 1;
        }
    }
}

/// Why the launcher could not fork a supervisor (sent back as text).
#[derive(Debug, thiserror::Error)]
enum ForkError {
    #[error("a request without its two descriptors")]
    Descriptors,
    #[error("opening /dev/null: {0}")]
    DevNull(#[source] io::Error),
    #[error("fork: {0}")]
    Fork(#[source] io::Error),
    #[error("pidfd_open (Linux 5.3 or later): {0}")]
    Pidfd(#[source] io::Error),
}

/// Forks a supervisor for `run_dir`: its identity and a pidfd.
fn fork_supervisor(
    run_dir: &Path,
    [stderr, report]: [OwnedFd; 2],
    socket: &OwnedFd,
    mask: &libc::sigset_t,
    supervise: fn(&Path) -> i32,
) -> Result<(ProcId, OwnedFd), ForkError> {
    let null = std::fs::File::open("/dev/null").map_err(ForkError::DevNull)?;
    // SAFETY: this process is single-threaded (the launcher starts no
    // thread), so the child may run any code.
    match unsafe { libc::fork() } {
        -1 => Err(ForkError::Fork(io::Error::last_os_error())),
        0 => {
            // The child: set up as an executed supervisor would be, then be one.
            // SAFETY: plain libc calls with valid arguments.
            unsafe {
                libc::signal(libc::SIGCHLD, libc::SIG_DFL);
                libc::sigprocmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());
                libc::setpgid(0, 0);
                libc::dup2(null.as_raw_fd(), 0);
                libc::dup2(report.as_raw_fd(), 1);
                libc::dup2(stderr.as_raw_fd(), 2);
                // The launcher's socket is none of the supervisor's business.
                libc::close(socket.as_raw_fd());
            }
            drop((null, report, stderr));
            let code = if std::env::set_current_dir("/").is_ok() { supervise(run_dir) } else { 1 };
            let _ = io::stdout().flush();
            // SAFETY: ends this (forked) process without returning to the
            // launcher's loop.
            unsafe { libc::_exit(code) }
        }
        pid => {
            drop((null, report, stderr));
            let pid_u = pid as u32;
            // Our unreaped child (reaped only in the loop): pid and start
            // time are its own.
            let id = procfs::proc_id(pid_u).unwrap_or(ProcId { pid: pid_u, start_time: 0 });
            match Pid::from_raw(pid).map(|p| rustix::process::pidfd_open(p, PidfdFlags::empty())) {
                Some(Ok(pidfd)) => Ok((id, pidfd)),
                other => {
                    // SAFETY: kill on our own unreaped child.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    Err(ForkError::Pidfd(match other {
                        Some(Err(e)) => e.into(),
                        _ => io::Error::other("invalid pid"),
                    }))
                }
            }
        }
    }
}

/// Reaps every exited child.
fn reap() {
    loop {
        // SAFETY: waitpid with a null status pointer.
        let pid = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}
