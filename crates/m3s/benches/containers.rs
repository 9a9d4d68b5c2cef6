//! Benchmarks of containers on the embedded agent, in one run
//! (`cargo bench -p m3s --bench containers`); needs crun, docker-registry,
//! busybox-static and skopeo (Debian packages), and for the third part
//! docker.io, whose dockerd the benchmark starts if it is installed.
//!
//! 1. Start: from the ACCEPT of a DOCKER task (image already in the store) until
//!    its command runs inside the container (it creates a file in the sandbox),
//!    p50 and p99 over RUNS launches; against `crun run --detach` of a bundle made
//!    the same way, rootfs already mounted, until the same file appears.
//! 2. Pull: a ~200 MB image (4 layers of compressible data) from a loopback
//!    registry into a fresh store (download, digests, unpack), against `skopeo
//!    copy` of the same image into a directory (download and digests only).
//! 3. Memory with 20 containers running (`sleep`): m3s (its process, the
//!    supervisors and the crun processes, PSS) against dockerd, containerd and
//!    the shims running the same 20.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mesos::scheduler::{Scheduler, SchedulerEvent};
use mesos::v1::scheduler::{Accept, CallKind, Event};
use mesos::v1::{
    CommandInfo, ContainerInfo, ContainerType, DockerInfo, FrameworkInfo, Offer, Operation, Resource, TaskId, TaskInfo,
};

#[path = "shared/procs.rs"]
mod procs;
use procs::{percentile, pids_with, pss_kb};

#[path = "shared/mini.rs"]
mod bench_mini;
#[path = "../../image/tests/support/mod.rs"]
mod images;
#[path = "../tests/support/mod.rs"]
mod support;

use bench_mini::BenchMini as Mini;

/// Launches measured; `M3S_BENCH_RUNS` changes it (for a quick look under strace or perf).
fn runs() -> usize {
    std::env::var("M3S_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(40)
}
const RESIDENT: usize = 20;

fn bench_dir() -> PathBuf {
    // Containers need a filesystem overlayfs takes as upper: not tmpfs on every kernel.
    std::env::var_os("M3S_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("m3s-bench-containers"))
}

fn wait_for(path: &Path, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    while !path.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    true
}

/// A scheduler on the benchmark's cluster.
fn scheduler(mini: &Mini) -> Scheduler {
    let info = FrameworkInfo { user: "root".into(), name: "bench".into(), ..Default::default() };
    Scheduler::start(mini.scheduler_config(info)).unwrap()
}

async fn next_offer(s: &mut Scheduler) -> Offer {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), s.next()).await.expect("an offer").unwrap().unwrap() {
            SchedulerEvent::Event(Event::Offers(o)) if !o.offers.is_empty() => {
                return o.offers.into_iter().next().unwrap();
            }
            SchedulerEvent::Event(Event::Update(u)) if u.status.uuid.is_some() => {
                s.handle().acknowledge(&u.status).unwrap();
            }
            _ => {}
        }
    }
}

