//! A service's `build`: the short form (a context directory) and the long one.

use super::scalars::show;
use super::*;

/// Keys of `build` the builders do not apply: kept, and warned about.
const UNAPPLIED_BUILD_KEYS: &[&str] = &[
    "cache_from",
    "cache_to",
    "extra_hosts",
    "isolation",
    "platforms",
    "privileged",
    "shm_size",
    "ssh",
    "ulimits",
    "entitlements",
    "provenance",
    "sbom",
];

impl Cx<'_> {
    pub(super) fn build(&mut self, n: &Node, path: &str) -> Option<Build> {
        let mut b = Build::default();
        match &n.value {
            Value::Str(_) => {
                b.context = self.string(n, path)?;
                return Some(b);
            }
            Value::Map(_) => {}
            _ => {
                self.err(n, path, format!("must be a context directory or a mapping, not {}", n.kind()));
                return None;
            }
        }
        let mut context = None;
        for (key, k, v) in self.map(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "context" => context = self.opt_string(v, &p),
                "dockerfile" => b.dockerfile = self.opt_string(v, &p),
                "dockerfile_inline" => b.dockerfile_inline = self.opt_string(v, &p),
                "args" => b.args = self.key_values_or_env(v, &p),
                "target" => b.target = self.opt_string(v, &p),
                "labels" => b.labels = self.labels(v, &p),
                "additional_contexts" => {
                    b.additional_contexts =
                        self.key_values(v, &p, false).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect();
                    for (name, dir) in &b.additional_contexts {
                        if dir.is_empty() {
                            self.err(v, &join(&p, name), "needs a directory or docker-image://REF");
                        }
                    }
                }
                "secrets" => b.secrets = self.build_secrets(v, &p),
                "network" => b.network = self.opt_string(v, &p),
                "no_cache" => b.no_cache = self.boolean(v, &p).unwrap_or(false),
                "pull" => b.pull = self.boolean(v, &p).unwrap_or(false),
                "tags" => b.tags = self.strings(v, &p),
                x if UNAPPLIED_BUILD_KEYS.contains(&x) => {
                    self.warn(k, &p, "is not applied by m3s's builders, ignored");
                    b.other.insert(key, v.clone());
                }
                x if x.starts_with("x-") => {}
                _ => {
                    self.unknown(k, &p);
                    b.other.insert(key, v.clone());
                }
            }
        }
        if b.dockerfile.is_some() && b.dockerfile_inline.is_some() {
            self.err(n, path, "dockerfile and dockerfile_inline exclude each other; give one");
        }
        // The specification's default context is the compose file's directory.
        b.context = context.unwrap_or_else(|| ".".to_owned());
        Some(b)
    }

    /// `build.secrets`: names of top-level secrets, short (`- name`) or long (`- source: name`).
    fn build_secrets(&mut self, n: &Node, path: &str) -> Vec<String> {
        let Value::Seq(items) = &n.value else {
            self.err(n, path, format!("must be a list, not {}", n.kind()));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = index(path, i);
            match &item.value {
                Value::Map(_) => {
                    let mut source = None;
                    for (key, k, v) in self.map(item, &p) {
                        match key.as_str() {
                            "source" => source = self.opt_string(v, &join(&p, "source")),
                            // Where the secret appears is the Dockerfile's `RUN --mount` choice.
                            "target" | "uid" | "gid" | "mode" => {}
                            _ => self.err(k, &join(&p, &key), format!("unknown key {}", show(k))),
                        }
                    }
                    match source {
                        Some(s) => out.push(s),
                        None => self.err(item, &p, "needs a source (a top-level secret's name)"),
                    }
                }
                _ => out.extend(self.string(item, &p)),
            }
        }
        out
    }
}
