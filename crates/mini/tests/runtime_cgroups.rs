//! The runtime's cgroup limits against the real kernel, and the fallback
//! without cgroups.
//!
//! The tests that need writable cgroups (root, and cgroup v1 as on these
//! machines or a v2 hierarchy m3s may delegate) print why and return when
//! the runtime reports them unavailable, unless `M3S_REQUIRE_CGROUPS=1`
//! makes that a failure; `scripts/test` sets it when it runs as root on a
//! machine with /sys/fs/cgroup, as CI does. cgroup v2 itself is covered by the unit tests of
//! `agent::runtime::cgroups` on a fake hierarchy, as hybrid (v1) hosts
//! cannot run it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mini::agent::runtime::{
    CgroupsStatus, ContainerState, LaunchSpec, Launched, Limits, Runtime, RuntimeConfig, RuntimeEvent, TaskCommand,
    TaskExit,
};
use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(30);
const MB: u64 = 1 << 20;

fn config(work_dir: &Path, cgroup_root: Option<PathBuf>) -> RuntimeConfig {
    RuntimeConfig {
        work_dir: work_dir.to_owned(),
        runtime_dir: None,
        supervisor_exe: env!("CARGO_BIN_EXE_mini-supervise").into(),
        agent_id: "agent-1".to_owned(),
        cgroup_root,
    }
}

fn spec(container_id: &str, script: &str, limits: Limits) -> LaunchSpec {
    LaunchSpec {
        framework_id: "framework-1".to_owned(),
        executor_id: format!("executor-{container_id}"),
        task_id: format!("task-{container_id}"),
        // Unique per run: the cgroups live outside the test's directory.
        container_id: format!("{container_id}-{}", uuid::Uuid::new_v4()),
        command: TaskCommand::Shell(script.to_owned()),
        env: Vec::new(),
        user: None,
        working_dir: None,
        limits: Some(limits),
        container: None,
    }
}

fn limits(cpus: f64, cpus_limit: Option<f64>, mem_mb: u64) -> Limits {
    Limits { cpus, cpus_limit, mem_bytes: mem_mb * MB, mem_limit_bytes: Some(mem_mb * MB) }
}

/// The runtime with the machine's cgroups, or `None` (after saying why)
/// where they are not usable.
fn real_cgroups(dir: &Path) -> Option<(Runtime, UnboundedReceiver<RuntimeEvent>)> {
    let (runtime, events) = Runtime::new(config(dir, None));
    if let CgroupsStatus::Unavailable(reason) = runtime.cgroups_status() {
        assert!(std::env::var_os("M3S_REQUIRE_CGROUPS").is_none(), "cgroups required but unavailable: {reason}");
        eprintln!(
            "\n*** SKIPPED: cgroups are unavailable here ({reason}); scripts/test requires them when run as root ***\n"
        );
        return None;
    }
    Some((runtime, events))
}

/// The memory cgroup of a container, from the runtime's status.
fn memory_cgroup(runtime: &Runtime, container_id: &str) -> PathBuf {
    match runtime.cgroups_status() {
        CgroupsStatus::V1 { memory, .. } => memory.join(container_id),
        CgroupsStatus::V2 { path, .. } => path.join(container_id),
        CgroupsStatus::Unavailable(reason) => panic!("no cgroups: {reason}"),
    }
}

/// Whether `/proc/<pid>/cgroup` puts the process in a cgroup named `name`.
fn in_cgroup(pid: u32, name: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .any(|line| line.rsplit(':').next().is_some_and(|path| path.ends_with(&format!("/{name}"))))
}

