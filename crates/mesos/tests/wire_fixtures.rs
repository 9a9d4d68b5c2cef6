//! Wire fixtures: every call, event and response type the enums know has a
//! canonical JSON fixture under `tests/fixtures/` (written from the .proto files
//! and docs of apache/mesos, with Mesos's explicit defaults present), which
//! must decode to that type and re-encode to the same JSON. The real captures
//! of a Mesos master and agent (`/work/shared/reference/mesos-captures`) must
//! decode too, with the values a client relies on.
//!
//! Fixture files are named `<type in lowercase>.json`, or
//! `<type in lowercase>--<variant>.json` for more examples of one type.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use mesos::legacy;
use mesos::v1::operator::{self, agent};
use mesos::v1::scheduler::{self, CallKind, Event};
use mesos::v1::{self, TaskState, TaskStatusReason, TaskStatusSource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[path = "support/captures.rs"]
mod captures;
use captures::captures_dir;

// ---------------------------------------------------------------- helpers

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The first path at which two JSON values differ, for readable failures.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()).collect::<BTreeSet<_>>() {
                let sub = format!("{path}.{key}");
                match (x.get(key), y.get(key)) {
                    (Some(va), Some(vb)) => {
                        if let Some(d) = first_difference(&sub, va, vb) {
                            return Some(d);
                        }
                    }
                    (Some(va), None) => return Some(format!("{sub}: only in the fixture: {va}")),
                    (None, Some(vb)) => {
                        return Some(format!("{sub}: only in the re-encoding: {vb}"));
                    }
                    (None, None) => unreachable!(),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (va, vb))| first_difference(&format!("{path}[{i}]"), va, vb))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: fixture {a} vs re-encoding {b}")),
    }
}

/// Decodes `text` as `T`, re-encodes it, and checks the result equals `text`
/// as JSON. Returns the decoded value.
fn round_trip<T: DeserializeOwned + Serialize>(what: &str, text: &str) -> T {
    let expected: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
    let decoded: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: does not decode: {e}"));
    let encoded = serde_json::to_value(&decoded).unwrap_or_else(|e| panic!("{what}: does not encode: {e}"));
    if let Some(diff) = first_difference("$", &expected, &encoded) {
        panic!("{what}: does not round-trip: {diff}");
    }
    decoded
}

/// The fixtures of one directory, by file stem, sorted.
fn fixture_files(dir: &str) -> Vec<(String, PathBuf)> {
    let dir = fixtures_dir().join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    files.sort();
    files
}

/// Round-trips every fixture of `dir`, checks each decodes to the type its name
/// says, and that every type in `type_names` has a fixture. Returns the number
/// of fixtures checked.
fn check_tagged_dir<T: DeserializeOwned + Serialize>(
    dir: &str,
    type_names: &[&str],
    type_name: impl Fn(&T) -> String,
) -> usize {
    let files = fixture_files(dir);
    let mut covered = BTreeSet::new();
    for (stem, path) in &files {
        let expected_type = stem.split("--").next().unwrap().to_uppercase();
        assert!(
            type_names.contains(&expected_type.as_str()),
            "{}: no type {expected_type} is known (fixture names are <type>[--<variant>].json)",
            path.display()
        );
        let decoded: T = round_trip(&path.display().to_string(), &read(path));
        let actual = type_name(&decoded);
        assert_eq!(actual, expected_type, "{}: decoded as the wrong type", path.display());
        covered.insert(expected_type);
    }
    let missing: Vec<_> = type_names.iter().filter(|t| !covered.contains(**t)).collect();
    assert!(missing.is_empty(), "fixtures/{dir}: no fixture for {missing:?}");
    files.len()
}

// ---------------------------------------------------------------- canonical fixtures

#[test]
fn scheduler_call_fixtures() {
    let n =
        check_tagged_dir::<scheduler::Call>("scheduler/calls", CallKind::TYPE_NAMES, |c| c.kind.type_name().to_owned());
    assert!(n >= CallKind::TYPE_NAMES.len());
}

#[test]
fn scheduler_event_fixtures() {
    check_tagged_dir::<Event>("scheduler/events", Event::TYPE_NAMES, |e| e.type_name().to_owned());
}

#[test]
fn operator_call_fixtures() {
    check_tagged_dir::<operator::Call>("operator/calls", operator::Call::TYPE_NAMES, |c| c.type_name().to_owned());
}

#[test]
fn operator_response_fixtures() {
    check_tagged_dir::<operator::Response>("operator/responses", operator::Response::TYPE_NAMES, |r| {
        r.type_name().to_owned()
    });
}

