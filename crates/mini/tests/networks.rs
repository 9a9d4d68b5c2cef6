//! Container networks without containers: network namespaces joined to
//! bridges by the real CNI reference plugins (Debian's
//! containernetworking-plugins), names answered by the networks' DNS servers,
//! traffic only between the namespaces and bridges these tests make.
//! Needs root and the plugins; without them each test says so and, when
//! M3S_REQUIRE_ROOT is set (scripts/test as root, as CI runs), fails.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mesos::v1::{
    ContainerInfo, ContainerType, DockerInfo, DockerNetwork, Label, Labels, NetworkInfo, PortMapping, TaskInfo,
};
use mini::agent::network::{NetworkConfig, Networks, netns};
use mini::dns::wire;

const PLUGINS: &str = "/usr/lib/cni";

/// Whether this machine can make networks; if not, why (loudly).
fn can_run(test: &str) -> bool {
    let missing = if !rustix::process::geteuid().is_root() {
        Some("root")
    } else if !Path::new(PLUGINS).join("bridge").is_file() {
        Some("the CNI plugins in /usr/lib/cni (apt-get install containernetworking-plugins)")
    } else {
        None
    };
    match missing {
        None => true,
        Some(what) => {
            assert!(std::env::var_os("M3S_REQUIRE_ROOT").is_none(), "M3S_REQUIRE_ROOT is set but {test} lacks {what}");
            eprintln!("SKIPPED {test}: it needs {what}");
            false
        }
    }
}

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("m3s-net-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Fixture { dir }
    }

    /// The agent's networks over this directory (again, as after a restart).
    fn networks(&self) -> Networks {
        open(&self.dir)
    }

    fn netns_files(&self) -> usize {
        std::fs::read_dir(self.dir.join("networks/netns")).map(|d| d.count()).unwrap_or(0)
    }
}

fn open(dir: &Path) -> Networks {
    Networks::new(NetworkConfig {
        state_dir: dir.join("networks"),
        cni_config_dir: Some(dir.join("cni")),
        cni_plugins_dir: PLUGINS.into(),
        dns_upstreams: Some(Vec::new()),
    })
    .unwrap()
}

impl Drop for Fixture {
    /// Whatever a failed test left joined is released (bridges, namespaces,
    /// rules), as a restart of the agent with no containers would.
    fn drop(&mut self) {
        let dir = self.dir.clone();
        let released = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let networks = open(&dir);
            rt.block_on(networks.recover(&HashSet::new()));
        });
        let _ = released.join();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn labels(kv: &[(&str, &str)]) -> Option<Labels> {
    Some(Labels { labels: kv.iter().map(|(k, v)| Label { key: (*k).into(), value: Some((*v).into()) }).collect() })
}

