//! The K3s framework's kubeconfig reader, shared by the `kubeconfig` fuzz
//! target and the corpus replay in crates/k3s/tests/fuzz_corpus.rs. A
//! kubeconfig comes from a task's sandbox, so a task can write anything there:
//! reading it never panics, and a rewrite changes only `server:` lines (and
//! names the new server when it succeeds).

pub fn check_kubeconfig(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let _ = k3s::kube::server_of(text);
    let _ = k3s::kube::Kube::from_kubeconfig(text);
    match k3s::kube::rewrite_server(text, "https://fuzz.invalid:1") {
        Ok(out) => {
            assert_eq!(k3s::kube::server_of(&out).ok().as_deref(), Some("https://fuzz.invalid:1"));
            let kept = |t: &str| -> Vec<String> {
                t.lines().filter(|l| !l.trim_start().starts_with("server:")).map(str::to_owned).collect()
            };
            assert_eq!(kept(text), kept(&out), "only server lines change");
            true
        }
        Err(_) => false,
    }
}
