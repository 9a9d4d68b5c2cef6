//! Compose projects to specs: docker/compose's own fixtures and the examples
//! translate, or fail naming the key; the keys land where they should.

use std::path::{Path, PathBuf};

#[path = "../../compose/tests/support/mod.rs"]
mod support;

use compose::{ContainerType, Env, SourceFile, load};
use framework::spec::*;
use framework::translate::{Settings, translate};

fn settings() -> Settings {
    Settings {
        project_dir: PathBuf::from("/srv/proj"),
        volumes_dir: PathBuf::from("/var/lib/m3s/volumes"),
        ..Settings::default()
    }
}

fn project(text: &str) -> compose::Project {
    load(&[SourceFile::new("compose.yaml", text)], &Env::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn one(text: &str) -> ServiceSpec {
    let t = translate("p", &project(text), &settings()).unwrap_or_else(|e| panic!("{e:?}"));
    t.spec.services.into_values().next().unwrap()
}

#[test]
fn every_loadable_fixture_translates_or_names_the_key() {
    let files = support::yaml_files(&support::fixtures_dir());
    let mut translated = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let Ok(p) = load(&[SourceFile::new(f.display().to_string(), text)], &Env::default()) else { continue };
        match translate("fixture", &p, &settings()) {
            Ok(_) => translated += 1,
            Err(problems) => {
                for pr in problems {
                    assert!(pr.path.starts_with("services."), "{}: {pr}", f.display());
                }
            }
        }
    }
    assert!(translated > 30, "only {translated} fixtures translated");
}

#[test]
fn the_examples_translate() {
    for name in ["stack", "data-science"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name).join("compose.yaml");
        let env = Env::new(
            [("MINIO_ROOT_PASSWORD", "x"), ("JUPYTER_TOKEN", "t")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let p = load(&[SourceFile::new(path.display().to_string(), std::fs::read_to_string(&path).unwrap())], &env)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let t = translate(name, &p, &settings()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(!t.spec.services.is_empty());
    }
}

#[test]
fn a_service_without_image_is_a_host_process_and_one_with_an_image_a_docker_task() {
    let host = one("services:\n  a:\n    command: echo hi\n");
    assert!(matches!(host.run.container, ContainerSpec::Host { .. }));
    assert_eq!(host.run.command, Some(CommandSpec::Shell("echo hi".into())));
    assert_eq!(host.task_name, "p_a");
    let docker = one("services:\n  a:\n    image: nginx\n");
    let ContainerSpec::Docker(ref i) = docker.run.container else { panic!("{docker:?}") };
    assert_eq!((i.image.as_str(), i.network.as_str()), ("nginx", ""));
    assert_eq!(i.networks[0].name, "p_default", "the project's default network, as docker compose makes it");
    let mesos = one("services:\n  a:\n    image: nginx\n    container_type: mesos\n");
    assert!(matches!(mesos.run.container, ContainerSpec::MesosImage(_)));
    let mut s = settings();
    s.default_container = ContainerType::Mesos;
    let t = translate("p", &project("services:\n  a:\n    image: nginx\n"), &s).unwrap();
    assert!(matches!(t.spec.services["a"].run.container, ContainerSpec::MesosImage(_)));
}

#[test]
fn services_join_their_networks_under_the_names_docker_compose_gives_them() {
    let p = project(
        r#"
services:
  web:
    image: nginx
    hostname: front
    networks:
      front: {aliases: [www]}
      back: {}
    ports: ["127.0.0.1:8088:80", "9000:9000/udp"]
    dns: [10.0.0.53]
    dns_search: example.test
    extra_hosts: ["db.local:10.1.2.3", "host.docker.internal=host-gateway"]
  app:
    image: nginx
    container_name: the-app
    links: ["web:portal"]
    networks: [back]
  host:
    image: nginx
    network_mode: host
  shared:
    image: nginx
    network_mode: "service:web"
networks:
  front:
    ipam: {config: [{subnet: 10.77.0.0/24, gateway: 10.77.0.254, ip_range: 10.77.0.128/25}]}
  back:
    internal: true
  outside:
    external: true
    name: corp-net
"#,
    );
    let problems = translate("p", &p, &settings()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "services.shared.network_mode");
    let mut p = p;
    p.services.remove("shared");
    let t = translate("p", &p, &settings()).unwrap();
    let image = |name: &str| match &t.spec.services[name].run.container {
        ContainerSpec::Docker(i) => i.clone(),
        other => panic!("{other:?}"),
    };
    let web = image("web");
    let names: Vec<&str> = web.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["p_back", "p_front"]);
    let front = &web.networks[1];
    assert_eq!(front.names, ["web", "web.p", "front", "www", "portal"]);
    assert_eq!(
        (front.subnet.as_deref(), front.gateway.as_deref(), front.ip_range.as_deref()),
        (Some("10.77.0.0/24"), Some("10.77.0.254"), Some("10.77.0.128/25"))
    );
    assert!(web.networks[0].internal);
    let ports = &t.spec.services["web"].ports;
    assert_eq!((ports[0].host_port, ports[0].host_ip.as_deref()), (Some(8088), Some("127.0.0.1")));
    assert_eq!((ports[1].protocol.as_str(), ports[1].host_ip.as_deref()), ("udp", None));
    let params: Vec<(&str, &str)> = web.parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for want in [
        ("dns", "10.0.0.53"),
        ("dns-search", "example.test"),
        ("add-host", "db.local:10.1.2.3"),
        ("add-host", "host.docker.internal=host-gateway"),
    ] {
        assert!(params.contains(&want), "{want:?} in {params:?}");
    }
    let app = image("app");
    assert_eq!(app.networks[0].names, ["app", "app.p", "the-app"]);
    assert_eq!((image("host").network.as_str(), image("host").networks.len()), ("host", 0));
    assert!(!t.warnings.iter().any(|w| w.path.contains("links")), "links are applied: {:?}", t.warnings);
}

#[test]
fn nothing_to_run_is_an_error_naming_the_service() {
    // The loader already refuses it; translation refuses it too (a project built in code).
    let text = "services:\n  a:\n    environment: {A: b}\n";
    let err = load(&[SourceFile::new("compose.yaml", text)], &Env::default()).unwrap_err();
    assert!(err.to_string().contains("services.a") && err.to_string().contains("nothing to run"), "{err}");
    let mut p = project("services:\n  a:\n    command: x\n");
    p.services.get_mut("a").unwrap().command = None;
    let err = translate("p", &p, &settings()).unwrap_err();
    assert_eq!(err[0].path, "services.a");
    assert!(err[0].message.contains("nothing to run"), "{}", err[0]);
}

#[test]
fn resources_reservations_limits_and_defaults() {
    let s = one("services:\n  a:\n    command: x\n");
    assert_eq!((s.resources.cpus, s.resources.mem_mb), (0.1, 50.0));
    let s = one(
        "services:\n  a:\n    command: x\n    deploy:\n      resources:\n        limits: {cpus: '2', memory: 1G}\n        reservations: {cpus: '0.5', memory: 256M}\n",
    );
    assert_eq!((s.resources.cpus, s.resources.mem_mb), (0.5, 256.0));
    assert_eq!((s.resources.cpus_limit, s.resources.mem_limit_mb), (Some(2.0), Some(1024.0)));
    let s = one("services:\n  a:\n    command: x\n    cpus: 1.5\n    mem_limit: 512m\n");
    assert_eq!((s.resources.cpus, s.resources.mem_mb), (1.5, 512.0));
}

#[test]
fn ports_fixed_and_dynamic() {
    let s = one(
        "services:\n  a:\n    command: x\n    ports: [\"8080:80\", \"9000\", \"127.0.0.1:7000-7001:7000-7001/udp\"]\n",
    );
    let got: Vec<(u16, Option<u16>, &str)> =
        s.ports.iter().map(|p| (p.container_port, p.host_port, p.protocol.as_str())).collect();
    assert_eq!(
        got,
        [(80, Some(8080), "tcp"), (9000, None, "tcp"), (7000, Some(7000), "udp"), (7001, Some(7001), "udp")]
    );
    assert_eq!(s.ports[0].name, "p_a_80");
}

#[test]
fn restart_policies_from_restart_and_deploy() {
    assert_eq!(
        one("services:\n  a:\n    command: x\n").restart.when,
        RestartWhen::Always,
        "mesos-compose's default: unless-stopped"
    );
    let s = one("services:\n  a:\n    command: x\n    restart: on-failure:4\n");
    assert_eq!((s.restart.when, s.restart.max_attempts), (RestartWhen::OnFailure, Some(4)));
    assert_eq!(one("services:\n  a:\n    command: x\n    restart: \"no\"\n").restart.when, RestartWhen::Never);
    let s = one(
        "services:\n  a:\n    command: x\n    deploy:\n      restart_policy: {condition: any, delay: 30s, max_attempts: 2, window: 1m}\n",
    );
    assert_eq!(
        s.restart,
        RestartSpec { when: RestartWhen::Always, delay_ms: 30_000, max_attempts: Some(2), window_ms: Some(60_000) }
    );
}

#[test]
fn healthchecks_dependencies_and_kill_policy() {
    let t = translate(
        "p",
        &project(
            "services:
  db:
    command: x
    healthcheck: {test: [\"CMD-SHELL\", \"pg_isready\"], interval: 2s, timeout: 1s, retries: 5, start_period: 10s}
    stop_grace_period: 20s
  web:
    command: y
    depends_on: {db: {condition: service_healthy}}
",
        ),
        &settings(),
    )
    .unwrap();
    let db = &t.spec.services["db"];
    let h = db.health.as_ref().unwrap();
    assert_eq!(h.command, CommandSpec::Shell("pg_isready".into()));
    assert_eq!((h.interval_seconds, h.timeout_seconds, h.retries, h.start_period_seconds), (2.0, 1.0, 5, 10.0));
    assert_eq!(db.kill_grace_seconds, Some(20.0));
    assert_eq!(t.spec.services["web"].depends_on["db"], DependCondition::ServiceHealthy);
}

#[test]
fn volumes_bind_named_and_tmpfs() {
    let t = translate(
        "p",
        &project("services:\n  a:\n    image: x\n    volumes: [\"./conf:/etc/conf:ro\", \"data:/data\", {type: tmpfs, target: /tmp}]\nvolumes:\n  data: {}\n"),
        &settings(),
    )
    .unwrap();
    let ContainerSpec::Docker(image) = &t.spec.services["a"].run.container else { panic!() };
    assert_eq!(
        image.volumes[0],
        VolumeSpec {
            host_path: "/srv/proj/./conf".into(),
            container_path: "/etc/conf".into(),
            read_only: true,
            content: None
        }
    );
    assert_eq!(image.volumes[1].host_path, "/var/lib/m3s/volumes/p_data");
    assert_eq!(image.volumes.len(), 2);
    assert!(t.warnings.iter().any(|w| w.path == "services.a.volumes[2]" && w.message.contains("tmpfs")));
}

#[test]
fn mesos_compose_extensions() {
    let s = one("services:
  a:
    command: /bin/app
    arguments: [\"--port\", \"80\"]
    mesos:
      task_name: custom
      fetch: [{value: \"http://example.invalid/a.tgz\", extract: false}]
");
    assert_eq!(s.task_name, "custom");
    assert_eq!(s.run.command, Some(CommandSpec::Exec(vec!["/bin/app".into(), "--port".into(), "80".into()])));
    assert_eq!(s.run.fetch[0].uri, "http://example.invalid/a.tgz");
    assert!(!s.run.fetch[0].extract);
}
