//! Compose's short syntaxes as pure functions: durations, byte sizes,
//! `ports` and `volumes` strings.

use super::*;

/// Why a short-syntax string does not parse; the caller names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShortSyntaxError {
    #[error("empty")]
    Empty,
    #[error("expected a number")]
    ExpectedNumber,
    #[error("bad number {0:?}")]
    BadNumber(String),
    #[error("missing unit ({0})")]
    MissingUnit(&'static str),
    #[error("unknown unit {unit:?} ({units})")]
    UnknownUnit { unit: String, units: &'static str },
    #[error("{0}")]
    DurationRange(#[from] std::time::TryFromFloatSecsError),
    #[error("port {0} out of range 1-65535")]
    PortRange(u32),
    #[error("{0:?} is not a port number")]
    NotAPort(String),
    #[error("range {0:?} ends before it starts")]
    ReversedRange(String),
    #[error("unknown protocol {0:?}")]
    UnknownProtocol(String),
    #[error("unclosed '[' in an IPv6 address")]
    UnclosedIpv6,
    #[error("expected ':' after the IPv6 address")]
    ColonAfterIpv6,
    #[error("too many ':'")]
    TooManyColons,
    #[error("host and container port ranges differ in length")]
    RangeLengths,
    #[error("expected [source:]target[:mode]")]
    VolumeForm,
    #[error("target {0:?} is not an absolute path")]
    RelativeTarget(String),
    #[error("unknown mode {0:?}")]
    UnknownMode(String),
}

const DURATION_UNITS: &str = "ns, us, ms, s, m, h";

/// Go-style duration as compose uses it: `1m30s`, `10s`, `1.5h`, `500ms`, `0`.
pub fn parse_duration(s: &str) -> Result<Duration, ShortSyntaxError> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(ShortSyntaxError::Empty);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err(ShortSyntaxError::ExpectedNumber);
        }
        let num: f64 = rest[..num_len].parse().map_err(|_| ShortSyntaxError::BadNumber(rest[..num_len].to_owned()))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(ShortSyntaxError::MissingUnit(DURATION_UNITS)),
            u => return Err(ShortSyntaxError::UnknownUnit { unit: u.to_owned(), units: DURATION_UNITS }),
        };
        total += num * secs;
    }
    Ok(Duration::try_from_secs_f64(total)?)
}

/// Docker-style size: `1024`, `512m`, `1g`, `1.5GB`, `100kib` (binary multiples).
pub fn parse_bytes(s: &str) -> Result<u64, ShortSyntaxError> {
    let t = s.trim().to_ascii_lowercase();
    let num_len = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    if num_len == 0 {
        return Err(ShortSyntaxError::ExpectedNumber);
    }
    let num: f64 = t[..num_len].parse().map_err(|_| ShortSyntaxError::BadNumber(t[..num_len].to_owned()))?;
    let unit = t[num_len..].trim();
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty())).unwrap_or(unit);
    let mult: u64 = match unit {
        "" | "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        u => return Err(ShortSyntaxError::UnknownUnit { unit: u.to_owned(), units: "b, k, m, g, t, p" }),
    };
    Ok((num * mult as f64) as u64)
}

pub(super) fn parse_port_number(s: &str) -> Result<u16, ShortSyntaxError> {
    match s.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        Ok(p) => Err(ShortSyntaxError::PortRange(p)),
        Err(_) => Err(ShortSyntaxError::NotAPort(s.to_owned())),
    }
}

pub(super) fn parse_range(s: &str) -> Result<PortRange, ShortSyntaxError> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (start, end) = (parse_port_number(a)?, parse_port_number(b)?);
            if end < start {
                return Err(ShortSyntaxError::ReversedRange(s.to_owned()));
            }
            Ok(PortRange { start, end })
        }
        None => {
            let p = parse_port_number(s)?;
            Ok(PortRange { start: p, end: p })
        }
    }
}

pub(super) fn check_protocol(p: &str) -> Result<(), ShortSyntaxError> {
    match p {
        "tcp" | "udp" | "sctp" | "http" | "https" | "h2c" | "wss" => Ok(()),
        _ => Err(ShortSyntaxError::UnknownProtocol(p.to_owned())),
    }
}

/// Short port syntax: `[[ip:][host[-range]]:]container[-range][/protocol]`.
/// A container range expands to one [`Port`] per port.
pub fn parse_short_port(s: &str) -> Result<Vec<Port>, ShortSyntaxError> {
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, proto)) => {
            check_protocol(proto)?;
            (spec, proto.to_owned())
        }
        None => (s, "tcp".to_owned()),
    };
    let (host_ip, rest) = if let Some(after) = spec.strip_prefix('[') {
        let (ip, rest) = after.split_once(']').ok_or(ShortSyntaxError::UnclosedIpv6)?;
        let rest = rest.strip_prefix(':').ok_or(ShortSyntaxError::ColonAfterIpv6)?;
        (Some(ip.to_owned()), rest)
    } else {
        (None, spec)
    };
    let parts: Vec<&str> = rest.rsplitn(3, ':').collect();
    let (host_ip, host, container) = match (host_ip, parts.as_slice()) {
        (None, [c]) => (None, None, *c),
        (None, [c, h]) => (None, Some(*h), *c),
        (None, [c, h, ip]) => (Some(ip.to_string()), Some(*h), *c),
        (Some(ip), [c, h]) => (Some(ip), Some(*h), *c),
        (Some(ip), [c]) => (Some(ip), None, *c),
        _ => return Err(ShortSyntaxError::TooManyColons),
    };
    let target = parse_range(container)?;
    let published = match host {
        Some("") | None => None,
        Some(h) => Some(parse_range(h)?),
    };
    let count = target.end - target.start + 1;
    if let Some(p) = published
        && count > 1
        && p.end - p.start + 1 != count
    {
        return Err(ShortSyntaxError::RangeLengths);
    }
    Ok((0..count)
        .map(|i| Port {
            target: target.start + i,
            published: match published {
                Some(p) if count > 1 => Some(PortRange { start: p.start + i, end: p.start + i }),
                other => other,
            },
            host_ip: host_ip.clone().filter(|ip| !ip.is_empty()),
            protocol: protocol.clone(),
            mode: None,
            name: None,
            app_protocol: None,
        })
        .collect())
}

/// Short volume syntax: `target`, `source:target` or `source:target:mode`.
pub fn parse_short_volume(s: &str) -> Result<Mount, ShortSyntaxError> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [src, t] => (Some(*src), *t, None),
        [src, t, m] => (Some(*src), *t, Some(*m)),
        _ => return Err(ShortSyntaxError::VolumeForm),
    };
    if !target.starts_with('/') {
        return Err(ShortSyntaxError::RelativeTarget(target.to_owned()));
    }
    let source = source.filter(|s| !s.is_empty());
    let kind = match source {
        Some(src) if src.starts_with(['/', '.', '~']) => MountType::Bind,
        _ => MountType::Volume,
    };
    let mut read_only = false;
    let mut options = Vec::new();
    for flag in mode.into_iter().flat_map(|m| m.split(',')) {
        match flag {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "z" | "Z" | "nocopy" | "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" | "cached"
            | "delegated" | "consistent" => options.push(flag.to_owned()),
            other => return Err(ShortSyntaxError::UnknownMode(other.to_owned())),
        }
    }
    Ok(Mount {
        kind,
        source: source.map(str::to_owned),
        target: target.to_owned(),
        read_only,
        options,
        tmpfs_size: None,
        create_host_path: None,
    })
}
