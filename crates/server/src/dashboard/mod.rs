//! The dashboard: server-rendered pages under `/ui/`, with htmx for forms and
//! partial refreshes and uPlot for charts (both vendored in `assets/`, served
//! from the binary). Pages read the same state the APIs do: the framework's
//! engine, the master's `/master/state`, the agents' sandboxes and the
//! M3trics store. Charts and log tails fetch the JSON APIs from the page.
//!
//! Authentication is the API's. A browser signs in once at `/ui/login` with
//! the token (or the Basic credentials) and gets a signed session cookie
//! (`session.rs`); reads accept it, changes also need the page's CSRF token.

mod anomalies;
mod assets;
mod cluster;
mod html;
mod k3s;
mod manage;
mod metrics_pages;
mod range;
mod sources;
mod stacks;
mod tasks;
mod widgets;

/// Bytes as people read them (`1.5 GiB`), for the CLI as for the pages.
pub use html::bytes as format_bytes;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::metrics::{MetricsState, blocking};
use crate::{ApiState, Auth, session};

/// What every dashboard handler gets.
#[derive(Clone)]
pub struct Dashboard {
    api: ApiState,
    metrics: MetricsState,
    /// Served over HTTPS: session cookies are marked Secure.
    secure: bool,
    sign_in_hint: Arc<str>,
    /// The K3s framework, where it runs (`--k3s`).
    k3s: Option<::k3s::K3s>,
    /// The management role, where it runs (`--manage-repo`).
    manage: Option<crate::manage::Manage>,
}

/// Set by `require_session` for the handlers: the token the page's forms send back.
#[derive(Clone)]
struct Csrf(String);

/// How the dashboard is served.
#[derive(Clone, Debug, Default)]
pub struct DashboardConfig {
    /// Served over HTTPS: session cookies are `Secure`.
    pub secure: bool,
    /// Where the credentials are, for the sign-in page (e.g. "bearer token in /var/lib/m3s/api-token").
    pub sign_in_hint: String,
    /// The K3s framework, for its page.
    pub k3s: Option<::k3s::K3s>,
    /// The management role, for its page.
    pub manage: Option<crate::manage::Manage>,
}

pub fn router(api: ApiState, metrics: MetricsState, config: DashboardConfig) -> Router {
    let state = Dashboard {
        api,
        metrics,
        secure: config.secure,
        sign_in_hint: Arc::from(config.sign_in_hint),
        k3s: config.k3s,
        manage: config.manage,
    };
    let pages = Router::new()
        .route("/ui/", get(cluster::overview))
        .route("/ui/nodes", get(cluster::nodes))
        .route("/ui/stacks", get(stacks::page).post(stacks::deploy))
        .route("/ui/stacks/{project}/remove", post(stacks::remove))
        .route("/ui/stacks/{project}/{service}", get(stacks::service))
        .route("/ui/stacks/{project}/{service}/scale", post(stacks::scale))
        .route("/ui/stacks/{project}/{service}/restart", post(stacks::restart))
        .route("/ui/tasks", get(tasks::list))
        .route("/ui/tasks/{framework}/{task}", get(tasks::detail))
        .route("/ui/tasks/{framework}/{task}/file", get(tasks::file))
        .route("/ui/tasks/{framework}/{task}/read", get(tasks::read))
        .route("/ui/k3s", get(k3s::list))
        .route("/ui/k3s/{name}/kubeconfig", get(k3s::kubeconfig))
        .route("/ui/manage", get(manage::page))
        .route("/ui/manage/runs/{id}", get(manage::run))
        .route("/ui/audit", get(manage::audit))
        .route("/ui/anomalies", get(anomalies::page))
        .route("/ui/metrics", get(metrics_pages::metrics))
        .route("/ui/report", get(metrics_pages::report))
        .route("/ui/errors", get(metrics_pages::errors))
        .route("/ui/logout", post(logout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_session));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/assets/{name}", get(assets::serve))
        .merge(pages)
        .layer(axum::middleware::from_fn(crate::error::answer_panics))
        .with_state(state)
}

