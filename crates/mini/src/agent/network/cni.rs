//! The CNI protocol (spec 1.0): network configuration lists, and plugins
//! executed with `CNI_*` variables and their configuration on stdin, as
//! Mesos's `network/cni` isolator and every container runtime run them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

/// A network configuration list (`.conflist`), or a single plugin's `.conf`
/// taken as a list of one.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    pub name: String,
    pub cni_version: String,
    pub plugins: Vec<Value>,
}

/// A network configuration that cannot be used, with its file.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("{}: {source}", origin.display())]
    Json { origin: PathBuf, source: serde_json::Error },
    #[error("{}: no \"name\"", .0.display())]
    NoName(PathBuf),
    #[error("{}: \"plugins\" must be a non-empty list", .0.display())]
    EmptyPlugins(PathBuf),
    #[error("{}: neither \"plugins\" nor \"type\"", .0.display())]
    NoPlugins(PathBuf),
    #[error("{}: plugins[{index}].type must name a program in the plugins directory", origin.display())]
    BadType { origin: PathBuf, index: usize },
    #[error("{}: {source}", dir.display())]
    ReadDir { dir: PathBuf, source: std::io::Error },
}

impl NetConf {
    pub fn parse(text: &str, origin: &Path) -> Result<NetConf, ConfError> {
        let at = || origin.to_path_buf();
        let v: Value = serde_json::from_str(text).map_err(|source| ConfError::Json { origin: at(), source })?;
        let name = v["name"].as_str().ok_or_else(|| ConfError::NoName(at()))?.to_owned();
        let cni_version = v["cniVersion"].as_str().unwrap_or("1.0.0").to_owned();
        let plugins = match v.get("plugins") {
            Some(Value::Array(list)) if !list.is_empty() => list.clone(),
            Some(_) => return Err(ConfError::EmptyPlugins(at())),
            None if v.get("type").is_some() => vec![v.clone()],
            None => return Err(ConfError::NoPlugins(at())),
        };
        for (index, p) in plugins.iter().enumerate() {
            let kind = p["type"].as_str().unwrap_or_default();
            if kind.is_empty() || kind.contains('/') || kind.starts_with('.') {
                return Err(ConfError::BadType { origin: at(), index });
            }
        }
        Ok(NetConf { name, cni_version, plugins })
    }

    pub fn to_json(&self) -> Value {
        json!({ "cniVersion": self.cni_version, "name": self.name, "plugins": self.plugins })
    }
}

/// The configuration named `name` in `dir` (`*.conf`, `*.conflist`, `*.json`),
/// as Mesos finds a NetworkInfo's network.
pub fn find(dir: &Path, name: &str) -> Result<Option<NetConf>, ConfError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ConfError::ReadDir { dir: dir.to_path_buf(), source }),
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf" || x == "conflist" || x == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        // Others' broken files are theirs: only the one asked for must parse.
        let named = serde_json::from_str::<Value>(&text).ok().is_some_and(|v| v["name"] == name);
        if named {
            return NetConf::parse(&text, &path).map(Some);
        }
    }
    Ok(None)
}

/// One container on one network: what every plugin call for it carries.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub plugins_dir: &'a Path,
    pub container_id: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
    /// `runtimeConfig.portMappings` for plugins with that capability.
    pub port_mappings: &'a [Value],
}

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error(
        "CNI plugin {plugin:?} is not in {dir} (Debian: apt-get install containernetworking-plugins; or --network-cni-plugins-dir)"
    )]
    Missing { plugin: String, dir: PathBuf },
    #[error("CNI plugin {plugin:?} ({command}): {message}")]
    Failed { plugin: String, command: &'static str, message: String },
}

const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// ADD: each plugin in order, each given the previous one's result; the last result.
pub async fn add(conf: &NetConf, inv: &Invocation<'_>) -> Result<Value, CniError> {
    let mut prev: Option<Value> = None;
    for plugin in &conf.plugins {
        let out = run(conf, plugin, "ADD", inv, prev.as_ref()).await?;
        prev = Some(out);
    }
    Ok(prev.unwrap_or(Value::Null))
}

/// DEL: each plugin in reverse order, given ADD's result; every plugin runs
/// even if one fails, and the failures are returned.
pub async fn del(conf: &NetConf, inv: &Invocation<'_>, result: Option<&Value>) -> Vec<CniError> {
    let mut failures = Vec::new();
    for plugin in conf.plugins.iter().rev() {
        if let Err(e) = run(conf, plugin, "DEL", inv, result).await {
            failures.push(e);
        }
    }
    failures
}

