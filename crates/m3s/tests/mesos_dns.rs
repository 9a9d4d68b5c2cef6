//! `m3s dns` beside a master (here `m3s up`'s embedded one, which answers
//! /master/state as Mesos 1.11 does): Mesos-DNS's A and SRV names for the
//! running tasks, over UDP and its REST lookups, following tasks as they come
//! and go.

mod support;

use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mini::dns::wire;
use support::tempdir;
use support::up::{Up, state};

struct Dns(Child);

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ask(port: u16, name: &str, qtype: u16) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    socket.send_to(&wire::query(1, name, qtype), ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 1500];
    let len = socket.recv(&mut buf).expect("an answer");
    buf[..len].to_vec()
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn tasks_of_a_master_resolve_as_mesos_dns_names_them() {
    let dir = tempdir("mesos-dns");
    let file = dir.join("compose.yaml");
    std::fs::write(&file, "name: md\nservices:\n  web:\n    command: sleep 300\n    ports: ['8080']\n").unwrap();
    let up = Up::start(&dir.join("up"), &["-f", file.to_str().unwrap()]);
    up.wait_project("md", "web running", |v| state(v, "web") == "running");
    let (dns_port, http_port) = (support::free_port(), support::free_port());
    let master = format!("127.0.0.1:{}", up.mesos_port);
    let _dns = Dns(Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["dns", "--master", &master, "--refresh", "0.2", "--dns-forward", "127.0.0.1:9"])
        .args(["--bind", &format!("127.0.0.1:{dns_port}"), "--http-bind", &format!("127.0.0.1:{http_port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let a = |name: &str| wire::parse_a_answers(&ask(dns_port, name, wire::TYPE_A)).unwrap();
    eventually("the task's A record", || {
        std::net::TcpStream::connect(("127.0.0.1", http_port)).is_ok() && a("md-web.m3s.mesos").1.len() == 1
    });
    assert_eq!(a("md-web.m3s.mesos"), (0, vec![Ipv4Addr::LOCALHOST]), "the agent's address");
    assert_eq!(a("leader.mesos"), (0, vec![Ipv4Addr::LOCALHOST]));
    assert_eq!(a("nothing.m3s.mesos").0, wire::RCODE_NXDOMAIN);
    // The SRV record carries the port the task was given.
    let srv = ask(dns_port, "_md-web._tcp.m3s.mesos", wire::TYPE_SRV);
    assert_eq!(srv[3] & 0xf, 0);
    assert_eq!(u16::from_be_bytes([srv[6], srv[7]]), 1, "one SRV answer");
    let (_, body) = support::up::http("GET", http_port, "/v1/services/_md-web._tcp.m3s.mesos", None);
    let services: serde_json::Value = serde_json::from_str(&body).unwrap();
    let port: u16 = services[0]["port"].as_str().unwrap().parse().unwrap();
    assert!((31000..32000).contains(&port), "{services}");
    assert_eq!(services[0]["host"], "md-web.m3s.mesos.");
    let (_, body) = support::up::http("GET", http_port, "/v1/hosts/md-web.m3s.mesos", None);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()[0]["ip"], "127.0.0.1");

    // The task goes: its names go at the next refresh.
    up.compose_ok(&["-p", "md", "down"]);
    eventually("the name to go", || a("md-web.m3s.mesos").0 == wire::RCODE_NXDOMAIN);
}
