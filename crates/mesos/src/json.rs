//! Pieces of Mesos's JSON mapping (stout's, not proto3 canonical JSON) that serde
//! does not give for free: tolerant enums, base64 bytes, numbers sent as strings.

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Declares a proto enum as Mesos encodes it: a string per value. Names that this
/// build does not know are kept in `Unknown(name)` instead of failing the whole
/// message, because newer masters add values (Mesos itself drops unknown names of
/// optional enums; keeping them lets a caller log what it ignored).
macro_rules! mesos_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this build does not know, kept by name.
            Unknown(String),
        }

        impl $name {
            /// Every value this build knows, in .proto order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant,)+];

            /// The wire name, e.g. `"TASK_RUNNING"`.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Unknown(s) => s.as_str(),
                }
            }

            /// Parses a wire name; unknown names become `Unknown`.
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)+
                    other => $name::Unknown(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                Ok($name::from_wire(&s))
            }
        }
    };
}
pub(crate) use mesos_enum;

/// Raw bytes, base64 (standard alphabet, padded) on the wire: uuids, data fields.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({})", base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(Bytes)
            .map_err(|e| de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// A number as Mesos's parser accepts it: a JSON number, or a string holding one
/// (`"5"`, `"0.5"`, `"Infinity"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum LenientNumber<'a> {
    // Order matters: untagged tries variants in turn, and an integer must not be
    // widened to f64 first (u64 values above 2^53 would lose precision).
    U(u64),
    I(i64),
    F(f64),
    #[serde(borrow)]
    S(std::borrow::Cow<'a, str>),
}

fn parse_f64<E: de::Error>(n: LenientNumber<'_>) -> Result<f64, E> {
    match n {
        LenientNumber::F(f) => Ok(f),
        LenientNumber::I(i) => Ok(i as f64),
        LenientNumber::U(u) => Ok(u as f64),
        LenientNumber::S(s) => match s.trim() {
            "Infinity" | "inf" => Ok(f64::INFINITY),
            "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            t => t.parse().map_err(|_| E::custom(format!("expected a number, got {t:?}"))),
        },
    }
}

/// `deserialize_with` for `f64` fields.
pub(crate) fn f64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    parse_f64(LenientNumber::deserialize(d)?)
}

/// `deserialize_with` for `Option<f64>` fields (`null` is unset).
pub(crate) fn opt_f64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<LenientNumber>::deserialize(d)?.map(parse_f64).transpose()
}

fn parse_u64<E: de::Error>(n: LenientNumber<'_>) -> Result<u64, E> {
    match n {
        LenientNumber::U(u) => Ok(u),
        LenientNumber::I(i) if i >= 0 => Ok(i as u64),
        LenientNumber::F(f) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => Ok(f as u64),
        LenientNumber::S(s) => {
            s.trim().parse().map_err(|_| E::custom(format!("expected an unsigned integer, got {s:?}")))
        }
        _ => Err(E::custom("expected an unsigned integer")),
    }
}

/// `deserialize_with` for `u64` fields.
pub(crate) fn u64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    parse_u64(LenientNumber::deserialize(d)?)
}

/// `deserialize_with` for `Option<u64>` fields.
pub(crate) fn opt_u64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<LenientNumber>::deserialize(d)?.map(parse_u64).transpose()
}

fn parse_i64<E: de::Error>(n: LenientNumber<'_>) -> Result<i64, E> {
    match n {
        LenientNumber::I(i) => Ok(i),
        LenientNumber::U(u) => i64::try_from(u).map_err(|_| E::custom("integer out of range")),
        LenientNumber::F(f) if f.fract() == 0.0 && f.abs() <= i64::MAX as f64 => Ok(f as i64),
        LenientNumber::S(s) => s.trim().parse().map_err(|_| E::custom(format!("expected an integer, got {s:?}"))),
        _ => Err(E::custom("expected an integer")),
    }
}

/// `deserialize_with` for `i64` fields.
pub(crate) fn i64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    parse_i64(LenientNumber::deserialize(d)?)
}