impl Dashboard {
    fn auth(&self) -> &Auth {
        &self.api.inner.auth
    }
}

fn is_open(auth: &Auth) -> bool {
    auth.is_open()
}

/// Pages need a session (or API credentials, for scripts); changes also need
/// the session's CSRF token in `X-CSRF-Token` or a `csrf` form field checked
/// by the handler. Unauthenticated page loads go to the sign-in page.
async fn require_session(State(state): State<Dashboard>, mut request: Request, next: Next) -> Response {
    let auth = state.auth().clone();
    let signed_in = if let Some((session, principal)) = auth.session(request.headers()) {
        let expected = auth.csrf_token(session);
        let safe = request.method() == Method::GET || request.method() == Method::HEAD;
        let sent = request.headers().get("x-csrf-token").and_then(|v| v.to_str().ok());
        // The logout form posts without script, so its token arrives in the body (checked there).
        let logout = request.uri().path() == "/ui/logout";
        if !safe
            && !logout
            && !sent.is_some_and(|s| mesos::transport::constant_time_eq(s.as_bytes(), expected.as_bytes()))
        {
            return (
                StatusCode::FORBIDDEN,
                html::notice("bad", "The form's CSRF token is missing or stale: reload the page."),
            )
                .into_response();
        }
        Some((principal, expected))
    } else {
        // A script with the API's credentials (or an open API): no cookie involved, nothing to forge.
        auth.principal(request.headers()).map(|p| (p, String::new()))
    };
    let Some((principal, csrf)) = signed_in else {
        if request.headers().contains_key("hx-request") || request.method() != Method::GET {
            let mut r = (StatusCode::UNAUTHORIZED, html::notice("bad", "Signed out: reload the page.")).into_response();
            r.headers_mut().insert("HX-Redirect", "/ui/login".parse().expect("static header"));
            return r;
        }
        let next = request.uri().path_and_query().map_or("/ui/", |p| p.as_str());
        return Redirect::to(&format!("/ui/login?next={}", html::Url(next))).into_response();
    };
    request.extensions_mut().insert(Csrf(csrf));
    // htmx swaps in only 2xx answers: a form's refusal is shown where its outcome goes.
    let status = if is_htmx(request.headers()) { StatusCode::OK } else { StatusCode::FORBIDDEN };
    let refuse = move |why: String| (status, html::notice("bad", &why)).into_response();
    auth.authorize(principal, "dashboard", request, next, refuse).await
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Only the dashboard's own pages are places to go back to (no open redirect).
fn safe_next(next: &str) -> &str {
    // A control character would make the Location header invalid (a 500 from
    // the redirect): such a `next` is refused like any other unsafe one.
    let plain = !next.contains('\\') && !next.chars().any(char::is_control);
    if next.starts_with("/ui/") && !next.starts_with("/ui//") && plain { next } else { "/ui/" }
}

fn login_form(auth: &Auth, hint: &str, next: &str, error: Option<&str>) -> Html<String> {
    let (token, basic) = auth.accepts();
    let mut body = String::new();
    if let Some(e) = error {
        body.push_str(&html::notice("bad", e));
    }
    body.push_str(r##"<form method="post" action="/ui/login" class="login">"##);
    body.push_str(&format!(r##"<input type="hidden" name="next" value="{}">"##, html::Esc(safe_next(next))));
    if token {
        body.push_str(
            r##"<p><label for="token">API token</label><input id="token" name="token" type="password" autocomplete="current-password" autofocus>"##,
        );
        if !hint.is_empty() {
            body.push_str(&format!("<small>This m3s accepts the {}.</small>", html::Esc(hint)));
        }
        body.push_str("</p>");
    }
    if basic {
        if token {
            body.push_str("<p>or</p>");
        }
        body.push_str(
            r##"<p><label for="username">User name</label><input id="username" name="username" autocomplete="username"></p>
<p><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password"></p>"##,
        );
    }
    body.push_str(r##"<p><button type="submit">Sign in</button></p></form>"##);
    html::page(&html::Shell { nav: html::Nav::Overview, title: "Sign in", csrf: "", charts: false }, &body)
}

async fn login_page(State(state): State<Dashboard>, Query(q): Query<LoginQuery>) -> Response {
    if is_open(state.auth()) {
        return Redirect::to(safe_next(&q.next)).into_response();
    }
    login_form(state.auth(), &state.sign_in_hint, &q.next, None).into_response()
}

async fn login(State(state): State<Dashboard>, Form(form): Form<LoginForm>) -> Response {
    let auth = state.auth();
    let who = if !form.token.is_empty() {
        auth.principal_of_token(&form.token)
    } else if !form.username.is_empty() {
        auth.principal_of_credentials(&form.username, &form.password)
    } else {
        None
    };
    let Some(session) = who.and_then(|p| auth.new_session(&p)) else {
        if is_open(auth) {
            return Redirect::to(safe_next(&form.next)).into_response();
        }
        // Slows guessing; tokens are long, but passwords may not be.
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        tracing::warn!("dashboard sign-in refused");
        let mut r =
            login_form(auth, &state.sign_in_hint, &form.next, Some("Wrong token or credentials.")).into_response();
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return r;
    };
    let mut r = Redirect::to(safe_next(&form.next)).into_response();
    r.headers_mut().insert(header::SET_COOKIE, session::set_cookie(&session, state.secure).parse().expect("cookie"));
    r
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<Dashboard>,
    axum::Extension(Csrf(expected)): axum::Extension<Csrf>,
    Form(form): Form<LogoutForm>,
) -> Response {
    if !mesos::transport::constant_time_eq(form.csrf.as_bytes(), expected.as_bytes()) {
        return (StatusCode::FORBIDDEN, html::notice("bad", "Stale form: reload the page.")).into_response();
    }
    let mut r = Redirect::to("/ui/login").into_response();
    if !is_open(state.auth()) {
        r.headers_mut().insert(header::SET_COOKIE, session::clear_cookie().parse().expect("cookie"));
    }
    r
}

/// Whether the request came from htmx (a fragment is wanted, not a page).
fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// The dashboard's parsers on arbitrary input, for the `dashboard_inputs` fuzz
/// target and its corpus replay: a query string as the pages read it (date
/// range, sandbox path), and a cookie. Never a panic; a range that parses is
/// ordered; a confined path climbs nowhere; escaped text has no markup left; a
/// forged cookie is refused. Not for use by the product.
#[doc(hidden)]
pub fn check_inputs(data: &[u8]) {
    let query: std::collections::HashMap<String, String> = form_urlencoded::parse(data).into_owned().collect();
    match range::Range::from_query(&query, "1h") {
        Ok(r) => assert!(r.start_ms < r.end_ms, "{r:?}"),
        Err(e) => {
            assert!(e.to_string().contains(':') || e.to_string().starts_with("range="), "an error names its field: {e}")
        }
    }
    if let Some(path) = query.get("path")
        && let Some(p) = mesos::files::confined(path)
    {
        assert!(
            !p.starts_with('/') && !p.split('/').any(|part| part == ".." || part.is_empty() && !p.is_empty()),
            "{p:?}"
        );
    }
    let text = String::from_utf8_lossy(data);
    let escaped = html::Esc(&text).to_string();
    assert!(!escaped.contains(['<', '>', '"', '\'']), "{escaped}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"fuzz");
    let issued = session::issue(&key, 1_000, "b:admin:admin");
    assert_eq!(session::verify(&key, &text, 1_000).is_some(), text == issued);
}
