//! Roles: who may do what on every route of the API and the dashboard, and the
//! named credentials an admin hands out (kept as hashes, never as tokens).
//!
//! What a route needs is decided here from its method and path alone
//! ([`required_role`]), so one table covers the v0, v1, K3s, management,
//! metrics and dashboard routers, and a route added later is an operator's by
//! default unless it only reads.

use std::path::PathBuf;
use std::sync::RwLock;

use axum::http::Method;
use serde::{Deserialize, Serialize};

/// Ordered: each role may do what the roles before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything but secrets (a K3s cluster's kubeconfig).
    Viewer,
    /// Deploys, scales, restarts, removes, applies commits, runs runbooks, writes metrics.
    Operator,
    /// Manages credentials.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (viewer, operator or admin)")]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    pub fn new(name: &str, role: Role) -> Principal {
        Principal { name: name.to_owned(), role }
    }
}

/// POSTs that only read (Prometheus' query API accepts its parameters as a form).
const READING_POSTS: &[&str] = &["/api/v1/query", "/api/v1/query_range", "/api/v1/labels", "/api/v1/series"];

/// Writes of metric samples: data, not changes to the estate, so they need an
/// operator but are not audited (an agent writes every ten seconds).
const SAMPLE_WRITES: &[&str] = &["/write", "/api/v2/write", "/api/v1/write"];

/// The role a request needs.
pub fn required_role(method: &Method, path: &str) -> Role {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if path == "/api/v1/credentials" || path.starts_with("/api/v1/credentials/") {
        return Role::Admin;
    }
    // Secrets behind a GET: a K3s cluster's kubeconfig holds its admin credentials.
    if segments.last() == Some(&"kubeconfig") || path == "/api/m3s/v0/server/config" {
        return Role::Operator;
    }
    // The seed's K3s API scales with a GET, and its executor runs a runbook with one.
    if matches!(segments.as_slice(), ["", "api", "m3s", "v0", _, "scale", _] | ["", "executor", "runit", _]) {
        return Role::Operator;
    }
    let reads = method == Method::GET || method == Method::HEAD || method == Method::OPTIONS;
    if reads || (method == Method::POST && (READING_POSTS.contains(&path) || path == "/ui/logout")) {
        Role::Viewer
    } else {
        Role::Operator
    }
}

/// Whether a request goes into the audit log: every change and every read of a
/// secret, but not sample writes.
pub fn audited(method: &Method, path: &str) -> bool {
    required_role(method, path) > Role::Viewer && !SAMPLE_WRITES.contains(&path)
}

/// A name an admin gives a credential: it appears in the audit log and in
/// session cookies, so it is kept plain.
pub fn check_name(name: &str) -> Result<(), InvalidName> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok { Ok(()) } else { Err(InvalidName(name.to_owned())) }
}

#[derive(Clone, Debug, Serialize)]
pub struct CredentialView {
    pub name: String,
    pub role: Role,
    pub created_ms: u64,
}

struct Credential {
    name: String,
    role: Role,
    sha256: [u8; 32],
    created_ms: u64,
}

