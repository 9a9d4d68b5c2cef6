//! The OpenAPI document and the router agree: every documented path and verb is
//! served (not the router's 404 or 405), and every v1 route in the source is documented.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use framework::driver::Framework;
use framework::store::{Store, StoreConfig};
use mesos::scheduler::SchedulerConfig;
use mesos::v1::FrameworkInfo;
use server::{ApiState, Auth, router};
use tower::ServiceExt;

const OPENAPI: &str = include_str!("../src/openapi.json");
const V1_SOURCE: &str = include_str!("../src/v1.rs");
const K3S_SOURCE: &str = include_str!("../src/k3s.rs");

async fn app(name: &str) -> axum::Router {
    let dir = std::env::temp_dir().join(format!("m3s-openapi-{name}-{}", std::process::id()));
    let store = Store::open(&StoreConfig::Redb { path: dir.join("framework.redb") }).await.unwrap();
    // No master listens there: the API must answer anyway.
    let config = SchedulerConfig::new("127.0.0.1:1", FrameworkInfo { name: "t".into(), ..Default::default() });
    let framework = Framework::start(config, store, "t".into(), Default::default()).await.unwrap();
    router(ApiState::new(framework, Auth::token("tok"), Default::default()))
}

/// The K3s framework's API, on a framework whose master does not answer.
async fn k3s_app(name: &str) -> axum::Router {
    let dir = std::env::temp_dir().join(format!("m3s-openapi-k3s-{name}-{}", std::process::id()));
    let store = Store::open(&StoreConfig::Redb { path: dir.join("k3s.redb") }).await.unwrap();
    let config = SchedulerConfig::new("127.0.0.1:1", FrameworkInfo { name: "k".into(), ..Default::default() });
    let framework = Framework::start(config, store, "k".into(), Default::default()).await.unwrap();
    let files = mesos::files::AgentFiles::new("http://127.0.0.1:1", false, Default::default()).unwrap();
    let settings = k3s::Settings::new(dir.join("data").display().to_string());
    let k3s = k3s::K3s::start(framework, settings, files, dir.join("k3s")).unwrap();
    server::k3s::router(k3s, Auth::token("tok"))
}

fn documented() -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    assert_eq!(doc["openapi"], "3.0.3");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete"] {
            if item.get(method).is_some() {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = app("served").await;
    let k3s = k3s_app("served").await;
    for (method, path) in documented() {
        let app = if path.starts_with("/api/k3s/") { &k3s } else { &app };
        let concrete = path
            .replace("{project}", "p")
            .replace("{service}", "s")
            .replace("{task}", "t")
            .replace("{name}", "c")
            .replace("{role}", "agent");
        let request = Request::builder()
            .method(method.as_str())
            .uri(&concrete)
            .header("authorization", "Bearer tok")
            .body(Body::from("{}"))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not routed");
        // The router's own 404 has no body; a handler's 404 says what is missing.
        assert!(status != StatusCode::NOT_FOUND || !body.is_empty(), "{method} {path} is documented but not routed");
    }
}

#[tokio::test]
async fn every_routed_v1_path_is_documented() {
    let documented: Vec<String> = documented().into_iter().map(|(_, p)| p).collect();
    let route = |source: &'static str| -> Vec<&'static str> {
        source.split(".route(\"").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]).collect()
    };
    let mut routed = route(V1_SOURCE);
    assert!(routed.len() >= 10, "{routed:?}");
    let k3s_v1: Vec<&str> = route(K3S_SOURCE).into_iter().filter(|p| p.starts_with("/api/k3s/v1/")).collect();
    assert!(k3s_v1.len() >= 10, "{k3s_v1:?}");
    routed.extend(k3s_v1);
    for path in routed {
        assert!(documented.iter().any(|d| d == path), "{path} is routed but not in openapi.json");
    }
}

#[tokio::test]
async fn requests_without_credentials_are_refused_except_health_and_the_description() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = app("auth").await;
    let get = |uri: &str, auth: Option<&str>| {
        let mut b = Request::builder().uri(uri);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(Body::empty()).unwrap()
    };
    let status = |r: axum::response::Response| r.status();
    assert_eq!(status(app.clone().oneshot(get("/api/v1/projects", None)).await.unwrap()), StatusCode::UNAUTHORIZED);
    let refused = app.clone().oneshot(get("/api/v1/projects", Some("Bearer nope"))).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get("www-authenticate").is_some());
    assert_eq!(
        status(app.clone().oneshot(get("/api/compose/v0/tasks", None)).await.unwrap()),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status(app.clone().oneshot(get("/api/v1/projects", Some("Bearer tok"))).await.unwrap()), StatusCode::OK);
    for open in ["/api/v1/health", "/api/v1/openapi.json", "/api/compose/versions"] {
        assert_eq!(status(app.clone().oneshot(get(open, None)).await.unwrap()), StatusCode::OK, "{open}");
    }
}
