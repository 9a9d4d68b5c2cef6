//! The Kubernetes client against the k3s test double (tests/k3s-double/k3s, a
//! stand-in for k3s, which cannot be installed here): kubeconfig, client
//! certificate, nodes with their labels, cordon, a rejected agent token.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k3s::kube::{Kube, rewrite_server};

fn double() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/k3s-double/k3s")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reads_nodes_and_cordons_through_the_kubeconfig() {
    let dir = tempdir();
    let port = free_port();
    let server = Killed(
        Command::new(double())
            .args(["server", "--https-port", &port.to_string(), "--data-dir", "data"])
            .args(["--write-kubeconfig", "kubeconfig.yaml", "--write-kubeconfig-mode", "0600"])
            .args(["--node-name", "srv", "--node-label", "m3s.aventer.biz/taskid=srv", "--tls-san", "localhost"])
            .env("K3S_TOKEN", "right-token")
            .current_dir(&dir)
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the k3s double"),
    );
    let kubeconfig = dir.join("kubeconfig.yaml");
    wait_for("the kubeconfig", || kubeconfig.exists());
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&kubeconfig).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let text = rewrite_server(&text, &format!("https://localhost:{port}")).unwrap();
    let kube = Kube::from_kubeconfig(&text).unwrap();
    assert_eq!(kube.version().await.unwrap().git_version, "v1.31.5+k3s1");

    let url = format!("https://127.0.0.1:{port}");
    let agent = |token: &str, name: &str| {
        Command::new(double())
            .args(["agent", "--node-name", name, "--node-label", &format!("m3s.aventer.biz/taskid={name}")])
            .env("K3S_URL", &url)
            .env("K3S_TOKEN", token)
            .current_dir(&dir)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let bad = agent("wrong-token", "intruder").wait_with_output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("token is not valid"));
    let _good = Killed(agent("right-token", "worker"));

    let mut nodes = Vec::new();
    for _ in 0..100 {
        nodes = kube.nodes().await.unwrap();
        if nodes.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let worker = nodes.iter().find(|n| n.name == "worker").expect("the agent's node");
    assert!(worker.ready && !worker.unschedulable);
    assert_eq!(worker.labels["m3s.aventer.biz/taskid"], "worker");
    assert!(!nodes.iter().any(|n| n.name == "intruder"), "a wrong token joins nothing");

    kube.set_unschedulable("worker", true).await.unwrap();
    let nodes = kube.nodes().await.unwrap();
    assert!(nodes.iter().find(|n| n.name == "worker").unwrap().unschedulable);
    assert_eq!(kube.evict_pods("worker").await.unwrap(), 0);
    let err = kube.set_unschedulable("nobody", true).await.unwrap_err().to_string();
    assert!(err.contains("404"), "{err}");

    // Without the client certificate the API refuses.
    let anonymous = text.replace("client-key-data", "x-client-key-data");
    let err = Kube::from_kubeconfig(&anonymous).unwrap().nodes().await.unwrap_err().to_string();
    assert!(err.contains("401"), "{err}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("m3s-k3s-kube-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
