//! Compose variable interpolation: `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?err}`,
//! `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}`, `$VAR` and `$$`. Defaults may nest.

use std::collections::BTreeMap;

/// Variables for interpolation: the process environment over the `.env` file.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    pub fn new(vars: BTreeMap<String, String>) -> Self {
        Env { vars }
    }

    /// `environment` wins over `dotenv`, as in docker compose.
    pub fn layered(environment: BTreeMap<String, String>, dotenv: BTreeMap<String, String>) -> Self {
        let mut vars = dotenv;
        vars.extend(environment);
        Env { vars }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Env {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Env { vars: iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }
}

/// Why a string cannot be interpolated, worded as docker compose words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    #[error(
        "invalid interpolation format for {0:?}: a '$' must be followed by a name, '{{' or '$' (write \"$$\" for a literal '$')"
    )]
    BareDollar(String),
    #[error("invalid interpolation format: missing closing '}}'")]
    Unclosed,
    #[error("invalid interpolation format for {0:?}: expected a variable name after '${{'")]
    NoName(String),
    #[error("invalid interpolation format for \"${{{0}\": missing closing '}}'")]
    UnclosedName(String),
    #[error(
        "invalid interpolation format for \"${{{name}{found}...\": unexpected {found:?} (expected '}}', ':-', '-', ':?', '?', ':+' or '+')"
    )]
    Operator { name: String, found: char },
    #[error("required variable {name} {}{}", if *.empty { "is empty" } else { "is not set" }, if message.is_empty() { String::new() } else { format!(": {message}") })]
    Required { name: String, empty: bool, message: String },
}

/// Interpolate `input`. Variables referenced but unset are appended to `unset`
/// (they expand to the empty string, as docker compose does, with a warning).
pub fn interpolate(input: &str, env: &Env, unset: &mut Vec<String>) -> Result<String, InterpolationError> {
    let chars: Vec<char> = input.chars().collect();
    let (out, end) = expand(&chars, 0, env, unset, false)?;
    debug_assert_eq!(end, chars.len());
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expand from `i`; when `nested`, stop at the `}` closing the enclosing `${`.
fn expand(
    s: &[char],
    mut i: usize,
    env: &Env,
    unset: &mut Vec<String>,
    nested: bool,
) -> Result<(String, usize), InterpolationError> {
    let mut out = String::new();
    while i < s.len() {
        let c = s[i];
        if nested && c == '}' {
            return Ok((out, i));
        }
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match s.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let (v, next) = braced(s, i + 2, env, unset)?;
                out.push_str(&v);
                i = next;
            }
            Some(&c) if is_name_start(c) => {
                let start = i + 1;
                let mut j = start;
                while j < s.len() && is_name_char(s[j]) {
                    j += 1;
                }
                let name: String = s[start..j].iter().collect();
                match env.get(&name) {
                    Some(v) => out.push_str(v),
                    None => unset.push(name),
                }
                i = j;
            }
            _ => {
                let rest: String = s[i..].iter().take(12).collect();
                return Err(InterpolationError::BareDollar(rest));
            }
        }
    }
    if nested {
        return Err(InterpolationError::Unclosed);
    }
    Ok((out, i))
}

