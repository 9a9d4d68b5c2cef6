//! The Engine API's JSON, as far as m3s writes and reads it. Unknown fields
//! in answers are ignored; absent ones take their defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /containers/create`'s body.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreate {
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `"80/tcp"` → `{}`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    pub host_config: HostConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networking_config: Option<NetworkingConfig>,
}

/// `{}` in JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    pub network_mode: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    pub privileged: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Bytes; 0: unlimited.
    #[serde(skip_serializing_if = "is_zero")]
    pub memory: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub memory_reservation: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub memory_swap: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cpu_shares: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cpu_quota: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cpu_period: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
    /// Mount point → options.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    pub readonly_rootfs: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_config: Option<LogConfig>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    /// `volume` (a named Docker volume) or `bind`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeOptions {
    pub driver_config: DriverConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DriverConfig {
    pub name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
    pub host_port: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkingConfig {
    pub endpoints_config: BTreeMap<String, EndpointConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// A bridge network to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkCreate {
    pub name: String,
    /// No route out.
    pub internal: bool,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// `GET /containers/{id}/json`, the parts m3s reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerInspect {
    #[serde(rename = "Id")]
    pub id: String,
    pub name: String,
    pub state: ContainerState,
    pub config: InspectConfig,
    pub host_config: InspectHostConfig,
    pub network_settings: NetworkSettings,
}

/// The limits and privileges a container was given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectHostConfig {
    pub network_mode: String,
    pub privileged: bool,
    pub memory: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cap_add: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    /// created, running, paused, restarting, removing, exited or dead.
    pub status: String,
    pub running: bool,
    pub pid: i64,
    pub exit_code: i64,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub error: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectConfig {
    pub stop_signal: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSettings {
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    pub networks: Option<BTreeMap<String, EndpointState>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointState {
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
}

impl ContainerInspect {
    /// The container's first IPv4 address on any network (none in host mode).
    pub fn address(&self) -> Option<std::net::Ipv4Addr> {
        std::iter::once(&self.network_settings.ip_address)
            .chain(self.network_settings.networks.iter().flat_map(|n| n.values().map(|e| &e.ip_address)))
            .find_map(|a| a.parse().ok())
    }
}

/// One row of `GET /containers/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSummary {
    #[serde(rename = "Id")]
    pub id: String,
    /// With Docker's leading slash.
    pub names: Vec<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub state: String,
}

/// `GET /version`, the parts m3s shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Version {
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NetworkSummary {
    #[serde(rename = "Name")]
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Created {
    #[serde(rename = "Id")]
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Waited {
    #[serde(rename = "StatusCode")]
    pub status_code: i64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExecInspect {
    #[serde(rename = "ExitCode")]
    pub exit_code: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ApiMessage {
    pub message: String,
}

/// A line of a pull's, build's or push's progress stream.
#[derive(Debug, Deserialize)]
pub(crate) struct Progress {
    #[serde(default)]
    pub error: Option<String>,
    /// Build output.
    #[serde(default)]
    pub stream: Option<String>,
    /// Pull and push steps.
    #[serde(default)]
    pub status: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_body_has_docker_field_names_and_leaves_defaults_out() {
        let mut config = ContainerCreate { image: "busybox:1".into(), ..Default::default() };
        config.cmd = Some(vec!["sh".into()]);
        config.exposed_ports.insert("80/tcp".into(), Empty {});
        config.host_config.network_mode = "bridge".into();
        config.host_config.memory = 64 << 20;
        config
            .host_config
            .port_bindings
            .insert("80/tcp".into(), vec![PortBinding { host_ip: "127.0.0.1".into(), host_port: "8080".into() }]);
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "Image": "busybox:1", "Cmd": ["sh"], "ExposedPorts": {"80/tcp": {}},
                "HostConfig": {
                    "NetworkMode": "bridge", "Privileged": false, "ReadonlyRootfs": false, "Memory": 67108864,
                    "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
                },
            })
        );
    }

    #[test]
    fn inspect_answers_are_read_leniently() {
        let answer = r#"{"Id":"abc","Name":"/mesos-1","State":{"Status":"exited","Running":false,"Pid":0,
            "ExitCode":3,"OOMKilled":true,"Error":""},"Config":{"StopSignal":"SIGINT","Labels":null},
            "NetworkSettings":{"IPAddress":"","Networks":{"n":{"IPAddress":"10.1.2.3"}}},"Extra":1}"#;
        let c: ContainerInspect = serde_json::from_str(answer).unwrap();
        assert_eq!((c.state.exit_code, c.state.oom_killed), (3, true));
        assert_eq!(c.config.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.address(), Some("10.1.2.3".parse().unwrap()));
    }
}
