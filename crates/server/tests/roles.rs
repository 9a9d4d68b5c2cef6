//! Roles on every route: each router's routes are read from its source, and
//! each is called as a viewer, an operator and an admin (named credentials the
//! admin created through the API). A viewer changes nothing and reads no
//! secret; an operator manages no credentials; a forged token or session gets
//! 401; every refused change is in the audit log.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use framework::driver::Framework;
use framework::store::{Store, StoreConfig};
use mesos::scheduler::SchedulerConfig;
use mesos::v1::FrameworkInfo;
use server::access::Role;
use server::{ApiState, Auth};
use tower::ServiceExt;

const SOURCES: &[(&str, &str)] = &[
    ("api", include_str!("../src/v0.rs")),
    ("api", include_str!("../src/v1.rs")),
    ("api", include_str!("../src/inventory.rs")),
    ("k3s", include_str!("../src/k3s.rs")),
    ("manage", include_str!("../src/manage/mod.rs")),
    ("metrics", include_str!("../src/metrics/mod.rs")),
    ("dashboard", include_str!("../src/dashboard/mod.rs")),
];

/// Routes where anyone may go (no credentials at all).
const PUBLIC: &[&str] = &[
    "/api/compose/versions",
    "/api/m3s/versions",
    "/api/v1/health",
    "/api/v1/openapi.json",
    "/ping",
    "/health",
    "/metrics",
    "/",
    "/ui",
    "/ui/login",
    "/ui/assets/{name}",
    "/api/manage/v1/webhook",
];

/// (router, method, path) of every `.route("path", get(..).post(..))` in the sources.
fn routes() -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    for (router, source) in SOURCES {
        for chunk in source.split(".route(").skip(1) {
            let Some(rest) = chunk.trim_start().strip_prefix('"') else { continue };
            let path = &rest[..rest.find('"').unwrap()];
            let handlers = &rest[path.len()..rest.find(".route(").unwrap_or(rest.len()).min(rest.len())];
            let handlers = handlers.split("\n        .").next().unwrap_or(handlers);
            let mut methods = Vec::new();
            for (word, method) in [("get(", "GET"), ("put(", "PUT"), ("post(", "POST"), ("delete(", "DELETE")] {
                if handlers.contains(word) {
                    methods.push(method);
                }
            }
            if handlers.contains("any(") {
                methods.extend(["GET", "PUT", "DELETE"]);
            }
            for m in methods {
                out.push((*router, m, path.to_owned()));
            }
        }
    }
    out
}

fn concrete(path: &str) -> String {
    path.replace("{project}", "p")
        .replace("{service}", "s")
        .replace("{task}", "t")
        .replace("{name}", "c")
        .replace("{role}", "agent")
        .replace("{volume}", "v")
        .replace("{framework}", "f")
        .replace("{count}", "2")
        .replace("{resource}", "cpus")
        .replace("{value}", "1")
        .replace("{*rest}", "x")
        .replace("{id}", "r1")
        .replace("{stack}", "st")
}

struct Apps {
    api: axum::Router,
    k3s: axum::Router,
    manage: axum::Router,
    metrics: axum::Router,
    dashboard: axum::Router,
}

