//! Scalar readers: a node as a string, number, duration, size, list or map,
//! each naming the key path and line of a value of the wrong kind.

use super::*;

impl Cx<'_> {
    pub(super) fn diag(&self, n: &Node, path: &str, message: String) -> Diagnostic {
        Diagnostic {
            file: self.files.get(n.file).map(|f| f.name.clone()).unwrap_or_default(),
            pos: n.pos,
            path: path.to_owned(),
            message,
        }
    }

    pub(super) fn err(&mut self, n: &Node, path: &str, message: impl Into<String>) {
        let d = self.diag(n, path, message.into());
        self.errors.push(d);
    }

    pub(super) fn warn(&mut self, n: &Node, path: &str, message: impl Into<String>) {
        let d = self.diag(n, path, message.into());
        self.warnings.push(d);
    }

    // ---- interpolation -------------------------------------------------

    pub(super) fn interpolate(&mut self, n: &mut Node, path: &str, env: &Env) {
        match &mut n.value {
            Value::Str(s) => {
                let mut unset = Vec::new();
                match interpolate(s, env, &mut unset) {
                    Ok(v) => *s = v,
                    Err(e) => {
                        let d = self.diag(n, path, e.to_string());
                        self.errors.push(d);
                        return;
                    }
                }
                for name in unset {
                    self.warn(n, path, format!("variable {name} is not set, using the empty string"));
                }
            }
            Value::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.interpolate(item, &index(path, i), env);
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries.iter_mut() {
                    let key = k.scalar_text().unwrap_or_default();
                    if key.starts_with("x-") {
                        continue;
                    }
                    self.interpolate(v, &join(path, &key), env);
                }
            }
            _ => {}
        }
    }

    // ---- generic readers -------------------------------------------------

    /// Entries of a mapping with their keys as text; errors on anything else.
    pub(super) fn map<'n>(&mut self, n: &'n Node, path: &str) -> Vec<(String, &'n Node, &'n Node)> {
        match &n.value {
            Value::Map(entries) => {
                let mut out = Vec::new();
                for (k, v) in entries {
                    match k.scalar_text() {
                        Some(key) => out.push((key, k, v)),
                        None => self.err(k, path, format!("keys must be strings, not {}", k.kind())),
                    }
                }
                out
            }
            _ => {
                self.err(n, path, format!("must be a mapping, not {}", n.kind()));
                Vec::new()
            }
        }
    }

    /// A mapping, or null meaning an empty mapping.
    pub(super) fn map_or_null<'n>(&mut self, n: &'n Node, path: &str) -> Vec<(String, &'n Node, &'n Node)> {
        if n.value == Value::Null { Vec::new() } else { self.map(n, path) }
    }

    pub(super) fn string(&mut self, n: &Node, path: &str) -> Option<String> {
        match &n.value {
            Value::Str(_) | Value::Int(_) | Value::Float(_) => n.scalar_text(),
            _ => {
                self.err(n, path, format!("must be a string, not {}", n.kind()));
                None
            }
        }
    }

    pub(super) fn opt_string(&mut self, n: &Node, path: &str) -> Option<String> {
        if n.value == Value::Null { None } else { self.string(n, path) }
    }

    pub(super) fn strings(&mut self, n: &Node, path: &str) -> Vec<String> {
        match &n.value {
            Value::Seq(items) => {
                items.iter().enumerate().filter_map(|(i, it)| self.string(it, &index(path, i))).collect()
            }
            Value::Null => Vec::new(),
            _ => {
                self.err(n, path, format!("must be a list of strings, not {}", n.kind()));
                Vec::new()
            }
        }
    }

    pub(super) fn boolean(&mut self, n: &Node, path: &str) -> Option<bool> {
        match &n.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) if s == "true" || s == "false" => Some(s == "true"),
            _ => {
                self.err(n, path, format!("must be a boolean, not {}", n.kind()));
                None
            }
        }
    }

    pub(super) fn float(&mut self, n: &Node, path: &str) -> Option<f64> {
        let v = match &n.value {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match v {
            Some(v) if v.is_finite() && v >= 0.0 => Some(v),
            _ => {
                self.err(n, path, format!("must be a non-negative number, not {}", show(n)));
                None
            }
        }
    }

    pub(super) fn int(&mut self, n: &Node, path: &str) -> Option<i64> {
        let v = match &n.value {
            Value::Int(i) => Some(*i),
            Value::Str(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        if v.is_none() {
            self.err(n, path, format!("must be an integer, not {}", show(n)));
        }
        v
    }

    pub(super) fn u32(&mut self, n: &Node, path: &str) -> Option<u32> {
        let v = self.int(n, path)?;
        match u32::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                self.err(n, path, format!("must be a non-negative integer, not {v}"));
                None
            }
        }
    }

    pub(super) fn duration(&mut self, n: &Node, path: &str) -> Option<Duration> {
        let text = match &n.value {
            Value::Str(s) => s.clone(),
            _ => {
                self.err(n, path, format!("must be a duration such as \"1m30s\", not {}", show(n)));
                return None;
            }
        };
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(n, path, format!("invalid duration {text:?}: {e}"));
                None
            }
        }
    }

    pub(super) fn bytes(&mut self, n: &Node, path: &str) -> Option<u64> {
        match &n.value {
            Value::Int(i) if *i >= 0 => Some(*i as u64),
            Value::Str(s) => match parse_bytes(s) {
                Ok(b) => Some(b),
                Err(e) => {
                    self.err(n, path, format!("invalid size {s:?}: {e}"));
                    None
                }
            },
            _ => {
                self.err(n, path, format!("must be a size such as \"512m\", not {}", show(n)));
                None
            }
        }
    }

    /// `KEY=VALUE` list or mapping (environment, labels, driver options).
    pub(super) fn key_values(&mut self, n: &Node, path: &str, allow_unset: bool) -> BTreeMap<String, Option<String>> {
        let mut out = BTreeMap::new();
        match &n.value {
            Value::Null => {}
            Value::Seq(items) => {
                for (i, it) in items.iter().enumerate() {
                    let p = index(path, i);
                    let Some(s) = self.string(it, &p) else { continue };
                    match s.split_once('=') {
                        Some((k, v)) => {
                            out.insert(k.to_owned(), Some(v.to_owned()));
                        }
                        None if allow_unset => {
                            out.insert(s, None);
                        }
                        None => {
                            out.insert(s, Some(String::new()));
                        }
                    }
                }
            }
            Value::Map(_) => {
                for (k, _, v) in self.map(n, path) {
                    let p = join(path, &k);
                    let value = match &v.value {
                        Value::Null if allow_unset => None,
                        Value::Null => Some(String::new()),
                        Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) => v.scalar_text(),
                        _ => {
                            self.err(v, &p, format!("must be a string, number, boolean or null, not {}", v.kind()));
                            continue;
                        }
                    };
                    out.insert(k, value);
                }
            }
            _ => self.err(n, path, format!("must be a list of \"KEY=VALUE\" or a mapping, not {}", n.kind())),
        }
        out
    }

    /// [`Self::key_values`] where `- NAME` without a value takes it from the environment
    /// of whoever reads the file (the user's shell for `m3s compose`), as compose does
    /// (`environment`, `build.args`); `None` when that has none either.
    pub(super) fn key_values_or_env(&mut self, n: &Node, path: &str) -> BTreeMap<String, Option<String>> {
        let values = self.key_values(n, path, true);
        values
            .into_iter()
            .map(|(k, v)| {
                let v = v.or_else(|| self.env.get(&k).map(str::to_owned));
                (k, v)
            })
            .collect()
    }

    pub(super) fn labels(&mut self, n: &Node, path: &str) -> BTreeMap<String, String> {
        self.key_values(n, path, false).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect()
    }

    /// A key the compose specification does not have: an error, as the
    /// specification's schema makes it (`x-` keys are the place for extensions).
    pub(super) fn unknown(&mut self, k: &Node, path: &str) {
        self.err(k, path, "unknown key (not in the compose specification; use an x- key for extensions)");
    }

    // ---- project -----------------------------------------------------------
}

/// A node as a message shows it: its text, quoted, or its kind.
pub(super) fn show(n: &Node) -> String {
    match n.scalar_text() {
        Some(t) => format!("{t:?}"),
        None => n.kind().to_owned(),
    }
}
