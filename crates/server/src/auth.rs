//! Who may use the API: HTTP Basic (AUTH_USERNAME/AUTH_PASSWORD), a bearer
//! token, or, only when the operator asks for it, nobody checked at all.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use mesos::transport::constant_time_eq;

use crate::ApiState;
use crate::error::ApiError;
use crate::session;

#[derive(Clone)]
pub enum Auth {
    /// No authentication (`--insecure-open-api`).
    Open,
    Required {
        basic: Option<(String, String)>,
        token: Option<String>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Open => f.write_str("Open"),
            Auth::Required { basic, token } => f
                .debug_struct("Required")
                .field("basic_user", &basic.as_ref().map(|(u, _)| u))
                .field("token", &token.as_ref().map(|_| "***"))
                .finish(),
        }
    }
}

impl Auth {
    pub fn basic(username: &str, password: &str) -> Auth {
        Auth::Required { basic: Some((username.to_owned(), password.to_owned())), token: None }
    }

    pub fn token(token: &str) -> Auth {
        Auth::Required { basic: None, token: Some(token.to_owned()) }
    }

    /// Both schemes accepted.
    pub fn basic_or_token(username: &str, password: &str, token: &str) -> Auth {
        Auth::Required { basic: Some((username.to_owned(), password.to_owned())), token: Some(token.to_owned()) }
    }

    /// Whether `token` is the API token (InfluxDB v2 clients send it as `Token <token>`).
    /// Basic credentials given as `user:password` are accepted there too, as InfluxDB 1.8 does.
    pub fn allows_token(&self, given: &str) -> bool {
        match self {
            Auth::Open => true,
            Auth::Required { basic, token } => {
                token.as_ref().is_some_and(|t| constant_time_eq(t.as_bytes(), given.as_bytes()))
                    || basic
                        .as_ref()
                        .is_some_and(|(u, p)| constant_time_eq(format!("{u}:{p}").as_bytes(), given.as_bytes()))
            }
        }
    }

    /// Whether a user name and password (InfluxDB v1's `u` and `p` parameters) are the Basic credentials.
    pub fn allows_credentials(&self, user: &str, password: &str) -> bool {
        match self {
            Auth::Open => true,
            Auth::Required { basic, .. } => basic.as_ref().is_some_and(|(u, p)| {
                constant_time_eq(format!("{u}:{p}").as_bytes(), format!("{user}:{password}").as_bytes())
            }),
        }
    }

    /// Whether a request may go on: its credentials, or for reading (GET and
    /// HEAD) the dashboard's session cookie. Changes always need credentials or,
    /// on the dashboard's own forms, the cookie plus its CSRF token
    /// (`dashboard::require_session`), so a cookie alone changes nothing.
    pub fn allows_request(&self, method: &Method, headers: &HeaderMap) -> bool {
        self.allows(headers) || ((method == Method::GET || method == Method::HEAD) && self.session(headers).is_some())
    }

    /// The session cookie's value, when it is one this process issued and unexpired.
    pub fn session<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        let key = self.session_key()?;
        let value = session::from_cookies(headers)?;
        session::verify(&key, value, session::now_s()).then_some(value)
    }

    /// A new session cookie value, valid for `session::LIFETIME_S`. None when open.
    pub fn new_session(&self) -> Option<String> {
        Some(session::issue(&self.session_key()?, session::now_s()))
    }

    /// The CSRF token that goes with a session (sent back by the dashboard's
    /// forms in the `X-CSRF-Token` header).
    pub fn csrf_token(&self, session: &str) -> String {
        match self.session_key() {
            Some(key) => session::csrf(&key, session),
            None => String::new(),
        }
    }

    /// Signs sessions: derived from the credentials and a per-process random
    /// salt, so changing the credentials or restarting m3s ends every session.
    fn session_key(&self) -> Option<ring::hmac::Key> {
        let Auth::Required { basic, token } = self else { return None };
        let mut material = Vec::from(*session::process_salt());
        for part in [token.as_deref(), basic.as_ref().map(|(u, _)| u.as_str()), basic.as_ref().map(|(_, p)| p.as_str())]
        {
            material.push(0);
            material.extend_from_slice(part.unwrap_or("").as_bytes());
        }
        Some(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &material))
    }

    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Auth::Required { basic, token } = self else { return true };
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
        // RFC 9110: the scheme name is case-insensitive.
        let (scheme, given) = value.split_once(' ').unwrap_or((value, ""));
        if let (Some(expected), true) = (token, scheme.eq_ignore_ascii_case("bearer")) {
            return constant_time_eq(expected.as_bytes(), given.trim().as_bytes());
        }
        if let (Some((user, password)), true) = (basic, scheme.eq_ignore_ascii_case("basic")) {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(given.trim()) else { return false };
            let expected = format!("{user}:{password}");
            return constant_time_eq(expected.as_bytes(), &decoded);
        }
        false
    }
}

/// Endpoints anyone may read: version discovery, health and the API description.
const PUBLIC: &[&str] = &["/api/compose/versions", "/api/m3s/versions", "/api/v1/health", "/api/v1/openapi.json"];

pub async fn require(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    check(&state.inner.auth, request, next).await
}

/// [`require`] for routers whose state is the [`Auth`] alone (the K3s framework's).
pub async fn require_auth(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    check(&auth, request, next).await
}

async fn check(auth: &Auth, request: Request, next: Next) -> Response {
    if PUBLIC.contains(&request.uri().path()) || auth.allows_request(request.method(), request.headers()) {
        return next.run(request).await;
    }
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "authentication required").into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, "Basic realm=\"m3s\"".parse().expect("static header"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn basic_and_bearer_are_checked_exactly() {
        let auth = Auth::basic_or_token("admin", "pw", "tok");
        let basic = |s: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s));
        assert!(auth.allows(&headers(&basic("admin:pw"))));
        assert!(!auth.allows(&headers(&basic("admin:pw2"))));
        assert!(!auth.allows(&headers(&basic("admin:p"))));
        assert!(auth.allows(&headers("Bearer tok")));
        assert!(!auth.allows(&headers("Bearer tok2")));
        assert!(!auth.allows(&HeaderMap::new()));
        assert!(!Auth::token("tok").allows(&headers(&basic("admin:pw"))));
        assert!(Auth::Open.allows(&HeaderMap::new()));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let shown = format!("{:?}", Auth::basic_or_token("admin", "s3cret", "t0ken"));
        assert!(!shown.contains("s3cret") && !shown.contains("t0ken"), "{shown}");
    }
}