async fn apps(auth: &Auth) -> Apps {
    let dir = std::env::temp_dir().join(format!("m3s-roles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&StoreConfig::Redb { path: dir.join("framework.redb") }).await.unwrap();
    // No master listens there: the API answers anyway.
    let config = SchedulerConfig::new("127.0.0.1:1", FrameworkInfo { name: "t".into(), ..Default::default() });
    let framework = Framework::start(config, store, "t".into(), Default::default()).await.unwrap();
    let state = ApiState::new(framework, auth.clone(), Default::default());

    let k3s_store = Store::open(&StoreConfig::Redb { path: dir.join("k3s.redb") }).await.unwrap();
    let config = SchedulerConfig::new("127.0.0.1:1", FrameworkInfo { name: "k".into(), ..Default::default() });
    let k3s_framework = Framework::start(config, k3s_store, "k".into(), Default::default()).await.unwrap();
    let files = mesos::files::AgentFiles::new("http://127.0.0.1:1", false, Default::default()).unwrap();
    let settings = k3s::Settings::new(dir.join("data").display().to_string());
    let k3s = k3s::K3s::start(k3s_framework, settings, files, dir.join("k3s")).unwrap();

    let manage = server::manage::Manage::start(
        state.clone(),
        server::manage::ManageConfig {
            url: manage::git::RepoUrl::new(dir.join("no-such-repo").display().to_string()),
            branch: "main".into(),
            dir: String::new(),
            interval: std::time::Duration::from_secs(3600),
            auto_apply: true,
            mirror_dir: dir.join("manage/repo.git"),
            webhook_secret: Some(mesos::secret::Secret::new("hook")),
            repo_auth: Default::default(),
            self_heal: false,
        },
        Some(k3s.clone()),
    )
    .unwrap();

    let samples = metrics::store::Store::open(metrics::store::StoreConfig::new(dir.join("metrics"))).unwrap();
    let metrics_state = server::metrics::MetricsState::new(samples, auth.clone());
    let dashboard = server::dashboard::router(
        state.clone(),
        metrics_state.clone(),
        server::dashboard::DashboardConfig {
            secure: false,
            sign_in_hint: String::new(),
            k3s: Some(k3s.clone()),
            manage: Some(manage.clone()),
        },
    );
    Apps {
        api: server::router(state),
        k3s: server::k3s::router(k3s, auth.clone()),
        manage: server::manage::router(manage, auth.clone()),
        metrics: server::metrics::router(metrics_state),
        dashboard,
    }
}

async fn call(app: &axum::Router, method: &str, uri: &str, authorization: Option<&str>) -> (StatusCode, String) {
    let mut b = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(a) = authorization {
        b = b.header("authorization", a);
    }
    let response = app.clone().oneshot(b.body(Body::from("{}")).unwrap()).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 22).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// What a viewer may do, stated without the server's own table: read, except
/// kubeconfigs and credentials, and the few POSTs that only read.
fn viewer_may(method: &str, path: &str) -> bool {
    let secret = path.ends_with("/kubeconfig") || path == "/api/m3s/v0/server/config" || path.contains("credentials");
    let reading_post = ["/api/v1/query", "/api/v1/query_range", "/api/v1/labels", "/api/v1/series", "/ui/logout"];
    let seed_scale = path == "/api/m3s/v0/{role}/scale/{count}" || path == "/executor/runit/{name}";
    !secret && !seed_scale && (method == "GET" || (method == "POST" && reading_post.contains(&path)))
}

#[tokio::test]
async fn every_route_enforces_its_role() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let auth = Auth::token("admin-token");
    let apps = apps(&auth).await;
    let admin = "Bearer admin-token";
    let mut tokens = std::collections::BTreeMap::new();
    for (name, role) in [("ro", "viewer"), ("ops", "operator"), ("boss", "admin")] {
        let body = format!(r#"{{"name":"{name}","role":"{role}"}}"#);
        let request = Request::builder()
            .method("POST")
            .uri("/api/v1/credentials")
            .header("authorization", admin)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let response = apps.api.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: serde_json::Value =
            serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
        tokens.insert(role, format!("Bearer {}", body["token"].as_str().unwrap()));
    }

    let routes = routes();
    assert!(routes.len() >= 70, "the sources' routes were not all found: {}", routes.len());
    let mut checked = 0;
    for (router, method, path) in &routes {
        let app = match *router {
            "api" => &apps.api,
            "k3s" => &apps.k3s,
            "manage" => &apps.manage,
            "metrics" => &apps.metrics,
            _ => &apps.dashboard,
        };
        let uri = concrete(path);
        if PUBLIC.contains(&path.as_str()) || path == "/ui/login" {
            continue;
        }
        // No credentials, or forged ones: 401 (the dashboard sends pages to sign-in instead).
        for forged in [None, Some("Bearer m3s_forged"), Some("Basic cm86bTNzX2Zvcmdl")] {
            let (status, _) = call(app, method, &uri, forged).await;
            let refused = status == StatusCode::UNAUTHORIZED || (*router == "dashboard" && status.is_redirection());
            assert!(refused, "{method} {path} with {forged:?}: {status}");
        }
        for role in [Role::Viewer, Role::Operator, Role::Admin] {
            let (status, body) = call(app, method, &uri, Some(&tokens[role.as_str()])).await;
            let allowed = match role {
                Role::Viewer => viewer_may(method, path),
                Role::Operator => !path.contains("credentials"),
                Role::Admin => true,
            };
            if allowed {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{method} {path} as {role}: {status} {body}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} as {role}: {body}");
                assert!(body.contains(&format!("is a {role}")), "{body}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 200, "{checked}");

    // Refused changes are audited with who tried; reads are not.
    let (status, body) = call(&apps.api, "GET", "/api/v1/audit?who=ro&limit=2000", Some(&tokens["viewer"])).await;
    assert_eq!(status, StatusCode::OK);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert!(entries.iter().any(|e| e["action"] == "DELETE /api/v1/projects/p" && e["result"] == "403"), "{body}");
    assert!(entries.iter().all(|e| e["action"] != "GET /api/v1/projects"), "{body}");
    let (_, body) = call(&apps.api, "GET", "/api/v1/audit?who=boss&contains=credentials", Some(admin)).await;
    assert!(body.contains("\"result\":\"200\""), "{body}");
}

#[tokio::test]
async fn a_removed_credential_stops_working() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let auth = Auth::token("admin-token");
    let token = auth.credentials().add("ci", Role::Operator, 0).unwrap();
    let app = server::router({
        let dir = std::env::temp_dir().join(format!("m3s-roles-removed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&StoreConfig::Redb { path: dir.join("framework.redb") }).await.unwrap();
        let config = SchedulerConfig::new("127.0.0.1:1", FrameworkInfo { name: "t".into(), ..Default::default() });
        let framework = Framework::start(config, store, "t".into(), Default::default()).await.unwrap();
        ApiState::new(framework, auth.clone(), Default::default())
    });
    let bearer = format!("Bearer {token}");
    assert_eq!(call(&app, "GET", "/api/v1/projects", Some(&bearer)).await.0, StatusCode::OK);
    let (status, body) = call(&app, "DELETE", "/api/v1/credentials/ci", Some(&bearer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an operator cannot remove credentials, even its own: {body}");
    assert_eq!(call(&app, "DELETE", "/api/v1/credentials/ci", Some("Bearer admin-token")).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", "/api/v1/projects", Some(&bearer)).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = call(&app, "POST", "/api/v1/credentials", Some("Bearer admin-token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("name"), "{body}");
}