#[test]
fn operator_event_fixtures() {
    check_tagged_dir::<operator::Event>("operator/events", operator::Event::TYPE_NAMES, |e| e.type_name().to_owned());
}

#[test]
fn agent_call_fixtures() {
    check_tagged_dir::<agent::Call>("operator/agent_calls", agent::Call::TYPE_NAMES, |c| c.type_name().to_owned());
}

#[test]
fn agent_response_fixtures() {
    check_tagged_dir::<agent::Response>("operator/agent_responses", agent::Response::TYPE_NAMES, |r| {
        r.type_name().to_owned()
    });
}

/// Every legacy fixture, by the endpoint it stands for.
#[test]
fn legacy_fixtures() {
    type Check = fn(&str, &str);
    fn check<T: DeserializeOwned + Serialize>(what: &str, text: &str) {
        round_trip::<T>(what, text);
    }
    let kinds: BTreeMap<&str, Check> = BTreeMap::from([
        ("version", check::<legacy::Version> as Check),
        ("master_state", check::<legacy::MasterState>),
        ("master_frameworks", check::<legacy::Frameworks>),
        ("master_slaves", check::<legacy::Slaves>),
        ("master_tasks", check::<legacy::Tasks>),
        ("metrics_snapshot", check::<legacy::MetricsSnapshot>),
        ("monitor_statistics", check::<legacy::MonitorStatistics>),
        ("flags", check::<legacy::Flags>),
        ("agent_state", check::<legacy::AgentState>),
        ("containers", check::<Vec<legacy::ContainerEntry>>),
        ("files_read", check::<legacy::FileChunk>),
        ("files_browse", check::<legacy::FileListing>),
    ]);
    let mut covered = BTreeSet::new();
    for (stem, path) in fixture_files("legacy") {
        let kind = stem.split("--").next().unwrap().to_owned();
        let check = kinds.get(kind.as_str()).unwrap_or_else(|| panic!("{}: unknown legacy fixture", path.display()));
        check(&path.display().to_string(), &read(&path));
        covered.insert(kind);
    }
    let missing: Vec<_> = kinds.keys().filter(|k| !covered.contains(**k)).collect();
    assert!(missing.is_empty(), "fixtures/legacy: no fixture for {missing:?}");
}

#[test]
fn legacy_fixture_values() {
    let state: legacy::MasterState =
        serde_json::from_str(&read(&fixtures_dir().join("legacy/master_state.json"))).unwrap();
    let slave = &state.slaves[0];
    assert_eq!(slave.attributes["rack"], legacy::AttributeValue::Text("r1".into()));
    assert_eq!(slave.attributes["level"], legacy::AttributeValue::Scalar(2.0));
    assert_eq!(slave.reserved_resources["analytics"].disk, 1024.0);
    assert_eq!(slave.resources.extra["cpus_revocable"], serde_json::json!(1.5));
    assert_eq!(slave.resources.port_ranges(), Some(vec![(31000, 32000)]));
    let fw = &state.frameworks[0];
    assert_eq!(fw.executors[0].kind, Some(v1::ExecutorType::Custom));
    assert_eq!(fw.executors[0].command.shell, Some(true));
    assert_eq!(fw.offers[0].allocation_info.role.as_deref(), Some("capture"));
    // sleeper-1 and web-1 running; failer-1 completed, in both frameworks.
    assert_eq!(state.all_tasks().count(), 4);
    let web = state.all_tasks().find(|t| t.id == "web-1").unwrap();
    assert_eq!(web.limits["mem"], 512.0);
    assert_eq!(web.container.as_ref().unwrap().kind, v1::ContainerType::Docker);

    let agent: legacy::AgentState =
        serde_json::from_str(&read(&fixtures_dir().join("legacy/agent_state.json"))).unwrap();
    assert_eq!(
        agent.frameworks[0].executors[1].queued_tasks[0].command.as_ref().unwrap().value.as_deref(),
        Some("sleep 300")
    );

    let listing: legacy::FileListing =
        serde_json::from_str(&read(&fixtures_dir().join("legacy/files_browse.json"))).unwrap();
    assert!(!listing[0].is_dir());
    assert!(listing[1].is_dir());
    assert_eq!(legacy::parse_ranges("[31000-31005, 31010-31010]"), Some(vec![(31000, 31005), (31010, 31010)]));
    assert_eq!(legacy::parse_ranges("[]"), Some(vec![]));
    assert_eq!(legacy::parse_ranges("31000"), None);
}

// ---------------------------------------------------------------- real captures

/// The request and response bodies of one capture file (`NN-*.txt`).
struct Capture {
    request: Option<String>,
    response: String,
}

