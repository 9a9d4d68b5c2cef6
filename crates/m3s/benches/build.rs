//! Builds through m3s against buildah run directly (and `docker build`, where a
//! Docker daemon answers): the same Dockerfile, no cache, alternating runs.
//! m3s delegates to buildah, so the ratio should be about 1.0; what m3s adds
//! is loading the image into its store (shown apart).
//!
//! `cargo bench -p m3s --bench build` (root, buildah installed).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "shared/procs.rs"]
#[allow(dead_code)]
mod procs;

const RUNS: usize = 5;

fn timed(command: &mut Command) -> Duration {
    let start = Instant::now();
    let out = command.output().expect("spawn");
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    procs::percentile(&v, 0.5)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if Command::new("buildah").arg("--version").output().is_err() || unsafe { libc::geteuid() } != 0 {
        eprintln!("build benchmark SKIPPED: needs buildah (Debian package) and root");
        return;
    }
    let dir = std::env::temp_dir().join(format!("m3s-bench-build-{}", std::process::id()));
    let project = dir.join("project");
    std::fs::create_dir_all(project.join("app")).unwrap();
    let tools = Path::new("/bin/busybox").canonicalize().unwrap().parent().unwrap().to_owned();
    std::fs::write(
        project.join("app/Dockerfile"),
        "FROM scratch\nCOPY --from=tools busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         RUN mkdir -p /data && dd if=/dev/urandom of=/data/blob bs=1M count=16 2>/dev/null && md5sum /data/blob > /data/sum\n\
         COPY site /site\nCMD [\"sh\"]\n",
    )
    .unwrap();
    std::fs::create_dir_all(project.join("app/site")).unwrap();
    for i in 0..200 {
        std::fs::write(project.join(format!("app/site/page{i}.html")), format!("<p>page {i}</p>\n").repeat(50))
            .unwrap();
    }
    std::fs::write(
        project.join("compose.yaml"),
        format!("name: benchbuild\nservices:\n  app:\n    build:\n      context: ./app\n      additional_contexts:\n        tools: {}\n", tools.display()),
    )
    .unwrap();
    let work = dir.join("work");
    let compose = project.join("compose.yaml");
    let mut runc = Vec::new();
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        runc = vec!["--runtime".to_owned(), "runc".to_owned()];
    }
    let docker = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());

    let (mut m3s, mut buildah, mut dockers) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        m3s.push(timed(
            Command::new(env!("CARGO_BIN_EXE_m3s"))
                .args(["compose", "-f"])
                .arg(&compose)
                .args(["build", "--no-cache", "--work-dir"])
                .arg(&work),
        ));
        buildah.push(timed(
            Command::new("buildah")
                .args(["build", "--layers", "--no-cache", "-q", "--pull=false"])
                .args(&runc)
                .arg(format!("--build-context=tools={}", tools.display()))
                .args(["-t", "localhost/m3s-bench-direct"])
                .arg(project.join("app")),
        ));
        if docker {
            dockers.push(timed(
                Command::new("docker")
                    .args(["build", "-q", "--no-cache", "--build-context"])
                    .arg(format!("tools={}", tools.display()))
                    .args(["-t", "m3s-bench-direct"])
                    .arg(project.join("app")),
            ));
        }
    }
    let (m, b) = (median(m3s), median(buildah));
    println!("build of the same Dockerfile, no cache, median of {RUNS}:");
    println!("  m3s compose build (buildah + load into m3s's store): {:>8.0} ms", m.as_secs_f64() * 1000.0);
    println!("  buildah build directly:                             {:>8.0} ms", b.as_secs_f64() * 1000.0);
    println!("  ratio m3s / buildah: {:.2}", m.as_secs_f64() / b.as_secs_f64());
    if docker {
        let d = median(dockers);
        println!("  docker build directly:                              {:>8.0} ms", d.as_secs_f64() * 1000.0);
        println!("  ratio m3s / docker: {:.2}", m.as_secs_f64() / d.as_secs_f64());
    } else {
        println!("  docker build: SKIPPED (no Docker daemon answers)");
    }
    for name in ["localhost/m3s-bench-direct", "docker.io/library/benchbuild-app:latest"] {
        let _ = Command::new("buildah").args(["rmi", "-f", name]).output();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
