//! A cluster, and where its datastore and first server run, as the engine's
//! project: services `datastore`, `server` and `agent`, each gated on the one
//! before being healthy. Pure.
//!
//! The servers need the datastore's address and the agents a server's, which
//! exist only once those tasks run: the controller plans again when they
//! appear, and the engine replaces what the new plan changes.
//!
//! Ports are taken from offers, and a task learns them from `M3S_PORT_<n>`; its
//! task id (its node's name and label) from `MESOS_TASK_ID`. A fixed script,
//! never built from request data, adds them to the command line: user
//! arguments reach it as separate arguments (`"$@"`), never as shell text.

use std::collections::BTreeMap;

use framework::spec::{
    CommandSpec, ContainerSpec, DependCondition, FetchSpec, ImageSpec, PortSpec, ProjectSpec, ResourceSpec,
    RestartSpec, RestartWhen, RunSpec, ServiceSpec,
};

use crate::cluster::{ClusterSpec, Datastore, Program, Role};

/// Where the parts a later role joins run, as far as known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// `http://host:port` of the running etcd.
    pub datastore: Option<String>,
    /// `https://host:port` of a running server.
    pub server: Option<String>,
}

/// The kubeconfig a server writes, relative to its sandbox.
pub const KUBECONFIG_FILE: &str = "kubeconfig.yaml";

const ETCD_SCRIPT: &str = r#"host="${HOST:-$(hostname)}"
exec "$0" "$@" --listen-client-urls "http://0.0.0.0:$M3S_PORT_2379" --advertise-client-urls "http://$host:$M3S_PORT_2379" --listen-peer-urls "http://127.0.0.1:$M3S_PORT_2380" --initial-advertise-peer-urls "http://127.0.0.1:$M3S_PORT_2380" --initial-cluster "default=http://127.0.0.1:$M3S_PORT_2380""#;

const SERVER_SCRIPT: &str = r#"exec "$0" "$@" --https-port "$M3S_PORT_6443" --tls-san "${HOST:-$(hostname)}" --node-name "$MESOS_TASK_ID" --node-label "m3s.aventer.biz/taskid=$MESOS_TASK_ID""#;

const AGENT_SCRIPT: &str =
    r#"exec "$0" "$@" --node-name "$MESOS_TASK_ID" --node-label "m3s.aventer.biz/taskid=$MESOS_TASK_ID""#;

/// The engine's name of a cluster's project.
pub fn project_name(cluster: &str) -> String {
    cluster.to_owned()
}

pub fn project(cluster: &ClusterSpec, token: &str, seen: &Seen) -> ProjectSpec {
    let mut services = BTreeMap::new();
    if cluster.datastore == Datastore::Etcd {
        services.insert(Role::Datastore.service().to_owned(), datastore(cluster));
    }
    services.insert(Role::Server.service().to_owned(), server(cluster, token, seen));
    services.insert(Role::Agent.service().to_owned(), agent(cluster, token, seen));
    ProjectSpec { name: project_name(&cluster.name), services }
}

fn datastore(cluster: &ClusterSpec) -> ServiceSpec {
    let data = format!("{}/{}/etcd", cluster.data_dir.trim_end_matches('/'), cluster.name);
    let (program, container, fetch) = program(&cluster.etcd, "etcd", false);
    let args = vec![program, "--name".into(), "default".into(), "--data-dir".into(), data];
    let mut s = service(cluster, Role::Datastore, wrapped(ETCD_SCRIPT, args), container, fetch);
    s.ports = vec![port(cluster, 2379, "client"), port(cluster, 2380, "peer")];
    s
}

fn server(cluster: &ClusterSpec, token: &str, seen: &Seen) -> ServiceSpec {
    let (program, container, fetch) = program(&cluster.k3s, "k3s", true);
    let mut args = vec![
        program,
        "server".into(),
        "--data-dir".into(),
        "data".into(),
        "--write-kubeconfig".into(),
        KUBECONFIG_FILE.into(),
        "--write-kubeconfig-mode".into(),
        "0600".into(),
    ];
    if cluster.taint_servers {
        args.extend(["--node-taint".into(), "node-role.kubernetes.io/control-plane=true:NoSchedule".into()]);
    }
    args.extend(cluster.server_args.iter().cloned());
    let mut s = service(cluster, Role::Server, wrapped(SERVER_SCRIPT, args), container, fetch);
    s.ports = vec![port(cluster, 6443, "api")];
    if cluster.datastore == Datastore::Etcd {
        s.depends_on.insert(Role::Datastore.service().into(), DependCondition::ServiceHealthy);
        if let Some(endpoint) = &seen.datastore {
            s.run.env.insert("K3S_DATASTORE_ENDPOINT".into(), endpoint.clone());
        }
    }
    s.run.secret_env.insert("K3S_TOKEN".into(), token.to_owned());
    s
}

