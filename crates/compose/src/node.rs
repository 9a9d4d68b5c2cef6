//! A positioned YAML value tree, produced by serde-saphyr (merge keys expanded,
//! duplicate keys rejected), on which interpolation and typing work.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::error::Pos;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    /// Index of the source file this node was read from.
    pub file: usize,
}

impl Node {
    /// Mark this node and all below it as read from source file `file`.
    pub fn set_file(&mut self, file: usize) {
        self.file = file;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.set_file(file)),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.set_file(file);
                v.set_file(file);
            }),
            _ => {}
        }
    }

    /// The entry for key `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => {
                entries.iter().find(|(k, _)| k.scalar_text().as_deref() == Some(key)).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// The scalar as text (numbers and booleans as written by YAML 1.2 core), or `None`.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A short description of the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Spanned<Value> = Spanned::deserialize(d)?;
        Ok(Node {
            value: s.value,
            pos: Pos { line: s.referenced.line() as u32, column: s.referenced.column() as u32 },
            file: 0,
        })
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Str(v.to_string()), Value::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Str(v.to_string()), Value::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Str(v.to_string()), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            out.push(n);
        }
        Ok(Value::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<Node>()? {
            let v = map.next_value::<Node>()?;
            out.push((k, v));
        }
        Ok(Value::Map(out))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// Parse one YAML document into a positioned tree.
pub fn parse(text: &str) -> Result<Node, (Pos, String)> {
    if text.trim().is_empty() {
        return Ok(Node { value: Value::Null, pos: Pos { line: 1, column: 1 }, file: 0 });
    }
    // As compose (go-yaml v3) reads untyped values: only `true`/`false` are
    // booleans (`yes`, `no`, `on`, `off` stay strings), and numbers with leading
    // zeros keep their text.
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| {
        let pos = e
            .location()
            .map(|l| Pos { line: l.line() as u32, column: l.column() as u32 })
            .unwrap_or(Pos { line: 1, column: 1 });
        (pos, e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_merge_keys() {
        let y = "x-base: &b\n  image: busybox\n  restart: always\nservices:\n  web:\n    <<: *b\n    restart: \"no\"\n    ports: [80, \"81:81\"]\n";
        let n = parse(y).unwrap();
        let Value::Map(top) = &n.value else { panic!() };
        let (k, svc) = &top[1];
        assert_eq!(k.value, Value::Str("services".into()));
        assert_eq!(k.pos, Pos { line: 4, column: 1 });
        let Value::Map(s) = &svc.value else { panic!() };
        let Value::Map(web) = &s[0].1.value else { panic!() };
        let keys: Vec<_> = web.iter().map(|(k, _)| k.scalar_text().unwrap()).collect();
        assert!(keys.contains(&"image".to_string()), "{keys:?}");
        let restart = web.iter().find(|(k, _)| k.scalar_text().unwrap() == "restart").unwrap();
        assert_eq!(restart.1.value, Value::Str("no".into()));
        let ports = web.iter().find(|(k, _)| k.scalar_text().unwrap() == "ports").unwrap();
        let Value::Seq(p) = &ports.1.value else { panic!() };
        assert_eq!(p[0].value, Value::Int(80));
        assert_eq!(p[1].pos, Pos { line: 8, column: 17 });
    }

    #[test]
    fn syntax_error_has_position() {
        let (pos, _) = parse("services:\n  web:\n    image: [a\n").unwrap_err();
        assert!(pos.line >= 3, "{pos:?}");
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let n = parse("a: no\nb: yes\nc: on\nd: true\ne: n\nf: 0755\n").unwrap();
        let texts: Vec<_> = ["a", "b", "c", "d", "e", "f"].iter().map(|k| n.get(k).unwrap().value.clone()).collect();
        assert_eq!(
            texts,
            vec![
                Value::Str("no".into()),
                Value::Str("yes".into()),
                Value::Str("on".into()),
                Value::Bool(true),
                Value::Str("n".into()),
                Value::Str("0755".into()),
            ]
        );
    }

    #[test]
    fn duplicate_keys_rejected() {
        assert!(parse("a: 1\na: 2\n").is_err());
    }
}
