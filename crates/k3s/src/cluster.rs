//! What a K3s cluster is: how many servers and agents, where its state lives,
//! how k3s runs, and with which resources. Plain data and its checks.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The label every k3s node carries: the id of the Mesos task it runs in
/// (mesos-m3s's name, so that its tooling finds nodes as before).
pub const TASK_ID_LABEL: &str = "m3s.aventer.biz/taskid";

/// A cluster request or change that breaks the cluster's rules; the message
/// names the field and the rule.
/// A cluster definition file (`k3s/<name>.yaml`) that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ClusterFileError {
    #[error("{0}")]
    Yaml(#[from] serde_saphyr::Error),
    #[error("name: {given:?} differs from the file's name {file:?} (leave it out)")]
    OtherName { given: String, file: String },
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "cluster name {0:?} must be 1-30 lowercase letters, digits or '-', starting with a letter and not ending with '-'"
    )]
    Name(String),
    #[error("give k3s_binary or k3s_image, not both")]
    TwoPrograms,
    #[error("no k3s to run: pass --k3s-binary PATH|URL or --k3s-image IMAGE (to the request or to the framework)")]
    NoProgram,
    #[error("the k3s binary or image is empty")]
    EmptyProgram,
    #[error("cluster {0} needs at least one server while it runs (`shutdown` hibernates it)")]
    NoServer(String),
    #[error(
        "cluster {cluster}: {servers} servers need a shared datastore (datastore etcd); the embedded one serves one server"
    )]
    SharedDatastore { cluster: String, servers: u32 },
    #[error("{role} {resource} must be a number of at least {min}, not {value}")]
    Resource { role: Role, resource: &'static str, min: f64, value: f64 },
    #[error("unknown resource {0:?}: expected cpus, memory or disk")]
    UnknownResource(String),
    #[error("the datastore of cluster {cluster} is {what}: it is not scaled (it runs as long as the cluster exists)")]
    DatastoreNotScaled { cluster: String, what: &'static str },
    #[error("cluster {0} is hibernated; `start` it before scaling")]
    Hibernated(String),
    #[error("cluster {0} is already hibernated")]
    AlreadyHibernated(String),
    #[error("cluster {0} is not hibernated")]
    NotHibernated(String),
}

/// The three parts of a cluster, in start order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Datastore,
    Server,
    Agent,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Datastore, Role::Server, Role::Agent];

    /// The engine's service name for the role.
    pub fn service(self) -> &'static str {
        match self {
            Role::Datastore => "datastore",
            Role::Server => "server",
            Role::Agent => "agent",
        }
    }

    /// Reads a role as the APIs name it (mesos-m3s says `ds` for the datastore).
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "datastore" | "ds" => Some(Role::Datastore),
            "server" | "servers" => Some(Role::Server),
            "agent" | "agents" => Some(Role::Agent),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.service())
    }
}

/// Where the cluster's Kubernetes state lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datastore {
    /// An etcd task started before the servers (`DS_ETCD`); servers share it.
    Etcd,
    /// k3s's own SQLite inside the one server (no datastore task).
    Embedded,
}

/// How k3s (or etcd) is run: a binary fetched into the sandbox and run as a
/// host process, or an image run privileged on the host's network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Program {
    /// A URI the agent fetches (`http(s)://`, `file://` or an absolute path), or for
    /// etcd a path that exists on the agents.
    Binary(String),
    Image(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub cpus: f64,
    pub mem_mb: f64,
    pub disk_mb: f64,
}

impl Resources {
    fn check(&self, role: Role) -> Result<(), ClusterError> {
        for (resource, value, min) in
            [("cpus", self.cpus, 0.01), ("mem", self.mem_mb, 32.0), ("disk", self.disk_mb, 0.0)]
        {
            if !value.is_finite() || value < min {
                return Err(ClusterError::Resource { role, resource, min, value });
            }
        }
        Ok(())
    }
}

