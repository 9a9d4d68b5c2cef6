// Where the real Mesos master's and agent's captured answers are: CI keeps
// `shared/` beside the clone, three levels above a crate (two from a
// worktree's root); `MESOS_CAPTURES_DIR` overrides. Shared by every test that
// compares m3s with them: mesos's tests (`#[path]`) and mini's views (`include!`,
// hence no `use` and no inner attributes here).

pub fn captures_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("MESOS_CAPTURES_DIR") {
        return std::path::PathBuf::from(dir);
    }
    let manifest = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        manifest.join("../../../shared/reference/mesos-captures"),
        manifest.join("../../shared/reference/mesos-captures"),
    ];
    candidates
        .iter()
        .find(|dir| dir.is_dir())
        .cloned()
        .unwrap_or_else(|| panic!("mesos captures not found (tried {candidates:?}); set MESOS_CAPTURES_DIR"))
}
