//! Benchmarks of container networks, in one run (`cargo bench -p m3s --bench
//! networks`); needs root, crun, busybox-static and containernetworking-plugins,
//! and for the peer docker.io and docker-compose (Debian packages). Traffic
//! stays on loopback and inside the bridges and namespaces made here.
//!
//! 1. TCP between two network namespaces on an m3s bridge (made by the agent's
//!    own `Networks`, CNI plugins and all) against two threads on the host's
//!    loopback: connect+close latency p50 over CONNECTS, and throughput of
//!    STREAM_MB.
//! 2. DNS: p50 of a question for a service name to the network's DNS server
//!    against resolving `localhost` from /etc/hosts through the C library
//!    (getaddrinfo, what a program does for a name in its hosts file).
//! 3. A 5- and a 20-service image project (busybox httpd with a health check,
//!    one port published): time from `m3s up` until every service is healthy,
//!    and the platform's memory then (PSS of m3s, the supervisors and the OCI
//!    runtime's processes), against `docker-compose up -d` on the same services
//!    (dockerd, containerd, shims and docker-proxy), where installed.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mesos::v1::{ContainerInfo, ContainerType, DockerInfo, DockerNetwork, Label, Labels, NetworkInfo, TaskInfo};
use mini::agent::network::{NetworkConfig, Networks};
use mini::dns::wire;

#[path = "shared/procs.rs"]
mod procs;
use procs::{percentile, pids_with, pss_kb};

const CONNECTS: usize = 500;
const STREAM_MB: usize = 512;
const QUESTIONS: usize = 2000;

