//! DOCKER tasks through m3s's Docker containerizer against `docker run`
//! directly, on the same private dockerd, in one run
//! (`cargo bench -p m3s --bench docker`; root and Debian's docker.io).
//!
//! From the ACCEPT of a DOCKER task (image in the daemon) until TASK_RUNNING,
//! and until its command runs in the container (it creates a file in the
//! sandbox); against `docker run -d` of the same image, command and sandbox
//! bind until the same file appears. p50 and p99 over RUNS launches each,
//! alternating, and their ratio. m3s delegates to the Engine, so what it adds
//! is its own path: the offer, the executor process, the status update.
//!
//! Then builds: the same Dockerfile (a RUN writing 16 MiB, a COPY of 200
//! files) through `m3s compose build --builder docker` against `docker build`
//! (the classic builder, `DOCKER_BUILDKIT=0`) on the same daemon, no cache,
//! median of BUILDS alternating runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use mesos::scheduler::{Scheduler, SchedulerEvent};
use mesos::v1::scheduler::{Accept, CallKind, Event};
use mesos::v1::{
    CommandInfo, ContainerInfo, ContainerType, DockerInfo, FrameworkInfo, Offer, Operation, Resource, TaskId, TaskInfo,
    TaskState,
};

#[path = "shared/procs.rs"]
#[allow(dead_code)]
mod procs;
use procs::percentile;

#[path = "shared/mini.rs"]
#[allow(dead_code)]
mod bench_mini;
#[path = "../tests/support/dockerd.rs"]
#[allow(dead_code)]
mod dockerd;
#[path = "../../image/tests/support/mod.rs"]
mod images;
#[path = "../tests/support/mod.rs"]
mod support;

use bench_mini::BenchMini as Mini;

const IMAGE: &str = "m3s-bench/bb:1";

fn runs() -> usize {
    std::env::var("M3S_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(30)
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_micros(200));
    }
}

async fn next_event(s: &mut Scheduler) -> Event {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), s.next()).await.expect("an event").unwrap().unwrap() {
            SchedulerEvent::Event(Event::Update(u)) => {
                if u.status.uuid.is_some() {
                    s.handle().acknowledge(&u.status).unwrap();
                }
                return Event::Update(u);
            }
            SchedulerEvent::Event(e) => return e,
            _ => {}
        }
    }
}

async fn next_offer(s: &mut Scheduler) -> Offer {
    loop {
        if let Event::Offers(o) = next_event(s).await
            && let Some(offer) = o.offers.into_iter().next()
        {
            return offer;
        }
    }
}

async fn wait_state(s: &mut Scheduler, id: &str, wanted: impl Fn(TaskState) -> bool) {
    loop {
        match next_event(s).await {
            Event::Update(u) if u.status.task_id.value == id && wanted(u.status.state.clone()) => return,
            // Given back at once, to be offered again when the next launch wants one.
            Event::Offers(o) => {
                let decline = mesos::v1::scheduler::Decline {
                    offer_ids: o.offers.iter().map(|o| o.id.clone()).collect(),
                    filters: Some(mesos::v1::Filters { refuse_seconds: 0.0 }),
                };
                s.handle().call(CallKind::Decline(decline)).await.unwrap();
            }
            _ => {}
        }
    }
}

