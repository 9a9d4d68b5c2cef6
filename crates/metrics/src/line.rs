//! InfluxDB line protocol:
//! `measurement[,tag=value...] field=value[,field=value...] [timestamp]`.
//!
//! Escapes: in the measurement `\,` and `\ `; in tag keys, tag values and field
//! keys `\,`, `\=` and `\ `; in string field values `\"` and `\\`. A backslash
//! before anything else is literal. Field values: floats (`1`, `-1.5e3`, `.5`),
//! integers `12i`, unsigned `12u`, strings `"..."` (at most 64 KiB), booleans
//! (`t T true True TRUE f F false False FALSE`). Blank lines and lines whose first
//! non-space character is `#` are skipped; `\r\n` line ends are accepted.

use std::fmt;

use crate::model::{FieldValue, Point};

/// The longest string field value InfluxDB accepts.
pub const MAX_STRING_LEN: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    Ns,
    Us,
    Ms,
    S,
    M,
    H,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid precision {0:?} (ns, us, ms, s; v1 also n, u, m, h)")]
pub struct UnknownPrecision(pub String);

impl Precision {
    /// v1 names (`n`, `u`, `ms`, `s`, `m`, `h`) and v2 names (`ns`, `us`, `ms`, `s`).
    pub fn parse(s: &str) -> Result<Precision, UnknownPrecision> {
        Ok(match s {
            "n" | "ns" => Precision::Ns,
            "u" | "us" | "µ" | "µs" => Precision::Us,
            "ms" => Precision::Ms,
            "s" => Precision::S,
            "m" => Precision::M,
            "h" => Precision::H,
            other => return Err(UnknownPrecision(other.to_owned())),
        })
    }

    fn nanos(self) -> i64 {
        match self {
            Precision::Ns => 1,
            Precision::Us => 1_000,
            Precision::Ms => 1_000_000,
            Precision::S => 1_000_000_000,
            Precision::M => 60_000_000_000,
            Precision::H => 3_600_000_000_000,
        }
    }
}

/// A malformed line: 1-based line number and byte column, what is wrong, and the line itself (shortened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub text: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {} in '{}'", self.line, self.column, self.message, self.text)
    }
}

impl std::error::Error for LineError {}

/// The points of a request body, and every malformed line.
#[derive(Debug, Default)]
pub struct Batch {
    pub points: Vec<Point>,
    pub errors: Vec<LineError>,
}

/// Parses a whole body. Lines are independent: a bad line is reported and the
/// others still parse (the caller decides whether to write anything).
pub fn parse_batch(body: &[u8], precision: Precision) -> Batch {
    let mut batch = Batch::default();
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        match parse_line(line, precision) {
            Ok(Some(p)) => batch.points.push(p),
            Ok(None) => {}
            Err((column, message)) => {
                batch.errors.push(LineError { line: i + 1, column, message, text: shorten(line) })
            }
        }
    }
    batch
}

fn shorten(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    if text.chars().count() > 100 {
        format!("{}...", text.chars().take(100).collect::<String>())
    } else {
        text.into_owned()
    }
}

type ParseResult<T> = Result<T, (usize, String)>;