/// The framework's defaults (mesos-m3s's environment variables), from which
/// a cluster is made when its request leaves a field out.
#[derive(Clone, Debug)]
pub struct Settings {
    pub k3s: Option<Program>,
    pub etcd: Program,
    /// Where a datastore keeps its data on its agent (`<dir>/<cluster>/etcd`).
    pub data_dir: String,
    pub resources: BTreeMap<Role, Resources>,
    pub server_args: Vec<String>,
    pub agent_args: Vec<String>,
    pub taint_servers: bool,
    /// A node not Ready for this long has its task replaced (`K3S_NODE_TIMEOUT`).
    pub node_timeout_ms: u64,
    /// The replaced node's Kubernetes object is deleted this long after (`CLEANUP_WAIT`).
    pub cleanup_wait_ms: u64,
    /// The cluster mesos-m3s's single-cluster v0 API acts on.
    pub default_cluster: String,
}

impl Settings {
    /// mesos-m3s's defaults.
    pub fn new(data_dir: impl Into<String>) -> Settings {
        let resources = BTreeMap::from([
            (Role::Datastore, Resources { cpus: 0.5, mem_mb: 512.0, disk_mb: 1000.0 }),
            (Role::Server, Resources { cpus: 1.0, mem_mb: 2000.0, disk_mb: 1000.0 }),
            (Role::Agent, Resources { cpus: 2.0, mem_mb: 2000.0, disk_mb: 10000.0 }),
        ]);
        Settings {
            k3s: None,
            etcd: Program::Binary("/usr/bin/etcd".into()),
            data_dir: data_dir.into(),
            resources,
            server_args: Vec::new(),
            agent_args: Vec::new(),
            taint_servers: true,
            node_timeout_ms: 10 * 60 * 1000,
            cleanup_wait_ms: 5 * 60 * 1000,
            default_cluster: "m3s".into(),
        }
    }
}

/// Servers and agents of a cluster whose request leaves them out.
pub const DEFAULT_SERVERS: u32 = 1;
pub const DEFAULT_AGENTS: u32 = 1;

/// A request to create a cluster: what is left out comes from [`Settings`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CreateRequest {
    pub name: String,
    pub servers: Option<u32>,
    pub agents: Option<u32>,
    pub datastore: Option<Datastore>,
    /// `--k3s-binary`: a URI or path of the k3s binary.
    pub k3s_binary: Option<String>,
    /// `--k3s-image`: an image whose entrypoint is k3s.
    pub k3s_image: Option<String>,
    pub server_args: Option<Vec<String>>,
    pub agent_args: Option<Vec<String>>,
    pub taint_servers: Option<bool>,
}

impl CreateRequest {
    /// A cluster definition file (`servers: 1`, `agents: 2`, ...): the request's
    /// fields but `name`, which is the file's. Errors give the line and field.
    pub fn from_yaml(name: &str, text: &str) -> Result<CreateRequest, ClusterFileError> {
        let mut request: CreateRequest =
            if text.trim().is_empty() { CreateRequest::default() } else { serde_saphyr::from_str(text)? };
        if !request.name.is_empty() && request.name != name {
            return Err(ClusterFileError::OtherName { given: request.name, file: name.to_owned() });
        }
        request.name = name.to_owned();
        Ok(request)
    }
}

/// One cluster as the framework keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub name: String,
    pub servers: u32,
    pub agents: u32,
    pub datastore: Datastore,
    pub k3s: Program,
    pub etcd: Program,
    pub data_dir: String,
    pub resources: BTreeMap<Role, Resources>,
    pub server_args: Vec<String>,
    pub agent_args: Vec<String>,
    pub taint_servers: bool,
    /// Hibernated (`shutdown`): the servers' and agents' counts to restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hibernated: Option<(u32, u32)>,
}

/// Cluster names become task names, Kubernetes node names and file names:
/// lowercase letters, digits and `-`, starting with a letter, at most 30.
pub fn check_name(name: &str) -> Result<(), ClusterError> {
    let ok = !name.is_empty()
        && name.len() <= 30
        && name.as_bytes()[0].is_ascii_lowercase()
        && !name.ends_with('-')
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok { Ok(()) } else { Err(ClusterError::Name(name.to_owned())) }
}

