//! `m3s docker-executor`: the small, blocking program that stands for a
//! Docker container as a task's process (Mesos's `mesos-docker-executor`).
//!
//! - `follow --socket S NAME`: copies the container's output to its own
//!   stdout and stderr (the sandbox files), sends the container's stop signal
//!   when it gets SIGTERM (or passes SIGINT, SIGHUP, SIGQUIT on), waits for
//!   the container and exits with its status, after removing it. If the
//!   daemon goes away meanwhile, it says so on stderr and waits for it to
//!   return; then the container is followed again, or its end reported.
//! - `exec --socket S NAME [--env=K=V]... ARGV...`: runs a command in the
//!   container (health checks, `m3s compose exec`), exits with its status.
//! - `remove --socket S NAME`: removes the container, killing it if it runs.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use docker::{Engine, StreamKind};

const USAGE: &str = "usage: m3s docker-executor follow|exec|remove --socket SOCKET [--user U] [--cwd DIR] [--env K=V]... NAME [COMMAND...]";

/// A parsed command line. Options may come before or right after the
/// container's name (as `crun exec` takes them, so that health checks and
/// `m3s compose exec` build the same command lines for both runtimes); the
/// first word after the name that is not an option starts the command.
#[derive(Debug, Default, PartialEq, Eq)]
struct Invocation {
    verb: String,
    socket: Option<String>,
    name: Option<String>,
    options: docker::ExecOptions,
    command: Vec<String>,
}

/// A docker-executor command line that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum UsageError {
    #[error("{0} needs a value")]
    NeedsValue(String),
    #[error("unknown option {0}")]
    UnknownOption(String),
}

fn parse(args: &[String]) -> Result<Invocation, UsageError> {
    let mut it = args.iter();
    let mut inv = Invocation { verb: it.next().cloned().unwrap_or_default(), ..Default::default() };
    while let Some(arg) = it.next() {
        if inv.name.is_some() && !arg.starts_with("--") {
            inv.command.push(arg.clone());
            inv.command.extend(it.by_ref().cloned());
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if arg.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value =
            || inline.clone().or_else(|| it.next().cloned()).ok_or_else(|| UsageError::NeedsValue(flag.to_owned()));
        match flag {
            "--socket" => inv.socket = Some(value()?),
            "--user" => inv.options.user = Some(value()?),
            "--cwd" => inv.options.working_dir = Some(value()?),
            "--env" => inv.options.env.push(value()?),
            // No TTY is attached: the output is copied as it comes.
            "--tty" => {}
            f if f.starts_with("--") => return Err(UsageError::UnknownOption(f.to_owned())),
            _ => inv.name = Some(arg.clone()),
        }
    }
    Ok(inv)
}

/// Runs the executor with its arguments (after `docker-executor`); returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let inv = match parse(args) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("m3s docker-executor: {e}\n{USAGE}");
            return 2;
        }
    };
    let (Some(socket), Some(name)) = (&inv.socket, &inv.name) else {
        eprintln!("{USAGE}");
        return 2;
    };
    let engine = Engine::new(socket);
    match inv.verb.as_str() {
        "follow" => follow(&engine, name),
        "exec" => exec(&engine, name, &inv),
        "remove" => match engine.remove(name) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("m3s docker-executor: {e}");
                1
            }
        },
        _ => {
            eprintln!("{USAGE}");
            2
        }
    }
}

fn exec(engine: &Engine, name: &str, inv: &Invocation) -> i32 {
    if inv.command.is_empty() {
        eprintln!("m3s docker-executor exec: no command");
        return 2;
    }
    match engine.exec(name, &inv.command, &inv.options, write_out) {
        Ok(code) => status(code),
        Err(e) => {
            eprintln!("m3s docker-executor exec: {e}");
            // As `docker exec` exits when it cannot run the command.
            126
        }
    }
}

/// Output of the container to ours: stdout and stderr, each flushed as it comes.
fn write_out(kind: StreamKind, bytes: &[u8]) -> std::io::Result<()> {
    if kind == StreamKind::Stderr {
        let mut err = std::io::stderr().lock();
        err.write_all(bytes)?;
        err.flush()
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()
    }
}

/// A Docker exit code as a process exit status (out of range: 255).
fn status(code: i64) -> i32 {
    i32::try_from(code).ok().filter(|c| (0..=255).contains(c)).unwrap_or(255)
}

