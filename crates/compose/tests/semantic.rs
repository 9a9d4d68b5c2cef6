//! Cross-reference checks: each error names its line and key path.

use std::path::Path;

mod support;

use compose::*;

fn load_one(yaml: &str) -> Result<Project, Errors> {
    load(&[SourceFile::new("compose.yaml", yaml)], &Env::default())
}

/// `(line, path, message)` of each error.
fn errors(yaml: &str) -> Vec<(u32, String, String)> {
    match load_one(yaml) {
        Ok(p) => panic!("loaded: {p:?}"),
        Err(e) => e.0.into_iter().map(|d| (d.pos.line, d.path, d.message)).collect(),
    }
}

#[test]
fn dependency_cycle_is_named_at_the_closing_service() {
    let e = errors(
        "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on:\n      c: {condition: service_started}\n  c:\n    image: x\n    depends_on: [a]\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, 11);
    assert_eq!(e[0].1, "services.c.depends_on");
    assert_eq!(e[0].2, "dependency cycle: a -> b -> c -> a");
}

#[test]
fn undeclared_secret_and_config_are_errors() {
    let e = errors(
        "services:\n  a:\n    image: x\n    secrets:\n      - db\n    configs:\n      - source: app\n        target: /app\nsecrets:\n  other: {file: ./o}\n",
    );
    assert_eq!(
        e,
        vec![
            (
                5,
                "services.a.secrets[0]".to_owned(),
                "refers to undefined secret \"db\" (declare it under the top-level secrets)".to_owned()
            ),
            (
                7,
                "services.a.configs[0]".to_owned(),
                "refers to undefined config \"app\" (declare it under the top-level configs)".to_owned()
            ),
        ]
    );
}

#[test]
fn declared_secret_is_accepted() {
    let p = load_one("services:\n  a:\n    image: x\n    secrets: [db]\nsecrets:\n  db: {file: ./db}\n").unwrap();
    assert!(p.warnings.0.is_empty(), "{:?}", p.warnings);
}

#[test]
fn duplicate_host_port_is_an_error() {
    let e = errors("services:\n  a:\n    image: x\n    ports:\n      - \"8080:80\"\n      - \"8080:81\"\n");
    assert_eq!(e, vec![(6, "services.a.ports[1]".to_owned(), "host port 8080/tcp is published twice".to_owned())]);
}

#[test]
fn same_host_port_on_other_protocol_or_range_choice_is_fine() {
    load_one("services:\n  a:\n    image: x\n    ports: [\"53:53/tcp\", \"53:53/udp\", \"9000-9010:80\", \"9000-9010:81\"]\n")
        .unwrap();
}

#[test]
fn replicas_with_fixed_host_port_warn() {
    let p =
        load_one("services:\n  a:\n    image: x\n    ports: [\"8080:80\"]\n    deploy:\n      replicas: 2\n").unwrap();
    let w: Vec<_> = p.warnings.0.iter().map(|d| (d.pos.line, d.path.as_str())).collect();
    assert_eq!(w, vec![(6, "services.a.deploy.replicas")]);
    let p = load_one("services:\n  a:\n    image: x\n    ports: [\"80\"]\n    deploy:\n      replicas: 2\n").unwrap();
    assert!(p.warnings.0.is_empty(), "{:?}", p.warnings);
}

#[test]
fn container_name_with_replicas_is_an_error() {
    let e = errors("services:\n  a:\n    image: x\n    container_name: web\n    deploy:\n      replicas: 2\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].0, e[0].1.as_str()), (2, "services.a.container_name"));
}

#[test]
fn unknown_dependency_is_an_error() {
    let e = errors("services:\n  a:\n    image: x\n    depends_on: [nope]\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].1.as_str(), e[0].2.as_str()), ("services.a.depends_on", "depends on undefined service \"nope\""));
}

/// Every file in tests/data/semantic (which the schema accepts) is refused, each
/// with an error at a line of the file under `services.`.
#[test]
fn every_semantic_test_file_is_refused() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/semantic");
    let files = support::yaml_files(&dir);
    assert!(files.len() >= 10);
    for f in files {
        let options = LoadOptions { project_dir: dir.clone(), dotenv: false, ..Default::default() };
        match load_files(std::slice::from_ref(&f), &options) {
            Ok(p) => panic!("{}: loaded {p:?}", f.display()),
            Err(e) => {
                assert!(e.0.iter().all(|d| d.pos.line > 1 && d.path.starts_with("services.")), "{}: {e}", f.display())
            }
        }
    }
}

#[test]
fn undeclared_network_is_an_error_default_is_not() {
    let e = errors("services:\n  a:\n    image: x\n    networks:\n      default:\n      back: {aliases: [b]}\n");
    assert_eq!(
        e,
        vec![(
            6,
            "services.a.networks".to_owned(),
            "refers to undefined network \"back\" (declare it under the top-level networks)".to_owned()
        )]
    );
    load_one("services:\n  a:\n    image: x\n    networks: [default, back]\nnetworks:\n  back:\n").unwrap();
}
