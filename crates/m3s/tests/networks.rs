//! A multi-service image project on `m3s up`, as docker compose runs it:
//! each service on the project's networks, found by name (service, alias,
//! `<service>.<project>`, the replica's container name), replicas answered
//! round-robin, names scoped to the networks a service shares, a port
//! published on the host's loopback, and the same after kill -9 of m3s.
//! Images are made here from busybox-static (examples/containers/make-image);
//! all traffic stays in the bridges and namespaces the project makes, and
//! names the DNS servers do not know go to a closed port on loopback.

mod support;

use std::path::Path;
use std::time::Duration;

use support::eventually;
use support::tempdir;
use support::up::{Up, live_tasks, service, state};

fn get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The busybox image, loaded into the store of `work` (no registry).
fn load_image(dir: &Path, work: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let archive = dir.join("busybox.tar");
    let out = std::process::Command::new(root.join("examples/containers/make-image")).arg(&archive).output().unwrap();
    assert!(out.status.success(), "make-image: {}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["images", "--work-dir", work.to_str().unwrap(), "load", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn bridges_of(work: &Path) -> Vec<String> {
    std::fs::read_dir(work.join("mini/networks/auto"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            Some(v["bridge"].as_str()?.to_owned())
        })
        .collect()
}

const SERVE: &str = "exec httpd -f -p 80 -h /tmp";

#[test]
fn services_find_each_other_by_name_and_publish_ports_like_docker_compose() {
    let dir = tempdir("net-project");
    let work = dir.join("up");
    load_image(&dir, &work);
    let published = support::free_port();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let health = r#"{test: [CMD, wget, -q, -O, /dev/null, "http://127.0.0.1/"], interval: 1s, retries: 30}"#;
    let compose = format!(
        r#"name: nt
x-image: &image
  image: example/busybox:1
  pull_policy: never
services:
  web:
    <<: *image
    command: ["sh", "-c", "echo web > /tmp/index.html; {SERVE}"]
    ports: ["127.0.0.1:{published}:80"]
    networks:
      front: {{aliases: [www]}}
    healthcheck: {health}
  api:
    <<: *image
    deploy: {{replicas: 2}}
    command: ["sh", "-c", "hostname -i > /tmp/index.html; {SERVE}"]
    networks: [front, back]
    healthcheck: {health}
  db:
    <<: *image
    command: ["sh", "-c", "echo db > /tmp/index.html; {SERVE}"]
    networks: [back]
    healthcheck: {health}
  probe:
    <<: *image
    restart: "no"
    networks: [front]
    depends_on:
      web: {{condition: service_healthy}}
      api: {{condition: service_healthy}}
      db: {{condition: service_healthy}}
    command:
      - sh
      - -c
      - |
        for n in web www web.nt nt-web-1; do echo "$$n=$$(wget -q -O - http://$$n/)"; done
        for i in 1 2; do echo "round $$i: $$(nslookup api | grep -A9 'Name:' | grep 'Address' | tr -d ' ' | tr '\n' ' ')"; done
        wget -q -O - http://db/ || echo db-unreachable
        cat /etc/resolv.conf
    # (busybox-static's wget crashes with -T: its timeouts are the network's)
networks:
  front: {{}}
  back: {{internal: true}}
"#
    );
    let file = dir.join("compose.yaml");
    std::fs::write(&file, compose).unwrap();
    let clash = format!(
        "name: clash\nservices:\n  c:\n    image: example/busybox:1\n    pull_policy: never\n    restart: 'no'\n    command: [sleep, '60']\n    ports: ['127.0.0.1:{taken_port}:80']\n"
    );
    let clash_file = dir.join("clash.yaml");
    std::fs::write(&clash_file, clash).unwrap();
    let resources =
        format!("cpus:8;mem:16384;disk:10000;ports:[31000-31999,{published}-{published},{taken_port}-{taken_port}]");
    let mut up = Up::start(&work, &["-f", file.to_str().unwrap(), "--resources", &resources]);
    let view = up.wait_project("nt", "every service up and the probe done", |v| {
        state(v, "web") == "healthy"
            && state(v, "db") == "healthy"
            && state(v, "api") == "healthy"
            && state(v, "probe") == "completed"
    });
    let probe = up.compose_ok(&["-p", "nt", "logs", "probe"]);
    for name in ["web", "www", "web.nt", "nt-web-1"] {
        assert!(probe.contains(&format!("{name}=web")), "{name} resolves to web: {probe}");
    }
    // Two replicas of api, both answered for its name, first in turn.
    let rounds: Vec<Vec<&str>> = probe
        .lines()
        .filter_map(|l| l.split_once("round ")?.1.split_once(": ").map(|(_, r)| r.split_whitespace().collect()))
        .collect();
    assert_eq!(rounds.len(), 2, "{probe}");
    assert_eq!(rounds[0].len(), 2, "both api replicas answer: {probe}");
    assert_ne!(rounds[0][0], rounds[1][0], "round-robin: {probe}");
    // db is on the back network only: its name means nothing on the front one.
    assert!(probe.contains("db-unreachable"), "{probe}");
    assert!(probe.contains("nameserver 10."), "the network's DNS server: {probe}");
    assert_eq!(live_tasks(&view, "api").len(), 2);
    // The published port, from the host's loopback.
    assert!(get(published).is_some_and(|r| r.contains("web")), "127.0.0.1:{published} serves web");

    // A published port a host process holds fails the service, naming both.
    let out = up.compose(&["-f", clash_file.to_str().unwrap(), "up"]);
    let said = String::from_utf8_lossy(&out.stderr);
    let me = std::process::id();
    let why = format!("host port 127.0.0.1:{taken_port}/tcp is already in use by pid {me}");
    assert!(!out.status.success() && said.contains(&why), "{said}");
    let view = up.wait_project("clash", "the clash to fail", |v| state(v, "c") == "failed");
    assert!(service(&view, "c").to_string().contains(&why));
    drop(taken);

    // kill -9 of m3s: containers keep their addresses and names; the DNS
    // servers and held ports come back with m3s.
    up.restart();
    up.wait_project("nt", "healthy again", |v| state(v, "web") == "healthy" && state(v, "db") == "healthy");
    let w = work.to_str().unwrap();
    let db = up.compose_ok(&["--work-dir", w, "-p", "nt", "exec", "-T", "api", "wget", "-q", "-O", "-", "http://db/"]);
    assert_eq!(db, "db\n");
    // api is on both networks: web, on the other one, resolves for it too.
    let web =
        up.compose_ok(&["--work-dir", w, "-p", "nt", "exec", "-T", "api", "wget", "-q", "-O", "-", "http://web/"]);
    assert_eq!(web, "web\n");
    assert!(get(published).is_some_and(|r| r.contains("web")));
    assert!(std::net::TcpListener::bind(("127.0.0.1", published)).is_err(), "m3s holds the published port again");

    // down: the networks, namespaces and rules go with the containers.
    let bridges = bridges_of(&work);
    assert_eq!(bridges.len(), 2, "front and back: {bridges:?}");
    up.compose_ok(&["-p", "nt", "down"]);
    up.compose_ok(&["-p", "clash", "down"]);
    eventually("the networks to go", || bridges_of(&work).is_empty());
    for b in &bridges {
        assert!(!Path::new("/sys/class/net").join(b).exists(), "bridge {b} removed");
    }
    let rules = std::process::Command::new("iptables-save").output().unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(!rules.contains("\"nt_front\"") && !rules.contains("\"nt_back\""), "no rule names the networks");
    assert!(std::net::TcpListener::bind(("127.0.0.1", published)).is_ok(), "the published port is free again");
}
