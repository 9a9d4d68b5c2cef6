//! PromQL tokens.

use super::ParseError;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    Number(f64),
    Str(String),
    Duration(i64),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    At,
    Op(&'static str),
    /// `=`, `!=`, `=~`, `!~` inside braces (and `=` alone).
    Match(&'static str),
    Eof,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
}

pub fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let push = |out: &mut Vec<Token>, tok| out.push(Token { tok, pos: start });
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                push(&mut out, Tok::LParen);
                i += 1
            }
            b')' => {
                push(&mut out, Tok::RParen);
                i += 1
            }
            b'{' => {
                push(&mut out, Tok::LBrace);
                i += 1
            }
            b'}' => {
                push(&mut out, Tok::RBrace);
                i += 1
            }
            b'[' => {
                push(&mut out, Tok::LBracket);
                i += 1
            }
            b']' => {
                push(&mut out, Tok::RBracket);
                i += 1
            }
            b',' => {
                push(&mut out, Tok::Comma);
                i += 1
            }
            b':' => {
                push(&mut out, Tok::Colon);
                i += 1
            }
            b'@' => {
                push(&mut out, Tok::At);
                i += 1
            }
            b'+' => {
                push(&mut out, Tok::Op("+"));
                i += 1
            }
            b'-' => {
                push(&mut out, Tok::Op("-"));
                i += 1
            }
            b'*' => {
                push(&mut out, Tok::Op("*"));
                i += 1
            }
            b'/' => {
                push(&mut out, Tok::Op("/"));
                i += 1
            }
            b'%' => {
                push(&mut out, Tok::Op("%"));
                i += 1
            }
            b'^' => {
                push(&mut out, Tok::Op("^"));
                i += 1
            }
            b'=' => {
                if b.get(i + 1) == Some(&b'=') {
                    push(&mut out, Tok::Op("=="));
                    i += 2;
                } else if b.get(i + 1) == Some(&b'~') {
                    push(&mut out, Tok::Match("=~"));
                    i += 2;
                } else {
                    push(&mut out, Tok::Match("="));
                    i += 1;
                }
            }
            b'!' => match b.get(i + 1) {
                Some(b'=') => {
                    push(&mut out, Tok::Match("!="));
                    i += 2
                }
                Some(b'~') => {
                    push(&mut out, Tok::Match("!~"));
                    i += 2
                }
                _ => return Err(ParseError::new(src, i, "unexpected character after '!'")),
            },
            b'<' | b'>' => {
                let op = match (c, b.get(i + 1)) {
                    (b'<', Some(b'=')) => "<=",
                    (b'>', Some(b'=')) => ">=",
                    (b'<', _) => "<",
                    _ => ">",
                };
                push(&mut out, Tok::Op(op));
                i += op.len();
            }
            b'"' | b'\'' | b'`' => {
                let (s, next) = string(src, i)?;
                push(&mut out, Tok::Str(s));
                i = next;
            }
            b'0'..=b'9' | b'.' => {
                let (tok, next) = number_or_duration(src, i)?;
                push(&mut out, tok);
                i = next;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                    i += 1;
                }
                let word = &src[start..i];
                let tok = match word.to_ascii_lowercase().as_str() {
                    "inf" => Tok::Number(f64::INFINITY),
                    "nan" => Tok::Number(f64::NAN),
                    _ => Tok::Ident(word.to_string()),
                };
                push(&mut out, tok);
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(ParseError::new(src, i, format!("unexpected character: {ch:?}")));
            }
        }
    }
    out.push(Token { tok: Tok::Eof, pos: src.len() });
    Ok(out)
}

fn string(src: &str, start: usize) -> Result<(String, usize), ParseError> {
    let b = src.as_bytes();
    let quote = b[start];
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = b.get(i) else {
            return Err(ParseError::new(src, start, "unterminated quoted string"));
        };
        if c == quote {
            return Ok((out, i + 1));
        }
        if c == b'\\' && quote != b'`' {
            let Some(&e) = b.get(i + 1) else {
                return Err(ParseError::new(src, start, "unterminated quoted string"));
            };
            let esc = match e {
                b'n' => '\n',
                b't' => '\t',
                b'r' => '\r',
                b'\\' => '\\',
                b'"' => '"',
                b'\'' => '\'',
                b'a' => '\x07',
                b'b' => '\x08',
                b'f' => '\x0c',
                b'v' => '\x0b',
                _ => return Err(ParseError::new(src, i, format!("unknown escape sequence '\\{}'", e as char))),
            };
            out.push(esc);
            i += 2;
            continue;
        }
        let ch = src[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
}

fn number_or_duration(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let b = src.as_bytes();
    // A duration: digits followed by a unit, possibly repeated (1h30m).
    if let Some((ms, next)) = duration_at(src, start) {
        return Ok((Tok::Duration(ms), next));
    }
    let mut i = start;
    if src[i..].starts_with("0x") || src[i..].starts_with("0X") {
        i += 2;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        let v = i64::from_str_radix(&src[start + 2..i], 16)
            .map_err(|_| ParseError::new(src, start, "invalid hexadecimal number"))?;
        return Ok((Tok::Number(v as f64), i));
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        i += 1;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    let text = &src[start..i];
    let v: f64 = text.parse().map_err(|_| ParseError::new(src, start, format!("bad number {text:?}")))?;
    Ok((Tok::Number(v), i))
}

const UNITS: &[(&str, i64)] = &[
    ("ms", 1),
    ("s", 1000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 604_800_000),
    ("y", 31_536_000_000),
];

/// A Prometheus duration starting at `start` (`5m`, `1h30m`, `250ms`), in milliseconds.
fn duration_at(src: &str, start: usize) -> Option<(i64, usize)> {
    let b = src.as_bytes();
    let mut i = start;
    let mut total: i64 = 0;
    let mut any = false;
    loop {
        let digits_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits_start {
            break;
        }
        let n: i64 = src[digits_start..i].parse().ok()?;
        let (unit, ms) = UNITS.iter().filter(|(u, _)| src[i..].starts_with(u)).max_by_key(|(u, _)| u.len()).copied()?;
        // "m" must not be the start of a longer identifier (e.g. `5min` is not a duration).
        let after = i + unit.len();
        if after < b.len()
            && (b[after].is_ascii_alphabetic() || b[after] == b'_')
            && !b[after..].first().is_some_and(|c| c.is_ascii_digit())
        {
            // Could be the next unit group only if digits follow; letters mean not a duration.
            return None;
        }
        total = total.checked_add(n.checked_mul(ms)?)?;
        i = after;
        any = true;
    }
    any.then_some((total, i))
}

/// Parses a whole string as a duration.
pub fn parse_duration(s: &str) -> Option<i64> {
    match duration_at(s, 0) {
        Some((ms, end)) if end == s.len() => Some(ms),
        _ => None,
    }
}