fn capture(number: &str) -> Capture {
    let dir = captures_dir();
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{number}-")))
        .unwrap_or_else(|| panic!("no capture {number}-* in {}", dir.display()));
    let text = read(&path);
    let split = text.rfind("\nHTTP ").unwrap_or_else(|| panic!("{}: no response", path.display()));
    let (request, response) = text.split_at(split);
    let response = response.split_once("\n\n").map(|(_, body)| body.trim().to_owned()).unwrap_or_default();
    let request = request.lines().find(|l| l.starts_with('{')).map(str::to_owned);
    Capture { request, response }
}

fn decode<T: DeserializeOwned>(what: &str, text: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: does not decode: {e}"))
}

fn uuid_len(bytes: &Option<v1::Bytes>) -> usize {
    bytes.as_ref().map(|b| b.0.len()).unwrap_or(0)
}

#[test]
fn capture_scheduler_event_stream() {
    let text = read(&captures_dir().join("43-EVENTS-stream.txt"));
    let events: Vec<Event> =
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| decode("43-EVENTS-stream record", l)).collect();
    assert_eq!(events.len(), 16);
    for e in &events {
        assert!(Event::TYPE_NAMES.contains(&e.type_name()), "unknown event {}", e.type_name());
    }

    let Event::Subscribed(sub) = &events[0] else { panic!("first event is {:?}", events[0]) };
    assert_eq!(sub.framework_id.value, "9697a6e2-de23-4c84-8cd3-718e0ababb35-0000");
    assert_eq!(sub.heartbeat_interval_seconds, Some(15.0));
    let master = sub.master_info.as_ref().unwrap();
    assert_eq!((master.ip, master.port), (16777343, 15050));
    assert_eq!(master.pid.as_deref(), Some("master@127.0.0.1:15050"));
    assert_eq!(master.address.as_ref().unwrap().ip.as_deref(), Some("127.0.0.1"));
    assert!(matches!(events[1], Event::Heartbeat));

    let Event::Offers(offers) = &events[2] else { panic!("third event is {:?}", events[2]) };
    let offer = &offers.offers[0];
    assert_eq!(offer.id.value, "9697a6e2-de23-4c84-8cd3-718e0ababb35-O0");
    assert_eq!(offer.allocation_info.as_ref().unwrap().role.as_deref(), Some("capture"));
    assert_eq!(offer.url.as_ref().unwrap().address.port, 15051);
    let cpus = offer.resources.iter().find(|r| r.name == "cpus").unwrap();
    assert_eq!(cpus.scalar.unwrap().value, 2.0);
    let ports = offer.resources.iter().find(|r| r.name == "ports").unwrap();
    assert_eq!(
        (ports.ranges.as_ref().unwrap().range[0].begin, ports.ranges.as_ref().unwrap().range[0].end),
        (31000, 32000)
    );

    let updates: Vec<&v1::TaskStatus> =
        events.iter().filter_map(|e| if let Event::Update(u) = e { Some(&u.status) } else { None }).collect();
    assert_eq!(updates.len(), 12);
    let bad = updates[0];
    assert_eq!((bad.task_id.value.as_str(), &bad.state), ("bad-1", &TaskState::Error));
    assert_eq!(bad.source, Some(TaskStatusSource::Master));
    assert_eq!(bad.reason, Some(TaskStatusReason::TaskInvalid));
    assert!(bad.uuid.is_none());
    for u in updates.iter().filter(|u| u.source == Some(TaskStatusSource::Executor)) {
        assert_eq!(uuid_len(&u.uuid), 16, "executor update of {} without a 16-byte uuid", u.task_id);
        assert!(u.agent_id.is_some());
        assert!(u.container_status.as_ref().unwrap().executor_pid.is_some());
    }
    let healthy = updates.iter().find(|u| u.reason == Some(TaskStatusReason::TaskHealthCheckStatusUpdated)).unwrap();
    assert_eq!(healthy.healthy, Some(true));
    let failed = updates.iter().find(|u| u.state == TaskState::Failed).unwrap();
    assert_eq!(failed.message.as_deref(), Some("Command exited with status 3"));
    let gone = updates.iter().find(|u| u.task_id.value == "nope").unwrap();
    assert_eq!((&gone.state, &gone.reason), (&TaskState::Gone, &Some(TaskStatusReason::Reconciliation)));
    assert_eq!(updates.last().unwrap().state, TaskState::Killed);
    assert!(updates.iter().any(|u| u.state == TaskState::Killing));
}

