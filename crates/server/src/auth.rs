//! Who may use the API: HTTP Basic (AUTH_USERNAME/AUTH_PASSWORD) and the API
//! token, both admins; named credentials with roles (`access`); or, only when
//! the operator asks for it, nobody checked at all. Every route's role is
//! checked and every change written to the audit log here.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use mesos::transport::constant_time_eq;

use crate::ApiState;
use crate::access::{self, Credentials, Principal, Role};
use crate::audit::AuditLog;
use crate::error::ApiError;
use crate::session;

/// The name the API token signs in as (the Basic credentials sign in as their user name).
pub const TOKEN_PRINCIPAL: &str = "api-token";
/// Who acts on an API run open.
pub const ANONYMOUS: &str = "anonymous";

/// Who may use the API and as what role, and where what they change is written down.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    scheme: Scheme,
    credentials: Credentials,
    audit: AuditLog,
}

enum Scheme {
    /// No authentication (`--insecure-open-api`): everyone is an anonymous admin.
    Open,
    /// The operator's Basic credentials and API token (both admin), and the named credentials.
    Required { basic: Option<(String, String)>, token: Option<String> },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner.scheme {
            Scheme::Open => f.write_str("Open"),
            Scheme::Required { basic, token } => f
                .debug_struct("Required")
                .field("basic_user", &basic.as_ref().map(|(u, _)| u))
                .field("token", &token.as_ref().map(|_| "***"))
                .field("credentials", &self.inner.credentials.list().len())
                .finish(),
        }
    }
}

impl Auth {
    fn new(scheme: Scheme) -> Auth {
        Auth { inner: Arc::new(Inner { scheme, credentials: Credentials::in_memory(), audit: AuditLog::in_memory() }) }
    }

    pub fn open() -> Auth {
        Auth::new(Scheme::Open)
    }

    pub fn basic(username: &str, password: &str) -> Auth {
        Auth::new(Scheme::Required { basic: Some((username.to_owned(), password.to_owned())), token: None })
    }

    pub fn token(token: &str) -> Auth {
        Auth::new(Scheme::Required { basic: None, token: Some(token.to_owned()) })
    }

    /// Both schemes accepted.
    pub fn basic_or_token(username: &str, password: &str, token: &str) -> Auth {
        Auth::new(Scheme::Required {
            basic: Some((username.to_owned(), password.to_owned())),
            token: Some(token.to_owned()),
        })
    }