/// A network to join: (network, its DNS names, more NetworkInfo labels).
type Joining<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// A DOCKER task on user networks.
fn task(networks: &[Joining<'_>], ports: &[(u32, u32)], task_labels: &[(&str, &str)]) -> TaskInfo {
    TaskInfo {
        labels: labels(task_labels),
        container: Some(ContainerInfo {
            kind: ContainerType::Docker,
            docker: Some(DockerInfo {
                image: "unused".into(),
                network: DockerNetwork::User,
                port_mappings: ports
                    .iter()
                    .map(|(h, c)| PortMapping { host_port: *h, container_port: *c, protocol: Some("tcp".into()) })
                    .collect(),
                ..Default::default()
            }),
            network_infos: networks
                .iter()
                .map(|(name, names, extra)| {
                    let mut kv = vec![("m3s.dns.names", *names)];
                    kv.extend_from_slice(extra);
                    NetworkInfo { name: Some((*name).into()), labels: labels(&kv), ..Default::default() }
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn ask(server: Ipv4Addr, name: &str) -> (u8, Vec<Ipv4Addr>) {
    let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await.unwrap();
    socket.send_to(&wire::query(7, name, wire::TYPE_A), (server, 53)).await.unwrap();
    let mut buf = [0u8; 512];
    let len = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf)).await.expect("a DNS answer").unwrap();
    wire::parse_a_answers(&buf[..len]).unwrap()
}

/// Runs `f` on a thread inside the network namespace at `path`.
fn in_netns<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let file = std::fs::File::open(path).unwrap();
    std::thread::spawn(move || {
        use std::os::fd::AsFd as _;
        rustix::thread::move_into_link_name_space(file.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
            .unwrap();
        f()
    })
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn nat_rules_mention(text: &str) -> bool {
    let out = std::process::Command::new("iptables-save").output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_reach_each_other_by_name_and_published_ports_from_the_host() {
    if !can_run("containers_reach_each_other_by_name_and_published_ports_from_the_host") {
        return;
    }
    let f = Fixture::new("reach");
    let networks = f.networks();
    let net = format!("t{}_default", std::process::id());
    let host_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let web = task(
        &[(&net, "web,web.t,www", &[])],
        &[(u32::from(host_port), 80)],
        &[(&format!("m3s.host_ip.{host_port}/tcp"), "127.0.0.1")],
    );
    let a = networks.attach(&web, "c-web").await.unwrap().expect("a network");
    let b = networks.attach(&task(&[(&net, "app", &[])], &[], &[]), "c-app").await.unwrap().unwrap();
    let (ip_a, ip_b) = (a.address().unwrap(), b.address().unwrap());
    assert_ne!(ip_a, ip_b);
    let gateway = a.nameserver.expect("m3s's DNS server on the network");
    assert_eq!(Some(gateway), a.gateway());

    // DNS on the gateway: every name of the container, nothing of others' networks.
    for name in ["web", "WEB.t", "www"] {
        assert_eq!(ask(gateway, name).await, (0, vec![ip_a]), "{name}");
    }
    assert_eq!(ask(gateway, "app").await, (0, vec![ip_b]));
    // Unknown names go to the upstreams (none here): SERVFAIL, not a made-up answer.
    assert_eq!(ask(gateway, "nowhere.invalid").await.0, wire::RCODE_SERVFAIL);

    // TCP from the app's namespace to the web's address, and through the
    // published port from the host's loopback.
    let server = in_netns(&a.netns, move || {
        let listener = std::net::TcpListener::bind("0.0.0.0:80").unwrap();
        for _ in 0..2 {
            use std::io::Write as _;
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"hello from web").unwrap();
        }
    });
    let read = |addr: SocketAddr| {
        use std::io::Read as _;
        for _ in 0..50 {
            if let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                let mut out = String::new();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.read_to_string(&mut out).unwrap();
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{addr} never answered");
    };
    let from_app = in_netns(&b.netns, move || read(SocketAddr::from((ip_a, 80)))).join().unwrap();
    assert_eq!(from_app, "hello from web");
    let from_host = tokio::task::spawn_blocking(move || read(SocketAddr::from(([127, 0, 0, 1], host_port))));
    assert_eq!(from_host.await.unwrap(), "hello from web");
    server.join().unwrap();

    // While published, the host port is held: a host server cannot take it.
    assert!(std::net::TcpListener::bind(("127.0.0.1", host_port)).is_err());
    // And a second container asking for it is refused, naming it.
    let clash = task(&[(&net, "other", &[])], &[(u32::from(host_port), 80)], &[]);
    let e = networks.attach(&clash, "c-clash").await.unwrap_err().to_string();
    assert!(e.contains(&format!(":{host_port}/tcp is already in use")), "{e}");

    // A restart finds them again: names and ports come back, nothing is made twice.
    let app_veth = b.joined[0].result["interfaces"][1]["name"].as_str().unwrap().to_owned();
    assert!(link_exists(&app_veth));
    drop(networks);
    let networks = f.networks();
    let live: HashSet<String> = ["c-web".to_owned()].into();
    networks.recover(&live).await;
    assert_eq!(ask(gateway, "web").await, (0, vec![ip_a]), "the re-adopted container's names");
    assert_eq!(ask(gateway, "app").await.0, wire::RCODE_SERVFAIL, "the container that is gone lost its names");
    assert!(!link_exists(&app_veth), "the gone one's veth went");
    assert!(std::net::TcpListener::bind(("127.0.0.1", host_port)).is_err(), "the port is held again");
    assert_eq!(f.netns_files(), 1);

    networks.detach("c-web").await;
    assert_eq!(f.netns_files(), 0);
    assert!(std::net::TcpListener::bind(("127.0.0.1", host_port)).is_ok(), "the port is free again");
    assert!(!nat_rules_mention(&format!("dport {host_port}")), "the port's DNAT rule is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_joins_and_leaves_leave_nothing_behind() {
    if !can_run("a_hundred_joins_and_leaves_leave_nothing_behind") {
        return;
    }
    let f = Fixture::new("cycles");
    let networks = f.networks();
    let net = format!("c{}_default", std::process::id());
    // A subnet of this test's own (the auto pool, 10.90/16, is every other
    // test's): rules that name it after the cycles can only be this test's.
    let own_subnet = format!("10.91.{}.0/24", std::process::id() % 200);
    let ipam: &[(&str, &str)] = &[("m3s.ipam.subnet", &own_subnet)];
    let mut bridge = None;
    let mut subnets = HashSet::new();
    let started = std::time::Instant::now();
    for i in 0..100 {
        assert!(started.elapsed() < Duration::from_secs(600), "100 cycles took over 10 minutes (at {i})");
        let one = networks.attach(&task(&[(&net, "one", ipam)], &[], &[]), &format!("a{i}")).await.unwrap().unwrap();
        let two = networks.attach(&task(&[(&net, "two", ipam)], &[], &[]), &format!("b{i}")).await.unwrap().unwrap();
        let auto: serde_json::Value =
            serde_json::from_slice(&std::fs::read(f.dir.join(format!("networks/auto/{net}.json"))).unwrap()).unwrap();
        bridge = Some(auto["bridge"].as_str().unwrap().to_owned());
        subnets.insert(auto["subnet"].as_str().unwrap().to_owned());
        assert!(link_exists(bridge.as_deref().unwrap()));
        if i % 25 == 0 {
            assert_eq!(ask(one.nameserver.unwrap(), "two").await, (0, vec![two.address().unwrap()]));
        }
        networks.detach(&format!("a{i}")).await;
        networks.detach(&format!("b{i}")).await;
    }
    let bridge = bridge.unwrap();
    assert!(!link_exists(&bridge), "the bridge {bridge} went with the last container");
    assert_eq!(f.netns_files(), 0, "no namespace is left");
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.join("networks/ipam")).unwrap().flatten().collect();
    assert!(leftovers.is_empty(), "no address allocation is left: {leftovers:?}");
    assert_eq!(subnets, HashSet::from([own_subnet]), "the network kept the subnet asked for");
    for subnet in &subnets {
        assert!(!nat_rules_mention(subnet), "no rule for {subnet} is left");
    }
    assert!(std::fs::read_dir(f.dir.join("networks/auto")).unwrap().next().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_networks_fail_naming_the_network_and_the_cause() {
    if !can_run("bad_networks_fail_naming_the_network_and_the_cause") {
        return;
    }
    let f = Fixture::new("bad");
    let networks = f.networks();
    let pid = std::process::id();
    let first = format!("b{pid}_one");
    let held = networks.attach(&task(&[(&first, "x", &[])], &[], &[]), "held").await.unwrap().unwrap();
    let auto: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.dir.join(format!("networks/auto/{first}.json"))).unwrap()).unwrap();
    let taken = auto["subnet"].as_str().unwrap().to_owned();

    let overlapping = task(&[(&format!("b{pid}_two"), "y", &[("m3s.ipam.subnet", &taken)])], &[], &[]);
    let e = networks.attach(&overlapping, "c2").await.unwrap_err().to_string();
    assert!(e.contains(&format!("network b{pid}_two: subnet {taken} overlaps")), "{e}");

    let external = task(&[("corp-net", "z", &[("m3s.network.external", "true")])], &[], &[]);
    let e = networks.attach(&external, "c3").await.unwrap_err().to_string();
    assert!(e.contains("network corp-net is declared external and does not exist"), "{e}");

    // A pool of two addresses: the gateway and one container.
    let tiny = format!("b{pid}_tiny");
    let small = |id: &str| task(&[(&tiny, id, &[("m3s.ipam.subnet", "10.91.250.0/30")])], &[], &[]);
    let first_small = networks.attach(&small("s1"), "s1").await.unwrap().unwrap();
    let e = networks.attach(&small("s2"), "s2").await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("network {tiny}: CNI plugin \"bridge\"")) && e.contains("no IP addresses available"),
        "{e}"
    );

    // An operator's CNI configuration with a plugin that is not installed.
    std::fs::create_dir_all(f.dir.join("cni")).unwrap();
    std::fs::write(
        f.dir.join("cni/x.conflist"),
        r#"{"cniVersion":"1.0.0","name":"ops","plugins":[{"type":"no-such-plugin"}]}"#,
    )
    .unwrap();
    let e = networks.attach(&task(&[("ops", "o", &[])], &[], &[]), "c4").await.unwrap_err().to_string();
    assert!(e.contains("no-such-plugin") && e.contains("containernetworking-plugins"), "{e}");

    // Nothing of the failed attempts is left; the others still work.
    assert_eq!(f.netns_files(), 2);
    assert_eq!(ask(held.nameserver.unwrap(), "x").await, (0, vec![held.address().unwrap()]));
    for id in ["held", "s1"] {
        networks.detach(id).await;
    }
    let _ = first_small;
    assert_eq!(f.netns_files(), 0);
    assert!(!netns::is_namespace(&held.netns));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_a_kill_during_add_leaves_no_rule_behind() {
    if !can_run("a_restart_after_a_kill_during_add_leaves_no_rule_behind") {
        return;
    }
    let f = Fixture::new("killadd");
    let net = format!("k{}_default", std::process::id());
    // A subnet of this test's own, so that the rules it looks for are its own.
    let own_subnet = format!("10.92.{}.0/24", std::process::id() % 200);
    let ipam: &[(&str, &str)] = &[("m3s.ipam.subnet", &own_subnet)];
    let attached = f.networks().attach(&task(&[(&net, "victim", ipam)], &[], &[]), "victim").await.unwrap().unwrap();
    let address = attached.address().unwrap().to_string();
    assert!(nat_rules_mention(&format!("{address}/32")), "ADD made the masquerade and firewall rules");
    // m3s killed during ADD: the record written ahead has no result yet.
    let record_path = f.dir.join("networks/attachments/victim.json");
    let mut record: serde_json::Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    record["joined"][0]["result"] = serde_json::Value::Null;
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();
    // The restart finds the container gone: DEL undoes every rule, the firewall's included.
    f.networks().recover(&HashSet::new()).await;
    assert!(!nat_rules_mention(&format!("{address}/32")), "a rule for {address} is left");
    assert!(!nat_rules_mention(&own_subnet), "a rule for {own_subnet} is left");
    assert_eq!(f.netns_files(), 0, "no namespace is left");
}