#[test]
fn capture_scheduler_calls() {
    let subscribe: scheduler::Call = decode("07 request", &capture("07").request.unwrap());
    let CallKind::Subscribe(sub) = &subscribe.kind else { panic!("{subscribe:?}") };
    assert_eq!(sub.framework_info.name, "capture");
    assert_eq!(sub.framework_info.failover_timeout, 60.0);
    assert!(sub.framework_info.has_capability(&v1::FrameworkCapabilityType::MultiRole));
    assert!(subscribe.framework_id.is_none());

    let accept: scheduler::Call = decode("08 request", &capture("08").request.unwrap());
    let CallKind::Accept(accept_body) = &accept.kind else { panic!("{accept:?}") };
    assert_eq!(accept_body.filters.unwrap().refuse_seconds, 1.0);
    let tasks = &accept_body.operations[0].launch.as_ref().unwrap().task_infos;
    assert_eq!(tasks.len(), 3);
    assert!(tasks[0].command.as_ref().unwrap().shell, "shell defaults to true");
    let hc = tasks[0].health_check.as_ref().unwrap();
    assert_eq!(
        (hc.delay_seconds, hc.interval_seconds, hc.timeout_seconds, hc.consecutive_failures),
        (0.0, 1.0, 20.0, 3)
    );
    assert!(tasks[2].command.is_none() && tasks[2].executor.is_none());

    for (n, t) in [("30", "RECONCILE"), ("31", "RECONCILE"), ("32", "KILL"), ("42", "TEARDOWN")] {
        let call: scheduler::Call = decode(&format!("{n} request"), &capture(n).request.unwrap());
        assert_eq!(call.kind.type_name(), t);
        assert_eq!(call.framework_id.unwrap().value, "9697a6e2-de23-4c84-8cd3-718e0ababb35-0000");
    }

    // The capture's invalid uuid ("AAAA") is valid base64 of 3 bytes: the
    // 16-byte check is the master's validation, not the decoder's.
    let ack: scheduler::Call = decode("40 request", &capture("40").request.unwrap());
    let CallKind::Acknowledge(ack) = ack.kind else { panic!() };
    assert_eq!(ack.uuid.0.len(), 3);
}

#[test]
fn capture_operator_calls_round_trip() {
    for n in 20..=29 {
        let request = capture(&n.to_string()).request.unwrap();
        let call: operator::Call = round_trip(&format!("{n} request"), &request);
        assert!(operator::Call::TYPE_NAMES.contains(&call.type_name()));
    }
}

#[test]
fn capture_operator_responses() {
    let health: operator::Response = decode("20", &capture("20").response);
    assert_eq!(health, operator::Response::GetHealth(operator::response::GetHealth { healthy: true }));

    let operator::Response::GetVersion(version) = decode("21", &capture("21").response) else { panic!() };
    assert_eq!(version.version_info.version, "1.12.0");
    assert_eq!(version.version_info.build_time, Some(1795535822.0));

    let operator::Response::GetState(state) = decode("22", &capture("22").response) else { panic!() };
    let tasks = state.get_tasks.as_ref().unwrap();
    assert_eq!(tasks.tasks[0].state, TaskState::Running);
    assert_eq!(tasks.tasks[0].labels.as_ref().unwrap().labels[0].key, "k");
    assert_eq!(tasks.completed_tasks[0].state, TaskState::Failed);
    let frameworks = state.get_frameworks.as_ref().unwrap();
    assert_eq!(frameworks.frameworks[0].framework_info.name, "capture");
    assert_eq!(state.get_agents.as_ref().unwrap().agents[0].pid.as_deref(), Some("slave(1)@127.0.0.1:15051"));
    assert!(state.get_executors.as_ref().unwrap().executors.is_empty());

    let operator::Response::GetAgents(agents) = decode("23", &capture("23").response) else { panic!() };
    let agent = &agents.agents[0];
    assert_eq!(agent.agent_info.id.as_ref().unwrap().value, "9697a6e2-de23-4c84-8cd3-718e0ababb35-S0");
    assert_eq!(agent.agent_info.port, 15051);
    assert_eq!(agent.registered_time.unwrap().nanoseconds, 1795537620611596032);
    assert_eq!(agent.deactivated, Some(false));
    assert!(agent.capabilities.iter().any(|c| c.kind == v1::AgentCapabilityType::TaskResourceLimits));
    assert!(agent.capabilities.iter().all(|c| !matches!(c.kind, v1::AgentCapabilityType::Unknown(_))));
    assert_eq!(agent.total_resources.len(), 4);
    assert!(agents.recovered_agents.is_empty());

    let operator::Response::GetFrameworks(frameworks) = decode("24", &capture("24").response) else { panic!() };
    let fw = &frameworks.frameworks[0];
    assert_eq!(fw.framework_info.roles, vec!["capture".to_owned()]);
    assert!(fw.active && fw.connected && !fw.recovered);
    assert_eq!(fw.offer_constraints, Some(serde_json::json!({})));

    let operator::Response::GetTasks(tasks) = decode("25", &capture("25").response) else { panic!() };
    let sleeper = &tasks.tasks[0];
    assert_eq!(sleeper.name, "sleeper");
    assert_eq!(sleeper.status_update_state, Some(TaskState::Running));
    assert_eq!(uuid_len(&sleeper.status_update_uuid), 16);
    assert_eq!(sleeper.health_check.as_ref().unwrap().interval_seconds, 1.0);
    let failer = &tasks.completed_tasks[0];
    assert_eq!(failer.statuses.last().unwrap().message.as_deref(), Some("Command exited with status 3"));
    assert!(tasks.unreachable_tasks.is_empty());

    let executors: operator::Response = decode("26", &capture("26").response);
    assert_eq!(executors, operator::Response::GetExecutors(Default::default()));

    let operator::Response::GetRoles(roles) = decode("27", &capture("27").response) else { panic!() };
    assert_eq!((roles.roles[0].name.as_str(), roles.roles[0].weight), ("capture", 1.0));
    assert_eq!(roles.roles[0].frameworks[0].value, "9697a6e2-de23-4c84-8cd3-718e0ababb35-0000");

    let operator::Response::GetMaster(master) = decode("28", &capture("28").response) else { panic!() };
    assert_eq!(master.master_info.as_ref().unwrap().port, 15050);
    assert_eq!(master.elected_time, Some(1795537616.764726));

    let operator::Response::GetMetrics(metrics) = decode("29", &capture("29").response) else { panic!() };
    let elected = metrics.metrics.iter().find(|m| m.name == "master/elected").unwrap();
    assert_eq!(elected.value, Some(1.0));
}

