//! Pulls from a real registry (Debian's docker-registry on loopback) into the
//! store: compressions, shared layers, indexes, logins and failures. The
//! bearer-token flow and a corrupt layer come from a protocol test double
//! (a few axum routes), since the real registry serves neither.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use image::auth::Credentials;
use image::store::{PullEvent, Store};
use image::{ClientConfig, PullError, Reference, RegistryClient, RegistryError};
use serde_json::json;
use support::{Compression, Entry, Registry, busybox_layer, config, layer, push, tar};

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("m3s-image-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn client(credentials: Credentials) -> RegistryClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = mesos_like_tls();
    RegistryClient::new(ClientConfig {
        tls,
        credentials,
        insecure_registries: Vec::new(),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(30),
    })
    .unwrap()
}

fn mesos_like_tls() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

fn events() -> (Arc<Mutex<Vec<PullEvent>>>, impl Fn(PullEvent) + Send + Sync) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (seen, move |e| sink.lock().unwrap().push(e))
}

fn nothing(_: PullEvent) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_of_every_compression_land_once_and_whiteouts_stay() {
    let dir = tempdir("compressions");
    let registry = Registry::start(&dir.join("registry"), None);
    let base = busybox_layer(Compression::Gzip);
    let app = layer(
        tar(&[Entry::File("app/run.sh", b"echo app\n", 0o755), Entry::File("tmp/.wh.gone", b"", 0o644)]),
        Compression::Zstd,
    );
    let data = layer(
        tar(&[Entry::File("data/x", b"plain\n", 0o644), Entry::File("etc/.wh..wh..opq", b"", 0o644)]),
        Compression::None,
    );
    let layers = vec![base.clone(), app, data];
    let cfg = config(&layers, json!({"Cmd": ["/app/run.sh"], "Env": ["A=1"], "User": "app"}));
    push(&registry.host(), None, "team/app", "v1", &layers, &cfg).await;
    let other = vec![base.clone()];
    push(&registry.host(), None, "team/other", "latest", &other, &config(&other, json!({}))).await;

    let store = Store::open(&dir.join("store")).unwrap();
    let client = client(Credentials::default());
    let r: Reference = format!("{}/team/app:v1", registry.host()).parse().unwrap();
    let (seen, sink) = events();
    let img = store.pull(&client, &r, &sink).await.unwrap();
    assert_eq!(img.layers.len(), 3);
    assert_eq!(img.config.config.user.as_deref(), Some("app"));
    assert!(seen.lock().unwrap().iter().any(|e| matches!(e, PullEvent::Progress { .. })));
    let dirs: Vec<_> = img.layers.iter().map(|l| store.layer_dir(l)).collect();
    assert!(dirs[0].join("bin/busybox").is_file());
    assert_eq!(std::fs::read_to_string(dirs[1].join("app/run.sh")).unwrap(), "echo app\n");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(dirs[1].join("tmp/gone")).unwrap().file_type().is_char_device());
    assert_eq!(std::fs::read_to_string(dirs[2].join("data/x")).unwrap(), "plain\n");
    assert_eq!(store.get(&r), Some(img.clone()), "the record reads back");

    // The shared base layer is not fetched again; a second pull of the same image fetches nothing.
    let r2: Reference = format!("{}/team/other", registry.host()).parse().unwrap();
    let (seen, sink) = events();
    store.pull(&client, &r2, &sink).await.unwrap();
    assert!(matches!(seen.lock().unwrap().as_slice(), [PullEvent::Resolved { .. }, PullEvent::Present { .. }]));
    assert_eq!(std::fs::read_dir(store.root().join("layers/sha256")).unwrap().count(), 3);
    assert_eq!(std::fs::read_dir(store.root().join("layers/tmp")).unwrap().count(), 0);
    assert_eq!(store.list().unwrap().len(), 2);

    // Pruning keeps what is kept or in use, and only that.
    let keep: HashSet<String> = [r2.to_string()].into();
    let pruned = store.prune(&keep, &HashSet::new()).unwrap();
    assert_eq!((pruned.images.len(), pruned.layers), (1, 2), "{pruned:?}");
    assert!(store.get(&r2).is_some() && store.get(&r).is_none());
    let pruned = store.prune(&HashSet::new(), &[base_diff(&base)].into()).unwrap();
    assert_eq!(pruned.layers, 0, "a layer in use stays");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn base_diff(l: &support::Layer) -> image::Digest {
    l.diff_id.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_gives_the_manifest_of_this_platform() {
    let dir = tempdir("index");
    let registry = Registry::start(&dir.join("registry"), None);
    let host = registry.host();
    let mine = vec![layer(tar(&[Entry::File("which", b"mine\n", 0o644)]), Compression::Gzip)];
    let theirs = vec![layer(tar(&[Entry::File("which", b"theirs\n", 0o644)]), Compression::Gzip)];
    let mine_digest = push(&host, None, "multi", "mine", &mine, &config(&mine, json!({}))).await;
    let theirs_digest = push(&host, None, "multi", "theirs", &theirs, &config(&theirs, json!({}))).await;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let other_arch = if arch == "s390x" { "ppc64le" } else { "s390x" };
    let index = json!({"schemaVersion": 2, "mediaType": support::OCI_INDEX, "manifests": [
        {"mediaType": support::OCI_MANIFEST, "digest": theirs_digest, "size": 100, "platform": {"architecture": other_arch, "os": "linux"}},
        {"mediaType": support::OCI_MANIFEST, "digest": mine_digest, "size": 100, "platform": {"architecture": arch, "os": "linux"}},
    ]});
    support::push_manifest(
        &support::http_client(),
        &host,
        None,
        "multi",
        "latest",
        support::OCI_INDEX,
        &serde_json::to_vec(&index).unwrap(),
    )
    .await;
    let store = Store::open(&dir.join("store")).unwrap();
    let r: Reference = format!("{host}/multi").parse().unwrap();
    let img = store.pull(&client(Credentials::default()), &r, &nothing).await.unwrap();
    assert_eq!(img.manifest.to_string(), mine_digest);
    assert_eq!(std::fs::read_to_string(store.layer_dir(&img.layers[0]).join("which")).unwrap(), "mine\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_with_a_login_takes_the_docker_configs_credentials() {
    let dir = tempdir("login");
    let registry = Registry::start(&dir.join("registry"), Some(("alice", "pa55")));
    let host = registry.host();
    let layers = vec![layer(tar(&[Entry::File("f", b"x", 0o644)]), Compression::Gzip)];
    push(&host, Some(("alice", "pa55")), "private", "1", &layers, &config(&layers, json!({}))).await;
    let store = Store::open(&dir.join("store")).unwrap();
    let r: Reference = format!("{host}/private:1").parse().unwrap();
    let anonymous = store.pull(&client(Credentials::default()), &r, &nothing).await.unwrap_err();
    assert!(
        matches!(&anonymous, PullError::Registry(RegistryError::Unauthorized { had_login: false, .. })),
        "{anonymous}"
    );
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let wrong =
        Credentials::parse(&format!(r#"{{"auths": {{"{host}": {{"auth": "{}"}}}}}}"#, b64("alice:nope"))).unwrap();
    let err = store.pull(&client(wrong), &r, &nothing).await.unwrap_err();
    assert!(matches!(&err, PullError::Registry(RegistryError::Unauthorized { had_login: true, .. })), "{err}");
    let path = dir.join("config.json");
    std::fs::write(&path, format!(r#"{{"auths": {{"http://{host}": {{"auth": "{}"}}}}}}"#, b64("alice:pa55"))).unwrap();
    let right = Credentials::from_docker_config(&path).unwrap();
    store.pull(&client(right), &r, &nothing).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_images_and_absent_registries_are_named() {
    let dir = tempdir("missing");
    let registry = Registry::start(&dir.join("registry"), None);
    let store = Store::open(&dir.join("store")).unwrap();
    let client = client(Credentials::default());
    let r: Reference = format!("{}/nothing:here", registry.host()).parse().unwrap();
    let err = store.pull(&client, &r, &nothing).await.unwrap_err();
    assert!(matches!(&err, PullError::Registry(RegistryError::NotFound { .. })), "{err}");
    assert!(err.to_string().contains("nothing:here"), "{err}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r: Reference = format!("127.0.0.1:{closed}/x").parse().unwrap();
    let err = store.pull(&client, &r, &nothing).await.unwrap_err();
    assert!(matches!(&err, PullError::Registry(RegistryError::Unreachable { .. })), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{closed}")), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The protocol test double: a registry that wants a bearer token from its
/// token endpoint (Docker Hub's flow), and serves one image whose layer is
/// corrupt when asked to.
mod double {
    use axum::Router;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;

    #[derive(Clone)]
    pub struct Served {
        pub manifest: Vec<u8>,
        pub config: Vec<u8>,
        pub config_digest: String,
        pub layer: Vec<u8>,
        pub port: u16,
    }

    pub async fn start(mut served: Served) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        served.port = listener.local_addr().unwrap().port();
        let port = served.port;
        let app = Router::new()
            .route("/token", get(token))
            .route("/v2/{repo}/manifests/{r}", get(manifest))
            .route("/v2/{repo}/blobs/{d}", get(blob))
            .with_state(served);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        port
    }

    /// The 401 with the challenge, unless the request has the token.
    fn refusal(h: &HeaderMap, port: u16) -> Option<Response> {
        if h.get("authorization").is_some_and(|v| v == "Bearer t0k3n") {
            return None;
        }
        let challenge =
            format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="double",scope="repository:app:pull""#);
        Some((StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)]).into_response())
    }

    async fn token(headers: HeaderMap) -> Response {
        // Anonymous tokens, as Docker Hub gives for public images.
        assert!(headers.get("authorization").is_none());
        axum::Json(serde_json::json!({"token": "t0k3n"})).into_response()
    }

    async fn manifest(State(s): State<Served>, headers: HeaderMap, Path((_, _)): Path<(String, String)>) -> Response {
        if let Some(r) = refusal(&headers, s.port) {
            return r;
        }
        ([("content-type", super::support::OCI_MANIFEST)], s.manifest).into_response()
    }

    async fn blob(State(s): State<Served>, headers: HeaderMap, Path((_, d)): Path<(String, String)>) -> Response {
        if let Some(r) = refusal(&headers, s.port) {
            return r;
        }
        if d == s.config_digest { s.config.into_response() } else { s.layer.into_response() }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_is_fetched_and_a_corrupt_layer_is_never_used() {
    let dir = tempdir("bearer");
    let good = layer(tar(&[Entry::File("f", b"good", 0o644)]), Compression::Gzip);
    let cfg = serde_json::to_vec(&config(std::slice::from_ref(&good), json!({}))).unwrap();
    let manifest = |l: &support::Layer| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": support::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": support::sha256(&cfg), "size": cfg.len()},
            "layers": [{"mediaType": l.media_type, "digest": support::sha256(&l.blob), "size": l.blob.len()}],
        }))
        .unwrap()
    };
    let served = double::Served {
        manifest: manifest(&good),
        config: cfg.clone(),
        config_digest: support::sha256(&cfg),
        layer: good.blob.clone(),
        port: 0,
    };
    let store = Store::open(&dir.join("store")).unwrap();
    let client = client(Credentials::default());
    let port = double::start(served.clone()).await;
    let r: Reference = format!("127.0.0.1:{port}/app").parse().unwrap();
    store.pull(&client, &r, &nothing).await.unwrap();

    // The same manifest, but the registry sends other bytes for the layer.
    let mut corrupt = good.blob.clone();
    let last = corrupt.len() - 9;
    corrupt[last] ^= 0xff;
    let other = tempdir("bearer-store-2");
    let store = Store::open(&other).unwrap();
    let port = double::start(double::Served { layer: corrupt, ..served }).await;
    let r: Reference = format!("127.0.0.1:{port}/app").parse().unwrap();
    let err = store.pull(&client, &r, &nothing).await.unwrap_err();
    assert!(matches!(err, PullError::Digest { .. } | PullError::Unpack { .. }), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}/app")), "{err}");
    assert_eq!(std::fs::read_dir(other.join("layers/sha256")).unwrap().count(), 0, "nothing unverified is kept");
    assert_eq!(std::fs::read_dir(other.join("layers/tmp")).unwrap().count(), 0);
    assert!(store.get(&r).is_none());
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
}
