//! The property the `mini_inputs` fuzz target checks, shared with the corpus
//! replay test in crates/mini/tests/fuzz_corpus.rs. The first byte picks the
//! parser: even, the agent resource syntax (`cpus:2;ports:[a-b]`); odd, a
//! scheduler call as JSON, fed to a master with one subscribed framework.
//! Errors are fine; panics are not.

use std::time::{Duration, Instant};

use mesos::v1::FrameworkInfo;
use mesos::v1::scheduler::{Call, Subscribe};
use mini::master::{Clock, Master, MasterConfig};
use mini::resources::Resources;

/// Returns true when the input was accepted (parsed or applied).
pub fn check(data: &[u8]) -> bool {
    let Some((&first, rest)) = data.split_first() else { return false };
    if first % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else { return false };
        return match Resources::parse(text) {
            Ok(r) => {
                // Whatever parses survives its wire form.
                assert_eq!(Resources::from_wire(&r.to_wire(None)).expect("own wire form"), r);
                true
            }
            Err(_) => false,
        };
    }
    let Ok(mut call) = serde_json::from_slice::<Call>(rest) else { return false };
    let clock = Clock { mono: Instant::now(), unix: 1.0e9 };
    let config = MasterConfig {
        master_id: "fuzz".into(),
        hostname: "localhost".into(),
        ip: std::net::Ipv4Addr::LOCALHOST,
        port: 5050,
        resources: Resources::parse("cpus:2;mem:1024;disk:1000;ports:[31000-31010]").expect("static"),
        attributes: Vec::new(),
        version: "1.11.0".into(),
        heartbeat_interval: Duration::from_secs(15),
        seed: 7,
        allowed_users: mini::master::AllowedUsers::Any,
    };
    let mut master = Master::new(config, clock);
    let info = FrameworkInfo { user: "u".into(), name: "fuzz".into(), ..Default::default() };
    let (fid, stream) =
        master.subscribe(clock, None, Subscribe { framework_info: info, ..Default::default() }).expect("valid");
    call.framework_id.get_or_insert(fid);
    let accepted = master.handle_call(clock, Some(&stream), call).is_ok();
    while master.poll_action().is_some() {}
    master.handle_timeout(Clock { mono: clock.mono + Duration::from_secs(3600), unix: clock.unix + 3600.0 });
    accepted
}
