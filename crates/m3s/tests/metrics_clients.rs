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
