//! Runbooks: named operations declared in the repository
//! (`<dir>/runbooks/<name>/compose.yaml`), the seed's `executor/runit`.
//!
//! A runbook is a compose file with one service (what runs: a command on the
//! host or in an image, its resources, user, volumes) and an `x-runbook`
//! extension saying what it takes and where it runs:
//!
//! ```yaml
//! x-runbook:
//!   description: Rotate the logs
//!   target: every            # one (default), every, or {attributes: {rack: a}}
//!   timeout: 120s            # default 10m
//!   params:
//!     days: {type: integer, min: 1, max: 90, default: 7}
//!     mode: {type: enum, values: [fast, full], required: true}
//!     token: {type: string, secret: true}
//! services:
//!   run:
//!     command: ["logrotate", "--days", "{{days}}", "/etc/logrotate.conf"]
//! ```
//!
//! Parameters reach the command as environment variables (`M3S_PARAM_DAYS`;
//! secret ones as Mesos SECRET variables) and as whole argv elements written
//! `{{name}}`: never pasted into shell text, so no value can become code.
//! Pure: parsing and binding only; running is the server's.

use std::collections::BTreeMap;

use compose::node::{Node, Value};

/// Where runbooks live in the repository, under its configured directory.
pub const RUNBOOKS_DIR: &str = "runbooks";
pub const DEFAULT_TIMEOUT_S: u64 = 600;
/// Longest string parameter, in bytes.
pub const MAX_STRING: usize = 4096;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ParamType {
    /// Any text up to `max_length` bytes without control characters.
    String {
        max_length: usize,
    },
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Boolean,
    Enum {
        values: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Param {
    #[serde(flatten)]
    pub kind: ParamType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    pub required: bool,
    /// Passed as a SECRET variable only (not as an argument), shown as `***` in history.
    pub secret: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// One agent, wherever the task fits.
    One,
    /// Every agent, one task each.
    Every,
    /// Every agent with these attributes, one task each.
    Attributes(BTreeMap<String, String>),
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Runbook {
    pub name: String,
    pub description: String,
    pub target: Target,
    pub timeout_s: u64,
    pub params: BTreeMap<String, Param>,
    /// The file's path in the repository and its text (a compose file, loaded by the caller).
    pub path: String,
    #[serde(skip)]
    pub compose: String,
}

/// What is wrong with a runbook file: where, and which key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {key}: {message}")]
pub struct RunbookError {
    pub path: String,
    pub line: u32,
    pub key: String,
    pub message: String,
}

/// A parameter value that does not fit its declaration: nothing starts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("parameter {name}: {problem}")]
pub struct ParamError {
    pub name: String,
    pub problem: ValueProblem,
}

/// Why a value does not fit its parameter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueProblem {
    #[error("longer than {0} bytes")]
    TooLong(usize),
    #[error("contains a control character")]
    ControlCharacter,
    #[error("{0:?} is not a whole number")]
    NotAnInteger(String),
    #[error("{value} is outside {}..={}", min.map_or(String::new(), |m| m.to_string()), max.map_or(String::new(), |m| m.to_string()))]
    OutOfRange { value: i64, min: Option<i64>, max: Option<i64> },
    #[error("{0:?}: expected true or false")]
    NotABoolean(String),
    #[error("{value:?}: expected one of {}", values.join(", "))]
    NotOneOf { value: String, values: Vec<String> },
    #[error("unknown (this runbook takes: {})", .0.join(", "))]
    Unknown(Vec<String>),
    #[error("required")]
    Required,
}

fn check_param_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name.as_bytes()[0].is_ascii_lowercase()
}

struct Reader<'a> {
    path: &'a str,
}

impl Reader<'_> {
    fn err(&self, node: &Node, key: &str, message: impl Into<String>) -> RunbookError {
        RunbookError { path: self.path.to_owned(), line: node.pos.line, key: key.to_owned(), message: message.into() }
    }

    fn entries<'n>(&self, node: &'n Node, key: &str) -> Result<&'n [(Node, Node)], RunbookError> {
        match &node.value {
            Value::Map(entries) => Ok(entries),
            _ => Err(self.err(node, key, format!("expected a mapping, found {}", node.kind()))),
        }
    }

    fn text(&self, node: &Node, key: &str) -> Result<String, RunbookError> {
        match &node.value {
            Value::Map(_) | Value::Seq(_) | Value::Null => {
                Err(self.err(node, key, format!("expected a scalar, found {}", node.kind())))
            }
            _ => Ok(node.scalar_text().unwrap_or_default()),
        }
    }

    fn int(&self, node: &Node, key: &str) -> Result<i64, RunbookError> {
        match node.value {
            Value::Int(i) => Ok(i),
            _ => Err(self.err(node, key, format!("expected a whole number, found {}", node.kind()))),
        }
    }
}

