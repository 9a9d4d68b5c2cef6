//! Registry authentication: `WWW-Authenticate` challenges and the
//! credentials of a Docker `config.json`. Plain functions, no IO but reading
//! the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login").field("username", &self.username).field("password", &"***").finish()
    }
}

/// What a registry asks for on a 401.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// Docker's token flow: GET `realm?service=..&scope=..` for a token.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

impl Challenge {
    /// Parses `Bearer realm="..",service="..",scope=".."` or `Basic realm=".."`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        let params = params(rest);
        match scheme.to_ascii_lowercase().as_str() {
            "bearer" => Some(Challenge::Bearer {
                realm: params.get("realm")?.clone(),
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            }),
            "basic" => Some(Challenge::Basic),
            _ => None,
        }
    }
}

/// `key="value", key=value` pairs; quoted values may hold commas.
fn params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else { break };
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (quoted[..end].to_owned(), &quoted[end + 1..]),
                None => (quoted.to_owned(), ""),
            },
            None => match after.find(',') {
                Some(end) => (after[..end].trim().to_owned(), &after[end..]),
                None => (after.trim().to_owned(), ""),
            },
        };
        out.insert(key, value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Credentials by registry, from a Docker `config.json` (`auths`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    by_registry: BTreeMap<String, Login>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_registry.keys()).finish()
    }
}

/// A Docker `config.json` that cannot be read, naming the file or key.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{}: {source}", path.display())]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Invalid { path: std::path::PathBuf, source: Box<CredentialsError> },
    #[error("not a Docker config.json: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("auths.{key}.auth is not {expected}")]
    BadAuth { key: String, expected: &'static str },
}

impl Credentials {
    /// Reads `path` (Docker's format: `{"auths": {"host": {"auth": base64("user:pass")}}}`).
    /// Credential helpers (`credsStore`, `credHelpers`) are not run.
    pub fn from_docker_config(path: &Path) -> Result<Credentials, CredentialsError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| CredentialsError::Read { path: path.to_owned(), source })?;
        Credentials::parse(&text).map_err(|e| CredentialsError::Invalid { path: path.to_owned(), source: Box::new(e) })
    }

    pub fn parse(text: &str) -> Result<Credentials, CredentialsError> {
        #[derive(serde::Deserialize)]
        struct File {
            #[serde(default)]
            auths: BTreeMap<String, Entry>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            #[serde(default)]
            auth: Option<String>,
            #[serde(default)]
            username: Option<String>,
            #[serde(default)]
            password: Option<String>,
        }
        let file: File = serde_json::from_str(text).map_err(CredentialsError::NotJson)?;
        let mut by_registry = BTreeMap::new();
        for (key, entry) in file.auths {
            let login = match (entry.auth, entry.username, entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => {
                    let bad = |expected| CredentialsError::BadAuth { key: key.clone(), expected };
                    let raw =
                        base64::engine::general_purpose::STANDARD.decode(auth.trim()).map_err(|_| bad("base64"))?;
                    let text = String::from_utf8(raw).map_err(|_| bad("UTF-8"))?;
                    let (u, p) = text.split_once(':').ok_or_else(|| bad("user:password"))?;
                    Login { username: u.to_owned(), password: p.to_owned() }
                }
                (_, Some(u), Some(p)) => Login { username: u, password: p },
                _ => continue,
            };
            by_registry.insert(registry_key(&key), login);
        }
        Ok(Credentials { by_registry })
    }

    /// The login for a registry as references name it (`docker.io`, `host:port`).
    pub fn get(&self, registry: &str) -> Option<&Login> {
        self.by_registry.get(&registry_key(registry))
    }

    /// The login for `registry` as the Docker Engine takes it (`X-Registry-Auth`).
    pub fn docker_auth(&self, registry: &str) -> Option<docker::RegistryAuth> {
        self.get(registry).map(|login| docker::RegistryAuth {
            username: login.username.clone(),
            password: login.password.clone(),
            server_address: registry.to_owned(),
        })
    }
}

/// `https://index.docker.io/v1/`, `index.docker.io`, `registry-1.docker.io` are
/// all Docker Hub; other keys are their host[:port].
fn registry_key(key: &str) -> String {
    let host = key.trim_start_matches("https://").trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_owned(),
        h => h.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_registries_send_them() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            })
        );
        assert_eq!(Challenge::parse("Basic realm=\"Registry\""), Some(Challenge::Basic));
        assert_eq!(Challenge::parse("Bearer service=x"), None, "a bearer challenge needs a realm");
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn docker_config_logins_by_registry() {
        let auth = base64::engine::general_purpose::STANDARD.encode("me:s3cret:with:colons");
        let text = format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{auth}"}}, "127.0.0.1:5000": {{"username": "u", "password": "p"}}, "empty.io": {{}}}}, "credsStore": "desktop"}}"#
        );
        let c = Credentials::parse(&text).unwrap();
        assert_eq!(c.get("docker.io").unwrap().password, "s3cret:with:colons");
        assert_eq!(c.get("127.0.0.1:5000").unwrap().username, "u");
        assert!(c.get("empty.io").is_none());
        assert!(!format!("{c:?}{:?}", c.get("docker.io")).contains("s3cret"), "secrets stay out of Debug");
        assert!(
            Credentials::parse(r#"{"auths": {"x": {"auth": "!!"}}}"#).unwrap_err().to_string().contains("auths.x.auth")
        );
    }
}