    /// Keeps named credentials and the audit log where given (before the Auth is shared).
    pub fn with_stores(self, credentials: Credentials, audit: AuditLog) -> Auth {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|_| panic!("with_stores before the Auth is shared"));
        Auth { inner: Arc::new(Inner { credentials, audit, ..inner }) }
    }

    pub fn is_open(&self) -> bool {
        matches!(self.inner.scheme, Scheme::Open)
    }

    /// Whether tokens, and whether user name and password, are accepted (the sign-in form's fields).
    pub fn accepts(&self) -> (bool, bool) {
        match &self.inner.scheme {
            Scheme::Open => (false, false),
            Scheme::Required { basic, .. } => (true, basic.is_some()),
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    pub fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    /// Whose token this is (InfluxDB v2 clients send it as `Token <token>`).
    /// Basic credentials given as `user:password` are accepted there too, as InfluxDB 1.8 does.
    pub fn principal_of_token(&self, given: &str) -> Option<Principal> {
        let Scheme::Required { basic, token } = &self.inner.scheme else {
            return Some(Principal::new(ANONYMOUS, Role::Admin));
        };
        if token.as_ref().is_some_and(|t| constant_time_eq(t.as_bytes(), given.as_bytes())) {
            return Some(Principal::new(TOKEN_PRINCIPAL, Role::Admin));
        }
        if let Some((u, p)) = basic
            && constant_time_eq(format!("{u}:{p}").as_bytes(), given.as_bytes())
        {
            return Some(Principal::new(u, Role::Admin));
        }
        self.inner.credentials.find(given)
    }

    /// Whose user name and password these are (InfluxDB v1's `u` and `p` parameters,
    /// the sign-in form): the Basic credentials, or a named credential's token as the password.
    pub fn principal_of_credentials(&self, user: &str, password: &str) -> Option<Principal> {
        let Scheme::Required { basic, .. } = &self.inner.scheme else {
            return Some(Principal::new(ANONYMOUS, Role::Admin));
        };
        if let Some((u, p)) = basic
            && constant_time_eq(format!("{u}:{p}").as_bytes(), format!("{user}:{password}").as_bytes())
        {
            return Some(Principal::new(u, Role::Admin));
        }
        self.inner.credentials.find(password).filter(|p| p.name == user)
    }

    /// Who sent the request's `Authorization` header (Bearer or Basic).
    pub fn principal(&self, headers: &HeaderMap) -> Option<Principal> {
        if self.is_open() {
            return Some(Principal::new(ANONYMOUS, Role::Admin));
        }
        let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())?;
        // RFC 9110: the scheme name is case-insensitive.
        let (scheme, given) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.principal_of_token(given.trim());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(given.trim()).ok()?;
            let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
            return self.principal_of_credentials(user, password);
        }
        None
    }

    /// Who may go on with a request: its credentials, or for reading (GET and
    /// HEAD) the dashboard's session cookie. Changes always need credentials or,
    /// on the dashboard's own forms, the cookie plus its CSRF token
    /// (`dashboard::require_session`), so a cookie alone changes nothing.
    pub fn request_principal(&self, method: &Method, headers: &HeaderMap) -> Option<Principal> {
        self.principal(headers).or_else(|| {
            (method == Method::GET || method == Method::HEAD).then(|| self.session(headers)).flatten().map(|(_, p)| p)
        })
    }

    /// The session cookie's value and who it is, when this process issued it, it
    /// is unexpired, and its credential still exists with the same role.
    pub fn session<'h>(&self, headers: &'h HeaderMap) -> Option<(&'h str, Principal)> {
        let key = self.session_key()?;
        let value = session::from_cookies(headers)?;
        let subject = session::verify(&key, value, session::now_s())?;
        let mut parts = subject.splitn(3, ':');
        let (kind, role, name) = (parts.next()?, parts.next()?.parse::<Role>().ok()?, parts.next()?);
        let current = match kind {
            "b" => Some(Role::Admin),
            "c" => self.inner.credentials.role_of(name),
            _ => None,
        };
        (current == Some(role)).then(|| (value, Principal::new(name, role)))
    }

    /// A new session cookie value for `principal`, valid for `session::LIFETIME_S`. None when open.
    pub fn new_session(&self, principal: &Principal) -> Option<String> {
        let builtin = self.inner.credentials.role_of(&principal.name) != Some(principal.role);
        let kind = if builtin { "b" } else { "c" };
        Some(session::issue(
            &self.session_key()?,
            session::now_s(),
            &format!("{kind}:{}:{}", principal.role, principal.name),
        ))
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
        let Scheme::Required { basic, token } = &self.inner.scheme else { return None };
        let mut material = Vec::from(*session::process_salt());
        for part in [token.as_deref(), basic.as_ref().map(|(u, _)| u.as_str()), basic.as_ref().map(|(_, p)| p.as_str())]
        {
            material.push(0);
            material.extend_from_slice(part.unwrap_or("").as_bytes());
        }
        Some(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &material))
    }

    /// Runs the request when `principal`'s role allows it (403 otherwise), and
    /// writes changes, refused ones too, to the audit log.
    pub async fn authorize(
        &self,
        principal: Principal,
        via: &str,
        mut request: Request,
        next: Next,
        refuse: impl FnOnce(String) -> Response,
    ) -> Response {
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        let needed = access::required_role(&method, &path);
        let audited = access::audited(&method, &path);
        let action = crate::audit::describe(method.as_str(), &path, request.uri().query());
        let who = principal.name.clone();
        let response = if principal.role < needed {
            refuse(format!("{method} {path} needs the {needed} role; {} is a {}", principal.name, principal.role))
        } else {
            // Handlers that record who acted (a runbook's run) read it here.
            request.extensions_mut().insert(principal);
            next.run(request).await
        };
        if audited {
            self.inner.audit.note(&who, via, action, &response.status().as_u16().to_string());
        }
        response
    }
}