/// Named tokens with roles. The file (`<work-dir>/credentials`, mode 0600)
/// holds one `name role sha256-hex created-ms` line each: a copy of it lets
/// nobody in.
#[derive(Default)]
pub struct Credentials {
    file: Option<PathBuf>,
    entries: RwLock<Vec<Credential>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credential name {0:?}: use 1 to 64 letters, digits, '-', '_', '.' or '@', starting with a letter or digit")]
pub struct InvalidName(pub String);

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Invalid(#[from] InvalidName),
    #[error("a credential named {0:?} exists: remove it first")]
    Exists(String),
    #[error("no credential named {0:?}")]
    NotFound(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A line of the file that is not `name role sha256 created`.
    #[error("{}:{line}: {reason}", path.display())]
    Corrupt { path: PathBuf, line: usize, reason: LineProblem },
}

/// What is wrong with one line of the credentials file.
#[derive(Debug, thiserror::Error)]
pub enum LineProblem {
    #[error("expected 'name role sha256 created-ms', found {0} fields")]
    Fields(usize),
    #[error(transparent)]
    Name(#[from] InvalidName),
    #[error(transparent)]
    Role(#[from] UnknownRole),
    #[error("the hash is not 64 hex digits")]
    HashLength,
    #[error("the hash is not hex")]
    HashNotHex,
    #[error("created-ms {0:?} is not a number")]
    Created(String),
}

fn sha256(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().try_into().expect("32 bytes")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_line(line: &str) -> Result<Credential, LineProblem> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [name, role, hash, created] = fields.as_slice() else {
        return Err(LineProblem::Fields(fields.len()));
    };
    check_name(name)?;
    let role = role.parse::<Role>()?;
    if hash.len() != 64 {
        return Err(LineProblem::HashLength);
    }
    let mut sha256 = [0u8; 32];
    for (i, byte) in sha256.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hash[2 * i..2 * i + 2], 16).map_err(|_| LineProblem::HashNotHex)?;
    }
    let created_ms = created.parse().map_err(|_| LineProblem::Created((*created).to_owned()))?;
    Ok(Credential { name: (*name).to_owned(), role, sha256, created_ms })
}

impl Credentials {
    /// Credentials kept in memory only (tests, `m3s metrics serve`).
    pub fn in_memory() -> Credentials {
        Credentials::default()
    }

    /// Loads the file (missing: none yet). A line that cannot be read stops the
    /// start, naming the line, rather than silently locking someone out.
    pub fn load(file: PathBuf) -> Result<Credentials, CredentialError> {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(CredentialError::Io { path: file, source }),
        };
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = parse_line(line).map_err(|reason| CredentialError::Corrupt {
                path: file.clone(),
                line: i + 1,
                reason,
            })?;
            entries.push(entry);
        }
        Ok(Credentials { file: Some(file), entries: RwLock::new(entries) })
    }

    /// The principal whose token this is. Every entry is compared, in constant
    /// time, so the answer's timing says nothing about which one matched.
    pub fn find(&self, token: &str) -> Option<Principal> {
        let given = sha256(token);
        let entries = self.entries.read().expect("credentials");
        let mut found = None;
        for c in entries.iter() {
            if mesos::transport::constant_time_eq(&c.sha256, &given) {
                found = Some(Principal::new(&c.name, c.role));
            }
        }
        found
    }

    /// The role of a named credential now (a session ends when its credential is removed).
    pub fn role_of(&self, name: &str) -> Option<Role> {
        self.entries.read().expect("credentials").iter().find(|c| c.name == name).map(|c| c.role)
    }

    pub fn list(&self) -> Vec<CredentialView> {
        let entries = self.entries.read().expect("credentials");
        entries
            .iter()
            .map(|c| CredentialView { name: c.name.clone(), role: c.role, created_ms: c.created_ms })
            .collect()
    }

    /// Adds a credential and returns its token, which is shown this once.
    pub fn add(&self, name: &str, role: Role, now_ms: u64) -> Result<String, CredentialError> {
        check_name(name)?;
        let mut entries = self.entries.write().expect("credentials");
        if entries.iter().any(|c| c.name == name) {
            return Err(CredentialError::Exists(name.to_owned()));
        }
        let token = format!("m3s_{}", random_hex(24));
        entries.push(Credential { name: name.to_owned(), role, sha256: sha256(&token), created_ms: now_ms });
        if let Err(e) = self.save(&entries) {
            entries.pop();
            return Err(e);
        }
        Ok(token)
    }

    pub fn remove(&self, name: &str) -> Result<(), CredentialError> {
        let mut entries = self.entries.write().expect("credentials");
        let Some(at) = entries.iter().position(|c| c.name == name) else {
            return Err(CredentialError::NotFound(name.to_owned()));
        };
        let removed = entries.remove(at);
        if let Err(e) = self.save(&entries) {
            entries.insert(at, removed);
            return Err(e);
        }
        Ok(())
    }

