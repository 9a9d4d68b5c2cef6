//! Each key's accepted forms, and errors that name file, line, column and key path.

use std::time::Duration;

use compose::*;

fn env() -> Env {
    [("TAG", "1.2"), ("PORT", "8080"), ("REPLICAS", "3")].into_iter().collect()
}

fn ok(yaml: &str) -> Project {
    match load(&[SourceFile::new("compose.yaml", yaml)], &env()) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn svc(yaml: &str) -> Service {
    let p = ok(&format!("services:\n  web:\n{}", indent(yaml)));
    p.services["web"].clone()
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

fn errors(yaml: &str) -> Vec<String> {
    match load(&[SourceFile::new("compose.yaml", yaml)], &env()) {
        Ok(p) => panic!("loaded: {p:?}"),
        Err(e) => e.0.iter().map(|d| d.to_string()).collect(),
    }
}

fn svc_errors(yaml: &str) -> Vec<String> {
    errors(&format!("services:\n  web:\n{}", indent(yaml)))
}

#[test]
fn error_format_names_file_line_column_and_path() {
    let e = svc_errors("image: nginx\nports:\n  - 80\n  - \"80:x\"");
    assert_eq!(e, vec![r#"compose.yaml:6:9: services.web.ports[1]: invalid port "80:x": "x" is not a port number"#]);
}

#[test]
fn versions_and_extensions() {
    for v in ["version: '2.4'\n", "version: \"3.8\"\n", "version: 3\n", ""] {
        let p = ok(&format!(
            "{v}x-common: &c\n  image: busybox\nservices:\n  a:\n    <<: *c\n    x-meta: {{any: thing}}\n"
        ));
        assert_eq!(p.services["a"].image.as_deref(), Some("busybox"));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }
    let p = ok("version: '1'\nservices: {a: {image: x}}\n");
    assert!(p.warnings.iter().any(|w| w.path == "version"));
}

#[test]
fn merge_keys_override_order() {
    let p = ok(
        "x-d: &d\n  image: busybox\n  restart: always\n  environment: {A: '1'}\nservices:\n  a:\n    <<: *d\n    restart: \"no\"\n",
    );
    let a = &p.services["a"];
    assert_eq!(a.restart, Some(Restart::No));
    assert_eq!(a.environment["A"].as_deref(), Some("1"));
}

#[test]
fn interpolation_in_values_with_warnings_and_errors() {
    let p = ok(
        "services:\n  a:\n    image: \"busybox:${TAG}\"\n    ports: [\"${PORT}:80\"]\n    deploy: {replicas: \"${REPLICAS}\"}\n    command: echo $$HOME ${MISSING}\n",
    );
    let a = &p.services["a"];
    assert_eq!(a.image.as_deref(), Some("busybox:1.2"));
    assert_eq!(a.ports[0].published, Some(PortRange { start: 8080, end: 8080 }));
    assert_eq!(a.deploy.replicas, Some(3));
    assert_eq!(a.command, Some(Command::Shell("echo $HOME ".into())));
    let w: Vec<String> = p.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        w,
        vec![
            "compose.yaml:6:14: services.a.command: variable MISSING is not set, using the empty string",
            "compose.yaml:5:24: services.a.deploy.replicas: more than one replica with a fixed host port: on a single node only one can run",
        ]
    );
    let e = errors("services:\n  a:\n    image: ${IMG:?set IMG}\n");
    assert_eq!(e, vec!["compose.yaml:3:12: services.a.image: required variable IMG is not set: set IMG"]);
    // x- extensions are not interpolated
    ok("x-t: ${BROKEN\nservices: {a: {image: x}}\n");
}

#[test]
fn command_and_entrypoint() {
    let s = svc("image: x\ncommand: sh -c 'echo hi'\nentrypoint: [\"/bin/tini\", \"--\"]");
    assert_eq!(s.command, Some(Command::Shell("sh -c 'echo hi'".into())));
    assert_eq!(s.entrypoint, Some(Command::Exec(vec!["/bin/tini".into(), "--".into()])));
    let s = svc("command: [sleep, 10]");
    assert_eq!(s.command, Some(Command::Exec(vec!["sleep".into(), "10".into()])));
    let e = svc_errors("image: x\ncommand: {a: b}");
    assert!(e[0].contains("services.web.command: must be a string"), "{e:?}");
}

#[test]
fn environment_list_and_map() {
    let s = svc("image: x\nenvironment:\n  - A=1\n  - B=x=y\n  - C");
    assert_eq!(s.environment["A"].as_deref(), Some("1"));
    assert_eq!(s.environment["B"].as_deref(), Some("x=y"));
    assert_eq!(s.environment["C"], None);
    let s = svc("image: x\nenvironment:\n  A: 1\n  B: true\n  C:\n  D: 'str'");
    assert_eq!(s.environment["A"].as_deref(), Some("1"));
    assert_eq!(s.environment["B"].as_deref(), Some("true"));
    assert_eq!(s.environment["C"], None);
    assert_eq!(s.environment["D"].as_deref(), Some("str"));
    let e = svc_errors("image: x\nenvironment:\n  A: [1]");
    assert!(e[0].starts_with("compose.yaml:5:10: services.web.environment.A:"), "{e:?}");
}

#[test]
fn env_file_forms() {
    let s = svc("image: x\nenv_file: .env");
    assert_eq!(s.env_file, vec![EnvFile { path: ".env".into(), required: true }]);
    let s = svc("image: x\nenv_file:\n  - a.env\n  - path: b.env\n    required: false");
    assert_eq!(s.env_file[1], EnvFile { path: "b.env".into(), required: false });
}

#[test]
fn ports_short_syntax() {
    let s = svc(
        "image: x\nports:\n  - 80\n  - \"8080:80\"\n  - \"127.0.0.1:8081:81/udp\"\n  - \"127.0.0.1::82\"\n  - \"[::1]:8083:83\"\n  - \"9000-9001:9000-9001\"\n  - \"3000-3005:3000\"\n  - \"90/http\"",
    );
    let p = &s.ports;
    assert_eq!((p[0].target, p[0].published), (80, None));
    assert_eq!(p[1].published, Some(PortRange { start: 8080, end: 8080 }));
    assert_eq!((p[2].host_ip.as_deref(), p[2].protocol.as_str(), p[2].target), (Some("127.0.0.1"), "udp", 81));
    assert_eq!((p[3].host_ip.as_deref(), p[3].published), (Some("127.0.0.1"), None));
    assert_eq!((p[4].host_ip.as_deref(), p[4].target), (Some("::1"), 83));
    assert_eq!((p[5].target, p[5].published), (9000, Some(PortRange { start: 9000, end: 9000 })));
    assert_eq!((p[6].target, p[6].published), (9001, Some(PortRange { start: 9001, end: 9001 })));
    assert_eq!((p[7].target, p[7].published), (3000, Some(PortRange { start: 3000, end: 3005 })));
    assert_eq!(p[8].protocol, "http");
    for bad in ["\"0\"", "\"70000\"", "\"80/foo\"", "\"9000-9002:9000-9001\"", "\"a:b:c:d\""] {
        let e = svc_errors(&format!("image: x\nports:\n  - {bad}"));
        assert!(e[0].contains("services.web.ports[0]: invalid port"), "{e:?}");
    }
}

#[test]
fn ports_long_syntax() {
    let s = svc(
        "image: x\nports:\n  - target: 80\n    published: \"8080\"\n    host_ip: 0.0.0.0\n    protocol: tcp\n    mode: host\n    name: web\n    app_protocol: http\n  - target: 81\n    published: 9000-9010",
    );
    assert_eq!(
        s.ports[0],
        Port {
            target: 80,
            published: Some(PortRange { start: 8080, end: 8080 }),
            host_ip: Some("0.0.0.0".into()),
            protocol: "tcp".into(),
            mode: Some("host".into()),
            name: Some("web".into()),
            app_protocol: Some("http".into()),
        }
    );
    assert_eq!(s.ports[1].published, Some(PortRange { start: 9000, end: 9010 }));
    let e = svc_errors("image: x\nports:\n  - published: 80");
    assert!(e[0].contains("services.web.ports[0]: a port mapping needs a target"), "{e:?}");
    let e = svc_errors("image: x\nports:\n  - target: 80\n    mode: weird");
    assert!(e[0].contains("services.web.ports[0].mode:"), "{e:?}");
}

#[test]
fn volumes_short_and_long() {
    let y = "services:\n  web:\n    image: x\n    volumes:\n      - /data\n      - data:/var/lib/data\n      - ./src:/src:ro,z\n      - type: tmpfs\n        target: /tmp\n        tmpfs: {size: 64m}\n      - type: bind\n        source: /etc/hosts\n        target: /etc/hosts\n        read_only: true\n        bind: {create_host_path: true}\nvolumes:\n  data:\n";
    let v = ok(y).services["web"].volumes.clone();
    assert_eq!((v[0].kind, v[0].source.as_deref()), (MountType::Volume, None));
    assert_eq!((v[1].kind, v[1].source.as_deref()), (MountType::Volume, Some("data")));
    assert_eq!((v[2].kind, v[2].read_only, v[2].options.clone()), (MountType::Bind, true, vec!["z".to_string()]));
    assert_eq!((v[3].kind, v[3].tmpfs_size), (MountType::Tmpfs, Some(64 << 20)));
    assert_eq!((v[4].kind, v[4].read_only, v[4].create_host_path), (MountType::Bind, true, Some(true)));
    let e = svc_errors("image: x\nvolumes:\n  - data:relative");
    assert!(e[0].contains("services.web.volumes[0]: invalid volume"), "{e:?}");
    let e = svc_errors("image: x\nvolumes:\n  - undeclared:/x");
    assert_eq!(
        e,
        vec![
            r#"compose.yaml:5:9: services.web.volumes[0]: refers to undefined volume "undeclared" (declare it under the top-level volumes)"#
        ]
    );
    let e = svc_errors("image: x\nvolumes:\n  - type: bind\n    target: /x");
    assert!(e[0].contains("a bind mount needs a source"), "{e:?}");
}

#[test]
fn depends_on_list_and_map() {
    let p = ok(
        "services:\n  db: {image: pg}\n  cache: {image: redis}\n  job: {image: x}\n  web:\n    image: x\n    depends_on:\n      db: {condition: service_healthy}\n      cache: {condition: service_started, restart: true, required: false}\n      job: {condition: service_completed_successfully}\n  w2:\n    image: x\n    depends_on: [db]\n",
    );
    let d = &p.services["web"].depends_on;
    assert_eq!(d["db"].condition, Condition::ServiceHealthy);
    assert!(d["cache"].restart && !d["cache"].required);
    assert_eq!(d["job"].condition, Condition::ServiceCompletedSuccessfully);
    assert_eq!(p.services["w2"].depends_on["db"].condition, Condition::ServiceStarted);
    let e = errors("services:\n  web:\n    image: x\n    depends_on: [nope]\n");
    assert_eq!(e, vec![r#"compose.yaml:4:18: services.web.depends_on: depends on undefined service "nope""#]);
    let e = errors("services:\n  db: {image: x}\n  web:\n    image: x\n    depends_on: {db: {condition: healthy}}\n");
    assert!(e[0].contains("services.web.depends_on.db.condition: unknown condition"), "{e:?}");
}

#[test]
fn deploy_and_resources() {
    let s = svc(
        "image: x\ncpus: 0.5\nmem_limit: 512m\ndeploy:\n  replicas: 2\n  resources:\n    limits: {cpus: '1.5', memory: 1G}\n    reservations: {cpus: 0.25, memory: 128M}\n  placement: {constraints: ['node.hostname==a']}",
    );
    assert_eq!(s.deploy.replicas, Some(2));
    assert_eq!(s.deploy.resources.limits.cpus, Some(1.5));
    assert_eq!(s.deploy.resources.limits.memory, Some(1 << 30));
    assert_eq!(s.deploy.resources.reservations.memory, Some(128 << 20));
    assert_eq!(s.cpus, Some(0.5));
    assert_eq!(s.mem_limit, Some(512 << 20));
    assert_eq!(s.cpu_limit(), Some(1.5));
    assert_eq!(
        s.deploy.placement.constraints,
        vec![Constraint::Compare { field: ConstraintField::Hostname, equal: true, value: "a".into() }]
    );
    let s = svc("image: x\ncpus: 2\nmem_limit: 1073741824");
    assert_eq!((s.cpu_limit(), s.memory_limit()), (Some(2.0), Some(1 << 30)));
    let e = svc_errors("image: x\ndeploy:\n  replicas: -1");
    assert!(e[0].contains("services.web.deploy.replicas"), "{e:?}");
    let e = svc_errors("image: x\nmem_limit: 12zb");
    assert!(e[0].contains("services.web.mem_limit: invalid size"), "{e:?}");
}

#[test]
fn restart_policies() {
    for (v, want) in [
        ("\"no\"", Restart::No),
        ("always", Restart::Always),
        ("unless-stopped", Restart::UnlessStopped),
        ("on-failure", Restart::OnFailure { max_retries: None }),
        ("on-failure:3", Restart::OnFailure { max_retries: Some(3) }),
    ] {
        assert_eq!(svc(&format!("image: x\nrestart: {v}")).restart, Some(want));
    }
    let e = svc_errors("image: x\nrestart: sometimes");
    assert!(e[0].contains("services.web.restart: invalid restart policy"), "{e:?}");
}

#[test]
fn healthcheck_forms() {
    let s = svc(
        "image: x\nhealthcheck:\n  test: [\"CMD\", \"curl\", \"-f\", \"http://localhost\"]\n  interval: 1m30s\n  timeout: 10s\n  retries: 3\n  start_period: 40s\n  start_interval: 500ms",
    );
    let h = s.healthcheck.unwrap();
    assert_eq!(h.test, Some(HealthTest::Exec(vec!["curl".into(), "-f".into(), "http://localhost".into()])));
    assert_eq!(h.interval, Some(Duration::from_secs(90)));
    assert_eq!(h.timeout, Some(Duration::from_secs(10)));
    assert_eq!(h.retries, Some(3));
    assert_eq!(h.start_period, Some(Duration::from_secs(40)));
    assert_eq!(h.start_interval, Some(Duration::from_millis(500)));
    let t = |y: &str| svc(&format!("image: x\nhealthcheck:\n  {y}")).healthcheck.unwrap().test;
    assert_eq!(
        t("test: [\"CMD-SHELL\", \"curl -f x || exit 1\"]"),
        Some(HealthTest::Shell("curl -f x || exit 1".into()))
    );
    assert_eq!(t("test: curl -f x"), Some(HealthTest::Shell("curl -f x".into())));
    assert_eq!(t("test: [\"NONE\"]"), Some(HealthTest::None));
    assert_eq!(t("disable: true"), Some(HealthTest::None));
    let e = svc_errors("image: x\nhealthcheck:\n  test: [\"RUN\", \"x\"]");
    assert!(e[0].contains("services.web.healthcheck.test: a test list must start with"), "{e:?}");
    let e = svc_errors("image: x\nhealthcheck:\n  interval: 10");
    assert!(e[0].contains("services.web.healthcheck.interval: must be a duration"), "{e:?}");
    let e = svc_errors("image: x\nhealthcheck:\n  interval: 10x");
    assert!(e[0].contains("invalid duration \"10x\""), "{e:?}");
}

#[test]
fn simple_string_keys_and_labels() {
    let s = svc(
        "image: x\nworking_dir: /app\nuser: \"1000:1000\"\nhostname: web1\nstop_signal: SIGINT\nstop_grace_period: 1m\nlabels:\n  - a=b\n  - c",
    );
    assert_eq!(s.working_dir.as_deref(), Some("/app"));
    assert_eq!(s.user.as_deref(), Some("1000:1000"));
    assert_eq!(s.hostname.as_deref(), Some("web1"));
    assert_eq!(s.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(s.stop_grace_period, Some(Duration::from_secs(60)));
    assert_eq!(s.labels["a"], "b");
    assert_eq!(s.labels["c"], "");
    let s = svc("image: x\nlabels: {a: b, n: 1, y: yes}");
    assert_eq!((s.labels["n"].as_str(), s.labels["y"].as_str()), ("1", "yes"));
}

#[test]
fn meaningless_unknown_and_kept_keys() {
    let p = ok(
        "services:\n  web:\n    image: x\n    attach: false\n    x-mine: 1\n    cap_add: [NET_ADMIN]\n    container_type: mesos\n",
    );
    let w: Vec<String> = p.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(w, vec!["compose.yaml:4:5: services.web.attach: has no meaning on Mesos, ignored".to_string()]);
    let e = errors("services:\n  web:\n    image: x\n    frobnicate: 1\n");
    assert_eq!(
        e,
        vec![
            "compose.yaml:4:5: services.web.frobnicate: unknown key (not in the compose specification; use an x- key for extensions)"
        ]
    );
    let web = &p.services["web"];
    assert_eq!(web.cap_add, ["NET_ADMIN"]);
    assert_eq!(web.container_type, Some(ContainerType::Mesos));
    assert!(
        !web.other.contains_key("cap_add") && !web.other.contains_key("container_type"),
        "typed keys leave `other`"
    );
    // `build` is typed: both forms, with what the builders do not apply warned about.
    let p = ok(
        "services:\n  web:\n    build: ./app\n  api:\n    build:\n      dockerfile_inline: FROM x\n      args: [A=1, B]\n      cache_from: [y]\n",
    );
    assert_eq!(p.services["web"].build.as_ref().unwrap().context, "./app");
    let api = p.services["api"].build.as_ref().unwrap();
    assert_eq!((api.context.as_str(), api.dockerfile_inline.as_deref()), (".", Some("FROM x")));
    assert_eq!(api.args.get("A"), Some(&Some("1".to_owned())));
    let w: Vec<String> = p.warnings.iter().map(|d| d.to_string()).collect();
    assert!(w.iter().any(|w| w.contains("services.api.build.cache_from: is not applied")), "{w:?}");
    let e = errors(
        "services:\n  web:\n    build:\n      dockerfile: a\n      dockerfile_inline: b\n      secrets: [nope]\n",
    );
    assert!(e.iter().any(|e| e.contains("dockerfile and dockerfile_inline exclude each other")), "{e:?}");
    assert!(e.iter().any(|e| e.contains("services.web.build.secrets: refers to undefined secret \"nope\"")), "{e:?}");
}

#[test]
fn top_level_objects() {
    let p = ok(
        "services: {a: {image: x}}\nnetworks:\n  front:\n  back: {driver: overlay, internal: true, labels: [a=b]}\n  ext: {external: true, name: real}\n  legacy: {external: {name: old}}\nvolumes:\n  data:\n  ext: {external: true}\n  opts: {driver: local, driver_opts: {type: nfs, o: 'addr=1'}}\nconfigs:\n  c1: {file: ./c1.conf}\n  c2: {content: 'hello ${TAG}'}\nsecrets:\n  s1: {environment: TOKEN}\n  s2: {external: true}\n",
    );
    assert!(p.networks["front"].driver.is_none());
    assert!(p.networks["back"].internal);
    assert_eq!(p.networks["back"].labels["a"], "b");
    assert!(p.networks["ext"].external);
    assert_eq!(p.networks["legacy"].name.as_deref(), Some("old"));
    assert!(p.volumes["ext"].external);
    assert_eq!(p.volumes["opts"].driver_opts["type"], "nfs");
    assert_eq!(p.configs["c1"].file.as_deref(), Some("./c1.conf"));
    assert_eq!(p.configs["c2"].content.as_deref(), Some("hello 1.2"));
    assert_eq!(p.secrets["s1"].environment.as_deref(), Some("TOKEN"));
    assert!(p.secrets["s2"].external);
    let e = errors("services: {a: {image: x}}\nsecrets:\n  s: {file: a, environment: B}\n");
    assert!(e[0].contains("secrets.s: only one of"), "{e:?}");
    let e = errors("services: {a: {image: x}}\nservice: {}\n");
    assert!(e[0].starts_with("compose.yaml:2:1: service: unknown top-level key"), "{e:?}");
}

#[test]
fn yaml_errors_have_positions() {
    let e = errors("services:\n  a:\n    image: x\n    image: y\n");
    assert!(e[0].starts_with("compose.yaml:4:"), "{e:?}");
    let e = errors("services:\n  a: [\n");
    assert!(e[0].starts_with("compose.yaml:"), "{e:?}");
    let e = errors("");
    assert!(e[0].contains("empty compose file"), "{e:?}");
}

#[test]
fn service_names_and_shapes() {
    let e = errors("services:\n  \"bad name\": {image: x}\n");
    assert!(e[0].contains("services.bad name: invalid service name"), "{e:?}");
    let e = errors("services:\n  a: x\n");
    assert!(e[0].contains("services.a: a service must be a mapping"), "{e:?}");
}

#[test]
fn several_files_merge_and_name_their_own_file() {
    let files = [
        SourceFile::new("compose.yaml", "services:\n  web:\n    image: nginx\n    environment: {A: '1', B: '2'}\n"),
        SourceFile::new("override.yaml", "services:\n  web:\n    environment: {B: '3'}\n    ports: [\"x\"]\n"),
    ];
    let e = load(&files, &env()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"override.yaml:4:13: services.web.ports[0]: invalid port "x": "x" is not a port number"#
    );
    let files = [files[0].clone(), SourceFile::new("override.yaml", "services:\n  web:\n    environment: {B: '3'}\n")];
    let p = load(&files, &env()).unwrap();
    let env = &p.services["web"].environment;
    assert_eq!((env["A"].as_deref(), env["B"].as_deref()), (Some("1"), Some("3")));
}