fn docker_task(id: &str, offer: &Offer, image: &str, script: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId::new(id),
        agent_id: offer.agent_id.clone(),
        resources: vec![Resource::scalar("cpus", 0.01), Resource::scalar("mem", 16.0)],
        command: Some(CommandInfo {
            shell: false,
            value: None,
            arguments: vec!["sh".into(), "-c".into(), script.into()],
            ..Default::default()
        }),
        container: Some(ContainerInfo {
            kind: ContainerType::Docker,
            docker: Some(DockerInfo { image: image.into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Launches one task per offer and returns, for each, the time from ACCEPT to its marker file.
async fn m3s_starts(mini: &Mini, image: &str) -> Vec<Duration> {
    let mut s = scheduler(mini);
    let sandboxes = mini.dir.join("slaves");
    let mut out = Vec::new();
    for i in 0..runs() {
        let offer = next_offer(&mut s).await;
        let id = format!("start-{i}");
        let task = docker_task(&id, &offer, image, "touch /mnt/mesos/sandbox/started; exec sleep 3600");
        let accept = Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![Operation::launch(vec![task])],
            // What is left is offered again at once: launches follow each other
            // closely, as the direct runs do (the kernel's cost of joining a
            // cgroup depends on how recently another process joined one).
            filters: Some(mesos::v1::Filters { refuse_seconds: 0.0 }),
        };
        let t0 = Instant::now();
        s.handle().call(CallKind::Accept(accept)).await.unwrap();
        // The sandbox appears under executors/<id>/runs/<container>/.
        let marker = loop {
            let runs = std::fs::read_dir(&sandboxes)
                .ok()
                .and_then(|mut agents| agents.next())
                .and_then(|a| a.ok())
                .map(|a| a.path().join("frameworks"))
                .and_then(|f| std::fs::read_dir(f).ok()?.next()?.ok())
                .map(|f| f.path().join("executors").join(&id).join("runs"));
            if let Some(run) = runs.and_then(|r| std::fs::read_dir(r).ok()?.next()?.ok()) {
                break run.path().join("started");
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "no sandbox for {id}");
            std::thread::sleep(Duration::from_micros(200));
        };
        assert!(wait_for(&marker, Duration::from_secs(60)), "{id} did not start");
        out.push(t0.elapsed());
        s.handle()
            .call(CallKind::Kill(mesos::v1::scheduler::Kill {
                task_id: TaskId::new(&id),
                agent_id: None,
                kill_policy: None,
            }))
            .await
            .unwrap();
    }
    out
}

/// `crun run --detach` of a bundle made like m3s's (same config, rootfs mounted once), until the marker.
fn crun_starts(bundle_from: &Path, dir: &Path, with_cgroups: bool) -> Vec<Duration> {
    let bundle = dir.join("direct");
    let _ = std::fs::remove_dir_all(&bundle);
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    std::fs::create_dir_all(bundle.join("sandbox")).unwrap();
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle_from.join("config.json")).unwrap()).unwrap();
    spec["process"]["args"] = serde_json::json!(["sh", "-c", "touch /mnt/mesos/sandbox/started; exec sleep 3600"]);
    for m in spec["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/mnt/mesos/sandbox" {
            m["source"] = bundle.join("sandbox").display().to_string().into();
        }
    }
    std::fs::write(bundle.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    // The same layers, mounted once: the bundle is ready before the clock starts.
    let upper = bundle.join("upper");
    let work = bundle.join("work");
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let lower: Vec<String> =
        std::fs::read_dir(bundle_from.parent().unwrap().parent().unwrap().join("images/layers/sha256"))
            .unwrap()
            .map(|e| e.unwrap().path().display().to_string())
            .collect();
    let status = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), upper.display(), work.display()))
        .arg(bundle.join("rootfs"))
        .status()
        .unwrap();
    assert!(status.success(), "mount overlay");
    let root = dir.join("crun-root");
    std::fs::create_dir_all(&root).unwrap();
    let mut out = Vec::new();
    for i in 0..runs() {
        let id = format!("direct-{i}");
        let marker = bundle.join("sandbox/started");
        let _ = std::fs::remove_file(&marker);
        let t0 = Instant::now();
        let mut cmd = Command::new("crun");
        cmd.arg("--root")
            .arg(&root)
            .args(["--cgroup-manager=disabled", "run", "--detach", "--bundle"])
            .arg(&bundle)
            .arg(&id);
        // The same private mount namespace m3s gives crun (hybrid cgroup hosts
        // need it) and, when asked, new cgroups like those m3s makes per task.
        let cgroups = if with_cgroups { bench_cgroups(&id) } else { Vec::new() };
        let procs: Vec<std::ffi::CString> = cgroups
            .iter()
            .map(|c| std::ffi::CString::new(c.join("cgroup.procs").display().to_string()).unwrap())
            .collect();
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                for file in &procs {
                    let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
                }
                if libc::unshare(libc::CLONE_NEWNS) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                );
                libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH);
                Ok(())
            });
        }
        let status = cmd.stdin(Stdio::null()).stdout(Stdio::null()).status().unwrap();
        assert!(status.success(), "crun run");
        assert!(wait_for(&marker, Duration::from_secs(30)), "direct container did not start");
        out.push(t0.elapsed());
        let _ = Command::new("crun").arg("--root").arg(&root).args(["delete", "--force", &id]).status();
        for c in &cgroups {
            // An exiting process may hold the cgroup for a moment.
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::fs::remove_dir(c).is_err() && c.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    let _ = Command::new("umount").arg(bundle.join("rootfs")).status();
    out
}