/// Reads `10m`, `90s`, `2h` or plain seconds.
fn seconds(text: &str) -> Option<u64> {
    let (digits, unit) =
        text.trim().split_at(text.trim().find(|c: char| !c.is_ascii_digit()).unwrap_or(text.trim().len()));
    let n: u64 = digits.parse().ok()?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    n.checked_mul(factor).filter(|s| *s > 0)
}

/// Reads a runbook file. The compose part is checked by the caller
/// (`compose::load` and translation), with its own line numbers.
pub fn parse(name: &str, path: &str, text: &str) -> Result<Runbook, RunbookError> {
    let r = Reader { path };
    let top = compose::node::parse(text).map_err(|(pos, message)| RunbookError {
        path: path.to_owned(),
        line: pos.line,
        key: String::new(),
        message,
    })?;
    let root = Node { value: Value::Null, pos: compose::Pos { line: 1, column: 1 }, file: 0 };
    let Some(spec) = top.get("x-runbook") else {
        return Err(r.err(&root, "x-runbook", "missing: a runbook says what it takes and where it runs here"));
    };
    let mut runbook = Runbook {
        name: name.to_owned(),
        description: String::new(),
        target: Target::One,
        timeout_s: DEFAULT_TIMEOUT_S,
        params: BTreeMap::new(),
        path: path.to_owned(),
        compose: text.to_owned(),
    };
    for (k, v) in r.entries(spec, "x-runbook")? {
        let key = k.scalar_text().unwrap_or_default();
        let at = format!("x-runbook.{key}");
        match key.as_str() {
            "description" => runbook.description = r.text(v, &at)?,
            "timeout" => {
                let t = r.text(v, &at)?;
                runbook.timeout_s =
                    seconds(&t).ok_or_else(|| r.err(v, &at, format!("{t:?}: expected 90s, 10m or 2h")))?;
            }
            "target" => runbook.target = target(&r, v, &at)?,
            "params" => {
                for (pk, pv) in r.entries(v, &at)? {
                    let pname = pk.scalar_text().unwrap_or_default();
                    let pat = format!("{at}.{pname}");
                    if !check_param_name(&pname) {
                        return Err(r.err(
                            pk,
                            &pat,
                            "a parameter name is 1 to 64 of a-z, 0-9 and _, starting with a letter",
                        ));
                    }
                    runbook.params.insert(pname, param(&r, pv, &pat)?);
                }
            }
            _ => return Err(r.err(k, &at, "unknown key (description, target, timeout, params)")),
        }
    }
    let services = top.get("services").map(|s| r.entries(s, "services")).transpose()?.unwrap_or(&[]);
    if services.len() != 1 {
        let at = top.get("services").unwrap_or(&root);
        return Err(r.err(at, "services", format!("a runbook has exactly one service, found {}", services.len())));
    }
    for (pname, p) in &runbook.params {
        if let Some(d) = &p.default {
            check_value(p, d).map_err(|m| r.err(spec, &format!("x-runbook.params.{pname}.default"), m.to_string()))?;
        }
    }
    Ok(runbook)
}

fn target(r: &Reader<'_>, v: &Node, at: &str) -> Result<Target, RunbookError> {
    if let Value::Map(_) = v.value {
        let mut attributes = BTreeMap::new();
        for (k, av) in r.entries(v, at)? {
            let key = k.scalar_text().unwrap_or_default();
            if key != "attributes" {
                return Err(r.err(k, &format!("{at}.{key}"), "unknown key (attributes)"));
            }
            for (ak, aval) in r.entries(av, &format!("{at}.attributes"))? {
                let name = ak.scalar_text().unwrap_or_default();
                attributes.insert(name.clone(), r.text(aval, &format!("{at}.attributes.{name}"))?);
            }
        }
        if attributes.is_empty() {
            return Err(r.err(v, at, "attributes: name at least one"));
        }
        return Ok(Target::Attributes(attributes));
    }
    match r.text(v, at)?.as_str() {
        "one" => Ok(Target::One),
        "every" => Ok(Target::Every),
        other => Err(r.err(v, at, format!("{other:?}: expected one, every or {{attributes: {{...}}}}"))),
    }
}

