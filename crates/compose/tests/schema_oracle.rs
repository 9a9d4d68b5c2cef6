//! The official compose JSON schema (compose-spec.json) as an oracle: every file
//! it rejects, m3s rejects too. m3s may be stricter (it checks meaning as well as
//! shape); those files are counted, and the ones the schema accepts but m3s
//! refuses are listed below with the reason.

use std::collections::BTreeMap;
use std::path::Path;

mod support;

use compose::{LoadOptions, load_files};

/// Files the schema accepts and m3s refuses, by a fragment of the path, with why.
const STRICTER: &[(&str, &str)] = &[
    ("build", "build-only services: nothing runs on Mesos without an image or a command"),
    ("watch/", "build-only services"),
    ("wrong-composefile/build-error.yml", "build-only service"),
    ("volume-test/", "build-only service"),
    ("simple-build-test/", "build-only service"),
    ("bridge-build-only", "build-only service"),
    ("publish/oci/compose-override.yaml", "an override file alone has nothing to run"),
    ("env_file/compose.yaml", "a required env_file that does not exist"),
    (
        "tests/data/semantic/",
        "cross-references and values the schema cannot relate: cycles, undeclared names, duplicate host ports, soft above hard",
    ),
    (
        "tests/data/stricter/",
        "values the schema lets through as strings (for interpolation) that are not numbers once interpolated",
    ),
];

#[test]
fn m3s_rejects_every_file_the_schema_rejects() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/compose/compose-spec.json"),
        )
        .expect("the compose schema in ../shared/data/compose"),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let mut files = support::yaml_files(&support::fixtures_dir());
    files.extend(support::yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")));
    let env: BTreeMap<String, String> =
        [("TAG", "1.0"), ("IMAGE", "alpine")].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let (mut both_reject, mut both_accept, mut stricter) = (0, 0, Vec::new());
    let mut laxer = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(&text) else { continue };
        if doc.get("apiVersion").is_some() || doc.get("projectName").is_some() {
            continue; // Kubernetes and Helm outputs among the fixtures: not compose files
        }
        let schema_ok = validator.is_valid(&doc);
        let options =
            LoadOptions { project_dir: f.parent().unwrap().to_owned(), env: env.clone(), ..Default::default() };
        let ours = load_files(std::slice::from_ref(f), &options);
        let name = f.display().to_string();
        match (schema_ok, ours) {
            (false, Err(_)) => both_reject += 1,
            (true, Ok(_)) => both_accept += 1,
            (false, Ok(_)) => {
                let why: Vec<String> =
                    validator.iter_errors(&doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
                laxer.push(format!("{name}: the schema says {}", why.join("; ")));
            }
            (true, Err(e)) => match STRICTER.iter().find(|(frag, _)| name.contains(frag)) {
                Some(_) => stricter.push(name),
                None => laxer.push(format!("{name}: the schema accepts it, m3s refuses without a listed reason: {e}")),
            },
        }
    }
    eprintln!(
        "schema oracle: {both_accept} accepted by both, {both_reject} rejected by both, {} stricter",
        stricter.len()
    );
    assert!(laxer.is_empty(), "\n{}", laxer.join("\n"));
    assert!(both_reject >= 10, "the invalid test files must be rejected by the schema too ({both_reject})");
    assert!(both_accept >= 30, "most fixtures are valid ({both_accept})");
}