/// Memory and cpu cgroups like the ones m3s makes for a task of the benchmark's
/// size (32 MB, 0.01 cpus): v1 hierarchies where mounted, else cgroup2.
fn bench_cgroups(id: &str) -> Vec<PathBuf> {
    let v1 = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    let settings: Vec<(PathBuf, &str, &str)> = if v1 {
        vec![
            (format!("/sys/fs/cgroup/memory/m3s-bench-{id}").into(), "memory.limit_in_bytes", "33554432"),
            (format!("/sys/fs/cgroup/cpu/m3s-bench-{id}").into(), "cpu.shares", "10"),
            (format!("/sys/fs/cgroup/cpuacct/m3s-bench-{id}").into(), "", ""),
        ]
    } else {
        vec![(format!("/sys/fs/cgroup/m3s-bench-{id}").into(), "memory.max", "33554432")]
    };
    let mut out = Vec::new();
    for (dir, file, value) in settings {
        let _ = std::fs::create_dir(&dir);
        if !file.is_empty() {
            std::fs::write(dir.join(file), value).unwrap();
        }
        out.push(dir);
    }
    out
}

fn big_layers() -> Vec<images::Layer> {
    // Compressible like real files: text-ish lines with varying numbers.
    (0..4u64)
        .map(|n| {
            let mut data = Vec::with_capacity(50 << 20);
            let mut x = 0x9e3779b97f4a7c15u64.wrapping_mul(n + 1);
            while data.len() < 50 << 20 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data.extend_from_slice(
                    format!("line {n} value {} checksum {:x} lorem ipsum dolor\n", x % 100_000, x).as_bytes(),
                );
            }
            let path = format!("data/part-{n}.txt");
            images::layer(images::tar(&[images::Entry::File(&path, &data, 0o644)]), images::Compression::Gzip)
        })
        .collect()
}

