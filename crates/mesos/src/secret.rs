//! A secret text (a password, a token, a key): shown as `***` by `Debug`,
//! `Display` and `Serialize`, so that no log line, `m3s config` output or
//! error message carries it; the value is read only through [`Secret::expose`].

use std::fmt;

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that needs it (a header, a hash).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// From a command-line flag or an environment variable.
impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_shows_only_through_expose() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s} {}", serde_json::to_string(&s).unwrap()), "*** *** \"***\"");
        assert_eq!(s.expose(), "hunter2");
        assert!(!format!("{:?}", Some(s.clone())).contains("hunter2"));
    }
}