fn task(id: &str, offer: &Offer) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId::new(id),
        agent_id: offer.agent_id.clone(),
        resources: vec![Resource::scalar("cpus", 0.01), Resource::scalar("mem", 32.0)],
        command: Some(CommandInfo::shell("touch /mnt/mesos/sandbox/started; exec sleep 3600")),
        container: Some(ContainerInfo {
            kind: ContainerType::Docker,
            docker: Some(DockerInfo { image: IMAGE.into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One launch through m3s: (to TASK_RUNNING, to the command's marker file).
async fn m3s_start(s: &mut Scheduler, mini: &Mini, i: usize) -> (Duration, Duration) {
    let offer = next_offer(s).await;
    let id = format!("start-{i}");
    let accept = Accept {
        offer_ids: vec![offer.id.clone()],
        operations: vec![Operation::launch(vec![task(&id, &offer)])],
        filters: Some(mesos::v1::Filters { refuse_seconds: 0.0 }),
    };
    let (t0, wall0) = (Instant::now(), SystemTime::now());
    s.handle().call(CallKind::Accept(accept)).await.unwrap();
    wait_state(s, &id, |st| st == TaskState::Running).await;
    let running = t0.elapsed();
    let marker = sandbox(&mini.dir, &id).join("started");
    wait_for(&marker);
    let started = created_after(&marker, wall0);
    let kill = mesos::v1::scheduler::Kill { task_id: TaskId::new(&id), agent_id: None, kill_policy: None };
    s.handle().call(CallKind::Kill(kill)).await.unwrap();
    wait_state(s, &id, |st| st.is_terminal()).await;
    (running, started)
}

fn sandbox(work_dir: &Path, id: &str) -> PathBuf {
    let agents = work_dir.join("slaves");
    let agent = std::fs::read_dir(agents).unwrap().next().unwrap().unwrap().path();
    let framework = std::fs::read_dir(agent.join("frameworks")).unwrap().next().unwrap().unwrap().path();
    let runs = framework.join("executors").join(id).join("runs");
    std::fs::read_dir(runs).unwrap().next().unwrap().unwrap().path()
}

/// One `docker run -d` of the same container, until its marker file.
fn docker_start(dockerd: &dockerd::Dockerd, dir: &Path, i: usize) -> Duration {
    let sandbox = dir.join(format!("direct-{i}"));
    std::fs::create_dir_all(&sandbox).unwrap();
    let marker = sandbox.join("started");
    let wall0 = SystemTime::now();
    let out = Command::new("docker")
        .args(["-H", &format!("unix://{}", dockerd.socket.display()), "run", "-d", "--name", &format!("direct-{i}")])
        .args(["--network", "host", "--cpu-shares", "10", "--memory", "32m"])
        .arg("-v")
        .arg(format!("{}:/mnt/mesos/sandbox", sandbox.display()))
        .args(["--entrypoint", "/bin/sh", IMAGE, "-c", "touch /mnt/mesos/sandbox/started; exec sleep 3600"])
        .output()
        .expect("docker");
    assert!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
    wait_for(&marker);
    let elapsed = created_after(&marker, wall0);
    dockerd.engine().remove(&format!("direct-{i}")).unwrap();
    elapsed
}

/// When the container's command made `marker`, after `start` (its modification time:
/// the command ran then, whatever the launcher was doing meanwhile).
fn created_after(marker: &Path, start: SystemTime) -> Duration {
    let made = std::fs::metadata(marker).unwrap().modified().unwrap();
    made.duration_since(start).unwrap_or_default()
}

const BUILDS: usize = 5;

fn builds(dockerd: &dockerd::Dockerd, dir: &Path) {
    let project = dir.join("project");
    std::fs::create_dir_all(project.join("app/site")).unwrap();
    std::fs::write(
        project.join("app/Dockerfile"),
        format!(
            "FROM {IMAGE}\nRUN mkdir -p /data && dd if=/dev/urandom of=/data/blob bs=1M count=16 2>/dev/null && md5sum /data/blob > /data/sum\nCOPY site /site\nCMD [\"sh\"]\n"
        ),
    )
    .unwrap();
    for i in 0..200 {
        std::fs::write(project.join(format!("app/site/page{i}.html")), format!("<p>page {i}</p>\n").repeat(50))
            .unwrap();
    }
    std::fs::write(project.join("compose.yaml"), "name: benchbuild\nservices:\n  app:\n    build: ./app\n").unwrap();
    let timed = |command: &mut Command| {
        let t0 = Instant::now();
        let out = command.output().expect("spawn");
        assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
        t0.elapsed()
    };
    let (mut m3s, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..BUILDS {
        m3s.push(timed(
            Command::new(env!("CARGO_BIN_EXE_m3s"))
                .args(["compose", "-f"])
                .arg(project.join("compose.yaml"))
                .args(["build", "--no-cache", "--builder", "docker"])
                .env("M3S_DOCKER_SOCKET", &dockerd.socket),
        ));
        direct.push(timed(
            Command::new("docker")
                .args(["-H", &format!("unix://{}", dockerd.socket.display()), "build", "-q", "--no-cache"])
                .args(["-t", "m3s-bench-direct"])
                .arg(project.join("app"))
                .env("DOCKER_BUILDKIT", "0"),
        ));
    }
    m3s.sort();
    direct.sort();
    let (m, d) = (percentile(&m3s, 0.5), percentile(&direct, 0.5));
    println!("build of the same Dockerfile on the same dockerd, no cache, median of {BUILDS}:");
    println!("   m3s compose build --builder docker     {:>7.0} ms", ms(m));
    println!("   docker build (classic builder)         {:>7.0} ms", ms(d));
    println!("   ratio m3s/docker build: {:.2}", ms(m) / ms(d));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if dockerd::unavailable().is_some() {
        return;
    }
    if Command::new("docker").arg("--version").output().is_err() {
        eprintln!("docker benchmark SKIPPED: no docker CLI for the direct runs");
        return;
    }
    let dir = std::env::temp_dir().join(format!("m3s-bench-docker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dockerd = dockerd::Dockerd::start(&[]);
    dockerd.import_busybox(IMAGE);
    let socket = dockerd.socket_arg();
    let mini = Mini::start_with(&dir.join("m3s"), &["--containerizers", "docker,mesos", "--docker-socket", &socket]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _runtime = rt.enter();
    let info = FrameworkInfo { user: "root".into(), name: "bench".into(), ..Default::default() };
    let mut s = Scheduler::start(mini.scheduler_config(info)).unwrap();
    let (mut running, mut started, mut direct) = (Vec::new(), Vec::new(), Vec::new());
    // One of each first, unmeasured: the daemon's first container costs more.
    rt.block_on(m3s_start(&mut s, &mini, 1000));
    docker_start(&dockerd, &dir, 1000);
    for i in 0..runs() {
        let (r, st) = rt.block_on(m3s_start(&mut s, &mini, i));
        running.push(r);
        started.push(st);
        direct.push(docker_start(&dockerd, &dir, i));
    }
    for v in [&mut running, &mut started, &mut direct] {
        v.sort();
    }
    let row = |name: &str, v: &[Duration]| {
        println!("   {name:<38} p50 {:>7.1} ms   p99 {:>7.1} ms", ms(percentile(v, 0.5)), ms(percentile(v, 0.99)));
    };
    println!("DOCKER task start on the same dockerd, {} launches each (image present)", runs());
    row("m3s: ACCEPT -> TASK_RUNNING", &running);
    row("m3s: ACCEPT -> command runs", &started);
    row("docker run -d -> command runs", &direct);
    println!(
        "   ratio m3s/docker run (command runs):  p50 {:.2}   p99 {:.2}",
        ms(percentile(&started, 0.5)) / ms(percentile(&direct, 0.5)),
        ms(percentile(&started, 0.99)) / ms(percentile(&direct, 0.99))
    );
    drop(s);
    drop(mini);
    builds(&dockerd, &dir);
    drop(dockerd);
    let _ = std::fs::remove_dir_all(&dir);
}