fn param(r: &Reader<'_>, v: &Node, at: &str) -> Result<Param, RunbookError> {
    let mut kind = None;
    let (mut min, mut max, mut max_length, mut values) = (None, None, MAX_STRING, Vec::new());
    let mut p =
        Param { kind: ParamType::Boolean, default: None, required: false, secret: false, description: String::new() };
    for (k, pv) in r.entries(v, at)? {
        let key = k.scalar_text().unwrap_or_default();
        let kat = format!("{at}.{key}");
        match key.as_str() {
            "type" => kind = Some((r.text(pv, &kat)?, pv.clone())),
            "min" => min = Some(r.int(pv, &kat)?),
            "max" => max = Some(r.int(pv, &kat)?),
            "max_length" => {
                let n = r.int(pv, &kat)?;
                max_length = usize::try_from(n)
                    .ok()
                    .filter(|n| (1..=MAX_STRING).contains(n))
                    .ok_or_else(|| r.err(pv, &kat, format!("expected 1 to {MAX_STRING}")))?;
            }
            "values" => {
                let Value::Seq(items) = &pv.value else {
                    return Err(r.err(pv, &kat, format!("expected a list, found {}", pv.kind())));
                };
                values = items.iter().map(|i| r.text(i, &kat)).collect::<Result<_, _>>()?;
            }
            "default" => p.default = Some(r.text(pv, &kat)?),
            "required" => p.required = matches!(pv.value, Value::Bool(true)),
            "secret" => p.secret = matches!(pv.value, Value::Bool(true)),
            "description" => p.description = r.text(pv, &kat)?,
            _ => {
                return Err(r.err(
                    k,
                    &kat,
                    "unknown key (type, min, max, max_length, values, default, required, secret, description)",
                ));
            }
        }
    }
    let Some((kind, kind_node)) = kind else {
        return Err(r.err(v, &format!("{at}.type"), "missing (string, integer, boolean or enum)"));
    };
    p.kind = match kind.as_str() {
        "string" => ParamType::String { max_length },
        "integer" => ParamType::Integer { min, max },
        "boolean" => ParamType::Boolean,
        "enum" if !values.is_empty() => ParamType::Enum { values },
        "enum" => return Err(r.err(v, &format!("{at}.values"), "an enum lists its values")),
        other => {
            return Err(r.err(
                &kind_node,
                &format!("{at}.type"),
                format!("{other:?}: expected string, integer, boolean or enum"),
            ));
        }
    };
    Ok(p)
}

/// Whether `value` fits `param`; the reason when not.
fn check_value(param: &Param, value: &str) -> Result<(), ValueProblem> {
    match &param.kind {
        ParamType::String { max_length } => {
            if value.len() > *max_length {
                return Err(ValueProblem::TooLong(*max_length));
            }
            if value.chars().any(char::is_control) {
                return Err(ValueProblem::ControlCharacter);
            }
        }
        ParamType::Integer { min, max } => {
            let n: i64 = value.parse().map_err(|_| ValueProblem::NotAnInteger(value.to_owned()))?;
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                return Err(ValueProblem::OutOfRange { value: n, min: *min, max: *max });
            }
        }
        ParamType::Boolean => {
            if value != "true" && value != "false" {
                return Err(ValueProblem::NotABoolean(value.to_owned()));
            }
        }
        ParamType::Enum { values } => {
            if !values.iter().any(|v| v == value) {
                return Err(ValueProblem::NotOneOf { value: value.to_owned(), values: values.clone() });
            }
        }
    }
    Ok(())
}

