//! Mesos-DNS's names from a real Mesos 1.11 master's /master/state (the
//! capture in ../shared/reference/mesos-captures, framework `capture` with a
//! running task `sleeper`), and their DNS answers.

use std::net::{IpAddr, Ipv4Addr};

use mesos::legacy::MasterState;
use mini::dns::mesos::MesosNames;
use mini::dns::wire::{Record, TYPE_A, TYPE_SRV};
use mini::dns::{Answer, Resolve};

fn captured_state() -> MasterState {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = [
        manifest.join("../../../shared/reference/mesos-captures"),
        manifest.join("../../shared/reference/mesos-captures"),
    ]
    .into_iter()
    .find(|d| d.is_dir())
    .expect("../shared/reference/mesos-captures beside the repository");
    let text = std::fs::read_to_string(dir.join("13-GET_master_state.txt")).unwrap();
    let body = &text[text.find("\n{").expect("a JSON body") + 1..];
    serde_json::from_str(body.trim()).unwrap()
}

#[test]
fn a_real_masters_running_tasks_get_mesos_dns_names() {
    let state = captured_state();
    let names = MesosNames::from_state(&state, "mesos.");
    let localhost = Ipv4Addr::LOCALHOST;
    let asker = IpAddr::from(localhost);
    assert_eq!(names.hosts["sleeper.capture.mesos"], vec![localhost], "{names:?}");
    assert_eq!(names.hosts["leader.mesos"], vec![localhost]);
    assert_eq!(names.hosts["slave.mesos"], vec![localhost]);
    // Only running tasks: the capture's `failer` had failed.
    assert!(!names.hosts.keys().any(|k| k.starts_with("failer.")), "{names:?}");
    assert_eq!(names.resolve("sleeper.capture.mesos", TYPE_A, asker), Answer::Records(vec![Record::A(localhost)]));
    assert_eq!(names.resolve("nothing.capture.mesos", TYPE_A, asker), Answer::NoSuchName);
    assert_eq!(names.resolve("example.org", TYPE_A, asker), Answer::Forward);
    // The sleeper took no ports: no SRV records, an empty answer for a known name.
    assert_eq!(names.resolve("sleeper.capture.mesos", TYPE_SRV, asker), Answer::Records(vec![]));
}

#[test]
fn tasks_with_ports_get_srv_records_to_their_a_names() {
    let mut state = captured_state();
    let task = &mut state.frameworks[0].tasks[0];
    task.name = "Web_Server".into();
    task.resources.ports = Some("[31000-31001]".into());
    let names = MesosNames::from_state(&state, "mesos");
    let srv = names.resolve("_web-server._tcp.capture.mesos", TYPE_SRV, IpAddr::from(Ipv4Addr::LOCALHOST));
    let target = "web-server.capture.mesos".to_owned();
    assert_eq!(
        srv,
        Answer::Records(vec![
            Record::Srv { priority: 0, weight: 0, port: 31000, target: target.clone() },
            Record::Srv { priority: 0, weight: 0, port: 31001, target: target.clone() },
        ])
    );
    assert!(names.services.contains_key("_web-server._udp.capture.mesos"));
    assert!(names.hosts.contains_key(&target));
}