    fn save(&self, entries: &[Credential]) -> Result<(), CredentialError> {
        let Some(file) = &self.file else { return Ok(()) };
        let mut text = String::from("# m3s credentials: name role sha256(token) created-ms. Tokens are not kept.\n");
        for c in entries {
            text.push_str(&format!("{} {} {} {}\n", c.name, c.role, hex(&c.sha256), c.created_ms));
        }
        mesos::private_file::write(file, text.as_bytes())
            .map_err(|source| CredentialError::Io { path: file.clone(), source })
    }
}

fn random_hex(bytes: usize) -> String {
    use ring::rand::SecureRandom as _;
    let mut buf = vec![0u8; bytes];
    ring::rand::SystemRandom::new().fill(&mut buf).expect("the system's random source");
    hex(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_method_and_path() {
        use Role::*;
        let cases: &[(Method, &str, Role)] = &[
            (Method::GET, "/api/v1/projects", Viewer),
            (Method::PUT, "/api/v1/projects/web", Operator),
            (Method::DELETE, "/api/v1/tasks/t1", Operator),
            (Method::GET, "/api/v1/credentials", Admin),
            (Method::DELETE, "/api/v1/credentials/ci", Admin),
            (Method::GET, "/api/k3s/v1/clusters/demo/kubeconfig", Operator),
            (Method::GET, "/ui/k3s/demo/kubeconfig", Operator),
            (Method::GET, "/api/m3s/v0/server/config", Operator),
            (Method::GET, "/api/m3s/v0/agent/scale/3", Operator),
            (Method::GET, "/api/m3s/v0/agent/scale", Viewer),
            (Method::POST, "/api/v1/query", Viewer),
            (Method::POST, "/write", Operator),
            (Method::POST, "/ui/logout", Viewer),
            (Method::POST, "/ui/stacks", Operator),
            (Method::POST, "/api/manage/v1/apply", Operator),
            (Method::GET, "/api/v1/audit", Viewer),
            (Method::GET, "/executor/runit/rotate", Operator),
            (Method::GET, "/api/manage/v1/runs/ab12", Viewer),
        ];
        for (method, path, role) in cases {
            assert_eq!(required_role(method, path), *role, "{method} {path}");
        }
        assert!(audited(&Method::PUT, "/api/v1/projects/web"));
        assert!(audited(&Method::GET, "/api/k3s/v1/clusters/demo/kubeconfig"), "reading a secret is audited");
        assert!(!audited(&Method::POST, "/write"), "sample writes are not");
        assert!(!audited(&Method::GET, "/api/v1/projects"));
    }

    #[test]
    fn tokens_are_kept_as_hashes_and_found_by_token() {
        let dir = std::env::temp_dir().join(format!("m3s-credentials-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("credentials");
        let creds = Credentials::load(file.clone()).unwrap();
        let ci = creds.add("ci", Role::Operator, 1).unwrap();
        let ro = creds.add("grafana", Role::Viewer, 2).unwrap();
        assert!(matches!(creds.add("ci", Role::Admin, 3), Err(CredentialError::Exists(_))));
        assert!(matches!(creds.add("-x", Role::Admin, 3), Err(CredentialError::Invalid(_))));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(&ci) && !text.contains(&ro), "{text}");

        let again = Credentials::load(file.clone()).unwrap();
        assert_eq!(again.find(&ci), Some(Principal::new("ci", Role::Operator)));
        assert_eq!(again.find(&ro), Some(Principal::new("grafana", Role::Viewer)));
        assert_eq!(again.find("m3s_wrong"), None);
        again.remove("ci").unwrap();
        assert_eq!(Credentials::load(file.clone()).unwrap().find(&ci), None);
        assert!(matches!(again.remove("ci"), Err(CredentialError::NotFound(_))));

        std::fs::write(&file, "ok viewer 00 1\n").unwrap();
        let e = Credentials::load(file).err().unwrap().to_string();
        assert!(e.contains("credentials:1: the hash is not 64 hex digits"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
