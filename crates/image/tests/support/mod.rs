//! Test images and a real registry for them: Debian's `docker-registry` (the
//! CNCF distribution) on a loopback port with its storage in the test's
//! directory, and images built here from files (a busybox-static root
//! filesystem for ones that run), pushed over the registry's own API.
//! Nothing comes from the internet.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// `docker-registry` on a free loopback port, killed when dropped.
pub struct Registry {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

impl Registry {
    /// A registry; with `login`, it takes only those credentials (htpasswd, Basic).
    pub fn start(dir: &Path, login: Option<(&str, &str)>) -> Registry {
        let exe = Path::new("/usr/bin/docker-registry");
        assert!(
            exe.exists(),
            "/usr/bin/docker-registry is missing: scripts/test installs Debian's docker-registry package"
        );
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        if let Some((user, password)) = login {
            let hash = Command::new("python3")
                .args([
                    "-W",
                    "ignore",
                    "-c",
                    "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
                    password,
                ])
                .output()
                .expect("python3 for a bcrypt hash");
            let hash = String::from_utf8(hash.stdout).unwrap();
            std::fs::write(dir.join("htpasswd"), format!("{user}:{}\n", hash.trim())).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: m3s-test\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let mut child = Command::new(exe)
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "docker-registry exited with {status}: {}",
                    std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "docker-registry did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Registry { port, dir: dir.to_owned(), child }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

/// One layer, as it goes to the registry.
#[derive(Clone, Debug)]
pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: &'static str,
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
}

pub fn sha256(bytes: &[u8]) -> String {
    image::Digest::of(bytes).to_string()
}

/// What goes in a layer: a file with its mode, a directory, a symlink, or a whiteout.
pub enum Entry<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
}

pub fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        match e {
            Entry::File(path, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, *data).unwrap();
            }
            Entry::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, &[][..]).unwrap();
            }
            Entry::Symlink(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn layer(tar: Vec<u8>, compression: Compression) -> Layer {
    let diff_id = sha256(&tar);
    let (blob, media_type) = match compression {
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&tar).unwrap();
            (gz.finish().unwrap(), "application/vnd.oci.image.layer.v1.tar+gzip")
        }
        Compression::Zstd => (
            ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
        Compression::None => (tar, "application/vnd.oci.image.layer.v1.tar"),
    };
    Layer { blob, media_type, diff_id }
}

/// A runnable root filesystem: busybox-static with its applets, /etc/passwd and /etc/group.
pub fn busybox_layer(compression: Compression) -> Layer {
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox is missing: scripts/test installs Debian's busybox-static package");
    let mut entries = vec![
        Entry::Dir("bin"),
        Entry::File("bin/busybox", &busybox, 0o755),
        Entry::Dir("etc"),
        Entry::File("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n", 0o644),
        Entry::File("etc/group", b"root:x:0:\napp:x:1000:\nstaff:x:50:app\n", 0o644),
        Entry::Dir("tmp"),
        Entry::Dir("home/app"),
    ];
    let applets = [
        "sh", "echo", "cat", "ls", "sleep", "id", "hostname", "env", "pwd", "touch", "test", "mount", "ps", "wget",
        "nc", "true", "false", "grep", "head", "wc", "kill", "date", "mkdir", "rm", "httpd", "printf", "sed",
    ];
    let links: Vec<String> = applets.iter().map(|a| format!("bin/{a}")).collect();
    for l in &links {
        entries.push(Entry::Symlink(l, "busybox"));
    }
    layer(tar(&entries), compression)
}

pub fn config(layers: &[Layer], run: Value) -> Value {
    json!({
        "architecture": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        "os": "linux",
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        // One entry per layer, as real images have: builders (buildah) check that they match.
        "history": layers.iter().map(|_| json!({"created_by": "m3s test support"})).collect::<Vec<_>>(),
    })
}

/// Pushes blobs and a manifest (or an index) over the registry API; returns the manifest's digest.
pub async fn push(
    registry: &str,
    login: Option<(&str, &str)>,
    name: &str,
    tag: &str,
    layers: &[Layer],
    config: &Value,
) -> String {
    let client = http_client();
    let config_bytes = serde_json::to_vec(config).unwrap();
    for blob in layers.iter().map(|l| l.blob.as_slice()).chain([config_bytes.as_slice()]) {
        push_blob(&client, registry, login, name, blob).await;
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config_bytes), "size": config_bytes.len()},
        "layers": layers.iter().map(|l| json!({"mediaType": l.media_type, "digest": sha256(&l.blob), "size": l.blob.len()})).collect::<Vec<_>>(),
    });
    push_manifest(&client, registry, login, name, tag, OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap()).await
}

/// reqwest is built without a TLS provider of its own: install ring's, as m3s does.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub async fn push_blob(client: &reqwest::Client, registry: &str, login: Option<(&str, &str)>, name: &str, blob: &[u8]) {
    let auth = |r: reqwest::RequestBuilder| match login {
        Some((u, p)) => r.basic_auth(u, Some(p)),
        None => r,
    };
    let res = auth(client.post(format!("http://{registry}/v2/{name}/blobs/uploads/"))).send().await.unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let location = if location.starts_with("http") { location } else { format!("http://{registry}{location}") };
    let sep = if location.contains('?') { '&' } else { '?' };
    let res = auth(client.put(format!("{location}{sep}digest={}", sha256(blob))))
        .header("content-type", "application/octet-stream")
        .body(blob.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

pub async fn push_manifest(
    client: &reqwest::Client,
    registry: &str,
    login: Option<(&str, &str)>,
    name: &str,
    tag: &str,
    media_type: &str,
    bytes: &[u8],
) -> String {
    let mut req = client
        .put(format!("http://{registry}/v2/{name}/manifests/{tag}"))
        .header("content-type", media_type)
        .body(bytes.to_vec());
    if let Some((u, p)) = login {
        req = req.basic_auth(u, Some(p));
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    sha256(bytes)
}