/// Parses one line (without its `\n`); `None` for blank lines and comments.
/// An error is the 1-based byte column and a message.
pub fn parse_line(line: &[u8], precision: Precision) -> ParseResult<Option<Point>> {
    if let Err(e) = std::str::from_utf8(line) {
        return Err((e.valid_up_to() + 1, "invalid UTF-8".into()));
    }
    let mut p = Parser { b: line, pos: 0 };
    p.skip_spaces();
    if p.at_end() || p.peek() == Some(b'#') {
        return Ok(None);
    }
    let measurement = p.name(Kind::Measurement)?;
    if measurement.is_empty() {
        return Err(p.err("missing measurement"));
    }
    let mut tags = Vec::new();
    while p.peek() == Some(b',') {
        p.pos += 1;
        let key = p.name(Kind::Key)?;
        if key.is_empty() {
            return Err(p.err("missing tag key"));
        }
        if p.peek() != Some(b'=') {
            return Err(p.err(format!("missing tag value for tag key {key:?}")));
        }
        p.pos += 1;
        let value = p.name(Kind::Key)?;
        if value.is_empty() {
            return Err(p.err(format!("missing tag value for tag key {key:?}")));
        }
        tags.push((key, value));
    }
    if p.peek() != Some(b' ') && p.peek() != Some(b'\t') {
        return Err(p.err("missing fields"));
    }
    p.skip_spaces();
    let mut fields = Vec::new();
    loop {
        let key = p.name(Kind::Key)?;
        if key.is_empty() {
            return Err(p.err("missing field key"));
        }
        if p.peek() != Some(b'=') {
            return Err(p.err(format!("missing field value for field key {key:?}")));
        }
        p.pos += 1;
        let value = p.field_value()?;
        fields.push((key, value));
        match p.peek() {
            Some(b',') => p.pos += 1,
            _ => break,
        }
    }
    let timestamp = if p.at_end() {
        None
    } else {
        if !matches!(p.peek(), Some(b' ' | b'\t')) {
            return Err(p.err("invalid field value (unexpected character after it)"));
        }
        p.skip_spaces();
        if p.at_end() { None } else { Some(p.timestamp(precision)?) }
    };
    p.skip_spaces();
    if !p.at_end() {
        return Err(p.err("unexpected text after the timestamp"));
    }
    Ok(Some(Point { measurement, tags, fields, timestamp }))
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Ends at an unescaped comma or space.
    Measurement,
    /// Ends at an unescaped comma, equals sign or space.
    Key,
}

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    fn err(&self, message: impl Into<String>) -> (usize, String) {
        (self.pos + 1, message.into())
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// A measurement, tag key, tag value or field key, unescaped.
    fn name(&mut self, kind: Kind) -> ParseResult<String> {
        let start = self.pos;
        let mut escaped = false;
        while let Some(c) = self.peek() {
            match c {
                b'\\' => {
                    escaped = true;
                    // The escaped character never ends the name; a trailing backslash is literal.
                    self.pos += if self.pos + 1 < self.b.len() { 2 } else { 1 };
                    continue;
                }
                b',' | b' ' => break,
                b'=' if kind == Kind::Key => break,
                c if c < 0x20 || c == 0x7f => {
                    return Err(self.err(format!("control character 0x{c:02x} in a name")));
                }
                _ => {}
            }
            self.pos += 1;
        }
        let raw = &self.b[start..self.pos];
        let text = std::str::from_utf8(raw).expect("the line is valid UTF-8 and names end at ASCII");
        if !escaped {
            return Ok(text.to_owned());
        }
        let specials: &[char] = match kind {
            Kind::Measurement => &[',', ' '],
            Kind::Key => &[',', '=', ' '],
        };
        Ok(unescape(text, specials))
    }

    fn field_value(&mut self) -> ParseResult<FieldValue> {
        if self.peek() == Some(b'"') {
            return self.string_value();
        }
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, b',' | b' ' | b'\t') {
                break;
            }
            self.pos += 1;
        }
        let raw = std::str::from_utf8(&self.b[start..self.pos]).expect("valid UTF-8 ends at ASCII");
        let bad = |what: &str| ((start + 1), format!("invalid {what} field value {raw:?}"));
        if raw.is_empty() {
            return Err((start + 1, "missing field value".into()));
        }
        match raw {
            "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Bool(true)),
            "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Bool(false)),
            _ => {}
        }
        if let Some(digits) = raw.strip_suffix('i') {
            if !is_integer(digits, true) {
                return Err(bad("integer"));
            }
            return digits.parse::<i64>().map(FieldValue::Int).map_err(|_| bad("integer (out of range)"));
        }
        if let Some(digits) = raw.strip_suffix('u') {
            if !is_integer(digits, false) {
                return Err(bad("unsigned"));
            }
            return digits.parse::<u64>().map(FieldValue::UInt).map_err(|_| bad("unsigned (out of range)"));
        }
        if !is_float(raw) {
            return Err(bad("number"));
        }
        match raw.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(FieldValue::Float(v)),
            _ => Err(bad("float (out of range)")),
        }
    }

    fn string_value(&mut self) -> ParseResult<FieldValue> {
        let open = self.pos;
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.peek() {
                None => return Err((open + 1, "unterminated string field value".into())),
                Some(b'\\') if self.pos + 1 < self.b.len() => {
                    escaped = true;
                    self.pos += 2;
                }
                Some(b'"') => break,
                Some(_) => self.pos += 1,
            }
        }
        let text = std::str::from_utf8(&self.b[start..self.pos]).expect("valid UTF-8 ends at ASCII");
        self.pos += 1;
        let value = if escaped { unescape(text, &['"', '\\']) } else { text.to_owned() };
        if value.len() > MAX_STRING_LEN {
            return Err((open + 1, format!("string field value longer than {MAX_STRING_LEN} bytes")));
        }
        Ok(FieldValue::Str(value))
    }

    fn timestamp(&mut self, precision: Precision) -> ParseResult<i64> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c != b' ' && c != b'\t') {
            self.pos += 1;
        }
        let raw = std::str::from_utf8(&self.b[start..self.pos]).expect("valid UTF-8 ends at ASCII");
        if !is_integer(raw, true) {
            return Err((start + 1, format!("invalid timestamp {raw:?}")));
        }
        raw.parse::<i64>()
            .ok()
            .and_then(|t| t.checked_mul(precision.nanos()))
            .ok_or((start + 1, format!("timestamp {raw:?} out of range")))
    }
}

