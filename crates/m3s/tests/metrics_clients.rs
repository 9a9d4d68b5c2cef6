//! The real InfluxDB Python clients (`influxdb` 5.3.2 for v1, `influxdb-client`
//! 1.50.0 for v2, in `.venv/metrics`, made by `scripts/python-env`) write into
//! `m3s metrics serve` and read back exactly: `tests/python/metrics_clients.py`.

mod support;

use std::path::Path;
use std::process::Command;

use support::metrics::{MetricsServer, TOKEN};
use support::tempdir;

#[test]
fn influxdb_v1_and_v2_python_clients_write_and_read_back_exactly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/metrics/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/python-env (scripts/test does) to make the InfluxDB client environment",
        python.display()
    );
    let dir = tempdir("metrics-clients");
    let server = MetricsServer::start(&dir, &["--auth-username", "telegraf", "--auth-password", "pw-123"]);
    let out = Command::new(&python)
        .arg(root.join("tests/python/metrics_clients.py"))
        .args([&format!("http://127.0.0.1:{}", server.port), TOKEN, "telegraf", "pw-123"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "metrics_clients.py failed:\n{stdout}\n{}\n--- m3s log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_tail()
    );
    assert!(stdout.contains("all InfluxDB client checks passed"), "{stdout}");
}

/// One `POST /write` over its own connection: the status, or why there is none
/// (the server was killed before the connection, or while the request was in flight).
fn post_write(port: u16, body: &[u8]) -> Result<u16, &'static str> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|_| "refused")?;
    let in_flight = "in flight: the connection closed without an answer";
    stream.set_read_timeout(Some(support::BOUND)).map_err(|_| in_flight)?;
    let head = format!(
        "POST /write?db=crash&precision=s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).map_err(|_| in_flight)?;
    stream.write_all(body).map_err(|_| in_flight)?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ").and_then(|t| t.get(..3)).and_then(|t| t.parse().ok()).ok_or(in_flight)
}

/// kill -9 of `m3s metrics serve` while two writers stream batches to `/write`
/// (each writer its own series, timestamps increasing): after a restart on the
/// same work dir, every point of every acknowledged (204) batch is there, value
/// for value. Whatever was in flight may or may not be.
#[test]
fn every_acknowledged_write_survives_kill_9_in_mid_stream() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Instant;

    const WRITERS: usize = 2;
    const HOSTS: usize = 10;
    const STEPS: usize = 100; // timestamps per batch, 1 s apart: 1,000 lines a batch
    const MAX_BATCHES: usize = 100; // 10,000 timestamps per series at most
    let line = |w: usize, host: usize, step: usize, base: i64| {
        // A distinct, exactly representable value per point.
        format!("crash{w},host=h{host} v={}.25 {}\n", step * HOSTS + host, base + step as i64)
    };

    let dir = tempdir("metrics-crash");
    let mut server = MetricsServer::start(&dir, &[]);
    let port = server.port;
    let base = (metrics::store::now_ms() / 1000) as i64 - 4 * 3600;
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Vec<AtomicUsize>> = Arc::new((0..WRITERS).map(|_| AtomicUsize::new(0)).collect());
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (stop, acked) = (stop.clone(), acked.clone());
            std::thread::spawn(move || -> (usize, String) {
                for batch in 0..MAX_BATCHES {
                    if stop.load(Ordering::SeqCst) {
                        return (batch, "stopped between batches".into());
                    }
                    let body: String = (batch * STEPS..(batch + 1) * STEPS)
                        .flat_map(|step| (0..HOSTS).map(move |host| (host, step)))
                        .map(|(host, step)| line(w, host, step, base))
                        .collect();
                    match post_write(port, body.as_bytes()) {
                        Ok(204) => acked[w].store(batch + 1, Ordering::SeqCst),
                        Ok(status) => return (batch, format!("batch {batch} answered {status}")),
                        Err(why) => return (batch, format!("batch {batch}: {why}")),
                    }
                }
                (MAX_BATCHES, "wrote every batch before the kill".into())
            })
        })
        .collect();

    // Kill once each writer has some acknowledged batches, while they keep writing.
    let deadline = Instant::now() + support::BOUND;
    while acked.iter().any(|a| a.load(Ordering::SeqCst) < 5) {
        assert!(Instant::now() < deadline, "the writers got no acknowledgements\n{}", server.log_tail());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    let ends: Vec<(usize, String)> = writers.into_iter().map(|t| t.join().unwrap()).collect();
    for (w, (acked_batches, why)) in ends.iter().enumerate() {
        eprintln!("writer {w}: {acked_batches} batches acknowledged; then {why}");
        assert_eq!(*acked_batches, acked[w].load(Ordering::SeqCst));
        assert!(*acked_batches < MAX_BATCHES, "writer {w} finished before the kill: the test proves nothing");
    }

    server.restart(); // the same command on the same work dir
    for (w, (acked_batches, _)) in ends.iter().enumerate() {
        let last_step = acked_batches * STEPS - 1;
        let answer = server.get_json(&format!(
            "/api/v1/query_range?query=crash{w}_v&start={base}&end={}&step=1",
            base + last_step as i64
        ));
        let result = answer["data"]["result"].as_array().expect("a matrix");
        assert_eq!(result.len(), HOSTS, "writer {w}: one series per host");
        for series in result {
            let host: usize = series["metric"]["host"].as_str().unwrap()[1..].parse().unwrap();
            assert_eq!(series["metric"]["__name__"], format!("crash{w}_v"));
            let got: Vec<(i64, f64)> = series["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_f64().unwrap() as i64, p[1].as_str().unwrap().parse().unwrap()))
                .collect();
            let want: Vec<(i64, f64)> =
                (0..=last_step).map(|step| (base + step as i64, (step * HOSTS + host) as f64 + 0.25)).collect();
            if got != want {
                let first_bad = got.iter().zip(&want).position(|(g, w)| g != w);
                panic!(
                    "writer {w}, host h{host}: {} points read back, {} acknowledged; first difference at {first_bad:?}: {:?} vs {:?}\n{}",
                    got.len(),
                    want.len(),
                    first_bad.map(|i| got[i]),
                    first_bad.map(|i| want[i]),
                    server.log_tail()
                );
            }
        }
    }
}
