//! The keys that matter on Mesos: each is typed, and each mistake is an error
//! naming file, line, column and key path.

use compose::*;

fn load_one(text: &str) -> Result<Project, Errors> {
    load(&[SourceFile::new("compose.yaml", text)], &Env::default())
}

fn svc(body: &str) -> Service {
    let text = format!("services:\n  web:\n{}", body.lines().map(|l| format!("    {l}\n")).collect::<String>());
    load_one(&text).unwrap_or_else(|e| panic!("{e}")).services.remove("web").unwrap()
}

fn svc_errors(body: &str) -> Vec<String> {
    let text = format!("services:\n  web:\n{}", body.lines().map(|l| format!("    {l}\n")).collect::<String>());
    load_one(&text).expect_err("must fail").0.iter().map(|d| d.to_string()).collect()
}

#[test]
fn containers_capabilities_and_privileges() {
    let s = svc(
        "image: x\ncontainer_type: docker\ncontainer_name: one\nprivileged: true\ncap_add: [NET_ADMIN, SYS_TIME]\ncap_drop: [MKNOD]\npull_policy: always",
    );
    assert_eq!(s.container_type, Some(ContainerType::Docker));
    assert_eq!(s.container_name.as_deref(), Some("one"));
    assert!(s.privileged);
    assert_eq!(s.cap_add, ["NET_ADMIN", "SYS_TIME"]);
    assert_eq!(s.cap_drop, ["MKNOD"], "cap_drop is kept beside cap_add");
    assert_eq!(s.pull_policy.as_deref(), Some("always"));
    let e = svc_errors("image: x\ncontainer_type: podman");
    assert_eq!(e, [r#"compose.yaml:4:21: services.web.container_type: "podman" is not one of docker, mesos"#]);
    let e = svc_errors("image: x\npull_policy: sometimes");
    assert!(e[0].starts_with("compose.yaml:4:18: services.web.pull_policy:"), "{e:?}");
    let e = svc_errors("image: x\ncontainer_name: one\ndeploy: {replicas: 2}");
    assert!(e[0].contains("services.web.container_name") && e[0].contains("single replica"), "{e:?}");
}

#[test]
fn networks_and_network_mode() {
    let s = svc("image: x\nnetwork_mode: host");
    assert_eq!(s.network_mode.as_deref(), Some("host"));
    let s = svc("image: x\nnetwork: bridge");
    assert_eq!(s.network_mode.as_deref(), Some("bridge"), "mesos-compose's `network`");
    let e = svc_errors("image: x\nnetwork_mode: host\nnetwork: bridge");
    assert!(e[0].contains("compose.yaml:5:5: services.web.network") && e[0].contains("disagree"), "{e:?}");
    let p = load_one("services:\n  web:\n    image: x\n    networks:\n      front: {aliases: [www, web1]}\n      back:\nnetworks:\n  front: {}\n  back: {}\n").unwrap();
    let nets = &p.services["web"].networks;
    assert_eq!(nets["front"].aliases, ["www", "web1"]);
    assert!(nets["back"].aliases.is_empty());
    let p = load_one("services:\n  web:\n    image: x\n    networks: [a, b]\nnetworks: {a: {}, b: {}}\n").unwrap();
    assert_eq!(p.services["web"].networks.keys().collect::<Vec<_>>(), ["a", "b"]);
    let e = svc_errors("image: x\nnetworks: [default, a]");
    assert_eq!(
        e,
        [
            r#"compose.yaml:4:25: services.web.networks: refers to undefined network "a" (declare it under the top-level networks)"#
        ]
    );
}

#[test]
fn ulimits_short_and_long() {
    let s = svc("image: x\nulimits:\n  nproc: 65535\n  nofile: {soft: 20000, hard: 40000}");
    assert_eq!(s.ulimits["nproc"], Ulimit { soft: 65535, hard: 65535 });
    assert_eq!(s.ulimits["nofile"], Ulimit { soft: 20000, hard: 40000 });
    let e = svc_errors("image: x\nulimits:\n  nofile: {soft: 2, hard: 1}");
    assert_eq!(e, ["compose.yaml:5:15: services.web.ulimits.nofile: soft limit 2 is above the hard limit 1"]);
    let e = svc_errors("image: x\nulimits:\n  nofile: {soft: 2}");
    assert!(e[0].contains("services.web.ulimits.nofile: needs both soft and hard"), "{e:?}");
}

#[test]
fn gpus_from_the_key_and_from_device_reservations() {
    assert_eq!(svc("image: x\ngpus: all").gpus, Some(Gpus { count: None, driver: None }));
    let s = svc("image: x\ngpus:\n  - driver: nvidia\n    count: 2");
    assert_eq!(s.gpus, Some(Gpus { count: Some(2), driver: Some("nvidia".into()) }));
    let s = svc(
        "image: x\ndeploy:\n  resources:\n    reservations:\n      devices:\n        - capabilities: [gpu]\n          count: 1\n          driver: amd",
    );
    assert_eq!(s.gpus, Some(Gpus { count: Some(1), driver: Some("amd".into()) }));
    let s = svc("image: x\ndeploy:\n  resources:\n    reservations:\n      devices:\n        - capabilities: [tpu]");
    assert_eq!(s.gpus, None);
}

#[test]
fn mesos_compose_extensions() {
    let s = svc(
        "command: /bin/app\narguments: [--port, '80']\nshell: false\nmesos:\n  task_name: app\n  executor:\n    command: ./executor\n  fetch:\n    - value: http://example.invalid/a.tgz\n      extract: true\n      executable: false\n    - http://example.invalid/b",
    );
    assert_eq!(s.arguments, ["--port", "80"]);
    assert_eq!(s.shell, Some(false));
    assert_eq!(s.mesos.task_name.as_deref(), Some("app"));
    assert_eq!(s.mesos.executor_command.as_deref(), Some("./executor"));
    assert_eq!(s.mesos.fetch.len(), 2);
    assert_eq!(s.mesos.fetch[0].extract, Some(true));
    assert_eq!(s.mesos.fetch[1].value, "http://example.invalid/b");
    let e = svc_errors("command: x\nmesos:\n  task: y");
    assert_eq!(e, ["compose.yaml:5:7: services.web.mesos.task: unknown key in mesos (task_name, executor, fetch)"]);
    let e = svc_errors("command: x\nmesos:\n  fetch:\n    - {extract: true}");
    assert!(e[0].contains("services.web.mesos.fetch[0]: needs a value"), "{e:?}");
}

#[test]
fn restart_policy_and_placement() {
    let s = svc(
        "image: x\ndeploy:\n  restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 120s}\n  placement:\n    constraints: ['node.hostname == a', 'node.labels.rack!=r2', 'node.platform.os==linux', unique]\n    attributes: ['zone: eu']\n    max_replicas_per_node: 1",
    );
    let r = s.deploy.restart_policy.unwrap();
    assert_eq!(r.condition, RestartCondition::OnFailure);
    assert_eq!(r.delay, Some(std::time::Duration::from_secs(5)));
    assert_eq!((r.max_attempts, r.window), (Some(3), Some(std::time::Duration::from_secs(120))));
    let c = &s.deploy.placement.constraints;
    assert_eq!(c[0], Constraint::Compare { field: ConstraintField::Hostname, equal: true, value: "a".into() });
    assert_eq!(
        c[1],
        Constraint::Compare { field: ConstraintField::Attribute("rack".into()), equal: false, value: "r2".into() }
    );
    assert_eq!(c[2], Constraint::Compare { field: ConstraintField::Os, equal: true, value: "linux".into() });
    assert_eq!(c[3], Constraint::Unique);
    assert_eq!(s.deploy.placement.attributes, [("zone".to_string(), "eu".to_string())]);
    assert_eq!(s.deploy.placement.max_replicas_per_node, Some(1));
    let e = svc_errors("image: x\ndeploy:\n  placement:\n    constraints: ['node.id==3']");
    assert!(
        e[0].starts_with("compose.yaml:6:23: services.web.deploy.placement.constraints[0]:")
            && e[0].contains("unknown field"),
        "{e:?}"
    );
    let e = svc_errors("image: x\ndeploy:\n  restart_policy: {condition: sometimes}");
    assert!(e[0].contains("services.web.deploy.restart_policy.condition"), "{e:?}");
    let e = svc_errors("image: x\ndeploy:\n  placement:\n    attributes: ['zone']");
    assert!(e[0].contains("services.web.deploy.placement.attributes[0]") && e[0].contains("key: value"), "{e:?}");
}
