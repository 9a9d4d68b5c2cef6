//! Every YAML file of docker/compose's e2e fixtures either loads or fails with
//! errors that name a key path. Failures are listed explicitly below.

use std::collections::BTreeMap;

mod support;

use compose::{Env, LoadOptions, SourceFile, load, load_files};

/// Files expected to fail, each with a fragment of its expected error (key path and reason).
const EXPECTED_FAILURES: &[(&str, &str)] = &[
    // Kubernetes manifests and Helm files that compose's bridge tests expect as output: not compose files.
    ("bridge/expected-helm/Chart.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-helm/templates/0-bridge-namespace.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-helm/templates/bridge-configs.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-helm/templates/my-secrets-secret.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-helm/templates/private-network-network-policy.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-helm/templates/public-network-network-policy.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-helm/templates/serviceA-deployment.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-helm/templates/serviceA-expose.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-helm/templates/serviceA-service.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-helm/templates/serviceB-deployment.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-helm/templates/serviceB-expose.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-helm/templates/serviceB-service.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-helm/values.yaml", "projectName: unknown top-level key"),
    ("bridge/expected-kubernetes/base/0-bridge-namespace.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/base/bridge-configs.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/base/kustomization.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/base/my-secrets-secret.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/base/private-network-network-policy.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/base/public-network-network-policy.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/base/serviceA-deployment.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/base/serviceA-expose.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/base/serviceA-service.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/base/serviceB-deployment.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/base/serviceB-expose.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/base/serviceB-service.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/overlays/desktop/kustomization.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/overlays/desktop/serviceA-service.yaml", "apiVersion: unknown top-level key"),
    ("bridge/expected-kubernetes/overlays/desktop/serviceB-service.yaml", "apiVersion: unknown top-level key"),
    // docker/compose's own "wrong compose file" fixture: a key the specification does not have.
    ("wrong-composefile/compose.yaml", "services.simple.wrongField: unknown key"),
    // An override file loaded alone has nothing to run.
    ("publish/oci/compose-override.yaml", "services.app: no image, command or entrypoint: nothing to run"),
    // A required env_file that does not exist.
    ("env_file/compose.yaml", "services.serviceB.env_file[0]: cannot read /doesnotexist/.env"),
];

#[test]
fn e2e_fixtures() {
    let root = support::fixtures_dir();
    let files = support::yaml_files(&root);
    assert!(files.len() > 50, "fixtures not found under {}", root.display());
    let env: BTreeMap<String, String> =
        [("TAG", "1.0"), ("IMAGE", "alpine")].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let expected: BTreeMap<&str, &str> = EXPECTED_FAILURES.iter().copied().collect();
    let (mut ok, mut failed) = (0, 0);
    let mut report = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
        // Read from disk, as `m3s compose -f` does: .env, env_file, extends and include apply.
        let options =
            LoadOptions { project_dir: f.parent().unwrap().to_owned(), env: env.clone(), ..Default::default() };
        match load_files(std::slice::from_ref(f), &options) {
            Ok(_) => {
                ok += 1;
                if expected.contains_key(rel.as_str()) {
                    report.push(format!("{rel}: expected to fail but loaded"));
                }
            }
            Err(errs) => {
                failed += 1;
                for d in &errs.0 {
                    if d.path.is_empty() {
                        report.push(format!("{rel}: error without a key path: {d}"));
                    }
                }
                match expected.get(rel.as_str()) {
                    Some(frag) if errs.to_string().contains(frag) => {}
                    Some(frag) => report.push(format!("{rel}: expected {frag:?}, got: {errs}")),
                    None => report.push(format!("{rel}: unexpected failure: {errs}")),
                }
            }
        }
    }
    eprintln!("fixtures: {} files, {ok} loaded, {failed} failed", files.len());
    assert_eq!(failed, EXPECTED_FAILURES.len(), "every failure is listed");
    assert!(report.is_empty(), "\n{}", report.join("\n"));
}

#[test]
fn an_unknown_service_key_is_an_error_with_its_path() {
    let f = support::fixtures_dir().join("wrong-composefile/compose.yaml");
    let text = std::fs::read_to_string(f).unwrap();
    let e = load(&[SourceFile::new("compose.yaml", text)], &Env::default()).unwrap_err().to_string();
    assert_eq!(
        e,
        "compose.yaml:4:5: services.simple.wrongField: unknown key (not in the compose specification; use an x- key for extensions)"
    );
}
