//! The compose specification's merge rules (13-merge.md), for several `-f`
//! files and for `extends`: mappings merge key by key; most sequences append
//! (without duplicates); `command`, `entrypoint` and `healthcheck.test` are
//! replaced; `environment`, `labels` and similar merge as mappings whichever
//! syntax each side uses; `depends_on` merges as a mapping; `volumes`,
//! `secrets` and `configs` merge by target.
//!
//! Not supported: the `!reset` and `!override` YAML tags (the YAML reader does
//! not expose tags); a file that uses them loads with the tag ignored.

use super::join;
use crate::node::{Node, Value};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    Replace,
    AppendUnique,
    KeyValue,
    DependsOn,
    ByTarget,
}

/// The rule for the value at `path` (e.g. `services.web.ports`).
fn rule(path: &str) -> Rule {
    let parts: Vec<&str> = path.split('.').collect();
    let field = match parts.as_slice() {
        ["services", _, rest @ ..] if !rest.is_empty() => rest.join("."),
        [_, _, "labels"] => return Rule::KeyValue,
        _ => return Rule::AppendUnique,
    };
    match field.as_str() {
        "command" | "entrypoint" | "healthcheck.test" | "arguments" => Rule::Replace,
        "environment" | "labels" | "deploy.labels" | "extra_hosts" | "annotations" | "sysctls" | "build.args" => {
            Rule::KeyValue
        }
        "depends_on" => Rule::DependsOn,
        "volumes" | "secrets" | "configs" => Rule::ByTarget,
        _ => Rule::AppendUnique,
    }
}

/// Merges `over` onto `base`; `path` names where they sit in the project.
pub(super) fn merge(base: Node, over: Node, path: &str) -> Node {
    let rule = rule(path);
    let (base, over) = match rule {
        Rule::KeyValue => (key_values_as_map(base), key_values_as_map(over)),
        Rule::DependsOn => (depends_on_as_map(base), depends_on_as_map(over)),
        _ => (base, over),
    };
    match (base.value, over.value) {
        (Value::Map(mut b), Value::Map(o)) => {
            for (k, v) in o {
                let key = k.scalar_text();
                if let Some(slot) = b.iter_mut().find(|(bk, _)| bk.scalar_text() == key) {
                    let old = std::mem::replace(&mut slot.1, Node { value: Value::Null, pos: v.pos, file: v.file });
                    let child = join(path, key.as_deref().unwrap_or(""));
                    slot.1 = merge(old, v, &child);
                } else {
                    b.push((k, v));
                }
            }
            Node { value: Value::Map(b), pos: base.pos, file: base.file }
        }
        (Value::Seq(mut b), Value::Seq(o)) if rule == Rule::AppendUnique => {
            for item in o {
                if !b.iter().any(|x| same(x, &item)) {
                    b.push(item);
                }
            }
            Node { value: Value::Seq(b), pos: base.pos, file: base.file }
        }
        (Value::Seq(mut b), Value::Seq(o)) if rule == Rule::ByTarget => {
            for item in o {
                let target = target_of(&item);
                match b.iter_mut().find(|x| target.is_some() && target_of(x) == target) {
                    Some(slot) => *slot = item,
                    None => b.push(item),
                }
            }
            Node { value: Value::Seq(b), pos: base.pos, file: base.file }
        }
        (_, value) => Node { value, pos: over.pos, file: over.file },
    }
}

/// Equal values, ignoring where they were written.
fn same(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Seq(x), Value::Seq(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb))
        }
        (x, y) => x == y,
    }
}

/// The container path of a volume (`src:dst[:mode]` or `{target: ..}`), or a
/// secret's/config's target (else its source).
fn target_of(n: &Node) -> Option<String> {
    match &n.value {
        Value::Str(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            Some(match parts.as_slice() {
                [one] => one.to_string(),
                [_, dst, ..] => dst.to_string(),
                [] => String::new(),
            })
        }
        Value::Map(_) => n.get("target").or_else(|| n.get("source")).and_then(Node::scalar_text),
        _ => None,
    }
}

