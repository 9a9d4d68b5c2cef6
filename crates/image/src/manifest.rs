//! Manifests and indexes, Docker's (schema 2, manifest list) and OCI's, and
//! the choice of this machine's platform from an index. No IO.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What a manifest request accepts, in order of preference.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// This machine, in Go's names (`amd64`, `arm64` with variant `v8`).
    pub fn current() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform { architecture: architecture.into(), os: "linux".into(), variant: variant.map(str::to_owned) }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// A manifest document, told apart by its media type (the response's
/// Content-Type, else the document's own `mediaType`, else its shape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Manifest(Manifest),
    Index(Index),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest is not JSON of a known kind: {0}")]
    Invalid(String),
    #[error("media type {0} is not supported (Docker schema 2 and OCI manifests and indexes are)")]
    Unsupported(String),
    #[error("the image has no manifest for {want} (it has {have})")]
    NoPlatform { want: String, have: String },
}

pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Parsed, ManifestError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        schema_version: Option<u32>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
    let content_type = content_type.map(|c| c.split(';').next().unwrap_or("").trim()).filter(|c| {
        // Registries answer `application/json` or `text/plain` for some documents.
        c.starts_with("application/vnd.")
    });
    let kind = content_type
        .map(str::to_owned)
        .or(probe.media_type.clone())
        .unwrap_or_else(|| if probe.manifests.is_some() { OCI_INDEX.to_owned() } else { OCI_MANIFEST.to_owned() });
    if probe.schema_version == Some(1) {
        return Err(ManifestError::Unsupported("Docker schema 1 (signed manifests)".into()));
    }
    let invalid = |e: serde_json::Error| ManifestError::Invalid(e.to_string());
    match kind.as_str() {
        OCI_INDEX | DOCKER_LIST => Ok(Parsed::Index(serde_json::from_slice(bytes).map_err(invalid)?)),
        OCI_MANIFEST | DOCKER_MANIFEST => Ok(Parsed::Manifest(serde_json::from_slice(bytes).map_err(invalid)?)),
        other => Err(ManifestError::Unsupported(other.to_owned())),
    }
}

/// The manifest of `want` in an index: same OS and architecture, the same
/// variant when both say one (an index entry without a variant fits any).
pub fn select<'a>(index: &'a Index, want: &Platform) -> Result<&'a Descriptor, ManifestError> {
    let fits = |d: &&Descriptor| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == want.os
                && p.architecture == want.architecture
                && (p.variant.is_none() || want.variant.is_none() || p.variant == want.variant)
        })
    };
    // An exact variant first, then one without.
    index
        .manifests
        .iter()
        .filter(fits)
        .find(|d| d.platform.as_ref().is_some_and(|p| p.variant == want.variant))
        .or_else(|| index.manifests.iter().find(fits))
        .ok_or_else(|| ManifestError::NoPlatform {
            want: describe(want),
            have: index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(describe))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn describe(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: Option<&str>, n: char) -> serde_json::Value {
        let mut p = serde_json::json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            p["variant"] = v.into();
        }
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": format!("sha256:{}", n.to_string().repeat(64)), "size": 1, "platform": p})
    }

    #[test]
    fn an_index_gives_this_machines_manifest() {
        let doc = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            entry("arm", Some("v6"), '1'), entry("arm64", Some("v8"), '2'), entry("amd64", None, '3'), entry("arm", Some("v7"), '4')
        ]});
        let Parsed::Index(index) = parse(None, doc.to_string().as_bytes()).unwrap() else { panic!() };
        let amd64 = Platform { architecture: "amd64".into(), os: "linux".into(), variant: None };
        assert_eq!(select(&index, &amd64).unwrap().digest.hex().as_bytes()[0], b'3');
        let armv7 = Platform { architecture: "arm".into(), os: "linux".into(), variant: Some("v7".into()) };
        assert_eq!(select(&index, &armv7).unwrap().digest.hex().as_bytes()[0], b'4');
        let s390 = Platform { architecture: "s390x".into(), os: "linux".into(), variant: None };
        let err = select(&index, &s390).unwrap_err().to_string();
        assert!(err.contains("linux/s390x") && err.contains("linux/arm/v6"), "{err}");
    }

    #[test]
    fn kinds_come_from_the_content_type_the_document_or_its_shape() {
        let m = serde_json::json!({"schemaVersion": 2, "config": {"mediaType": "x", "digest": format!("sha256:{}", "a".repeat(64)), "size": 2}, "layers": []});
        let bytes = m.to_string();
        assert!(matches!(parse(Some(DOCKER_MANIFEST), bytes.as_bytes()), Ok(Parsed::Manifest(_))));
        assert!(matches!(parse(Some("application/json"), bytes.as_bytes()), Ok(Parsed::Manifest(_))));
        assert!(matches!(parse(None, br#"{"schemaVersion": 1, "fsLayers": []}"#), Err(ManifestError::Unsupported(_))));
        assert!(matches!(parse(Some("application/vnd.x+json"), bytes.as_bytes()), Err(ManifestError::Unsupported(_))));
        assert!(matches!(parse(None, b"[1"), Err(ManifestError::Invalid(_))));
    }
}