/// The legacy endpoints' captured bodies round-trip exactly: every field they
/// show is typed.
#[test]
fn capture_legacy_bodies_round_trip() {
    let version: legacy::Version = round_trip("01", &capture("01").response);
    assert_eq!(version.version, "1.12.0");
    assert!(version.version.split('.').all(|p| p.parse::<u32>().is_ok()));

    for n in ["03", "13", "44"] {
        let state: legacy::MasterState = round_trip(n, &capture(n).response);
        assert_eq!(state.leader.as_deref(), Some("master@127.0.0.1:15050"));
        assert_eq!(state.leader_info.as_ref().unwrap().port, 15050);
        assert_eq!(state.slaves[0].pid, "slave(1)@127.0.0.1:15051");
        assert_eq!(state.slaves[0].resources.ports.as_deref(), Some("[31000-32000]"));
        assert_eq!(state.slaves[0].resources.cpus, 2.0);
        assert!(state.capabilities.contains(&v1::MasterCapabilityType::QuotaV2));
        assert_eq!(state.flags.as_ref().unwrap()["port"], "15050");
    }
    let state: legacy::MasterState = decode("13", &capture("13").response);
    let fw = &state.frameworks[0];
    assert_eq!((fw.name.as_str(), fw.user.as_str(), fw.failover_timeout), ("capture", "root", 60.0));
    assert_eq!(fw.roles.as_deref(), Some(&["capture".to_owned()][..]));
    assert_eq!(fw.tasks[0].state, TaskState::Running);
    assert_eq!(fw.tasks[0].statuses.last().unwrap().healthy, Some(true));
    assert_eq!(fw.completed_tasks[0].state, TaskState::Failed);
    assert_eq!(fw.used_resources.mem, 32.0);

    for n in ["14", "17"] {
        let tasks: legacy::Tasks = round_trip(n, &capture(n).response);
        let sleeper = tasks.tasks.iter().find(|t| t.id == "sleeper-1").unwrap();
        assert_eq!(sleeper.slave_id, "9697a6e2-de23-4c84-8cd3-718e0ababb35-S0");
        assert_eq!(sleeper.executor_id, "");
        assert_eq!(sleeper.latest_status().unwrap().state, TaskState::Running);
        assert_eq!(sleeper.container_id(), Some("2dcaf3fe-ff37-4e3d-9687-fdd5bf32375b"));
        assert_eq!(sleeper.role.as_deref(), Some("capture"));
    }

    let frameworks: legacy::Frameworks = round_trip("15", &capture("15").response);
    let fw = &frameworks.frameworks[0];
    assert_eq!(
        (fw.id.as_str(), fw.active, fw.hostname.as_str(), fw.webui_url.as_str()),
        ("9697a6e2-de23-4c84-8cd3-718e0ababb35-0000", true, "", "")
    );
    assert!(fw.capabilities.contains(&v1::FrameworkCapabilityType::PartitionAware));

    for n in ["16", "18"] {
        let slaves: legacy::Slaves = round_trip(n, &capture(n).response);
        let slave = &slaves.slaves[0];
        assert!(slave.active);
        assert_eq!(slave.hostname, "localhost");
        assert_eq!(
            slave.used_resources_full.as_ref().unwrap()[0].allocation_info.as_ref().unwrap().role.as_deref(),
            Some("capture")
        );
        assert!(slave.capabilities.contains(&v1::AgentCapabilityType::MultiRole));
    }

    for n in ["05", "19"] {
        let metrics: legacy::MetricsSnapshot = round_trip(n, &capture(n).response);
        assert_eq!(metrics.is_elected(), Some(true));
        assert_eq!(metrics.master_cpus_total(), Some(2.0));
        assert_eq!(metrics.master_slaves_active(), Some(1.0));
    }
    let metrics: legacy::MetricsSnapshot = decode("19", &capture("19").response);
    assert_eq!(metrics.master_tasks_running(), Some(1.0));
    assert_eq!(metrics.master_tasks_failed(), Some(1.0));
    assert_eq!(metrics.master_tasks_error(), Some(1.0));
    assert_eq!(metrics.master_frameworks_connected(), Some(1.0));
    assert!(metrics.system_mem_total_bytes().unwrap() > 0.0);

    let agent_metrics: legacy::MetricsSnapshot = round_trip("12", &capture("12").response);
    assert_eq!(agent_metrics.is_registered(), Some(true));
    assert_eq!(agent_metrics.agent_tasks_running(), Some(1.0));
    assert_eq!(agent_metrics.agent_mem_used(), Some(96.0));

    let agent: legacy::AgentState = round_trip("09", &capture("09").response);
    assert_eq!(agent.id, "9697a6e2-de23-4c84-8cd3-718e0ababb35-S0");
    assert_eq!(agent.unreserved_resources_full.len(), 4);
    let fw = &agent.frameworks[0];
    assert_eq!(fw.executors.len(), 2);
    let sleeper = fw.executors.iter().find(|e| e.id == "sleeper-1").unwrap();
    assert_eq!(sleeper.container, "2dcaf3fe-ff37-4e3d-9687-fdd5bf32375b");
    assert_eq!(sleeper.tasks[0].state, TaskState::Running);
    assert!(
        agent
            .executor_directory("9697a6e2-de23-4c84-8cd3-718e0ababb35-0000", "failer-1")
            .unwrap()
            .ends_with("/runs/cad64f29-8279-43d9-bb5f-8ebd6dea77da")
    );

    let stats: legacy::MonitorStatistics = round_trip("10", &capture("10").response);
    assert_eq!(stats.len(), 2);
    let sleeper = stats.iter().find(|e| e.executor_id == "sleeper-1").unwrap();
    assert_eq!(sleeper.statistics.mem_limit_bytes, Some(67108864));
    assert_eq!(sleeper.statistics.cpus_soft_limit, Some(0.2));
    assert_eq!(sleeper.statistics.timestamp, 1795537625.512861);

    for n in ["06", "11"] {
        let flags: legacy::Flags = round_trip(n, &capture(n).response);
        assert!(!flags.flags.is_empty());
    }
}