/// `["A=1", "B"]` as `{A: "1", B: null}`; a mapping stays as it is.
fn key_values_as_map(n: Node) -> Node {
    let Value::Seq(items) = n.value else { return n };
    let entries = items
        .into_iter()
        .map(|item| {
            let text = item.scalar_text().unwrap_or_default();
            let (k, v) = match text.split_once('=') {
                Some((k, v)) => (k.to_owned(), Value::Str(v.to_owned())),
                None => (text, Value::Null),
            };
            (
                Node { value: Value::Str(k), pos: item.pos, file: item.file },
                Node { value: v, pos: item.pos, file: item.file },
            )
        })
        .collect();
    Node { value: Value::Map(entries), pos: n.pos, file: n.file }
}

/// `[db, cache]` as `{db: {condition: service_started}, cache: {...}}`.
fn depends_on_as_map(n: Node) -> Node {
    let Value::Seq(items) = n.value else { return n };
    let entries = items
        .into_iter()
        .map(|item| {
            let at = |value| Node { value, pos: item.pos, file: item.file };
            let condition = vec![(at(Value::Str("condition".into())), at(Value::Str("service_started".into())))];
            (item.clone(), at(Value::Map(condition)))
        })
        .collect();
    Node { value: Value::Map(entries), pos: n.pos, file: n.file }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::parse;

    fn merged(a: &str, b: &str) -> String {
        let n = merge(parse(a).unwrap(), parse(b).unwrap(), "");
        format!("{:?}", strip(&n))
    }

    /// The value without positions, for comparison.
    fn strip(n: &Node) -> serde_json::Value {
        match &n.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => (*f).into(),
            Value::Str(s) => s.clone().into(),
            Value::Seq(items) => items.iter().map(strip).collect(),
            Value::Map(e) => {
                e.iter().map(|(k, v)| (k.scalar_text().unwrap(), strip(v))).collect::<serde_json::Map<_, _>>().into()
            }
        }
    }

    fn json(text: &str) -> String {
        format!("{:?}", strip(&parse(text).unwrap()))
    }

    #[test]
    fn commands_are_replaced_and_ports_appended() {
        let a = "services:\n  w:\n    command: [a, b]\n    ports: ['80:80']\n    healthcheck: {test: [CMD, x], interval: 1s}\n";
        let b = "services:\n  w:\n    command: [c]\n    ports: ['80:80', '81:81']\n    healthcheck: {test: [CMD, y]}\n";
        assert_eq!(
            merged(a, b),
            json(
                "services:\n  w:\n    command: [c]\n    ports: ['80:80', '81:81']\n    healthcheck: {test: [CMD, y], interval: 1s}\n"
            )
        );
    }

    #[test]
    fn environment_and_labels_merge_whichever_syntax() {
        let a = "services:\n  w:\n    environment: [A=1, B=2]\n    labels: {x: '1'}\n";
        let b = "services:\n  w:\n    environment: {B: '3', C: '4'}\n    labels: [y=2]\n";
        assert_eq!(
            merged(a, b),
            json("services:\n  w:\n    environment: {A: '1', B: '3', C: '4'}\n    labels: {x: '1', y: '2'}\n")
        );
    }

    #[test]
    fn volumes_merge_by_target_and_depends_on_as_a_mapping() {
        let a = "services:\n  w:\n    volumes: ['./a:/data', '/logs']\n    depends_on: [db]\n";
        let b =
            "services:\n  w:\n    volumes: ['./b:/data:ro']\n    depends_on: {cache: {condition: service_healthy}}\n";
        assert_eq!(
            merged(a, b),
            json(
                "services:\n  w:\n    volumes: ['./b:/data:ro', '/logs']\n    depends_on: {db: {condition: service_started}, cache: {condition: service_healthy}}\n"
            )
        );
    }
}