fn agent(cluster: &ClusterSpec, token: &str, seen: &Seen) -> ServiceSpec {
    let (program, container, fetch) = program(&cluster.k3s, "k3s", true);
    let mut args = vec![program, "agent".into(), "--data-dir".into(), "data".into()];
    args.extend(cluster.agent_args.iter().cloned());
    let mut s = service(cluster, Role::Agent, wrapped(AGENT_SCRIPT, args), container, fetch);
    s.depends_on.insert(Role::Server.service().into(), DependCondition::ServiceHealthy);
    if let Some(url) = &seen.server {
        s.run.env.insert("K3S_URL".into(), url.clone());
    }
    s.run.secret_env.insert("K3S_TOKEN".into(), token.to_owned());
    s
}

/// `sh -c SCRIPT argv...`: the script is a constant; `$0` and `$@` are the argv.
fn wrapped(script: &str, argv: Vec<String>) -> CommandSpec {
    let mut command = vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()];
    command.extend(argv);
    CommandSpec::Exec(command)
}

/// What runs a program: its argv[0], the container, and what the agent fetches.
/// A fetched binary lands in the sandbox as `./<name>`, executable.
fn program(p: &Program, name: &str, fetched: bool) -> (String, ContainerSpec, Vec<FetchSpec>) {
    match p {
        Program::Binary(uri) if fetched => (
            format!("./{name}"),
            ContainerSpec::Host { volumes: Vec::new() },
            vec![FetchSpec {
                uri: uri.clone(),
                executable: true,
                extract: false,
                cache: false,
                output_file: Some(name.to_owned()),
            }],
        ),
        Program::Binary(path) => (path.clone(), ContainerSpec::Host { volumes: Vec::new() }, Vec::new()),
        // k3s in a container needs the host's kernel interfaces (mesos-m3s runs it privileged).
        Program::Image(image) => (
            name.to_owned(),
            ContainerSpec::MesosImage(ImageSpec {
                image: image.clone(),
                network: "host".into(),
                privileged: true,
                ..Default::default()
            }),
            Vec::new(),
        ),
    }
}

fn port(cluster: &ClusterSpec, container_port: u16, name: &str) -> PortSpec {
    PortSpec {
        container_port,
        host_port: None,
        protocol: "tcp".into(),
        name: format!("k3s-{}_{name}", cluster.name),
        host_ip: None,
    }
}