fn task(network: &str, names: &str) -> TaskInfo {
    TaskInfo {
        container: Some(ContainerInfo {
            kind: ContainerType::Docker,
            docker: Some(DockerInfo { image: "unused".into(), network: DockerNetwork::User, ..Default::default() }),
            network_infos: vec![NetworkInfo {
                name: Some(network.into()),
                labels: Some(Labels { labels: vec![Label { key: "m3s.dns.names".into(), value: Some(names.into()) }] }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn in_netns<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let file = std::fs::File::open(path).unwrap();
    std::thread::spawn(move || {
        use std::os::fd::AsFd as _;
        rustix::thread::move_into_link_name_space(file.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
            .unwrap();
        f()
    })
}

/// A server thread: answers CONNECTS connections, then swallows one stream.
fn serve(listener: TcpListener) {
    for _ in 0..CONNECTS {
        drop(listener.accept().unwrap());
    }
    let (mut s, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    while s.read(&mut buf).unwrap() > 0 {}
    s.write_all(b"k").unwrap();
}

/// Connect latencies and stream throughput (MB/s) to `addr`.
fn client(addr: SocketAddr) -> (Vec<Duration>, f64) {
    let mut times = Vec::with_capacity(CONNECTS);
    for _ in 0..CONNECTS {
        let t = Instant::now();
        let s = TcpStream::connect(addr).unwrap();
        times.push(t.elapsed());
        drop(s);
    }
    times.sort();
    let mut s = TcpStream::connect(addr).unwrap();
    let chunk = vec![7u8; 1 << 16];
    let t = Instant::now();
    for _ in 0..STREAM_MB * 16 {
        s.write_all(&chunk).unwrap();
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut ack = [0u8; 1];
    s.read_exact(&mut ack).unwrap();
    (times, STREAM_MB as f64 / t.elapsed().as_secs_f64())
}

fn part1_and_2(dir: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let networks = Networks::new(NetworkConfig {
        state_dir: dir.join("networks"),
        cni_config_dir: None,
        cni_plugins_dir: "/usr/lib/cni".into(),
        dns_upstreams: Some(Vec::new()),
    })
    .unwrap();
    let net = format!("bench{}_default", std::process::id());
    let (a, b) = rt.block_on(async {
        let a = networks.attach(&task(&net, "web"), "bench-a").await.unwrap().unwrap();
        let b = networks.attach(&task(&net, "app"), "bench-b").await.unwrap().unwrap();
        (a, b)
    });
    let ip_a = a.address().unwrap();

    // 1. TCP over the bridge against loopback.
    let server = in_netns(&a.netns, || serve(TcpListener::bind("0.0.0.0:5001").unwrap()));
    std::thread::sleep(Duration::from_millis(200));
    let (bridge_times, bridge_mbs) = in_netns(&b.netns, move || client(SocketAddr::from((ip_a, 5001)))).join().unwrap();
    server.join().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || serve(listener));
    let (lo_times, lo_mbs) = client(SocketAddr::from(([127, 0, 0, 1], port)));
    server.join().unwrap();
    let (b50, l50) = (percentile(&bridge_times, 0.5), percentile(&lo_times, 0.5));
    println!("1. TCP between two containers over an m3s bridge vs two host threads on loopback");
    println!(
        "   connect p50: bridge {:.1} µs, loopback {:.1} µs (ratio {:.2})",
        b50.as_secs_f64() * 1e6,
        l50.as_secs_f64() * 1e6,
        b50.as_secs_f64() / l50.as_secs_f64()
    );
    println!(
        "   throughput ({STREAM_MB} MB): bridge {bridge_mbs:.0} MB/s, loopback {lo_mbs:.0} MB/s (ratio {:.2})",
        bridge_mbs / lo_mbs
    );

    // 2. DNS: a service name from the network's server, against /etc/hosts.
    let gateway = a.nameserver.expect("a DNS server");
    let dns_times = in_netns(&b.netns, move || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 512];
        let mut times = Vec::with_capacity(QUESTIONS);
        for i in 0..QUESTIONS {
            let q = wire::query(i as u16, "web", wire::TYPE_A);
            let t = Instant::now();
            socket.send_to(&q, (gateway, 53)).unwrap();
            let len = socket.recv(&mut buf).unwrap();
            times.push(t.elapsed());
            assert_eq!(wire::parse_a_answers(&buf[..len]).unwrap(), (0, vec![ip_a]));
        }
        times.sort();
        times
    })
    .join()
    .unwrap();
    let mut hosts_times: Vec<Duration> = (0..QUESTIONS)
        .map(|_| {
            let t = Instant::now();
            let found = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80)).unwrap().next();
            let d = t.elapsed();
            assert!(found.is_some());
            d
        })
        .collect();
    hosts_times.sort();
    let (d50, h50) = (percentile(&dns_times, 0.5), percentile(&hosts_times, 0.5));
    println!("2. DNS: a service name from the network's DNS server vs a name from /etc/hosts (getaddrinfo)");
    println!(
        "   p50: m3s DNS {:.1} µs, /etc/hosts {:.1} µs (ratio {:.2}); p99 m3s DNS {:.1} µs",
        d50.as_secs_f64() * 1e6,
        h50.as_secs_f64() * 1e6,
        d50.as_secs_f64() / h50.as_secs_f64(),
        percentile(&dns_times, 0.99).as_secs_f64() * 1e6
    );
    rt.block_on(async {
        networks.detach("bench-a").await;
        networks.detach("bench-b").await;
    });
}

fn m3s() -> Command {
    Command::new(env!("CARGO_BIN_EXE_m3s"))
}

/// The services of an n-service project, for m3s (`name`, `pull_policy`) or docker-compose 1.29.
fn project(n: usize, port: u16, for_docker: bool) -> String {
    let mut out =
        if for_docker { "version: \"3.8\"\nservices:\n".to_owned() } else { format!("name: bench{n}\nservices:\n") };
    for i in 0..n {
        out.push_str(&format!("  s{i}:\n    image: example/busybox:1\n"));
        if !for_docker {
            out.push_str("    pull_policy: never\n");
        }
        out.push_str("    command: [\"sh\", \"-c\", \"echo s > /tmp/index.html; exec httpd -f -p 80 -h /tmp\"]\n");
        out.push_str(
            "    healthcheck: {test: [CMD, wget, -q, -O, /dev/null, \"http://127.0.0.1/\"], interval: 1s, retries: 60}\n",
        );
        if i == 0 {
            out.push_str(&format!("    ports: [\"127.0.0.1:{port}:80\"]\n"));
        }
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// (seconds until every service is healthy, platform PSS in kB) on m3s up.
fn m3s_project(dir: &Path, n: usize) -> (f64, u64) {
    let work = dir.join(format!("up{n}"));
    let port = free_port();
    let file = dir.join(format!("m3s-{n}.yaml"));
    std::fs::write(&file, project(n, port, false)).unwrap();
    let image = dir.join("busybox.tar");
    let out = m3s().args(["images", "--work-dir"]).arg(&work).arg("load").arg(&image).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let (mesos, api) = (free_port(), free_port());
    let started = Instant::now();
    let mut up = m3s()
        .args(["up", "--work-dir"])
        .arg(&work)
        .args([
            "--mesos-port",
            &mesos.to_string(),
            "--framework-port",
            &api.to_string(),
            "--dns-forward",
            "127.0.0.1:9",
        ])
        .args(["--resources", &format!("cpus:64;mem:65536;disk:100000;ports:[{port}-{port},31000-31999]")])
        .arg("-f")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("up{n}.log"))).unwrap())
        .spawn()
        .unwrap();
    let api_url = format!("http://127.0.0.1:{api}");
    let healthy = |out: &str| out.lines().filter(|l| l.contains(" healthy")).count();
    loop {
        let out = m3s()
            .args(["compose", "--api", &api_url, "--work-dir"])
            .arg(&work)
            .args(["-p", &format!("bench{n}"), "ps"])
            .output()
            .unwrap();
        if healthy(&String::from_utf8_lossy(&out.stdout)) == n {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "bench{n} not healthy in 5 minutes");
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let needle = work.display().to_string();
    let pss: u64 = pids_with(&needle).iter().map(|p| pss_kb(*p)).sum::<u64>() + pss_kb(up.id());
    let _ = m3s()
        .args(["compose", "--api", &api_url, "--work-dir"])
        .arg(&work)
        .args(["-p", &format!("bench{n}"), "down"])
        .output();
    let _ = up.kill();
    let _ = up.wait();
    let _ = m3s().args(["networks", "--work-dir"]).arg(&work).arg("prune").output();
    (elapsed, pss)
}

/// (seconds until every service is healthy, PSS of dockerd, containerd,
/// shims and proxies) for docker-compose, or why not.
fn docker_project(dir: &Path, n: usize) -> Result<(f64, u64), String> {
    if !Path::new("/usr/bin/docker-compose").exists() || !Path::new("/usr/sbin/dockerd").exists() {
        return Err("docker.io and docker-compose are not installed (apt-get install docker.io docker-compose)".into());
    }
    let ok = |c: &mut Command| c.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    let load = Command::new("docker").args(["load", "-i"]).arg(dir.join("busybox.tar")).output();
    if !load.is_ok_and(|o| o.status.success()) {
        return Err("docker load failed".into());
    }
    let file = dir.join(format!("docker-{n}.yaml"));
    std::fs::write(&file, project(n, free_port(), true)).unwrap();
    let name = format!("m3sbench{n}");
    let started = Instant::now();
    if !ok(Command::new("docker-compose").arg("-f").arg(&file).args(["-p", &name, "up", "-d"])) {
        return Err("docker-compose up failed".into());
    }
    loop {
        let out = Command::new("docker")
            .args(["ps", "--filter", &format!("label=com.docker.compose.project={name}"), "--format", "{{.Status}}"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if text.lines().filter(|l| l.contains("(healthy)")).count() == n {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err("not healthy in 5 minutes".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let pss: u64 = ["dockerd", "containerd --config", "containerd-shim", "docker-proxy"]
        .iter()
        .flat_map(|n| pids_with(n))
        .collect::<HashSet<u32>>()
        .iter()
        .map(|p| pss_kb(*p))
        .sum();
    ok(Command::new("docker-compose").arg("-f").arg(&file).args(["-p", &name, "down"]));
    Ok((elapsed, pss))
}

/// Starts dockerd (bridge networking, as compose projects need) if it is not
/// running; without its iptables rules (published ports go through
/// docker-proxy), so that the machine's firewall stays as it was.
fn start_dockerd(dir: &Path) -> Option<std::process::Child> {
    if !Path::new("/usr/sbin/dockerd").exists() || !pids_with("dockerd").is_empty() {
        return None;
    }
    let log = std::fs::File::create(dir.join("dockerd.log")).ok()?;
    let child = Command::new("/usr/sbin/dockerd")
        .args(["--iptables=false", "--ip-forward=false"])
        .stdout(log.try_clone().ok()?)
        .stderr(log)
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Command::new("docker").arg("info").stdout(Stdio::null()).stderr(Stdio::null()).status().ok()?.success() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(child)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    assert!(rustix::process::geteuid().is_root(), "the networks benchmark needs root (network namespaces, CNI)");
    let dir = std::env::temp_dir().join("m3s-bench-networks");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    part1_and_2(&dir);

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(root.join("examples/containers/make-image")).arg(dir.join("busybox.tar")).output().unwrap();
    assert!(out.status.success(), "make-image: {}", String::from_utf8_lossy(&out.stderr));
    let dockerd = start_dockerd(&dir);
    println!("3. An n-service image project until every service is healthy, and the platform's memory then");
    for n in [5, 20] {
        let (m3s_s, m3s_kb) = m3s_project(&dir, n);
        match docker_project(&dir, n) {
            Ok((d_s, d_kb)) => println!(
                "   {n:>2} services: m3s {m3s_s:.1} s, {} MB; docker compose {d_s:.1} s, {} MB (time ratio {:.2}, memory ratio {:.2})",
                m3s_kb / 1024,
                d_kb / 1024,
                m3s_s / d_s,
                m3s_kb as f64 / d_kb as f64
            ),
            Err(why) => println!("   {n:>2} services: m3s {m3s_s:.1} s, {} MB; docker compose: {why}", m3s_kb / 1024),
        }
    }
    if let Some(mut d) = dockerd {
        let _ = d.kill();
        let _ = d.wait();
        // The bridge dockerd made stays after it: not this machine's.
        let _ = Command::new("ip").args(["link", "delete", "docker0"]).status();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