impl ClusterSpec {
    pub fn from_request(request: CreateRequest, settings: &Settings) -> Result<ClusterSpec, ClusterError> {
        check_name(&request.name)?;
        let k3s = match (request.k3s_binary, request.k3s_image) {
            (Some(_), Some(_)) => return Err(ClusterError::TwoPrograms),
            (Some(uri), None) => Program::Binary(uri),
            (None, Some(image)) => Program::Image(image),
            (None, None) => settings.k3s.clone().ok_or(ClusterError::NoProgram)?,
        };
        let servers = request.servers.unwrap_or(DEFAULT_SERVERS);
        let datastore = request.datastore.unwrap_or(if servers > 1 { Datastore::Etcd } else { Datastore::Embedded });
        let spec = ClusterSpec {
            name: request.name,
            servers,
            agents: request.agents.unwrap_or(DEFAULT_AGENTS),
            datastore,
            k3s,
            etcd: settings.etcd.clone(),
            data_dir: settings.data_dir.clone(),
            resources: settings.resources.clone(),
            server_args: request.server_args.unwrap_or_else(|| settings.server_args.clone()),
            agent_args: request.agent_args.unwrap_or_else(|| settings.agent_args.clone()),
            taint_servers: request.taint_servers.unwrap_or(settings.taint_servers),
            hibernated: None,
        };
        spec.check()?;
        Ok(spec)
    }

    /// The cluster's own rules; every change goes through them.
    pub fn check(&self) -> Result<(), ClusterError> {
        check_name(&self.name)?;
        if self.hibernated.is_none() && self.servers == 0 {
            return Err(ClusterError::NoServer(self.name.clone()));
        }
        if self.datastore == Datastore::Embedded && self.servers > 1 {
            return Err(ClusterError::SharedDatastore { cluster: self.name.clone(), servers: self.servers });
        }
        if let Program::Binary(uri) | Program::Image(uri) = &self.k3s
            && uri.trim().is_empty()
        {
            return Err(ClusterError::EmptyProgram);
        }
        for role in Role::ALL {
            self.resources(role).check(role)?;
        }
        Ok(())
    }

    pub fn resources(&self, role: Role) -> Resources {
        self.resources.get(&role).copied().unwrap_or(Resources { cpus: 0.1, mem_mb: 128.0, disk_mb: 0.0 })
    }

    /// How many tasks of a role the cluster wants now.
    pub fn count(&self, role: Role) -> u32 {
        match role {
            Role::Datastore => u32::from(self.datastore == Datastore::Etcd),
            Role::Server => self.servers,
            Role::Agent => self.agents,
        }
    }

    /// Sets a role's count: datastore 0 or 1 only with etcd, servers at least one.
    pub fn scale(&mut self, role: Role, count: u32) -> Result<(), ClusterError> {
        if self.hibernated.is_some() {
            return Err(ClusterError::Hibernated(self.name.clone()));
        }
        match role {
            Role::Datastore => {
                let what = if self.datastore == Datastore::Etcd { "one etcd" } else { "embedded in the server" };
                return Err(ClusterError::DatastoreNotScaled { cluster: self.name.clone(), what });
            }
            Role::Server => self.servers = count,
            Role::Agent => self.agents = count,
        }
        self.check()
    }

    /// `shutdown`: servers and agents to zero, the counts remembered, the datastore kept.
    pub fn hibernate(&mut self) -> Result<(), ClusterError> {
        if self.hibernated.is_some() {
            return Err(ClusterError::AlreadyHibernated(self.name.clone()));
        }
        self.hibernated = Some((self.servers, self.agents));
        self.servers = 0;
        self.agents = 0;
        Ok(())
    }