/// `i` points just after `${`; returns the value and the index after the closing `}`.
fn braced(s: &[char], i: usize, env: &Env, unset: &mut Vec<String>) -> Result<(String, usize), InterpolationError> {
    let mut j = i;
    while j < s.len() && is_name_char(s[j]) {
        j += 1;
    }
    let name: String = s[i..j].iter().collect();
    if name.is_empty() || !is_name_start(s[i]) {
        let rest: String = s[i.saturating_sub(2)..].iter().take(20).collect();
        return Err(InterpolationError::NoName(rest));
    }
    let value = env.get(&name);
    let op: &str = match (s.get(j), s.get(j + 1)) {
        (Some('}'), _) => {
            if value.is_none() {
                unset.push(name);
            }
            return Ok((value.unwrap_or_default().to_owned(), j + 1));
        }
        (Some(':'), Some('-')) => ":-",
        (Some(':'), Some('?')) => ":?",
        (Some(':'), Some('+')) => ":+",
        (Some('-'), _) => "-",
        (Some('?'), _) => "?",
        (Some('+'), _) => "+",
        (None, _) => return Err(InterpolationError::UnclosedName(name)),
        (Some(&found), _) => return Err(InterpolationError::Operator { name, found }),
    };
    // The argument is expanded only when it is used, so its own unset variables
    // are not reported needlessly; it is parsed either way to find the end.
    let arg_start = j + op.len();
    let mut scratch = Vec::new();
    let (arg, end) = expand(s, arg_start, env, &mut scratch, true)?;
    let set = value.is_some();
    let nonempty = value.is_some_and(|v| !v.is_empty());
    let use_arg = |unset: &mut Vec<String>| {
        unset.extend(scratch.iter().cloned());
        arg.clone()
    };
    let result = match op {
        ":-" => {
            if nonempty {
                value.unwrap().to_owned()
            } else {
                use_arg(unset)
            }
        }
        "-" => {
            if set {
                value.unwrap().to_owned()
            } else {
                use_arg(unset)
            }
        }
        ":+" => {
            if nonempty {
                use_arg(unset)
            } else {
                String::new()
            }
        }
        "+" => {
            if set {
                use_arg(unset)
            } else {
                String::new()
            }
        }
        ":?" | "?" => {
            let ok = if op == ":?" { nonempty } else { set };
            if !ok {
                return Err(InterpolationError::Required { name, empty: op == ":?" && set, message: arg });
            }
            value.unwrap().to_owned()
        }
        _ => unreachable!(),
    };
    Ok((result, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        [("A", "a"), ("EMPTY", ""), ("PORT", "8080"), ("NESTED", "n")].into_iter().collect()
    }

    fn ok(s: &str) -> String {
        let mut unset = Vec::new();
        interpolate(s, &env(), &mut unset).unwrap()
    }

    fn err(s: &str) -> String {
        let mut unset = Vec::new();
        interpolate(s, &env(), &mut unset).unwrap_err().to_string()
    }

    #[test]
    fn plain_forms() {
        assert_eq!(ok("no vars"), "no vars");
        assert_eq!(ok("${A}"), "a");
        assert_eq!(ok("x$A-y"), "xa-y");
        assert_eq!(ok("$A$A"), "aa");
        assert_eq!(ok("$$A"), "$A");
        assert_eq!(ok("$${A}"), "${A}");
        assert_eq!(ok("cost: 5$$"), "cost: 5$");
        assert_eq!(ok("${PORT}:80"), "8080:80");
        assert_eq!(ok("héllo ${A} wörld"), "héllo a wörld");
    }

    #[test]
    fn unset_is_empty_and_reported() {
        let mut unset = Vec::new();
        assert_eq!(interpolate("[${NOPE}][$NOPE2]", &env(), &mut unset).unwrap(), "[][]");
        assert_eq!(unset, vec!["NOPE".to_string(), "NOPE2".to_string()]);
    }

    #[test]
    fn defaults() {
        assert_eq!(ok("${NOPE:-d}"), "d");
        assert_eq!(ok("${EMPTY:-d}"), "d");
        assert_eq!(ok("${A:-d}"), "a");
        assert_eq!(ok("${NOPE-d}"), "d");
        assert_eq!(ok("${EMPTY-d}"), "");
        assert_eq!(ok("${A-d}"), "a");
        assert_eq!(ok("${NOPE:-}"), "");
        assert_eq!(ok("${NOPE:-a:b-c}"), "a:b-c");
        assert_eq!(ok("${NOPE:-{json}"), "{json");
    }

    #[test]
    fn nested_defaults() {
        assert_eq!(ok("${NOPE:-${A}}"), "a");
        assert_eq!(ok("${NOPE:-${NOPE2:-deep}}"), "deep");
        assert_eq!(ok("${NOPE:-x${NESTED}y}"), "xny");
        assert_eq!(ok("${A:-${NOPE}}"), "a");
        assert_eq!(ok("${NOPE-$$literal}"), "$literal");
        // an unused default's unset variables are not reported
        let mut unset = Vec::new();
        interpolate("${A:-${NOPE}}", &env(), &mut unset).unwrap();
        assert!(unset.is_empty());
    }

    #[test]
    fn alternates() {
        assert_eq!(ok("${A:+alt}"), "alt");
        assert_eq!(ok("${EMPTY:+alt}"), "");
        assert_eq!(ok("${EMPTY+alt}"), "alt");
        assert_eq!(ok("${NOPE+alt}"), "");
    }

    #[test]
    fn required() {
        assert_eq!(ok("${A:?must be set}"), "a");
        assert_eq!(ok("${A?must be set}"), "a");
        assert_eq!(ok("${EMPTY?must be set}"), "");
        assert_eq!(err("${NOPE:?must be set}"), "required variable NOPE is not set: must be set");
        assert_eq!(err("${EMPTY:?must be set}"), "required variable EMPTY is empty: must be set");
        assert_eq!(err("${NOPE?}"), "required variable NOPE is not set");
        assert_eq!(err("${NOPE:?need ${A}}"), "required variable NOPE is not set: need a");
        assert!(err("${NOPE:-${NOPE2:?inner}}").contains("NOPE2"));
    }

    #[test]
    fn malformed() {
        assert!(err("${").contains("expected a variable name"));
        assert!(err("${}").contains("expected a variable name"));
        assert!(err("${A").contains("missing closing"));
        assert!(err("${A:-x").contains("missing closing"));
        assert!(err("${A!}").contains("unexpected"));
        assert!(err("${1A}").contains("expected a variable name"));
        assert!(err("a $ b").contains("invalid interpolation format"));
        assert!(err("trailing $").contains("invalid interpolation format"));
    }

    #[test]
    fn layered_env() {
        let e = Env::layered(
            [("A".to_string(), "shell".to_string())].into(),
            [("A".to_string(), "dotenv".to_string()), ("B".to_string(), "b".to_string())].into(),
        );
        assert_eq!(e.get("A"), Some("shell"));
        assert_eq!(e.get("B"), Some("b"));
    }
}