// ---------------------------------------------------------------- decoding rules

fn unknown_type_name<T: Debug>(value: &T) -> String {
    format!("{value:?}")
}

#[test]
fn unknown_keys_are_ignored() {
    let plain: Event = serde_json::from_str(
        r#"{"type":"UPDATE","update":{"status":{"task_id":{"value":"t"},"state":"TASK_RUNNING"}}}"#,
    )
    .unwrap();
    let noisy: Event = serde_json::from_str(
        r#"{"type":"UPDATE","extra":1,"update":{"status":{"task_id":{"value":"t","x":[]},"state":"TASK_RUNNING",
            "brand_new_field":{"a":1}},"more":"yes"}}"#,
    )
    .unwrap();
    assert_eq!(plain, noisy);

    let call: operator::Call =
        serde_json::from_str(r#"{"type":"TEARDOWN","teardown":{"framework_id":{"value":"f"}},"unused":{}}"#).unwrap();
    assert_eq!(call, operator::Call::teardown(v1::FrameworkId::new("f")));

    let state: legacy::Tasks = serde_json::from_str(
        r#"{"tasks":[{"id":"t","new":true,"state":"TASK_RUNNING","resources":{"cpus":1.0,"gpus":0,"mem":2,"disk":0}}]}"#,
    )
    .unwrap();
    assert_eq!(state.tasks[0].resources.mem, 2.0);
}