fn main() {
    let dir = bench_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    support::init_tls();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let registry = images::Registry::start(&dir.join("registry"), None);
    let host = registry.host();
    let bb = vec![images::busybox_layer(images::Compression::Gzip)];
    rt.block_on(images::push(&host, None, "bench/bb", "1", &bb, &images::config(&bb, serde_json::json!({}))));
    let image = format!("{host}/bench/bb:1");
    println!("containers benchmark ({} runs), work dir {}", runs(), dir.display());

    // 1. Start latency.
    let mini = Mini::start(&dir.join("m3s/mini"));
    let pull = Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["images", "pull", &image, "--work-dir"])
        .arg(dir.join("m3s"))
        .output()
        .unwrap();
    assert!(pull.status.success(), "{}", String::from_utf8_lossy(&pull.stderr));
    let mut m3s = rt.block_on(m3s_starts(&mini, &image));
    m3s.sort();
    let bundle = std::fs::read_dir(dir.join("m3s/mini/containers")).unwrap().next().expect("a bundle").unwrap().path();
    let mut direct = crun_starts(&bundle, &dir, false);
    direct.sort();
    // m3s puts every task in new memory and cpu cgroups (v1 here); moving a
    // process into one waits for an RCU grace period in the kernel. The peer
    // doing the same work is crun in new cgroups of its own, same limits.
    let mut direct_cg = crun_starts(&bundle, &dir, true);
    direct_cg.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("\n1. start, ACCEPT (or crun run) until the container's command runs, image in the store:");
    println!(
        "   m3s mini:          p50 {:7.1} ms   p99 {:7.1} ms",
        ms(percentile(&m3s, 0.5)),
        ms(percentile(&m3s, 0.99))
    );
    println!(
        "   crun run --detach: p50 {:7.1} ms   p99 {:7.1} ms",
        ms(percentile(&direct, 0.5)),
        ms(percentile(&direct, 0.99))
    );
    println!(
        "   crun run --detach in cgroups with the same limits: p50 {:7.1} ms   p99 {:7.1} ms",
        ms(percentile(&direct_cg, 0.5)),
        ms(percentile(&direct_cg, 0.99))
    );
    println!(
        "   ratio m3s/crun (no cgroups):   p50 {:.2}   p99 {:.2}",
        ms(percentile(&m3s, 0.5)) / ms(percentile(&direct, 0.5)),
        ms(percentile(&m3s, 0.99)) / ms(percentile(&direct, 0.99))
    );
    println!(
        "   ratio m3s/crun (same cgroups): p50 {:.2}   p99 {:.2}   (target: at most 1.5)",
        ms(percentile(&m3s, 0.5)) / ms(percentile(&direct_cg, 0.5)),
        ms(percentile(&m3s, 0.99)) / ms(percentile(&direct_cg, 0.99))
    );

    // 3. Memory with RESIDENT containers, measured while the m3s cluster is up.
    let s = rt.block_on(async {
        let mut s = scheduler(&mini);
        let mut launched = 0;
        while launched < RESIDENT {
            let offer = next_offer(&mut s).await;
            let task = docker_task(&format!("resident-{launched}"), &offer, &image, "exec sleep 3600");
            let accept = Accept {
                offer_ids: vec![offer.id.clone()],
                operations: vec![Operation::launch(vec![task])],
                filters: Some(mesos::v1::Filters { refuse_seconds: 0.0 }),
            };
            s.handle().call(CallKind::Accept(accept)).await.unwrap();
            launched += 1;
        }
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let root = dir.join("m3s/mini/meta/oci");
    while pids_with(&format!("--root {} --cgroup-manager=disabled run", root.display())).len() < RESIDENT {
        assert!(Instant::now() < deadline, "the resident containers did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let m3s_pss = pss_kb(mini.child.id());
    let supervisors: u64 =
        pids_with(&format!("supervise --run-dir {}", dir.join("m3s/mini").display())).iter().map(|p| pss_kb(*p)).sum();
    let cruns: u64 = pids_with(&format!("--root {}", root.display())).iter().map(|p| pss_kb(*p)).sum();
    let m3s_total = m3s_pss + supervisors + cruns;
    drop(s);
    drop(mini);

    // 2. Pull of a ~200 MB image.
    let big = big_layers();
    let bytes: usize = big.iter().map(|l| l.blob.len()).sum();
    rt.block_on(images::push(&host, None, "bench/big", "1", &big, &images::config(&big, serde_json::json!({}))));
    let big_ref = format!("{host}/bench/big:1");
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["images", "pull", &big_ref, "--work-dir"])
        .arg(dir.join("pull"))
        .output()
        .unwrap();
    let m3s_pull = t0.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let skopeo = Path::new("/usr/bin/skopeo").exists();
    println!("\n2. pull of {:.0} MB compressed ({} MB unpacked) from a loopback registry:", bytes as f64 / 1e6, 4 * 50);
    println!("   m3s images pull (download, digests, unpack): {:7.2} s", m3s_pull.as_secs_f64());
    if skopeo {
        let t0 = Instant::now();
        let out = Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false", &format!("docker://{big_ref}")])
            .arg(format!("dir:{}", dir.join("skopeo").display()))
            .output()
            .unwrap();
        let skopeo_pull = t0.elapsed();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        println!("   skopeo copy to a directory (download only):  {:7.2} s", skopeo_pull.as_secs_f64());
        println!(
            "   ratio m3s/skopeo: {:.2} (target: at most 1.0)",
            m3s_pull.as_secs_f64() / skopeo_pull.as_secs_f64()
        );
        // The same work as m3s's pull: skopeo to an OCI layout, then umoci unpacks it.
        if Path::new("/usr/bin/umoci").exists() {
            let t0 = Instant::now();
            let layout = dir.join("oci-layout");
            let out = Command::new("skopeo")
                .args(["copy", "--src-tls-verify=false", &format!("docker://{big_ref}")])
                .arg(format!("oci:{}:big", layout.display()))
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let out = Command::new("umoci")
                .args(["unpack", "--image", &format!("{}:big", layout.display())])
                .arg(dir.join("umoci-bundle"))
                .output()
                .unwrap();
            let both = t0.elapsed();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            println!("   skopeo copy + umoci unpack (download, unpack): {:7.2} s", both.as_secs_f64());
            println!("   ratio m3s/(skopeo+umoci): {:.2}", m3s_pull.as_secs_f64() / both.as_secs_f64());
        }
    } else {
        println!("   skopeo is not installed (apt-get install skopeo): no comparison");
    }

    println!("\n3. memory with {RESIDENT} containers running (PSS):");
    println!(
        "   m3s: {} MB (m3s {} MB, supervisors {} MB, crun {} MB)",
        m3s_total / 1024,
        m3s_pss / 1024,
        supervisors / 1024,
        cruns / 1024
    );
    match docker_memory(&image) {
        Some((total, detail)) => {
            println!("   Docker: {} MB ({detail})", total / 1024);
            println!("   ratio m3s/Docker: {:.2} (target: at most 0.2)", m3s_total as f64 / total as f64);
        }
        None => println!("   Docker: dockerd is not installed (apt-get install docker.io): no comparison"),
    }
    drop(registry);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts dockerd (if installed and not running), runs RESIDENT containers of
/// `image`, and sums the PSS of dockerd, containerd and the shims.
fn docker_memory(image: &str) -> Option<(u64, String)> {
    if !Path::new("/usr/sbin/dockerd").exists() {
        return None;
    }
    let started = if pids_with("dockerd").is_empty() {
        let log = std::fs::File::create(std::env::temp_dir().join("m3s-bench-dockerd.log")).ok()?;
        // No bridge and no iptables rules: the containers use the host's
        // network (as m3s's do), and the machine's network stays as it was.
        Some(
            Command::new("/usr/sbin/dockerd")
                .args(["--bridge=none", "--iptables=false", "--ip-forward=false"])
                .stdout(log.try_clone().ok()?)
                .stderr(log)
                .spawn()
                .ok()?,
        )
    } else {
        None
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Command::new("docker").arg("info").stdout(Stdio::null()).stderr(Stdio::null()).status().ok()?.success() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("docker").args(["pull", image]).stdout(Stdio::null()).status();
    let names: Vec<String> = (0..RESIDENT).map(|i| format!("m3s-bench-{i}")).collect();
    for n in &names {
        let _ = Command::new("docker")
            .args(["run", "-d", "--name", n, "--network", "host", image, "sleep", "3600"])
            .stdout(Stdio::null())
            .status();
    }
    std::thread::sleep(Duration::from_secs(2));
    let sum = |needle: &str| -> (u64, usize) {
        let pids = pids_with(needle);
        (pids.iter().map(|p| pss_kb(*p)).sum(), pids.len())
    };
    let (dockerd, _) = sum("dockerd");
    let (containerd, _) = sum("containerd --config");
    let (shims, n) = sum("containerd-shim");
    for n in &names {
        let _ = Command::new("docker").args(["rm", "-f", n]).stdout(Stdio::null()).status();
    }
    if let Some(mut d) = started {
        let _ = d.kill();
        let _ = d.wait();
    }
    let total = dockerd + containerd + shims;
    Some((
        total,
        format!("dockerd {} MB, containerd {} MB, {n} shims {} MB", dockerd / 1024, containerd / 1024, shims / 1024),
    ))
}
