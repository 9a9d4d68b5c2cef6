//! The image configuration (what `docker inspect` shows under `Config`), and
//! user names resolved in the image's own `/etc/passwd` and `/etc/group`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: RunConfig,
    pub rootfs: RootFs,
}

/// How the image runs by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// A user as a container process runs: uid, gid, supplementary groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// A user or group the image does not have, worded as Docker words it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user {0}: bad uid in /etc/passwd")]
    BadUid(String),
    #[error("unable to find user {0}: no matching entries in the image's /etc/passwd")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in the image's /etc/group")]
    NoGroup(String),
}

/// Resolves `user` (`name`, `uid`, `name:group`, `uid:gid`) as Docker does, in
/// the image whose unpacked layers are `layers` (lowest first): names from its
/// `/etc/passwd` and `/etc/group`, numbers as they are.
pub fn resolve_user(layers: &[PathBuf], user: &str) -> Result<User, UserError> {
    let (who, group) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_top(layers, "etc/passwd").unwrap_or_default();
    let groups = read_top(layers, "etc/group").unwrap_or_default();
    // passwd: name:x:uid:gid:gecos:home:shell
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == who || (who.parse::<u32>().is_ok() && f[2] == who)));
    let (uid, name, primary) = match (who.parse::<u32>(), &entry) {
        (Ok(uid), e) => {
            (uid, e.as_ref().map(|f| f[0].to_owned()), e.as_ref().and_then(|f| f[3].parse().ok()).unwrap_or(0))
        }
        (Err(_), Some(f)) => (
            f[2].parse().map_err(|_| UserError::BadUid(who.to_owned()))?,
            Some(f[0].to_owned()),
            f[3].parse().unwrap_or(0),
        ),
        (Err(_), None) => {
            return Err(UserError::NoUser(who.to_owned()));
        }
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| UserError::NoGroup(g.to_owned()))?,
        },
    };
    // group: name:x:gid:member,member
    let additional_gids = match &name {
        Some(name) => groups
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse().ok())
            .filter(|g| *g != gid)
            .collect(),
        None => Vec::new(),
    };
    Ok(User { uid, gid, additional_gids })
}

/// The topmost regular file at `rel` in the layers (lowest first), unless a
/// layer above deleted it (a whiteout, or an opaque directory above it).
pub fn read_top(layers: &[PathBuf], rel: &str) -> Option<String> {
    for layer in layers.iter().rev() {
        let path = layer.join(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => return std::fs::read_to_string(&path).ok(),
            Ok(_) => return None, // a whiteout (character device) or something that is not a file
            Err(_) => {}
        }
        if opaque_above(layer, Path::new(rel)) {
            return None;
        }
    }
    None
}

fn opaque_above(layer: &Path, rel: &Path) -> bool {
    rel.ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .any(|dir| rustix::fs::getxattr(layer.join(dir), crate::unpack::OPAQUE_XATTR, &mut [0u8; 1]).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(files: &[&[(&str, &str)]]) -> (PathBuf, Vec<PathBuf>) {
        let root = std::env::temp_dir().join(format!("m3s-image-user-{}-{}", std::process::id(), files.len()));
        let _ = std::fs::remove_dir_all(&root);
        let mut out = Vec::new();
        for (i, layer) in files.iter().enumerate() {
            let dir = root.join(i.to_string());
            std::fs::create_dir_all(dir.join("etc")).unwrap();
            for (name, text) in *layer {
                std::fs::write(dir.join(name), text).unwrap();
            }
            out.push(dir);
        }
        (root, out)
    }

    #[test]
    fn names_and_numbers_resolve_in_the_images_files() {
        let (root, l) = layers(&[
            &[("etc/passwd", "root:x:0:0::/root:/bin/sh\n")],
            &[
                ("etc/passwd", "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n"),
                ("etc/group", "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\n"),
            ],
        ]);
        assert_eq!(resolve_user(&l, "app").unwrap(), User { uid: 1000, gid: 1000, additional_gids: vec![10] });
        assert_eq!(resolve_user(&l, "app:wheel").unwrap().gid, 10);
        assert_eq!(resolve_user(&l, "1000").unwrap().additional_gids, vec![10], "a number finds its name too");
        assert_eq!(resolve_user(&l, "4242:7").unwrap(), User { uid: 4242, gid: 7, additional_gids: vec![] });
        assert_eq!(resolve_user(&l, "nobody").unwrap_err(), UserError::NoUser("nobody".into()));
        assert!(resolve_user(&l, "app:nogroup").unwrap_err().to_string().contains("/etc/group"));
        // Only the lower layer: the app user does not exist there.
        assert!(resolve_user(&l[..1], "app").is_err());
        std::fs::remove_dir_all(root).unwrap();
    }
}