    /// `start`: the counts from before `shutdown`.
    pub fn restore(&mut self) -> Result<(), ClusterError> {
        let (servers, agents) = self.hibernated.take().ok_or_else(|| ClusterError::NotHibernated(self.name.clone()))?;
        self.servers = servers;
        self.agents = agents;
        self.check()
    }

    /// Sets one resource of a role for the tasks started from now on.
    pub fn set_resource(&mut self, role: Role, resource: &str, value: f64) -> Result<(), ClusterError> {
        let mut r = self.resources(role);
        match resource {
            "cpus" => r.cpus = value,
            "memory" | "mem" => r.mem_mb = value,
            "disk" => r.disk_mb = value,
            other => return Err(ClusterError::UnknownResource(other.to_owned())),
        }
        r.check(role)?;
        self.resources.insert(role, r);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let mut s = Settings::new("/var/lib/m3s/k3s");
        s.k3s = Some(Program::Binary("file:///opt/k3s".into()));
        s
    }

    fn request(name: &str) -> CreateRequest {
        CreateRequest { name: name.into(), ..Default::default() }
    }

    #[test]
    fn a_request_takes_the_settings_and_picks_the_datastore() {
        let one = ClusterSpec::from_request(request("demo"), &settings()).unwrap();
        assert_eq!((one.servers, one.agents, one.datastore), (1, 1, Datastore::Embedded));
        assert_eq!(one.k3s, Program::Binary("file:///opt/k3s".into()));
        let ha = ClusterSpec::from_request(CreateRequest { servers: Some(3), ..request("ha") }, &settings()).unwrap();
        assert_eq!(ha.datastore, Datastore::Etcd);
        let err = ClusterSpec::from_request(
            CreateRequest { servers: Some(2), datastore: Some(Datastore::Embedded), ..request("x") },
            &settings(),
        )
        .unwrap_err();
        assert_eq!(err, ClusterError::SharedDatastore { cluster: "x".into(), servers: 2 });
        assert!(err.to_string().contains("datastore etcd"), "{err}");
        let err = ClusterSpec::from_request(request("demo"), &Settings::new("/d")).unwrap_err();
        assert!(err.to_string().contains("--k3s-binary"), "{err}");
    }

    #[test]
    fn names_that_cannot_be_node_names_are_refused() {
        for bad in ["", "Demo", "1st", "a_b", "a.b", "trailing-", &"x".repeat(31)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["demo", "a", "k8s-prod-2"] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn scaling_keeps_a_server_and_hibernation_remembers_the_counts() {
        let mut c = ClusterSpec::from_request(
            CreateRequest { servers: Some(1), agents: Some(2), datastore: Some(Datastore::Etcd), ..request("demo") },
            &settings(),
        )
        .unwrap();
        let err = c.clone().scale(Role::Server, 0).unwrap_err();
        assert!(err.to_string().contains("at least one server"), "{err}");
        assert!(matches!(c.clone().scale(Role::Datastore, 2), Err(ClusterError::DatastoreNotScaled { .. })));
        c.scale(Role::Agent, 3).unwrap();
        c.hibernate().unwrap();
        assert_eq!((c.servers, c.agents, c.count(Role::Datastore)), (0, 0, 1), "the datastore is kept");
        c.check().unwrap();
        assert_eq!(c.scale(Role::Agent, 1), Err(ClusterError::Hibernated("demo".into())));
        c.restore().unwrap();
        assert_eq!((c.servers, c.agents), (1, 3));
        assert!(c.restore().is_err());
    }

    #[test]
    fn resources_change_for_the_next_tasks_and_are_checked() {
        let mut c = ClusterSpec::from_request(request("demo"), &settings()).unwrap();
        c.set_resource(Role::Agent, "memory", 4096.0).unwrap();
        assert_eq!(c.resources(Role::Agent).mem_mb, 4096.0);
        assert!(c.set_resource(Role::Agent, "cpus", -1.0).unwrap_err().to_string().contains("agent cpus"));
        assert_eq!(c.set_resource(Role::Agent, "gpus", 1.0), Err(ClusterError::UnknownResource("gpus".into())));
    }
}
