//! The agent's task runtime against real processes: every task runs under a
//! real supervisor (the `mini-supervise` binary, the same code as
//! `m3s supervise`). Waits are bounded (20 s) and nothing asserts on timing.
//! Every test kills what it started, and a guard kills leftovers of a
//! failed test.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mini::agent::runtime::{
    ContainerState, LaunchSpec, Launched, Runtime, RuntimeConfig, RuntimeError, RuntimeEvent, TaskCommand, TaskExit,
};
use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::mpsc::error::TryRecvError;

const WAIT: Duration = Duration::from_secs(20);
const AGENT: &str = "agent-1";

fn config(work_dir: &Path) -> RuntimeConfig {
    RuntimeConfig {
        work_dir: work_dir.to_owned(),
        runtime_dir: None,
        supervisor_exe: env!("CARGO_BIN_EXE_mini-supervise").into(),
        agent_id: AGENT.to_owned(),
        cgroup_root: None,
    }
}

fn spec(container_id: &str, command: TaskCommand) -> LaunchSpec {
    LaunchSpec {
        framework_id: "framework-1".to_owned(),
        executor_id: format!("executor-{container_id}"),
        task_id: format!("task-{container_id}"),
        container_id: container_id.to_owned(),
        command,
        env: Vec::new(),
        user: None,
        working_dir: None,
        limits: None,
        container: None,
    }
}

fn shell(script: &str) -> TaskCommand {
    TaskCommand::Shell(script.to_owned())
}

fn argv(argv: &[&str]) -> TaskCommand {
    TaskCommand::Argv { program: argv[0].to_owned(), args: argv.iter().map(|a| (*a).to_owned()).collect() }
}

fn meta_dir(work_dir: &Path, container_id: &str) -> PathBuf {
    work_dir.join("meta/runtime/containers").join(container_id)
}

/// Fields of /proc/<pid>/stat after the command name: (state, session, start time).
fn stat(pid: u32) -> Option<(char, i32, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    Some((fields[0].chars().next()?, fields[3].parse().ok()?, fields[19].parse().ok()?))
}

/// Alive: exists and is not a zombie (PID 1 of a container may not reap).
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _, _)| state != 'Z' && state != 'X')
}

/// Live processes of the session `sid` (a task's processes).
fn session_members(sid: u32) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat(*pid).is_some_and(|(state, session, _)| session == sid as i32 && state != 'Z'))
        .collect()
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < WAIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next_exit(events: &mut UnboundedReceiver<RuntimeEvent>, container: &str) -> TaskExit {
    let event = tokio::time::timeout(WAIT, events.recv()).await.expect("no event within 20 s").expect("channel closed");
    let RuntimeEvent::Exited { container_id, status } = event;
    assert_eq!(container_id, container);
    status
}

/// Kills, when dropped, whatever the test started that is still alive (a
/// failing test must not leave `sleep 30`s behind). Pids are checked against
/// their start times first.
#[derive(Default)]
struct Guard(Mutex<Vec<(u32, u64)>>);