fn service(
    cluster: &ClusterSpec,
    role: Role,
    command: CommandSpec,
    container: ContainerSpec,
    fetch: Vec<FetchSpec>,
) -> ServiceSpec {
    let r = cluster.resources(role);
    // An image's own entrypoint (k3s's is `/bin/k3s`) would run before the script.
    let (command, entrypoint) = match (&container, command) {
        (ContainerSpec::MesosImage(_), CommandSpec::Exec(argv)) => (None, Some(argv)),
        (_, command) => (Some(command), None),
    };
    ServiceSpec {
        replicas: cluster.count(role),
        task_name: format!("k3s-{}-{}", cluster.name, role.service()),
        run: RunSpec {
            command,
            entrypoint,
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            user: None,
            working_dir: None,
            container,
            fetch,
            executor_command: None,
        },
        resources: ResourceSpec {
            cpus: r.cpus,
            mem_mb: r.mem_mb,
            disk_mb: r.disk_mb,
            gpus: 0.0,
            cpus_limit: None,
            mem_limit_mb: None,
        },
        ports: Vec::new(),
        health: None,
        external_health: true,
        restart: RestartSpec { when: RestartWhen::Always, delay_ms: 2000, max_attempts: None, window_ms: None },
        depends_on: BTreeMap::new(),
        placement: Vec::new(),
        max_per_node: None,
        labels: BTreeMap::from([("m3s.k3s.cluster".to_owned(), cluster.name.clone())]),
        kill_grace_seconds: Some(10.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{CreateRequest, Settings, TASK_ID_LABEL};

    fn cluster(servers: u32, datastore: Datastore) -> ClusterSpec {
        let mut settings = Settings::new("/var/lib/m3s/k3s");
        settings.k3s = Some(Program::Binary("https://example.invalid/k3s".into()));
        ClusterSpec::from_request(
            CreateRequest {
                name: "demo".into(),
                servers: Some(servers),
                agents: Some(2),
                datastore: Some(datastore),
                agent_args: Some(vec!["--kubelet-arg=max-pods=50; rm -rf /".into()]),
                ..Default::default()
            },
            &settings,
        )
        .unwrap()
    }

    fn argv(s: &ServiceSpec) -> &[String] {
        match (&s.run.command, &s.run.entrypoint) {
            (Some(CommandSpec::Exec(v)), None) | (None, Some(v)) => v,
            other => panic!("not one argv: {other:?}"),
        }
    }

    #[test]
    fn the_roles_start_in_order_each_gated_on_health() {
        let p = project(&cluster(3, Datastore::Etcd), "tok", &Seen::default());
        assert_eq!(framework::engine::start_order(&p), ["datastore", "server", "agent"]);
        let ds = &p.services["datastore"];
        assert_eq!(ds.replicas, 1);
        assert!(ds.external_health && p.services.values().all(|s| s.external_health));
        assert_eq!(p.services["server"].depends_on["datastore"], DependCondition::ServiceHealthy);
        assert_eq!(p.services["agent"].depends_on["server"], DependCondition::ServiceHealthy);
        assert_eq!(p.services["server"].replicas, 3);
        assert!(argv(ds).contains(&"/var/lib/m3s/k3s/demo/etcd".to_owned()), "{:?}", argv(ds));
        assert_eq!(ds.ports.iter().map(|p| p.container_port).collect::<Vec<_>>(), [2379, 2380]);
    }

    #[test]
    fn endpoints_and_the_token_reach_the_tasks_once_known() {
        let c = cluster(1, Datastore::Etcd);
        let before = project(&c, "tok", &Seen::default());
        assert!(!before.services["server"].run.env.contains_key("K3S_DATASTORE_ENDPOINT"));
        let seen = Seen { datastore: Some("http://h:31000".into()), server: Some("https://h:31002".into()) };
        let after = project(&c, "tok", &seen);
        assert_eq!(after.services["server"].run.env["K3S_DATASTORE_ENDPOINT"], "http://h:31000");
        assert_eq!(after.services["agent"].run.env["K3S_URL"], "https://h:31002");
        for role in ["server", "agent"] {
            let s = &after.services[role];
            assert_eq!(s.run.secret_env["K3S_TOKEN"], "tok");
            assert!(!s.run.env.values().any(|v| v.contains("tok")), "the token is never a plain variable");
        }
        assert_ne!(before.services["agent"], after.services["agent"], "a new server address replaces agents");
    }

    #[test]
    fn user_arguments_are_arguments_never_shell_text() {
        let p = project(&cluster(1, Datastore::Embedded), "tok", &Seen::default());
        assert!(!p.services.contains_key("datastore"));
        let agent = argv(&p.services["agent"]);
        assert_eq!(&agent[..2], ["/bin/sh", "-c"]);
        assert_eq!(agent[2], AGENT_SCRIPT, "the script is the constant");
        assert_eq!(agent.last().unwrap(), "--kubelet-arg=max-pods=50; rm -rf /");
        assert_eq!(&agent[3..5], ["./k3s", "agent"]);
        let server = &p.services["server"];
        assert_eq!(server.run.fetch[0].output_file.as_deref(), Some("k3s"));
        assert!(server.run.fetch[0].executable);
        assert!(argv(server).windows(2).any(|w| w[0] == "--node-taint"), "servers are tainted by default");
        assert!(SERVER_SCRIPT.contains(TASK_ID_LABEL) && AGENT_SCRIPT.contains(TASK_ID_LABEL));
    }

    #[test]
    fn an_image_runs_privileged_on_the_host_network() {
        let mut c = cluster(1, Datastore::Embedded);
        c.k3s = Program::Image("rancher/k3s:v1.31.5-k3s1".into());
        let p = project(&c, "tok", &Seen::default());
        let ContainerSpec::MesosImage(image) = &p.services["server"].run.container else { panic!("not an image") };
        assert!(image.privileged);
        assert_eq!(image.network, "host");
        assert!(p.services["server"].run.fetch.is_empty());
        assert_eq!(argv(&p.services["server"])[3], "k3s");
    }
}
