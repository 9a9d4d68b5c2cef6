//! Projects read from disk: `.env`, `env_file`, profiles, `extends`, `include`,
//! several files merged by the specification's rules, and `strict`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use compose::*;

fn dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = std::env::temp_dir().join(format!("m3s-compose-files-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    for (f, text) in files {
        std::fs::write(d.join(f), text).unwrap();
    }
    d
}

fn options(d: &Path) -> LoadOptions {
    LoadOptions { project_dir: d.to_owned(), env: BTreeMap::new(), ..Default::default() }
}

fn load_in(d: &Path, files: &[&str], o: &LoadOptions) -> Result<Project, Errors> {
    let paths: Vec<PathBuf> = files.iter().map(|f| d.join(f)).collect();
    load_files(&paths, o)
}

#[test]
fn dotenv_interpolates_below_the_environment_and_env_file_fills_environment() {
    let d = dir(
        "env",
        &[
            (".env", "# comment\nTAG=1.0\nPORT=8080\nexport NAME=\"from dotenv\"\n"),
            ("app.env", "A=1\nB=from-file\n"),
            (
                "compose.yaml",
                "services:\n  web:\n    image: nginx:${TAG}\n    command: serve ${PORT} ${NAME}\n    env_file: [app.env, {path: missing.env, required: false}]\n    environment: {B: explicit}\n",
            ),
        ],
    );
    let mut o = options(&d);
    o.env.insert("PORT".into(), "9090".into());
    let p = load_in(&d, &["compose.yaml"], &o).unwrap();
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("nginx:1.0"));
    assert_eq!(web.command, Some(Command::Shell("serve 9090 from dotenv".into())), "the environment wins over .env");
    assert_eq!(web.environment["A"].as_deref(), Some("1"));
    assert_eq!(web.environment["B"].as_deref(), Some("explicit"), "environment wins over env_file");
}

#[test]
fn a_missing_required_env_file_is_an_error_at_its_line() {
    let d =
        dir("envmissing", &[("compose.yaml", "services:\n  web:\n    image: x\n    env_file:\n      - nope.env\n")]);
    let e = load_in(&d, &["compose.yaml"], &options(&d)).unwrap_err().to_string();
    assert!(e.contains("compose.yaml:5:9: services.web.env_file[0]: cannot read"), "{e}");
}

#[test]
fn profiles_enable_services_and_a_dependency_on_a_disabled_one_is_an_error() {
    let d = dir(
        "profiles",
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: x\n  debug:\n    image: y\n    profiles: [debug]\n  tool:\n    image: z\n    profiles: [tools]\n    depends_on: [debug]\n",
        )],
    );
    let p = load_in(&d, &["compose.yaml"], &options(&d)).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), ["web"]);
    let mut o = options(&d);
    o.profiles = vec!["debug".into(), "tools".into()];
    let p = load_in(&d, &["compose.yaml"], &o).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), ["debug", "tool", "web"]);
    let mut o = options(&d);
    o.env.insert("COMPOSE_PROFILES".into(), "tools".into());
    let e = load_in(&d, &["compose.yaml"], &o).unwrap_err().to_string();
    assert!(e.contains("services.tool.depends_on") && e.contains("\"debug\", which is disabled"), "{e}");
}

#[test]
fn extends_from_the_same_file_and_another_one() {
    let d = dir(
        "extends",
        &[
            ("common.yaml", "services:\n  base:\n    image: busybox\n    environment: [A=1]\n    ports: ['80']\n"),
            (
                "compose.yaml",
                "services:\n  web:\n    extends: {file: common.yaml, service: base}\n    environment: {B: '2'}\n    ports: ['81']\n  worker:\n    extends: web\n    command: work\n",
            ),
        ],
    );
    let p = load_in(&d, &["compose.yaml"], &options(&d)).unwrap();
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("busybox"));
    assert_eq!(web.environment.len(), 2);
    assert_eq!(web.ports.iter().map(|p| p.target).collect::<Vec<_>>(), [80, 81]);
    let worker = &p.services["worker"];
    assert_eq!(worker.image.as_deref(), Some("busybox"));
    assert_eq!(worker.command, Some(Command::Shell("work".into())));
    // A cycle and an unknown base are errors naming the key.
    let d = dir(
        "extends-bad",
        &[(
            "compose.yaml",
            "services:\n  a:\n    image: x\n    extends: b\n  b:\n    image: x\n    extends: a\n  c:\n    image: x\n    extends: nope\n",
        )],
    );
    let e = load_in(&d, &["compose.yaml"], &options(&d)).unwrap_err().to_string();
    assert!(e.contains("services.a.extends: extends cycle"), "{e}");
    assert!(e.contains("services.c.extends: extends undefined service \"nope\""), "{e}");
}

#[test]
fn include_adds_services_and_a_clash_is_an_error() {
    let d = dir(
        "include",
        &[
            ("db.yaml", "services:\n  db:\n    image: postgres\nvolumes:\n  data: {}\n"),
            ("compose.yaml", "include:\n  - db.yaml\nservices:\n  web:\n    image: x\n    depends_on: [db]\n"),
            ("clash.yaml", "include: [db.yaml]\nservices:\n  db:\n    image: other\n"),
        ],
    );
    let p = load_in(&d, &["compose.yaml"], &options(&d)).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), ["db", "web"]);
    assert!(p.volumes.contains_key("data"));
    let e = load_in(&d, &["clash.yaml"], &options(&d)).unwrap_err().to_string();
    assert!(e.contains("include[0]") && e.contains("service \"db\" is defined both here and in db.yaml"), "{e}");
}

#[test]
fn several_files_merge_by_the_specification() {
    let d = dir(
        "merge",
        &[
            (
                "compose.yaml",
                "services:\n  web:\n    image: x:1\n    command: [a, b]\n    environment: [A=1, B=2]\n    ports: ['80:80']\n    volumes: ['./a:/data']\n",
            ),
            (
                "override.yaml",
                "services:\n  web:\n    image: x:2\n    command: [c]\n    environment: {B: '3'}\n    ports: ['81:81']\n    volumes: ['./b:/data']\n",
            ),
        ],
    );
    let p = load_in(&d, &["compose.yaml", "override.yaml"], &options(&d)).unwrap();
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("x:2"));
    assert_eq!(web.command, Some(Command::Exec(vec!["c".into()])), "command is replaced");
    assert_eq!((web.environment["A"].as_deref(), web.environment["B"].as_deref()), (Some("1"), Some("3")));
    assert_eq!(web.ports.len(), 2, "ports append");
    assert_eq!(web.volumes.len(), 1, "volumes merge by target");
    assert!(web.volumes[0].source.as_deref().unwrap().ends_with("b"));
}

#[test]
fn strict_turns_warnings_into_errors() {
    let d = dir("strict", &[("compose.yaml", "services:\n  web:\n    image: x\n    attach: false\n")]);
    assert!(load_in(&d, &["compose.yaml"], &options(&d)).is_ok());
    let mut o = options(&d);
    o.strict = true;
    let e = load_in(&d, &["compose.yaml"], &o).unwrap_err().to_string();
    assert!(e.contains("compose.yaml:4:5: services.web.attach: has no meaning on Mesos"), "{e}");
}

#[test]
fn dotenv_syntax_errors_name_the_line() {
    assert_eq!(parse_dotenv("A=1\n\n# c\nB='x y'\nC=\"q\"  \n").unwrap().len(), 3);
    assert_eq!(parse_dotenv("A=1\nnot a name=2\n").unwrap_err().line, 2);
}