impl Guard {
    fn track(&self, launched: &Launched) {
        for pid in [launched.pid, launched.supervisor_pid] {
            if let Some((_, _, start)) = stat(pid) {
                self.0.lock().unwrap().push((pid, start));
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for (pid, start) in self.0.lock().unwrap().drain(..) {
            if stat(pid).is_some_and(|(state, _, s)| s == start && state != 'Z') {
                let pid = Pid::from_raw(pid as i32).unwrap();
                let _ = kill_process_group(pid, Signal::KILL);
                let _ = kill_process(pid, Signal::KILL);
            }
        }
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    runtime: Runtime,
    events: UnboundedReceiver<RuntimeEvent>,
    guard: Guard,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (runtime, events) = Runtime::new(config(dir.path()));
        Fixture { dir, runtime, events, guard: Guard::default() }
    }

    async fn launch(&self, spec: LaunchSpec) -> Launched {
        let launched = self.runtime.launch(spec).await.expect("launch");
        self.guard.track(&launched);
        launched
    }

    /// Launches and waits for the exit.
    async fn run(&mut self, spec: LaunchSpec) -> (Launched, TaskExit) {
        let container_id = spec.container_id.clone();
        let launched = self.launch(spec).await;
        let exit = next_exit(&mut self.events, &container_id).await;
        (launched, exit)
    }
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("reading {}: {e}", path.as_ref().display()))
}

#[tokio::test]
async fn shell_tasks_report_exit_codes_and_output_lands_in_the_sandbox() {
    let mut f = Fixture::new();
    let (launched, exit) = f.run(spec("c1", shell("echo to-stdout; echo to-stderr >&2; exit 3"))).await;
    assert_eq!(exit, TaskExit::Code(3));
    let expected = f.dir.path().join("slaves/agent-1/frameworks/framework-1/executors/executor-c1/runs/c1");
    assert_eq!(launched.sandbox, expected);
    assert_eq!(read(expected.join("stdout")), "to-stdout\n");
    assert_eq!(read(expected.join("stderr")), "to-stderr\n");

    let (_, exit) = f.run(spec("c2", shell("true"))).await;
    assert_eq!(exit, TaskExit::Code(0));
    assert!(exit.is_success());
    assert_eq!(exit.to_string(), "Command exited with status 0");
}

#[tokio::test]
async fn argv_tasks_report_exit_codes_and_keep_their_argv0() {
    let mut f = Fixture::new();
    let (_, exit) = f.run(spec("a1", argv(&["/bin/sh", "-c", "exit 3"]))).await;
    assert_eq!(exit, TaskExit::Code(3));

    // A program without a slash is looked up in PATH; arguments are passed
    // as they are (no shell).
    let (launched, exit) = f.run(spec("a2", argv(&["echo", "hello  world", "$HOME", ";", "x"]))).await;
    assert_eq!(exit, TaskExit::Code(0));
    assert_eq!(read(launched.sandbox.join("stdout")), "hello  world $HOME ; x\n");

    let command = TaskCommand::Argv {
        program: "/bin/sh".to_owned(),
        args: vec!["custom-argv0".to_owned(), "-c".to_owned(), "echo $0".to_owned()],
    };
    let (launched, exit) = f.run(spec("a3", command)).await;
    assert_eq!(exit, TaskExit::Code(0));
    assert_eq!(read(launched.sandbox.join("stdout")), "custom-argv0\n");
}

#[tokio::test]
async fn environment_and_working_directory_reach_the_task() {
    let mut f = Fixture::new();
    let sandbox = f.runtime.sandbox_path("framework-1", "executor-e1", "e1");
    fs::create_dir_all(sandbox.join("sub")).unwrap();
    let mut task =
        spec("e1", shell(r#"printf '%s|%s|%s|%s' "$M3S_TEST_VAR" "$MESOS_SANDBOX" "$(pwd)" "${PATH:+set}""#));
    task.env = vec![
        ("M3S_TEST_VAR".to_owned(), "hello 'quoted' $world".to_owned()),
        ("MESOS_SANDBOX".to_owned(), sandbox.display().to_string()),
    ];
    task.working_dir = Some("sub".to_owned());
    let (_, exit) = f.run(task).await;
    assert_eq!(exit, TaskExit::Code(0));
    let expected = format!("hello 'quoted' $world|{0}|{0}/sub|set", sandbox.display());
    assert_eq!(read(sandbox.join("stdout")), expected);

    // A working directory that does not exist fails the launch.
    let mut task = spec("e2", shell("true"));
    task.working_dir = Some("missing".to_owned());
    let error = f.runtime.launch(task).await.unwrap_err();
    assert!(matches!(error, RuntimeError::Launch { .. }), "{error:?}");
    assert!(error.to_string().contains("working directory"), "{error}");
    assert!(f.events.try_recv().is_err());
}

#[tokio::test]
async fn kill_terminates_the_whole_process_group() {
    let mut f = Fixture::new();
    let launched = f.launch(spec("k1", shell("sleep 30 & sleep 30 & wait"))).await;
    wait_until("both sleeps run", || session_members(launched.pid).len() == 3).await;
    let usage = f.runtime.usage("k1").expect("usage of a running task");
    assert_eq!(usage.processes, Some(3));

    f.runtime.kill("k1", Duration::from_secs(10)).unwrap();
    assert_eq!(next_exit(&mut f.events, "k1").await, TaskExit::Signal(15));
    wait_until("no process of the task is left", || session_members(launched.pid).is_empty()).await;

    // Killing an ended container is fine.
    f.runtime.kill("k1", Duration::from_secs(1)).unwrap();

    // Forgetting removes the bookkeeping, not the sandbox.
    assert!(meta_dir(f.dir.path(), "k1").exists());
    f.runtime.forget("k1");
    assert!(!meta_dir(f.dir.path(), "k1").exists());
    assert!(launched.sandbox.join("stdout").exists());
}

/// A kill that arrives before the container is launched (its image still
/// being pulled) is not lost: the task is killed as soon as it exists.
#[tokio::test]
async fn a_kill_before_the_launch_is_delivered_to_the_task() {
    let mut f = Fixture::new();
    f.runtime.kill("early", Duration::from_secs(10)).unwrap();
    f.launch(spec("early", shell("trap 'exit 7' TERM; while true; do sleep 0.1; done"))).await;
    // The TERM may come before the shell has set its trap (then it dies of it)
    // or after (then the trap exits 7); a lost kill would run on until `next_exit` times out.
    let exit = next_exit(&mut f.events, "early").await;
    assert!(matches!(exit, TaskExit::Code(7) | TaskExit::Signal(15)), "the task got its stop signal: {exit:?}");
}

#[tokio::test]
async fn a_task_ignoring_sigterm_is_killed_after_the_grace_period() {
    let mut f = Fixture::new();
    let launched = f.launch(spec("g1", shell("trap '' TERM; echo ready; sleep 30; exit 0"))).await;
    let stdout = launched.sandbox.join("stdout");
    wait_until("the trap is set", || fs::read_to_string(&stdout).is_ok_and(|s| s.contains("ready"))).await;
    f.runtime.kill("g1", Duration::from_millis(300)).unwrap();
    assert_eq!(next_exit(&mut f.events, "g1").await, TaskExit::Signal(9));
    wait_until("no process of the task is left", || session_members(launched.pid).is_empty()).await;
}

#[tokio::test]
async fn running_tasks_are_readopted_after_a_restart() {
    let f = Fixture::new();
    let task = spec("r1", argv(&["sleep", "30"]));
    let launched = f.launch(task.clone()).await;
    let Fixture { dir, runtime, events, guard } = f;
    // An m3s restart: the runtime goes away, supervisor and task stay.
    drop(runtime);
    drop(events);
    assert!(alive(launched.supervisor_pid) && alive(launched.pid));

    let (runtime, mut events) = Runtime::new(config(dir.path()));
    let recovered = runtime.recover().await.unwrap();
    assert_eq!(recovered.len(), 1);
    let container = &recovered[0];
    assert_eq!(container.spec, task);
    assert_eq!(container.state, ContainerState::Running);
    assert_eq!(container.pid, Some(launched.pid));
    assert_eq!(container.supervisor_pid, Some(launched.supervisor_pid));
    assert_eq!(container.sandbox, launched.sandbox);
    // Recovering again finds nothing new.
    assert!(runtime.recover().await.unwrap().is_empty());

    runtime.kill("r1", Duration::from_secs(10)).unwrap();
    assert_eq!(next_exit(&mut events, "r1").await, TaskExit::Signal(15));
    // The supervisor (still this process's child here) has been reaped.
    wait_until("the supervisor is reaped", || stat(launched.supervisor_pid).is_none()).await;
    drop(guard);
}

#[tokio::test]
async fn a_task_that_ended_while_m3s_was_down_is_recovered_with_its_real_status() {
    let f = Fixture::new();
    let launched = f.launch(spec("d1", shell("while [ ! -e go ]; do sleep 0.05; done; exit 7"))).await;
    let Fixture { dir, runtime, events, guard } = f;
    drop(runtime);
    drop(events);

    fs::write(launched.sandbox.join("go"), "").unwrap();
    let status = meta_dir(dir.path(), "d1").join("status.json");
    wait_until("the supervisor recorded the status and exited", || status.exists() && !alive(launched.supervisor_pid))
        .await;

    let (runtime, mut events) = Runtime::new(config(dir.path()));
    let recovered = runtime.recover().await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].state, ContainerState::Exited(TaskExit::Code(7)));
    assert_eq!(recovered[0].pid, Some(launched.pid));
    // Reported by recover, not as an event; killing it is a no-op.
    assert!(matches!(events.try_recv(), Err(TryRecvError::Empty)));
    runtime.kill("d1", Duration::from_secs(1)).unwrap();
    assert!(runtime.usage("d1").is_none());
    wait_until("the supervisor is reaped", || stat(launched.supervisor_pid).is_none()).await;
    runtime.forget("d1");
    assert!(!meta_dir(dir.path(), "d1").exists());
    drop(guard);
}

#[tokio::test]
async fn a_supervisor_killed_with_sigkill_is_lost_and_leaves_no_orphan() {
    let mut f = Fixture::new();
    let launched = f.launch(spec("s1", shell("sleep 30 & sleep 30"))).await;
    wait_until("both sleeps run", || session_members(launched.pid).len() == 3).await;

    kill_process(Pid::from_raw(launched.supervisor_pid as i32).unwrap(), Signal::KILL).unwrap();
    let exit = next_exit(&mut f.events, "s1").await;
    let TaskExit::Lost(message) = &exit else { panic!("expected Lost, got {exit:?}") };
    assert!(message.contains("without recording") && message.contains("killed"), "{message}");
    wait_until("no process of the task is left", || session_members(launched.pid).is_empty()).await;

    // The verdict is recorded: a later recovery reports the same.
    drop(f.runtime);
    let (runtime, _events) = Runtime::new(config(f.dir.path()));
    let recovered = runtime.recover().await.unwrap();
    assert_eq!(recovered[0].state, ContainerState::Exited(exit));
}

#[tokio::test]
async fn usage_reports_processes_and_memory_of_a_running_task() {
    let mut f = Fixture::new();
    let launched = f.launch(spec("u1", argv(&["sleep", "30"]))).await;
    // Right after the launch the task may still be inside exec (no pages yet).
    wait_until("the task has resident pages", || {
        f.runtime.usage("u1").and_then(|u| u.mem_rss_bytes).is_some_and(|rss| rss > 0)
    })
    .await;
    let usage = f.runtime.usage("u1").expect("usage of a running task");
    assert_eq!(usage.processes, Some(1));
    assert!(usage.threads.unwrap() >= 1);
    assert!(usage.mem_rss_bytes.unwrap() > 0, "{usage:?}");
    assert!(usage.cpus_user_time_secs.is_some() && usage.cpus_system_time_secs.is_some());
    assert!(usage.timestamp > 0.0);
    assert!(f.runtime.usage("unknown").is_none());

    f.runtime.kill("u1", Duration::ZERO).unwrap();
    assert_eq!(next_exit(&mut f.events, "u1").await, TaskExit::Signal(9));
    assert!(f.runtime.usage("u1").is_none());
    assert!(!alive(launched.pid));
}

#[tokio::test]
async fn an_unknown_user_fails_the_launch() {
    let mut f = Fixture::new();
    let mut task = spec("n1", shell("true"));
    task.user = Some("no-such-user-m3s".to_owned());
    let error = f.runtime.launch(task).await.unwrap_err();
    assert!(matches!(error, RuntimeError::UnknownUser { .. }), "{error:?}");
    assert!(error.to_string().contains("unknown user 'no-such-user-m3s'"), "{error}");
    assert!(!meta_dir(f.dir.path(), "n1").exists());
    assert!(f.events.try_recv().is_err());
}

#[tokio::test]
async fn tasks_run_as_the_requested_user_when_m3s_is_root() {
    let mut f = Fixture::new();
    let mut task = spec("w1", shell("id -u; touch written-by-task"));
    task.user = Some("nobody".to_owned());
    if !rustix::process::geteuid().is_root() {
        assert!(
            std::env::var_os("M3S_REQUIRE_ROOT").is_none(),
            "M3S_REQUIRE_ROOT is set but this test runs without root"
        );
        let error = f.runtime.launch(task).await.unwrap_err();
        assert!(matches!(error, RuntimeError::UserNotPermitted { .. }), "{error:?}");
        return;
    }
    let (launched, exit) = f.run(task).await;
    assert_eq!(exit, TaskExit::Code(0), "{}", read(launched.sandbox.join("stderr")));
    assert_eq!(read(launched.sandbox.join("stdout")), "65534\n");
    assert!(launched.sandbox.join("written-by-task").exists());

    // The current user needs no switch.
    let mut task = spec("w2", shell("id -u"));
    task.user = Some("root".to_owned());
    let (launched, exit) = f.run(task).await;
    assert_eq!(exit, TaskExit::Code(0));
    assert_eq!(read(launched.sandbox.join("stdout")), "0\n");
}

#[tokio::test]
async fn launches_that_cannot_start_fail_cleanly() {
    let mut f = Fixture::new();
    let error = f.runtime.launch(spec("x1", argv(&["/nonexistent/program"]))).await.unwrap_err();
    assert!(matches!(error, RuntimeError::Launch { .. }), "{error:?}");
    assert!(error.to_string().contains("cannot execute '/nonexistent/program'"), "{error}");
    assert!(!meta_dir(f.dir.path(), "x1").exists());

    let mut task = spec("x0", shell("true"));
    task.container_id = "../escape".to_owned();
    let error = f.runtime.launch(task).await.unwrap_err();
    assert!(matches!(error, RuntimeError::InvalidId { field: "container_id", .. }), "{error:?}");

    let mut task = spec("x2", shell("true"));
    task.env = vec![("A=B".to_owned(), "c".to_owned())];
    let error = f.runtime.launch(task).await.unwrap_err();
    assert!(matches!(error, RuntimeError::InvalidSpec { .. }), "{error:?}");

    // A container id is used once.
    let (_, exit) = f.run(spec("x3", shell("exit 0"))).await;
    assert_eq!(exit, TaskExit::Code(0));
    let error = f.runtime.launch(spec("x3", shell("true"))).await.unwrap_err();
    assert!(matches!(error, RuntimeError::AlreadyExists { .. }), "{error:?}");
    assert!(f.events.try_recv().is_err());
}