/// Endpoints anyone may read: version discovery, health and the API description.
const PUBLIC: &[&str] = &["/api/compose/versions", "/api/m3s/versions", "/api/v1/health", "/api/v1/openapi.json"];

pub async fn require(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    check(&state.inner.auth, request, next).await
}

/// [`require`] for routers whose state is the [`Auth`] alone (the K3s and management roles').
pub async fn require_auth(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    check(&auth, request, next).await
}

async fn check(auth: &Auth, request: Request, next: Next) -> Response {
    if PUBLIC.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    match auth.request_principal(request.method(), request.headers()) {
        Some(principal) => auth.authorize(principal, "api", request, next, forbidden).await,
        None => unauthorized(),
    }
}

pub fn forbidden(why: String) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, why).into_response()
}

pub fn unauthorized() -> Response {
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
        let admin = Some(Principal::new("admin", Role::Admin));
        assert_eq!(auth.principal(&headers(&basic("admin:pw"))), admin);
        assert_eq!(auth.principal(&headers(&basic("admin:pw2"))), None);
        assert_eq!(auth.principal(&headers(&basic("admin:p"))), None);
        assert_eq!(auth.principal(&headers("Bearer tok")), Some(Principal::new(TOKEN_PRINCIPAL, Role::Admin)));
        assert_eq!(auth.principal(&headers("Bearer tok2")), None);
        assert_eq!(auth.principal(&HeaderMap::new()), None);
        assert_eq!(Auth::token("tok").principal(&headers(&basic("admin:pw"))), None);
        assert_eq!(Auth::open().principal(&HeaderMap::new()).map(|p| p.role), Some(Role::Admin));

        // A named credential: its token as a bearer, or as the password of its name.
        let ro = auth.credentials().add("grafana", Role::Viewer, 0).unwrap();
        let viewer = Some(Principal::new("grafana", Role::Viewer));
        assert_eq!(auth.principal(&headers(&format!("Bearer {ro}"))), viewer);
        assert_eq!(auth.principal(&headers(&basic(&format!("grafana:{ro}")))), viewer);
        assert_eq!(auth.principal(&headers(&basic(&format!("admin:{ro}")))), None, "another name with its token");
    }

    #[test]
    fn sessions_carry_their_role_and_end_with_their_credential() {
        let auth = Auth::token("tok");
        let ro = auth.credentials().add("grafana", Role::Viewer, 0).unwrap();
        let who = auth.principal_of_token(&ro).unwrap();
        let cookie = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, format!("{}={value}", session::COOKIE).parse().unwrap());
            h
        };
        let value = auth.new_session(&who).unwrap();
        assert_eq!(auth.session(&cookie(&value)).map(|(_, p)| p), Some(who.clone()));
        assert_eq!(auth.request_principal(&Method::GET, &cookie(&value)), Some(who));
        assert_eq!(auth.request_principal(&Method::POST, &cookie(&value)), None, "a cookie alone changes nothing");
        let admin = auth.new_session(&auth.principal_of_token("tok").unwrap()).unwrap();
        assert_eq!(auth.session(&cookie(&admin)).map(|(_, p)| p.role), Some(Role::Admin));
        auth.credentials().remove("grafana").unwrap();
        assert_eq!(auth.session(&cookie(&value)), None);
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let shown = format!("{:?}", Auth::basic_or_token("admin", "s3cret", "t0ken"));
        assert!(!shown.contains("s3cret") && !shown.contains("t0ken"), "{shown}");
    }
}