impl Runbook {
    /// The values a run gets: each given one checked, defaults filled in,
    /// required ones present, unknown names refused.
    pub fn bind(&self, given: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ParamError> {
        let fail = |name: &str, problem: ValueProblem| ParamError { name: name.to_owned(), problem };
        for name in given.keys() {
            if !self.params.contains_key(name) {
                return Err(fail(name, ValueProblem::Unknown(self.params.keys().cloned().collect())));
            }
        }
        let mut out = BTreeMap::new();
        for (name, p) in &self.params {
            match given.get(name).or(p.default.as_ref()) {
                Some(v) => {
                    check_value(p, v).map_err(|m| fail(name, m))?;
                    out.insert(name.clone(), v.clone());
                }
                None if p.required => return Err(fail(name, ValueProblem::Required)),
                None => {}
            }
        }
        Ok(out)
    }

    /// Non-secret values for argv: a whole element `{{name}}` becomes the value
    /// (an absent optional parameter removes the element); nothing else is touched.
    pub fn substitute(&self, argv: &[String], values: &BTreeMap<String, String>) -> Vec<String> {
        argv.iter()
            .filter_map(|arg| {
                let Some(name) = arg.strip_prefix("{{").and_then(|a| a.strip_suffix("}}")) else {
                    return Some(arg.clone());
                };
                match self.params.get(name.trim()) {
                    Some(p) if !p.secret => values.get(name.trim()).cloned(),
                    _ => Some(arg.clone()),
                }
            })
            .collect()
    }

    /// The environment variable a parameter reaches the command as.
    pub fn env_name(param: &str) -> String {
        format!("M3S_PARAM_{}", param.to_ascii_uppercase())
    }

    /// Values as history shows them: secret ones as `***`.
    pub fn shown(&self, values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        values
            .iter()
            .map(|(k, v)| {
                let secret = self.params.get(k).is_some_and(|p| p.secret);
                (k.clone(), if secret { "***".to_owned() } else { v.clone() })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROTATE: &str = "x-runbook:\n  description: Rotate the logs\n  target: every\n  timeout: 2m\n  params:\n    days: {type: integer, min: 1, max: 90, default: 7}\n    mode: {type: enum, values: [fast, full], required: true}\n    note: {type: string, max_length: 20}\n    token: {type: string, secret: true}\nservices:\n  run:\n    command: [\"rotate\", \"--days\", \"{{days}}\", \"{{note}}\", \"{{token}}\", \"x{{days}}\"]\n";

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_runbook_is_read_and_its_parameters_bound() {
        let rb = parse("rotate", "runbooks/rotate/compose.yaml", ROTATE).unwrap();
        assert_eq!((rb.target.clone(), rb.timeout_s), (Target::Every, 120));
        assert_eq!(rb.params.len(), 4);
        let values = rb.bind(&given(&[("mode", "full"), ("token", "s3")])).unwrap();
        assert_eq!(values, given(&[("days", "7"), ("mode", "full"), ("token", "s3")]));
        let argv: Vec<String> =
            ["rotate", "--days", "{{days}}", "{{note}}", "{{token}}", "x{{days}}"].map(String::from).to_vec();
        // Whole elements only; an absent optional one disappears; a secret is never an argument.
        assert_eq!(rb.substitute(&argv, &values), ["rotate", "--days", "7", "{{token}}", "x{{days}}"]);
        assert_eq!(rb.shown(&values)["token"], "***");
        assert_eq!(Runbook::env_name("days"), "M3S_PARAM_DAYS");
    }

    #[test]
    fn bad_values_never_bind() {
        let rb = parse("rotate", "r.yaml", ROTATE).unwrap();
        let e = |pairs: &[(&str, &str)]| rb.bind(&given(pairs)).unwrap_err().to_string();
        assert_eq!(e(&[("mode", "full"), ("days", "0")]), "parameter days: 0 is outside 1..=90");
        assert_eq!(
            e(&[("mode", "full"), ("days", "7; rm -rf /")]),
            "parameter days: \"7; rm -rf /\" is not a whole number"
        );
        assert_eq!(e(&[("mode", "slow")]), "parameter mode: \"slow\": expected one of fast, full");
        assert_eq!(e(&[]), "parameter mode: required");
        assert!(
            e(&[("mode", "full"), ("nope", "1")])
                .starts_with("parameter nope: unknown (this runbook takes: days, mode")
        );
        assert_eq!(e(&[("mode", "full"), ("note", "a\nb")]), "parameter note: contains a control character");
        assert_eq!(e(&[("mode", "full"), ("note", &"x".repeat(21))]), "parameter note: longer than 20 bytes");
    }

    #[test]
    fn mistakes_in_the_file_name_their_line_and_key() {
        let e = |text: &str| parse("r", "runbooks/r/compose.yaml", text).unwrap_err().to_string();
        assert_eq!(
            e("services:\n  run: {command: [x]}\n"),
            "runbooks/r/compose.yaml:1: x-runbook: missing: a runbook says what it takes and where it runs here"
        );
        assert_eq!(
            e("x-runbook:\n  target: all\nservices:\n  run: {command: [x]}\n"),
            "runbooks/r/compose.yaml:2: x-runbook.target: \"all\": expected one, every or {attributes: {...}}"
        );
        assert_eq!(
            e("x-runbook:\n  params:\n    n: {type: number}\nservices:\n  run: {command: [x]}\n"),
            "runbooks/r/compose.yaml:3: x-runbook.params.n.type: \"number\": expected string, integer, boolean or enum"
        );
        assert_eq!(
            e("x-runbook:\n  timeout: soon\nservices:\n  run: {command: [x]}\n"),
            "runbooks/r/compose.yaml:2: x-runbook.timeout: \"soon\": expected 90s, 10m or 2h"
        );
        assert!(
            e("x-runbook: {}\nservices:\n  a: {command: [x]}\n  b: {command: [y]}\n")
                .contains("exactly one service, found 2")
        );
        assert!(
            e("x-runbook:\n  params:\n    Bad: {type: boolean}\nservices:\n  run: {command: [x]}\n")
                .contains(":3: x-runbook.params.Bad")
        );
        let t = parse("r", "r", "x-runbook:\n  target: {attributes: {rack: a}}\nservices:\n  run: {command: [x]}\n")
            .unwrap();
        assert_eq!(t.target, Target::Attributes(given(&[("rack", "a")])));
    }
}