async fn run(
    conf: &NetConf,
    plugin: &Value,
    command: &'static str,
    inv: &Invocation<'_>,
    prev: Option<&Value>,
) -> Result<Value, CniError> {
    let kind = plugin["type"].as_str().unwrap_or_default().to_owned();
    let program = inv.plugins_dir.join(&kind);
    if !program.is_file() {
        return Err(CniError::Missing { plugin: kind, dir: inv.plugins_dir.to_owned() });
    }
    let mut config = plugin.clone();
    config["name"] = json!(conf.name);
    config["cniVersion"] = json!(conf.cni_version);
    if plugin["capabilities"]["portMappings"] == json!(true) && !inv.port_mappings.is_empty() {
        config["runtimeConfig"] = json!({ "portMappings": inv.port_mappings });
    }
    if let Some(prev) = prev {
        config["prevResult"] = prev.clone();
    }
    let failed = |message: String| CniError::Failed { plugin: kind.clone(), command, message };
    let mut child = tokio::process::Command::new(&program)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", inv.container_id)
        .env("CNI_NETNS", inv.netns)
        .env("CNI_IFNAME", inv.ifname)
        .env("CNI_PATH", inv.plugins_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("cannot run {}: {e}", program.display())))?;
    let input = serde_json::to_vec(&config).expect("json");
    let mut stdin = child.stdin.take().expect("piped");
    let writing = async move {
        use tokio::io::AsyncWriteExt as _;
        let _ = stdin.write_all(&input).await;
    };
    let (_, output) = tokio::time::timeout(PLUGIN_TIMEOUT, async { tokio::join!(writing, child.wait_with_output()) })
        .await
        .map_err(|_| failed(format!("no answer within {} s", PLUGIN_TIMEOUT.as_secs())))?;
    let output = output.map_err(|e| failed(e.to_string()))?;
    let stdout: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    if !output.status.success() {
        // The spec's error object; else whatever the plugin said.
        let message = match stdout["msg"].as_str() {
            Some(msg) => match stdout["details"].as_str().filter(|d| !d.is_empty()) {
                Some(details) => format!("{msg}: {details}"),
                None => msg.to_owned(),
            },
            None => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        };
        return Err(failed(message));
    }
    Ok(stdout)
}

/// The first IPv4 address and gateway of an ADD result.
pub fn first_ipv4(result: &Value) -> Option<(std::net::Ipv4Addr, Option<std::net::Ipv4Addr>)> {
    result["ips"].as_array()?.iter().find_map(|ip| {
        let address = ip["address"].as_str()?.split('/').next()?.parse().ok()?;
        Some((address, ip["gateway"].as_str().and_then(|g| g.parse().ok())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conf_is_a_list_of_one_and_bad_types_are_refused_by_name() {
        let one = NetConf::parse(r#"{"name":"n","type":"bridge"}"#, Path::new("/x/n.conf")).unwrap();
        assert_eq!((one.name.as_str(), one.plugins.len(), one.cni_version.as_str()), ("n", 1, "1.0.0"));
        let bad = NetConf::parse(r#"{"name":"n","plugins":[{"type":"../../bin/sh"}]}"#, Path::new("/x/n.conflist"));
        assert!(bad.unwrap_err().to_string().contains("/x/n.conflist: plugins[0].type"));
        assert!(NetConf::parse(r#"{"plugins":[]}"#, Path::new("f")).unwrap_err().to_string().contains("no \"name\""));
    }

    #[test]
    fn a_result_gives_its_first_ipv4() {
        let r = json!({"ips":[{"address":"10.90.3.2/24","gateway":"10.90.3.1"}]});
        assert_eq!(first_ipv4(&r), Some(("10.90.3.2".parse().unwrap(), Some("10.90.3.1".parse().unwrap()))));
    }

    #[tokio::test]
    async fn a_missing_plugin_names_the_package() {
        let conf = NetConf::parse(r#"{"name":"n","type":"no-such-plugin"}"#, Path::new("n.conf")).unwrap();
        let inv = Invocation {
            plugins_dir: Path::new("/nonexistent"),
            container_id: "c",
            netns: Path::new("/nonexistent/ns"),
            ifname: "eth0",
            port_mappings: &[],
        };
        let e = add(&conf, &inv).await.unwrap_err().to_string();
        assert!(e.contains("no-such-plugin") && e.contains("containernetworking-plugins"), "{e}");
    }
}