/// Declares a Mesos "union" message: `{"type": "T", "<t>": {..}, <common fields>}`,
/// where the body sits under the lowercase type name (scheduler calls and events,
/// operator calls, responses and events).
///
/// Generates `$kind`, an enum with one variant per type (holding its body) plus
/// `Unknown { type_name }` for types this build does not know, and, when common
/// fields are listed, a struct `$name { common fields.., kind }`. Decoding goes
/// through a derived struct with one `Option` per body, so it is as fast as plain
/// serde and ignores unknown keys; a known type whose body is missing is an error
/// unless the body is marked `= default` (REVIVE, SUPPRESS).
macro_rules! tagged_message {
    (
        $(#[$meta:meta])*
        pub struct $name:ident / $kind:ident {
            common { $($(#[$cmeta:meta])* $cfield:ident : $cty:ty),* $(,)? }
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal $({ $field:ident : $ty:ty $(= $dflt:ident)? })? , )+
        }
    ) => {
        $crate::json::tagged_message!(@kind $kind { $( $(#[$vmeta])* $variant = $text $({ $field : $ty $(= $dflt)? })? , )+ });

        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $($(#[$cmeta])* pub $cfield: $cty,)*
            pub kind: $kind,
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use ::serde::ser::SerializeMap;
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("type", self.kind.type_name())?;
                $(if !$crate::json::IsUnset::is_unset(&self.$cfield) {
                    map.serialize_entry(stringify!($cfield), &self.$cfield)?;
                })*
                self.kind.serialize_body(&mut map)?;
                map.end()
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(::serde::Deserialize)]
                #[allow(non_snake_case)]
                struct Raw {
                    #[serde(rename = "type", default)]
                    type_: Option<String>,
                    $(#[serde(default)] $cfield: $cty,)*
                    $($(#[serde(default)] $field: Option<$ty>,)?)+
                }
                let raw = Raw::deserialize(d)?;
                let kind = $crate::json::tagged_message!(@decode $kind raw { $( $variant = $text $({ $field : $ty $(= $dflt)? })? , )+ });
                Ok($name { $($cfield: raw.$cfield,)* kind })
            }
        }
    };

    (
        $(#[$meta:meta])*
        pub enum $kind:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal $({ $field:ident : $ty:ty $(= $dflt:ident)? })? , )+
        }
    ) => {
        $crate::json::tagged_message!(@kind $(#[$meta])* $kind { $( $(#[$vmeta])* $variant = $text $({ $field : $ty $(= $dflt)? })? , )+ });

        impl ::serde::Serialize for $kind {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use ::serde::ser::SerializeMap;
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("type", self.type_name())?;
                self.serialize_body(&mut map)?;
                map.end()
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $kind {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(::serde::Deserialize)]
                struct Raw {
                    #[serde(rename = "type", default)]
                    type_: Option<String>,
                    $($(#[serde(default)] $field: Option<$ty>,)?)+
                }
                let raw = Raw::deserialize(d)?;
                Ok($crate::json::tagged_message!(@decode $kind raw { $( $variant = $text $({ $field : $ty $(= $dflt)? })? , )+ }))
            }
        }
    };

    (@kind $(#[$meta:meta])* $kind:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal $({ $field:ident : $ty:ty $(= $dflt:ident)? })? , )+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $kind {
            $($(#[$vmeta])* $variant $(($ty))?,)+
            /// A type this build does not know; its body is not kept.
            Unknown { type_name: String },
        }

        impl $kind {
            /// Every type name this build knows, in .proto order.
            pub const TYPE_NAMES: &'static [&'static str] = &[$($text,)+];

            /// The wire name of the type, e.g. `"SUBSCRIBE"`.
            pub fn type_name(&self) -> &str {
                #[allow(unused_variables)]
                match self {
                    $($kind::$variant $(($crate::json::tagged_message!(@ignore $field)))? => $text,)+
                    $kind::Unknown { type_name } => type_name.as_str(),
                }
            }

            fn serialize_body<M: ::serde::ser::SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
                match self {
                    $($kind::$variant $(($field))? => {
                        $($crate::json::tagged_message!(@write map $field $(= $dflt)?);)?
                    })+
                    $kind::Unknown { .. } => {}
                }
                Ok(())
            }
        }
    };

    (@ignore $field:ident) => { _ };

    (@write $map:ident $field:ident) => { $map.serialize_entry(stringify!($field), $field)? };
    (@write $map:ident $field:ident = default) => {
        if *$field != Default::default() {
            $map.serialize_entry(stringify!($field), $field)?
        }
    };

    (@decode $kind:ident $raw:ident { $( $variant:ident = $text:literal $({ $field:ident : $ty:ty $(= $dflt:ident)? })? , )+ }) => {
        match $raw.type_.as_deref() {
            None => return Err(::serde::de::Error::missing_field("type")),
            $(Some($text) => $kind::$variant $(($crate::json::tagged_message!(@body $raw $text $field $(= $dflt)?)))?,)+
            Some(other) => $kind::Unknown { type_name: other.to_owned() },
        }
    };

    (@body $raw:ident $text:literal $field:ident) => {
        match $raw.$field {
            Some(body) => body,
            None => return Err(::serde::de::Error::custom(concat!(
                "missing field `", stringify!($field), "` (required for type ", $text, ")"
            ))),
        }
    };
    (@body $raw:ident $text:literal $field:ident = default) => {
        $raw.$field.unwrap_or_default()
    };
}
pub(crate) use tagged_message;

/// Whether a common field of a tagged message is unset and left out of the output.
pub(crate) trait IsUnset {
    fn is_unset(&self) -> bool;
}

impl<T> IsUnset for Option<T> {
    fn is_unset(&self) -> bool {
        self.is_none()
    }
}
