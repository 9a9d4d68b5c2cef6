//! Image references as Docker resolves them: `busybox` is
//! `docker.io/library/busybox:latest`, `127.0.0.1:5000/app@sha256:...` names
//! a digest on a loopback registry. Plain functions, no IO.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// Docker Hub's name in references, and the host its API answers on.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// `host[:port]`, `docker.io` for Docker Hub.
    pub registry: String,
    /// `library/busybox`, `team/app`.
    pub repository: String,
    /// `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct ReferenceError {
    pub reference: String,
    pub reason: &'static str,
}

impl Reference {
    /// The host the registry's HTTP API answers on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB { DOCKER_HUB_API } else { &self.registry }
    }

    /// The tag or digest, as the registry's manifest URL wants it.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// Whether the registry is on this machine (plain HTTP is allowed there, as Docker allows it).
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => self.registry.rsplit_once(':').map_or(self.registry.as_str(), |(h, _)| h),
        };
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ReferenceError { reference: s.to_owned(), reason };
        if s.is_empty() || s.len() > 512 {
            return Err(err("must be 1 to 512 characters"));
        }
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => {
                (n, Some(d.parse::<Digest>().map_err(|_| err("the digest is not sha256:<64 hex digits>"))?))
            }
            None => (s, None),
        };
        // A tag follows the last ':' after the last '/' (a ':' before it is a registry port).
        let slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[slash..].rfind(':') {
            Some(i) => (&name[..slash + i], Some(&name[slash + i + 1..])),
            None => (name, None),
        };
        if let Some(t) = tag {
            let valid = !t.is_empty()
                && t.len() <= 128
                && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && t.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                return Err(err("a tag is 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest.to_owned()),
            _ => (DOCKER_HUB, name.to_owned()),
        };
        let registry = if registry == "index.docker.io" { DOCKER_HUB } else { registry };
        if registry.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(err("the registry name is not a host[:port]"));
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        };
        if !repository.split('/').all(component_ok) {
            return Err(err("a repository name is lowercase letters, digits and '.', '_', '-' between '/'"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_owned()),
        };
        Ok(Reference { registry: registry.to_owned(), repository, tag, digest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        s.parse::<Reference>().unwrap().to_string()
    }

    #[test]
    fn short_names_resolve_as_docker_resolves_them() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("grafana/grafana"), "docker.io/grafana/grafana:latest");
        assert_eq!(norm("index.docker.io/library/redis:7"), "docker.io/library/redis:7");
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("127.0.0.1:5000/team/app:v2"), "127.0.0.1:5000/team/app:v2");
        assert_eq!(norm("ghcr.io/org/tool"), "ghcr.io/org/tool:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(norm(&format!("busybox@{d}")), format!("docker.io/library/busybox@{d}"));
        assert_eq!(norm(&format!("r.io:443/x:1@{d}")), format!("r.io:443/x:1@{d}"));
    }

    #[test]
    fn hosts_and_api_hosts() {
        let r: Reference = "busybox".parse().unwrap();
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert!(!r.is_loopback());
        let r: Reference = "127.0.0.1:5000/x".parse().unwrap();
        assert!(r.is_loopback());
        assert_eq!(r.manifest_ref(), "latest");
        assert!("localhost:5000/x".parse::<Reference>().unwrap().is_loopback());
        assert!("[::1]:5000/x".parse::<Reference>().unwrap().is_loopback());
    }

    #[test]
    fn bad_references_say_why() {
        for bad in ["", "Busybox", "busybox:", "busybox:-x", "a//b", "busybox@sha256:12", "x/-y", "a b"] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} was accepted");
        }
        let e = "UPPER".parse::<Reference>().unwrap_err();
        assert!(e.to_string().contains("lowercase"), "{e}");
    }
}