#[test]
fn unknown_enum_values_are_kept() {
    let status: v1::TaskStatus = serde_json::from_str(
        r#"{"task_id":{"value":"t"},"state":"TASK_TELEPORTED","reason":"REASON_COSMIC_RAY","source":"SOURCE_MASTER"}"#,
    )
    .unwrap();
    assert_eq!(status.state, TaskState::Unknown("TASK_TELEPORTED".into()));
    assert_eq!(status.reason, Some(TaskStatusReason::Unknown("REASON_COSMIC_RAY".into())));
    let encoded = serde_json::to_value(&status).unwrap();
    assert_eq!(encoded["state"], "TASK_TELEPORTED");
    assert_eq!(encoded["reason"], "REASON_COSMIC_RAY");

    let cap: v1::AgentCapability = serde_json::from_str(r#"{"type":"WARP_DRIVE"}"#).unwrap();
    assert_eq!(cap.kind, v1::AgentCapabilityType::Unknown("WARP_DRIVE".into()));
}

#[test]
fn unknown_message_types_decode_to_unknown() {
    let call: scheduler::Call =
        serde_json::from_str(r#"{"type":"TELEPORT","framework_id":{"value":"f"},"teleport":{"to":"mars"}}"#).unwrap();
    assert_eq!(call.kind, CallKind::Unknown { type_name: "TELEPORT".into() });
    assert_eq!(call.framework_id.as_ref().unwrap().value, "f");
    assert_eq!(
        serde_json::to_value(&call).unwrap(),
        serde_json::json!({"type":"TELEPORT","framework_id":{"value":"f"}})
    );

    let event: Event = serde_json::from_str(r#"{"type":"SOLAR_FLARE","solar_flare":{}}"#).unwrap();
    assert_eq!(event, Event::Unknown { type_name: "SOLAR_FLARE".into() });

    let call: operator::Call = serde_json::from_str(r#"{"type":"GET_FUTURE"}"#).unwrap();
    assert_eq!(call, operator::Call::Unknown { type_name: "GET_FUTURE".into() });
    let response: operator::Response = serde_json::from_str(r#"{"type":"GET_FUTURE","get_future":{"x":1}}"#).unwrap();
    assert_eq!(response.type_name(), "GET_FUTURE");
    assert!(unknown_type_name(&response).starts_with("Unknown"));
    let event: operator::Event = serde_json::from_str(r#"{"type":"ROLE_ADDED","role_added":{}}"#).unwrap();
    assert_eq!(event, operator::Event::Unknown { type_name: "ROLE_ADDED".into() });
    let call: agent::Call = serde_json::from_str(r#"{"type":"GET_GPUS"}"#).unwrap();
    assert_eq!(call, agent::Call::Unknown { type_name: "GET_GPUS".into() });
    let response: agent::Response = serde_json::from_str(r#"{"type":"GET_GPUS","get_gpus":{}}"#).unwrap();
    assert_eq!(response, agent::Response::Unknown { type_name: "GET_GPUS".into() });
}

#[test]
fn numbers_as_strings_and_infinity() {
    let call: scheduler::Call = serde_json::from_str(
        r#"{"type":"DECLINE","framework_id":{"value":"f"},"decline":{"offer_ids":[{"value":"o"}],
            "filters":{"refuse_seconds":"10"}}}"#,
    )
    .unwrap();
    let CallKind::Decline(decline) = call.kind else { panic!() };
    assert_eq!(decline.filters.unwrap().refuse_seconds, 10.0);

    let task: v1::TaskInfo = serde_json::from_str(
        r#"{"name":"t","task_id":{"value":"t"},"agent_id":{"value":"a"},
            "resources":[{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":"31000","end":"31001"}]}},
                         {"name":"cpus","type":"SCALAR","scalar":{"value":"0.5"}}],
            "limits":{"cpus":{"value":"Infinity"},"mem":{"value":"512"}}}"#,
    )
    .unwrap();
    assert_eq!(task.resources[0].ranges.as_ref().unwrap().range[0].begin, 31000);
    assert_eq!(task.resources[1].scalar.unwrap().value, 0.5);
    assert_eq!(task.limits["cpus"].value, f64::INFINITY);
    assert_eq!(task.limits["mem"].value, 512.0);

    let event: Event = serde_json::from_str(
        r#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"f"},"heartbeat_interval_seconds":"15"}}"#,
    )
    .unwrap();
    let Event::Subscribed(sub) = event else { panic!() };
    assert_eq!(sub.heartbeat_interval_seconds, Some(15.0));

    let call: operator::Call =
        serde_json::from_str(r#"{"type":"READ_FILE","read_file":{"path":"/x","offset":"1024","length":"16"}}"#)
            .unwrap();
    let operator::Call::ReadFile(read) = call else { panic!() };
    assert_eq!((read.offset, read.length), (1024, Some(16)));

    let stats: v1::ResourceStatistics =
        serde_json::from_str(r#"{"timestamp":"1795537625.5","mem_rss_bytes":"4096","cpus_limit":"Infinity"}"#).unwrap();
    assert_eq!(
        (stats.timestamp, stats.mem_rss_bytes, stats.cpus_limit),
        (1795537625.5, Some(4096), Some(f64::INFINITY))
    );

    let resources: legacy::LegacyResources =
        serde_json::from_str(r#"{"cpus":"1.5","gpus":0,"mem":"128","disk":0,"ports":"[31000-31001]","net":"{a,b}"}"#)
            .unwrap();
    assert_eq!((resources.cpus, resources.mem), (1.5, 128.0));
    assert_eq!(resources.extra["net"], "{a,b}");
}

#[test]
fn missing_body_is_an_error_naming_the_field() {
    fn error_of<T: DeserializeOwned>(text: &str) -> String {
        match serde_json::from_str::<T>(text) {
            Ok(_) => panic!("{text}: decoded although its body is missing"),
            Err(e) => e.to_string(),
        }
    }
    type ErrorOf = fn(&str) -> String;
    let cases: [(&str, ErrorOf, &str); 6] = [
        (r#"{"type":"ACCEPT","framework_id":{"value":"f"}}"#, error_of::<scheduler::Call>, "`accept`"),
        (r#"{"type":"UPDATE"}"#, error_of::<Event>, "`update`"),
        (r#"{"type":"GET_METRICS"}"#, error_of::<operator::Call>, "`get_metrics`"),
        (r#"{"type":"GET_STATE"}"#, error_of::<operator::Response>, "`get_state`"),
        (r#"{"type":"TASK_UPDATED","task_added":{}}"#, error_of::<operator::Event>, "`task_updated`"),
        (r#"{"type":"WAIT_CONTAINER"}"#, error_of::<agent::Call>, "`wait_container`"),
    ];
    for (text, error_of, field) in cases {
        let err = error_of(text);
        assert!(err.contains(field), "{text}: error {err:?} does not name {field}");
    }

    // Bodies that may be left out decode to their default.
    let revive: scheduler::Call = serde_json::from_str(r#"{"type":"REVIVE","framework_id":{"value":"f"}}"#).unwrap();
    assert_eq!(revive.kind, CallKind::Revive(Default::default()));
    let containers: agent::Call = serde_json::from_str(r#"{"type":"GET_CONTAINERS"}"#).unwrap();
    assert_eq!(containers, agent::Call::GetContainers(Default::default()));

    // GET_METRICS is written with its (empty) body: a real master requires it.
    assert_eq!(
        serde_json::to_value(operator::Call::get_metrics()).unwrap(),
        serde_json::json!({"type": "GET_METRICS", "get_metrics": {}})
    );

    let err = serde_json::from_str::<operator::Call>(r#"{"get_health":{}}"#).unwrap_err().to_string();
    assert!(err.contains("`type`"), "{err}");
}

#[test]
fn base64_uuid_decodes_to_16_bytes() {
    let call: scheduler::Call = serde_json::from_str(
        r#"{"type":"ACKNOWLEDGE","framework_id":{"value":"f"},"acknowledge":{"agent_id":{"value":"a"},
            "task_id":{"value":"t"},"uuid":"XrMttV5mR5W1NzVpRpPpJw=="}}"#,
    )
    .unwrap();
    let CallKind::Acknowledge(ack) = &call.kind else { panic!() };
    assert_eq!(ack.uuid.0.len(), 16);
    assert_eq!(ack.uuid.0[..4], [0x5e, 0xb3, 0x2d, 0xb5]);
    assert_eq!(serde_json::to_value(&call).unwrap()["acknowledge"]["uuid"], "XrMttV5mR5W1NzVpRpPpJw==");

    let err = serde_json::from_str::<v1::TaskStatus>(
        r#"{"task_id":{"value":"t"},"state":"TASK_RUNNING","uuid":"not base64!"}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("base64"), "{err}");

    let op: v1::TrackedOperation = serde_json::from_str(r#"{"uuid":{"value":"oA3VhgbtTl6g5Oj7cZtdxg=="}}"#).unwrap();
    assert_eq!(op.uuid.value.0.len(), 16);
}