async fn next_exit(events: &mut UnboundedReceiver<RuntimeEvent>, container: &str) -> TaskExit {
    let event = tokio::time::timeout(WAIT, events.recv()).await.expect("no event in time").expect("channel closed");
    let RuntimeEvent::Exited { container_id, status } = event;
    assert_eq!(container_id, container);
    status
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < WAIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills what a failed test left running.
#[derive(Default)]
struct Guard(Mutex<Vec<u32>>);

impl Guard {
    fn track(&self, launched: &Launched) {
        self.0.lock().unwrap().extend([launched.pid, launched.supervisor_pid]);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for pid in self.0.lock().unwrap().drain(..) {
            let alive = fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"));
            if let (true, Some(pid)) = (alive, Pid::from_raw(pid as i32)) {
                let _ = kill_process_group(pid, Signal::KILL);
                let _ = kill_process(pid, Signal::KILL);
            }
        }
    }
}

#[tokio::test]
async fn a_task_over_its_memory_is_killed_and_reported_as_a_memory_limitation() {
    let dir = tempfile::tempdir().unwrap();
    let Some((runtime, mut events)) = real_cgroups(dir.path()) else { return };
    let guard = Guard::default();
    // `tail` keeps the whole (newline-free) input in memory: 200 MB.
    let task = spec("oom", "head -c 200m /dev/zero | tail", limits(0.1, None, 32));
    let id = task.container_id.clone();
    let launched = runtime.launch(task).await.unwrap();
    guard.track(&launched);
    let exit = next_exit(&mut events, &id).await;
    let TaskExit::MemoryLimit { limit_bytes, max_used_bytes, .. } = &exit else {
        panic!("expected a memory limitation, got {exit:?}")
    };
    assert_eq!(*limit_bytes, 32 * MB);
    assert!(max_used_bytes.is_none_or(|used| used <= 32 * MB), "{max_used_bytes:?}");
    let message = exit.to_string();
    assert!(message.starts_with("Memory limit exceeded: Requested: 32MB"), "{message}");
    // The supervisor, outside the task's cgroup, survived to record it: a
    // restart reports the same.
    drop(runtime);
    let (runtime, _events) = Runtime::new(config(dir.path(), None));
    let recovered = runtime.recover().await.unwrap();
    assert_eq!(recovered[0].state, ContainerState::Exited(exit));
    // The supervisor removed the cgroup.
    assert!(!memory_cgroup(&runtime, &id).exists());
    runtime.forget(&id);
}

#[tokio::test]
async fn limits_are_written_the_task_alone_is_inside_and_usage_comes_from_the_cgroup() {
    let dir = tempfile::tempdir().unwrap();
    let Some((runtime, events)) = real_cgroups(dir.path()) else { return };
    let guard = Guard::default();
    let task = spec("lim", "sleep 30 & sleep 30; wait", limits(0.5, Some(1.5), 64));
    let id = task.container_id.clone();
    let launched = runtime.launch(task).await.unwrap();
    guard.track(&launched);

    // The task and its children are inside from the start; the supervisor is not.
    assert!(in_cgroup(launched.pid, &id), "{}", fs::read_to_string(format!("/proc/{}/cgroup", launched.pid)).unwrap());
    assert!(!in_cgroup(launched.supervisor_pid, &id));
    let memory = memory_cgroup(&runtime, &id);
    wait_until("both sleeps run", || {
        fs::read_to_string(memory.join("cgroup.procs")).is_ok_and(|procs| procs.lines().count() == 3)
    })
    .await;
    match runtime.cgroups_status() {
        CgroupsStatus::V1 { cpu, .. } => {
            assert_eq!(fs::read_to_string(memory.join("memory.limit_in_bytes")).unwrap().trim(), (64 * MB).to_string());
            if let Some(cpu) = cpu {
                let cpu = cpu.join(&id);
                assert_eq!(fs::read_to_string(cpu.join("cpu.shares")).unwrap().trim(), "512");
                assert_eq!(fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap().trim(), "150000");
            }
        }
        CgroupsStatus::V2 { cpu, .. } => {
            assert_eq!(fs::read_to_string(memory.join("memory.max")).unwrap().trim(), (64 * MB).to_string());
            if *cpu {
                assert_eq!(fs::read_to_string(memory.join("cpu.max")).unwrap().trim(), "150000 100000");
            }
        }
        CgroupsStatus::Unavailable(_) => unreachable!(),
    }

    let usage = runtime.usage(&id).expect("usage of a running task");
    assert_eq!(usage.mem_limit_bytes, Some(64 * MB));
    assert_eq!(usage.mem_soft_limit_bytes, Some(64 * MB));
    assert_eq!(usage.cpus_limit, Some(1.5));
    assert_eq!(usage.cpus_soft_limit, Some(0.5));
    assert!(usage.mem_total_bytes.is_some_and(|bytes| bytes > 0), "{usage:?}");
    assert_eq!(usage.processes, Some(3));

    // Re-adopted after a restart, with its cgroups.
    drop(runtime);
    drop(events);
    let (runtime, mut events) = Runtime::new(config(dir.path(), None));
    let recovered = runtime.recover().await.unwrap();
    assert_eq!(recovered[0].state, ContainerState::Running);
    assert!(runtime.usage(&id).unwrap().mem_total_bytes.is_some());

    runtime.kill(&id, Duration::from_secs(5)).unwrap();
    assert_eq!(next_exit(&mut events, &id).await, TaskExit::Signal(15));
    assert!(!memory.exists(), "the supervisor removes the cgroup after the task");
    runtime.forget(&id);
}

#[tokio::test]
async fn a_lost_supervisor_leaves_nothing_in_the_cgroup() {
    let dir = tempfile::tempdir().unwrap();
    let Some((runtime, mut events)) = real_cgroups(dir.path()) else { return };
    let guard = Guard::default();
    // The second sleep leaves the task's session: only the cgroup still knows it.
    let task = spec("lost", "setsid sleep 30 & sleep 30", limits(0.1, None, 32));
    let id = task.container_id.clone();
    let launched = runtime.launch(task).await.unwrap();
    guard.track(&launched);
    let memory = memory_cgroup(&runtime, &id);
    wait_until("both sleeps run", || {
        fs::read_to_string(memory.join("cgroup.procs")).is_ok_and(|procs| procs.lines().count() == 3)
    })
    .await;
    kill_process(Pid::from_raw(launched.supervisor_pid as i32).unwrap(), Signal::KILL).unwrap();
    let exit = next_exit(&mut events, &id).await;
    assert!(matches!(exit, TaskExit::Lost(_)), "{exit:?}");
    assert!(!memory.exists(), "the cgroup is emptied and removed");
    runtime.forget(&id);
}

#[tokio::test]
async fn without_cgroups_tasks_run_unlimited_and_the_status_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let fake_root = dir.path().join("no-cgroups-here");
    fs::create_dir(&fake_root).unwrap();
    let (runtime, mut events) = Runtime::new(config(dir.path(), Some(fake_root.clone())));
    let CgroupsStatus::Unavailable(reason) = runtime.cgroups_status() else {
        panic!("expected unavailable, got {:?}", runtime.cgroups_status())
    };
    assert!(reason.contains(&fake_root.display().to_string()), "{reason}");
    let status = runtime.cgroups_status().to_string();
    assert!(status.starts_with("cgroups unavailable, tasks run without cpu and memory limits"), "{status}");

    let guard = Guard::default();
    let task = spec("nocg", "sleep 30", limits(0.25, None, 16));
    let id = task.container_id.clone();
    let launched = runtime.launch(task).await.unwrap();
    guard.track(&launched);
    assert!(!in_cgroup(launched.pid, &id));
    // Right after the launch the task may still be inside exec (no pages yet).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let usage = loop {
        let usage = runtime.usage(&id).expect("usage from /proc");
        if usage.mem_rss_bytes.is_some_and(|rss| rss > 0) || std::time::Instant::now() > deadline {
            break usage;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(usage.mem_rss_bytes.is_some_and(|rss| rss > 0), "{usage:?}");
    // The limits of the spec (at least Mesos's 32 MB), though not enforced.
    assert_eq!(usage.mem_limit_bytes, Some(32 * MB));
    assert_eq!(usage.cpus_limit, Some(0.25));
    assert_eq!(usage.mem_total_bytes, None);
    runtime.kill(&id, Duration::ZERO).unwrap();
    assert_eq!(next_exit(&mut events, &id).await, TaskExit::Signal(9));
}

/// Empty container cgroups that killed supervisors left behind are removed
/// when a runtime starts, once they are old enough that no task is about to
/// join them; fresh empty ones and ones with a process stay.
#[tokio::test]
async fn a_starting_runtime_removes_old_empty_container_cgroups() {
    let dir = tempfile::tempdir().unwrap();
    let Some((first, _events)) = real_cgroups(dir.path()) else { return };
    let parent = memory_cgroup(&first, "x").parent().unwrap().to_owned();
    drop(first);
    let id = uuid::Uuid::new_v4();
    let (old, fresh, busy) =
        (parent.join(format!("old-{id}")), parent.join(format!("fresh-{id}")), parent.join(format!("busy-{id}")));
    for d in [&old, &fresh, &busy] {
        fs::create_dir(d).unwrap();
    }
    let mut sleeper = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    fs::write(busy.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for d in [&old, &busy] {
        fs::File::open(d).unwrap().set_modified(hour_ago).unwrap();
    }

    let (_second, _events) = Runtime::new(config(dir.path(), None));
    let (old_gone, fresh_kept, busy_kept) = (!old.exists(), fresh.exists(), busy.exists());
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    for d in [&fresh, &busy] {
        let _ = fs::remove_dir(d);
    }
    assert!(old_gone, "an hour-old empty cgroup is a leftover: {}", old.display());
    assert!(fresh_kept, "a fresh empty cgroup may be about to get its task");
    assert!(busy_kept, "a cgroup with a process is never removed");
}