/// Removes the backslash before the characters in `specials`; other backslashes stay.
fn unescape(text: &str, specials: &[char]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && specials.contains(&next)
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

fn is_integer(s: &str, signed: bool) -> bool {
    let digits = if signed { s.strip_prefix('-').unwrap_or(s) } else { s };
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `[-]digits[.digits][e[+-]digits]` or `[-].digits...`: no `inf`, `NaN`, `+`, hex.
fn is_float(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// Writes a point as one line (no newline), escaping as the parser expects.
/// Floats are written so that they parse back to the same value.
pub fn write_point(p: &Point, out: &mut String) {
    escape_into(out, &p.measurement, &[',', ' ']);
    for (k, v) in &p.tags {
        out.push(',');
        escape_into(out, k, &[',', '=', ' ']);
        out.push('=');
        escape_into(out, v, &[',', '=', ' ']);
    }
    out.push(' ');
    for (i, (k, v)) in p.fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        escape_into(out, k, &[',', '=', ' ']);
        out.push('=');
        match v {
            FieldValue::Float(f) => {
                use std::fmt::Write;
                let _ = write!(out, "{f:?}");
            }
            FieldValue::Int(n) => out.push_str(&format!("{n}i")),
            FieldValue::UInt(n) => out.push_str(&format!("{n}u")),
            FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            FieldValue::Str(s) => {
                out.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    if let Some(t) = p.timestamp {
        out.push(' ');
        out.push_str(&t.to_string());
    }
}

/// Escapes `specials`. Line protocol cannot express a backslash right before
/// a special character or at the end of a name (InfluxDB's parser has the same
/// limits); `expressible` tells whether a name avoids both.
fn escape_into(out: &mut String, s: &str, specials: &[char]) {
    for c in s.chars() {
        if specials.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Whether `write_point` can write this point so that it parses back equal:
/// no name ends in a backslash or has one right before a character it escapes.
pub fn expressible(p: &Point) -> bool {
    let ok = |s: &str, specials: &[char]| {
        !s.ends_with('\\') && !s.chars().zip(s.chars().skip(1)).any(|(a, b)| a == '\\' && specials.contains(&b))
    };
    ok(&p.measurement, &[',', ' '])
        && p.tags.iter().all(|(k, v)| ok(k, &[',', '=', ' ']) && ok(v, &[',', '=', ' ']))
        && p.fields.iter().all(|(k, _)| ok(k, &[',', '=', ' ']))
}
