//! Which master to talk to: a fixed list (`host:5050,host2:5050`, with or
//! without `http(s)://`) tried in turn, or the leader named in ZooKeeper
//! (`zk://host:2181,host2:2181/mesos`). Leader redirects (307) override both
//! until the next failure.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::zk::{LeaderDetector, ZkUrl};

/// Mesos's default master port.
pub const DEFAULT_PORT: u16 = 5050;

/// How long a ZooKeeper session may go without a heartbeat before ZooKeeper
/// drops it. Ten seconds is Mesos's own default (`--zk_session_timeout`).
pub const ZK_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The set of masters a client may use, and the one it uses now.
#[derive(Debug)]
pub struct Masters {
    source: Source,
    /// Base URL (`http://host:port`, no trailing slash) of the master in use.
    current: Option<String>,
    scheme: &'static str,
}

#[derive(Debug)]
enum Source {
    List { urls: Vec<String>, next: usize },
    ZooKeeper(Box<LeaderDetector>),
}

impl Masters {
    /// Parses a master specification. `tls` makes `https` the scheme of
    /// entries given without one (MESOS_SSL).
    pub fn parse(spec: &str, tls: bool) -> Result<Self> {
        let spec = spec.trim();
        let scheme = if tls { "https" } else { "http" };
        if spec.starts_with("zk://") {
            let url = ZkUrl::parse(spec)?;
            let detector = LeaderDetector::new(url, ZK_SESSION_TIMEOUT);
            return Ok(Masters { source: Source::ZooKeeper(Box::new(detector)), current: None, scheme });
        }
        let urls = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|entry| base_url(entry, scheme))
            .collect::<Result<Vec<_>>>()?;
        if urls.is_empty() {
            return Err(Error::Config("the master list is empty (expected host:port, a list, or zk://...)".into()));
        }
        Ok(Masters { source: Source::List { urls, next: 0 }, current: None, scheme })
    }

    /// The base URL of the master to use now, detecting the leader if needed.
    /// With ZooKeeper this waits for a leader to be elected.
    pub async fn current(&mut self) -> Result<String> {
        if let Some(url) = &self.current {
            return Ok(url.clone());
        }
        let url = match &mut self.source {
            Source::List { urls, next } => {
                let url = urls[*next % urls.len()].clone();
                *next = (*next + 1) % urls.len();
                url
            }
            Source::ZooKeeper(detector) => {
                let leader = detector.detect().await?;
                format!("{}://{}", self.scheme, leader.authority())
            }
        };
        self.current = Some(url.clone());
        Ok(url)
    }

    /// The master in use, if one has been chosen.
    pub fn peek(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// Follows a 307 `Location` (Mesos sends it protocol-relative:
    /// `//host:port/path`). Returns the new base URL.
    pub fn redirect(&mut self, location: &str) -> Result<String> {
        let current_scheme =
            self.current.as_deref().and_then(|u| u.split_once("://").map(|(s, _)| s)).unwrap_or(self.scheme).to_owned();
        let rest = if let Some(rest) = location.strip_prefix("//") {
            rest
        } else if let Some((_, rest)) = location.split_once("://") {
            rest
        } else {
            return Err(Error::Config(format!("redirect Location {location:?} names no master")));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(Error::Config(format!("redirect Location {location:?} names no master")));
        }
        let url = format!("{current_scheme}://{authority}");
        self.current = Some(url.clone());
        Ok(url)
    }

    /// The master in use failed: the next call to [`Masters::current`] moves on
    /// to the next one in the list, or asks ZooKeeper again.
    pub fn failed(&mut self) {
        self.current = None;
    }
}

/// `host`, `host:port`, `http://host:port[/prefix]` → `scheme://host:port[/prefix]`.
fn base_url(entry: &str, default_scheme: &str) -> Result<String> {
    let (scheme, rest) = match entry.split_once("://") {
        Some((s @ ("http" | "https"), rest)) => (s, rest),
        Some((other, _)) => {
            return Err(Error::Config(format!(
                "master {entry:?}: unsupported scheme {other:?} (use http, https or zk)"
            )));
        }
        None => (default_scheme, entry),
    };
    let rest = rest.trim_end_matches('/');
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(Error::Config(format!("master {entry:?}: no host")));
    }
    // An IPv6 literal is bracketed; only a colon after the bracket is a port.
    let has_port = if authority.starts_with('[') { authority.contains("]:") } else { authority.contains(':') };
    if has_port {
        let port = authority.rsplit(':').next().unwrap_or_default();
        if port.parse::<u16>().is_err() {
            return Err(Error::Config(format!("master {entry:?}: port {port:?} is not a number from 0 to 65535")));
        }
        Ok(format!("{scheme}://{authority}{path}"))
    } else {
        Ok(format!("{scheme}://{authority}:{DEFAULT_PORT}{path}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_master_lists() {
        assert_eq!(base_url("m1", "http").unwrap(), "http://m1:5050");
        assert_eq!(base_url("m1:1234", "https").unwrap(), "https://m1:1234");
        assert_eq!(base_url("https://m1:1234/", "http").unwrap(), "https://m1:1234");
        assert_eq!(base_url("http://proxy/mesos", "http").unwrap(), "http://proxy:5050/mesos");
        assert_eq!(base_url("[::1]:5051", "http").unwrap(), "http://[::1]:5051");
        assert_eq!(base_url("[::1]", "http").unwrap(), "http://[::1]:5050");
        assert!(base_url("m1:port", "http").unwrap_err().to_string().contains("\"port\""));
        assert!(base_url("ftp://m1", "http").unwrap_err().to_string().contains("ftp"));
        assert!(Masters::parse(" , ", false).is_err());
    }

    #[tokio::test]
    async fn rotates_through_the_list_on_failure() {
        let mut m = Masters::parse("a:1,b:2", false).unwrap();
        assert_eq!(m.current().await.unwrap(), "http://a:1");
        assert_eq!(m.current().await.unwrap(), "http://a:1", "sticky until it fails");
        m.failed();
        assert_eq!(m.current().await.unwrap(), "http://b:2");
        m.failed();
        assert_eq!(m.current().await.unwrap(), "http://a:1");
    }

    #[tokio::test]
    async fn follows_protocol_relative_redirects() {
        let mut m = Masters::parse("https://a:1", false).unwrap();
        m.current().await.unwrap();
        assert_eq!(m.redirect("//b:5050/master/api/v1/scheduler").unwrap(), "https://b:5050");
        assert_eq!(m.current().await.unwrap(), "https://b:5050");
        assert_eq!(m.redirect("http://c:5050/x").unwrap(), "https://c:5050", "keeps our scheme");
        assert!(m.redirect("/relative").is_err());
    }
}