/// The signals passed to the container; blocked in every thread and taken by `sigwait`.
const FORWARDED: [i32; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

fn follow(engine: &Engine, name: &str) -> i32 {
    // SAFETY: plain libc calls on a local signal set, before any thread starts,
    // so every thread inherits the mask and only `sigwait` takes these signals.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let stop_signal = match engine.inspect(name) {
        Ok(Some(c)) => c.config.stop_signal.filter(|s| !s.is_empty()).unwrap_or_else(|| "SIGTERM".into()),
        Ok(None) => {
            eprintln!("m3s docker-executor: there is no container {name}");
            return 1;
        }
        Err(e) => {
            eprintln!("m3s docker-executor: {e}");
            return 1;
        }
    };
    {
        let engine = engine.clone();
        let name = name.to_owned();
        std::thread::spawn(move || forward_signals(&engine, &name, &stop_signal, set));
    }
    let (logs_done, logs_end) = std::sync::mpsc::channel();
    {
        let engine = engine.clone();
        let name = name.to_owned();
        std::thread::spawn(move || {
            copy_logs(&engine, &name);
            let _ = logs_done.send(());
        });
    }
    let status = wait(engine, name);
    // The output's end follows the container's at once, unless the daemon is slow to flush.
    let _ = logs_end.recv_timeout(Duration::from_secs(10));
    match engine.inspect(name) {
        Ok(Some(c)) if c.state.oom_killed => {
            eprintln!("m3s docker-executor: the container was killed for exceeding its memory limit");
        }
        _ => {}
    }
    if let Err(e) = engine.remove(name) {
        eprintln!("m3s docker-executor: {e}");
    }
    status
}

fn forward_signals(engine: &Engine, name: &str, stop_signal: &str, set: libc::sigset_t) {
    loop {
        let mut signal = 0;
        // SAFETY: `set` is a valid, initialised signal set; `signal` a valid out pointer.
        if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
            return;
        }
        let to_send = if signal == libc::SIGTERM { stop_signal.to_owned() } else { signal.to_string() };
        if let Err(e) = engine.kill(name, &to_send) {
            eprintln!("m3s docker-executor: could not signal the container: {e}");
        }
    }
}

/// The container's exit status, following it across daemon restarts.
fn wait(engine: &Engine, name: &str) -> i32 {
    loop {
        match engine.wait(name) {
            Ok(code) => return status(code),
            Err(e) if e.is_daemon_gone() => {
                eprintln!("m3s docker-executor: the Docker daemon went away ({e}); waiting for it to return");
                wait_for_daemon(engine);
                match engine.inspect(name) {
                    Ok(Some(c)) if c.state.running => {
                        eprintln!("m3s docker-executor: the daemon is back and {name} still runs");
                    }
                    Ok(Some(c)) => {
                        eprintln!("m3s docker-executor: the daemon is back; {name} ended ({})", c.state.status);
                        return status(c.state.exit_code);
                    }
                    Ok(None) => {
                        eprintln!("m3s docker-executor: the daemon is back but {name} is gone");
                        return 255;
                    }
                    Err(e) => eprintln!("m3s docker-executor: {e}"),
                }
            }
            Err(e) if e.is_not_found() => {
                eprintln!("m3s docker-executor: {name} is gone ({e})");
                return 255;
            }
            Err(e) => {
                eprintln!("m3s docker-executor: {e}; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// Waits until the daemon answers, checking less often as the outage lasts
/// (at most every 10 s).
fn wait_for_daemon(engine: &Engine) {
    let mut pause = Duration::from_millis(250);
    while engine.ping().is_err() {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

fn copy_logs(engine: &Engine, name: &str) {
    let mut since = 0;
    loop {
        let result = engine.logs(name, since, write_out);
        // Resumed from the moment the stream broke (a line of that second may
        // repeat); an ended container's stream gives what it wrote meanwhile and ends.
        let now = || SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        match result {
            // A daemon that shuts down ends the stream as if the container had ended.
            Ok(()) => match engine.inspect(name) {
                Ok(Some(c)) if c.state.running => since = now(),
                Err(e) if e.is_daemon_gone() => {
                    since = now();
                    wait_for_daemon(engine);
                }
                _ => return,
            },
            Err(e) if e.is_daemon_gone() => {
                since = now();
                wait_for_daemon(engine);
            }
            Err(e) => {
                eprintln!("m3s docker-executor: {e}");
                return;
            }
        }
    }
}
