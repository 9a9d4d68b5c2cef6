//! `extends` (a service built on another, from this file or another one) and
//! `include` (other compose files whose services join this project).

use std::collections::BTreeSet;

use super::{Cx, SourceFile, index, join, merge};
use crate::model::Project;
use crate::node::{self, Node, Value};

impl Cx<'_> {
    /// The services mapping with every `extends` applied (the base first, the
    /// service's own keys merged over it by the merge rules).
    pub(super) fn resolve_extends(&mut self, services: &Node) -> Node {
        let Value::Map(entries) = &services.value else { return services.clone() };
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let name = k.scalar_text().unwrap_or_default();
            let mut stack = Vec::new();
            let resolved = self.extended(v, services, &name, &mut stack);
            out.push((k.clone(), resolved));
        }
        Node { value: Value::Map(out), pos: services.pos, file: services.file }
    }

    fn extended(&mut self, svc: &Node, services: &Node, name: &str, stack: &mut Vec<(usize, String)>) -> Node {
        let Some(ext) = svc.get("extends") else { return svc.clone() };
        let path = format!("services.{name}.extends");
        let own = without_key(svc, "extends");
        let (base_name, file) = match &ext.value {
            Value::Str(s) => (s.clone(), None),
            Value::Map(_) => {
                let mut base = None;
                let mut file = None;
                for (key, k, v) in self.map(ext, &path) {
                    match key.as_str() {
                        "service" => base = self.string(v, &join(&path, "service")),
                        "file" => file = self.string(v, &join(&path, "file")),
                        _ => self.err(k, &join(&path, &key), "unknown key in extends (service, file)"),
                    }
                }
                match base {
                    Some(b) => (b, file),
                    None => {
                        self.err(ext, &path, "extends needs a service");
                        return own;
                    }
                }
            }
            _ => {
                self.err(ext, &path, format!("must be a service name or {{service, file}}, not {}", ext.kind()));
                return own;
            }
        };
        let key = (svc.file, name.to_owned());
        if stack.contains(&key) {
            self.err(ext, &path, format!("extends cycle through service {name:?}"));
            return own;
        }
        stack.push(key);
        let base = match file {
            None => match services.get(&base_name) {
                Some(b) => Some(self.extended(b, services, &base_name, stack)),
                None => {
                    self.err(ext, &path, format!("extends undefined service {base_name:?}"));
                    None
                }
            },
            Some(file) => self.base_from_file(ext, &path, &file, &base_name, stack),
        };
        stack.pop();
        match base {
            Some(base) => merge::merge(without_key(&base, "extends"), own, &format!("services.{name}")),
            None => own,
        }
    }

    fn base_from_file(
        &mut self,
        at: &Node,
        path: &str,
        file: &str,
        base_name: &str,
        stack: &mut Vec<(usize, String)>,
    ) -> Option<Node> {
        let Some(reader) = self.reader else {
            self.err(at, path, format!("extends from file {file:?} needs the files on disk (m3s compose -f)"));
            return None;
        };
        let text = match reader(file) {
            Ok(t) => t,
            Err(e) => {
                self.err(at, path, e.to_string());
                return None;
            }
        };
        let index = self.files.len();
        self.files.push(SourceFile::new(file, text));
        let mut root = match node::parse(&self.files[index].text) {
            Ok(n) => n,
            Err((pos, msg)) => {
                let d = crate::error::Diagnostic {
                    file: file.to_owned(),
                    pos,
                    path: String::new(),
                    message: format!("invalid YAML: {msg}"),
                };
                self.errors.push(d);
                return None;
            }
        };
        root.set_file(index);
        let env = self.env;
        self.interpolate(&mut root, "", env);
        let Some(services) = root.get("services").cloned() else {
            self.err(at, path, format!("{file} has no services"));
            return None;
        };
        match services.get(base_name) {
            Some(b) => Some(self.extended(b, &services, base_name, stack)),
            None => {
                self.err(at, path, format!("{file} has no service {base_name:?}"));
                None
            }
        }
    }

    /// `include:` entries: each file is loaded as a project of its own and its
    /// services, networks, volumes, configs and secrets join this one.
    pub(super) fn include(&mut self, n: &Node, project: &mut Project) {
        let entries: Vec<(String, &Node, String)> = match &n.value {
            Value::Seq(items) => {
                let mut out = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    let p = index("include", i);
                    match &it.value {
                        Value::Str(s) => out.push((s.clone(), it, p)),
                        Value::Map(_) => {
                            for (key, k, v) in self.map(it, &p) {
                                match key.as_str() {
                                    "path" => match &v.value {
                                        Value::Seq(_) => {
                                            for s in self.strings(v, &join(&p, "path")) {
                                                out.push((s, it, p.clone()));
                                            }
                                        }
                                        _ => {
                                            if let Some(s) = self.string(v, &join(&p, "path")) {
                                                out.push((s, it, p.clone()));
                                            }
                                        }
                                    },
                                    "project_directory" | "env_file" => self.warn(
                                        k,
                                        &join(&p, &key),
                                        "not supported, ignored: paths are read from the project directory",
                                    ),
                                    _ => self.err(
                                        k,
                                        &join(&p, &key),
                                        "unknown key in include (path, project_directory, env_file)",
                                    ),
                                }
                            }
                        }
                        _ => self.err(it, &p, format!("must be a path or {{path: ...}}, not {}", it.kind())),
                    }
                }
                out
            }
            Value::Null => Vec::new(),
            _ => {
                self.err(n, "include", format!("must be a list, not {}", n.kind()));
                Vec::new()
            }
        };
        let Some(reader) = self.reader else {
            if !entries.is_empty() {
                self.err(n, "include", "include needs the files on disk (m3s compose -f)");
            }
            return;
        };
        if self.depth >= super::MAX_INCLUDE_DEPTH {
            self.err(n, "include", "includes nested too deep (a cycle?)");
            return;
        }
        for (file, at, path) in entries {
            let text = match reader(&file) {
                Ok(t) => t,
                Err(e) => {
                    self.err(at, &path, e.to_string());
                    continue;
                }
            };
            let sub = super::load_with(
                vec![SourceFile::new(&file, text)],
                self.env,
                self.profiles.clone(),
                Some(reader),
                self.depth + 1,
            );
            match sub {
                Err(errors) => self.errors.extend(errors.0),
                Ok(sub) => {
                    self.warnings.extend(sub.warnings.0.iter().cloned());
                    let mut clash = BTreeSet::new();
                    for (name, s) in sub.services {
                        match project.services.entry(name) {
                            std::collections::btree_map::Entry::Occupied(e) => {
                                clash.insert(e.key().clone());
                            }
                            std::collections::btree_map::Entry::Vacant(e) => {
                                e.insert(s);
                            }
                        }
                    }
                    for name in clash {
                        self.err(at, &path, format!("service {name:?} is defined both here and in {file}"));
                    }
                    for (name, x) in sub.networks {
                        project.networks.entry(name).or_insert(x);
                    }
                    for (name, x) in sub.volumes {
                        project.volumes.entry(name).or_insert(x);
                    }
                    for (name, x) in sub.configs {
                        project.configs.entry(name).or_insert(x);
                    }
                    for (name, x) in sub.secrets {
                        project.secrets.entry(name).or_insert(x);
                    }
                }
            }
        }
    }
}

fn without_key(n: &Node, key: &str) -> Node {
    match &n.value {
        Value::Map(entries) => Node {
            value: Value::Map(
                entries.iter().filter(|(k, _)| k.scalar_text().as_deref() != Some(key)).cloned().collect(),
            ),
            pos: n.pos,
            file: n.file,
        },
        _ => n.clone(),
    }
}
