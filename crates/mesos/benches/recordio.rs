//! RecordIO framing + event decoding versus plain `serde_json` decoding of the
//! same payloads, in one run.
//!
//! Run: `cargo bench -p mesos --bench recordio`
//!
//! The payloads are a realistic scheduler stream: OFFERS with four resources,
//! UPDATEs with container status, and HEARTBEATs. "framed" feeds the RecordIO
//! stream to the decoder in 16 KiB pieces (the size of typical HTTP chunks)
//! and decodes each record into `Event`; "plain" decodes the same payloads
//! straight from memory. The ratio framed/plain is the cost of framing.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mesos::recordio::{Decoder, encode};
use mesos::v1::scheduler::Event;
use serde_json::json;

const EVENTS: usize = 20_000;
const CHUNK: usize = 16 * 1024;
const ROUNDS: usize = 15;

fn payloads() -> Vec<Vec<u8>> {
    (0..EVENTS)
        .map(|i| {
            let v = match i % 10 {
                0 => json!({"type": "HEARTBEAT"}),
                1..=4 => json!({"type": "OFFERS", "offers": {"offers": [{
                    "id": {"value": format!("9697a6e2-de23-4c84-8cd3-718e0ababb35-O{i}")},
                    "framework_id": {"value": "9697a6e2-de23-4c84-8cd3-718e0ababb35-0000"},
                    "agent_id": {"value": "9697a6e2-de23-4c84-8cd3-718e0ababb35-S0"},
                    "hostname": "node-1.example.org",
                    "url": {"scheme": "http", "address": {"hostname": "node-1", "ip": "10.0.0.1", "port": 5051}, "path": "/slave(1)"},
                    "resources": [
                        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 32000}]}, "role": "*", "allocation_info": {"role": "m3s"}},
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}, "role": "*", "allocation_info": {"role": "m3s"}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": 8192.0}, "role": "*", "allocation_info": {"role": "m3s"}},
                        {"name": "disk", "type": "SCALAR", "scalar": {"value": 20000.0}, "role": "*", "allocation_info": {"role": "m3s"}}
                    ],
                    "allocation_info": {"role": "m3s"}
                }]}}),
                _ => json!({"type": "UPDATE", "update": {"status": {
                    "task_id": {"value": format!("web.{i}")},
                    "state": "TASK_RUNNING",
                    "source": "SOURCE_EXECUTOR",
                    "agent_id": {"value": "9697a6e2-de23-4c84-8cd3-718e0ababb35-S0"},
                    "executor_id": {"value": format!("web.{i}")},
                    "timestamp": 1795537625.283514,
                    "uuid": "mBgbRzHxRtKqJkWg5sUW9Q==",
                    "container_status": {"container_id": {"value": "2dcaf3fe-ff37-4e3d-9687-fdd5bf32375b"},
                        "network_infos": [{"ip_addresses": [{"protocol": "IPv4", "ip_address": "127.0.0.1"}]}],
                        "executor_pid": 28673}
                }}}),
            };
            serde_json::to_vec(&v).unwrap()
        })
        .collect()
}

fn plain(payloads: &[Vec<u8>]) -> usize {
    let mut n = 0;
    for p in payloads {
        let e: Event = serde_json::from_slice(p).unwrap();
        black_box(&e);
        n += 1;
    }
    n
}

fn framed(stream: &[u8]) -> usize {
    let mut decoder = Decoder::default();
    let mut n = 0;
    for chunk in stream.chunks(CHUNK) {
        decoder.feed(chunk);
        while let Some(record) = decoder.next_record().unwrap() {
            let e: Event = serde_json::from_slice(&record).unwrap();
            black_box(&e);
            n += 1;
        }
    }
    decoder.finish().unwrap();
    n
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let payloads = payloads();
    let payload_bytes: usize = payloads.iter().map(Vec::len).sum();
    let mut stream = BytesMut::new();
    for p in &payloads {
        encode(p, &mut stream);
    }
    let stream = stream.freeze();

    // Interleave the two so that machine noise hits both alike.
    let (mut t_plain, mut t_framed) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        assert_eq!(plain(&payloads), EVENTS);
        t_plain.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(framed(&stream), EVENTS);
        t_framed.push(t.elapsed());
    }
    let (p, f) = (median(t_plain), median(t_framed));
    let mb = payload_bytes as f64 / 1e6;
    println!("{EVENTS} events, {:.2} MB of JSON ({} bytes framed), median of {ROUNDS} rounds", mb, stream.len());
    println!("{:<28} {:>10} {:>12} {:>14}", "", "time", "MB/s", "events/s");
    for (name, d) in [("plain serde_json", p), ("RecordIO framing + decode", f)] {
        let s = d.as_secs_f64();
        println!("{name:<28} {:>8.2}ms {:>12.1} {:>14.0}", s * 1e3, mb / s, EVENTS as f64 / s);
    }
    let ratio = f.as_secs_f64() / p.as_secs_f64();
    println!("ratio framed/plain: {ratio:.3} (framing costs {:+.1}%)", (ratio - 1.0) * 100.0);
}
