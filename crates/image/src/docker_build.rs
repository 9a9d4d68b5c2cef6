//! compose `build:` through a Docker Engine's build API (its classic builder),
//! for agents that run DOCKER tasks on that Engine (`--containerizers=docker,mesos`):
//! the image lands in the daemon that runs it, tagged as compose names it.
//!
//! The context is sent as docker's CLI sends it: a tar of the context
//! directory without what `.dockerignore` excludes (links kept as links,
//! never followed), the Dockerfile added when it lies outside the context or
//! is inline. The classic builder has no build secrets and no named contexts:
//! a request with them is refused, naming buildah, which has both.

use std::path::{Path, PathBuf};

use crate::build::{BuildError, BuildRequest, Dockerfile};
use crate::reference::Reference;

/// Where an inline or outside Dockerfile goes in the context sent.
const SENT_DOCKERFILE: &str = ".m3s-dockerfile";

pub fn build(engine: &docker::Engine, request: &BuildRequest, output: &mut dyn FnMut(&str)) -> Result<(), BuildError> {
    if !request.secrets.is_empty() {
        return Err(BuildError::Refused(
            "secrets need buildah (the Docker Engine's classic build API has none): install buildah and pass --builder buildah".into(),
        ));
    }
    if !request.additional_contexts.is_empty() {
        return Err(BuildError::Refused(
            "additional_contexts need buildah (the Docker Engine's classic build API has none): install buildah and pass --builder buildah".into(),
        ));
    }
    let tar_path =
        std::env::temp_dir().join(format!("m3s-build-context-{}-{}.tar", std::process::id(), uuid::Uuid::new_v4()));
    let result = (|| {
        let dockerfile = write_context(request, &tar_path)?;
        let mut query: Vec<(&str, String)> = request.tags.iter().map(|t| ("t", t.to_string())).collect();
        query.push(("dockerfile", dockerfile));
        let map = |pairs: &[(String, String)]| {
            serde_json::Value::Object(pairs.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect()).to_string()
        };
        query.push(("buildargs", map(&request.args)));
        query.push(("labels", map(&request.labels)));
        if let Some(target) = &request.target {
            query.push(("target", target.clone()));
        }
        if let Some(network) = &request.network {
            query.push(("networkmode", network.clone()));
        }
        if request.no_cache {
            query.push(("nocache", "1".into()));
        }
        if request.pull {
            query.push(("pull", "1".into()));
        }
        // Intermediate containers go, even after a failed step.
        query.push(("forcerm", "1".into()));
        let mut last: Vec<String> = Vec::new();
        let mut step = None;
        let mut show = |line: &str| {
            if line.starts_with("Step ") {
                step = Some(line.to_owned());
            }
            if last.len() == 20 {
                last.remove(0);
            }
            last.push(line.to_owned());
            output(line);
        };
        match engine.build(&query, &tar_path, &mut show) {
            Ok(()) => Ok(()),
            Err(e @ (docker::Error::Unreachable { .. } | docker::Error::Io { .. })) => {
                Err(BuildError::Refused(e.to_string()))
            }
            Err(docker::Error::Api { message, .. }) => {
                last.push(message);
                Err(BuildError::Failed { builder: "docker", step, code: None, output: last.join("\n") })
            }
            Err(e) => Err(BuildError::Refused(e.to_string())),
        }
    })();
    let _ = std::fs::remove_file(&tar_path);
    result
}

/// Pushes `image` (in the daemon) as `destination`.
pub fn push(
    engine: &docker::Engine,
    image: &Reference,
    destination: &Reference,
    auth: Option<&docker::RegistryAuth>,
    output: &mut dyn FnMut(&str),
) -> Result<(), BuildError> {
    let refused = |e: docker::Error| BuildError::Refused(e.to_string());
    if image != destination {
        engine.tag(&image.to_string(), &destination.to_string()).map_err(refused)?;
    }
    engine.push(&destination.to_string(), auth, output).map_err(refused)
}

/// Writes the context as a tar at `path`; returns the Dockerfile's name in it.
fn write_context(request: &BuildRequest, path: &Path) -> Result<String, BuildError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| BuildError::Io { path, source }
    };
    let file = std::fs::File::create(path).map_err(io(path))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    tar.follow_symlinks(false);
    let context = &request.context;
    let ignore = match std::fs::read_to_string(context.join(".dockerignore")) {
        Ok(text) => Ignore::parse(&text),
        Err(_) => Ignore::default(),
    };
    let (dockerfile_name, extra) = match &request.dockerfile {
        Dockerfile::Default => ("Dockerfile".to_owned(), None),
        Dockerfile::Path(p) => {
            let full = if p.is_absolute() { p.clone() } else { context.join(p) };
            match full
                .strip_prefix(context)
                .ok()
                .filter(|r| !r.components().any(|c| c == std::path::Component::ParentDir))
            {
                Some(inside) => (inside.to_string_lossy().into_owned(), None),
                None => {
                    let text = std::fs::read(&full).map_err(io(&full))?;
                    (SENT_DOCKERFILE.to_owned(), Some(text))
                }
            }
        }
        Dockerfile::Inline(text) => (SENT_DOCKERFILE.to_owned(), Some(text.as_bytes().to_vec())),
    };
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let full = context.join(&dir);
        let mut entries: Vec<_> = std::fs::read_dir(&full).map_err(io(&full))?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let rel = dir.join(entry.file_name());
            let rel_text = rel.to_string_lossy();
            // The Dockerfile and .dockerignore always go, as docker's CLI sends them.
            let always = rel_text == dockerfile_name || rel_text == ".dockerignore";
            let kind = entry.file_type().map_err(io(&entry.path()))?;
            if !always && ignore.excludes(&rel_text) {
                // A negated pattern may bring back something below an excluded directory.
                if !(kind.is_dir() && ignore.has_negations()) {
                    continue;
                }
            } else if kind.is_dir() || kind.is_file() || kind.is_symlink() {
                tar.append_path_with_name(entry.path(), &rel).map_err(io(&entry.path()))?;
            }
            if kind.is_dir() {
                stack.push(rel);
            }
        }
    }
    if let Some(text) = extra {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, SENT_DOCKERFILE, text.as_slice()).map_err(io(path))?;
    }
    tar.into_inner().and_then(|mut w| std::io::Write::flush(&mut w)).map_err(io(path))?;
    Ok(dockerfile_name)
}

/// `.dockerignore` patterns, as docker reads them: one per line, `#`
/// comments, `!` re-includes, `*` and `?` within a path segment, `**` across
/// segments; a pattern that matches a directory excludes what it holds; the
/// last matching pattern decides.
#[derive(Debug, Default)]
struct Ignore {
    patterns: Vec<(bool, Vec<String>)>,
}

impl Ignore {
    fn parse(text: &str) -> Ignore {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let segments: Vec<String> =
                pattern.split('/').filter(|s| !s.is_empty() && *s != ".").map(str::to_owned).collect();
            if !segments.is_empty() {
                patterns.push((negated, segments));
            }
        }
        Ignore { patterns }
    }

    fn has_negations(&self) -> bool {
        self.patterns.iter().any(|(n, _)| *n)
    }

    fn excludes(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for (negated, pattern) in &self.patterns {
            // The path, or one of its parent directories, matches.
            let hit = (1..=parts.len()).any(|n| matches(pattern, &parts[..n]));
            if hit {
                excluded = !negated;
            }
        }
        excluded
    }
}

fn matches(pattern: &[String], parts: &[&str]) -> bool {
    match pattern.split_first() {
        None => parts.is_empty(),
        Some((first, rest)) if first == "**" => (0..=parts.len()).any(|skip| matches(rest, &parts[skip..])),
        Some((first, rest)) => {
            !parts.is_empty() && segment_matches(first.as_bytes(), parts[0].as_bytes()) && matches(rest, &parts[1..])
        }
    }
}

fn segment_matches(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| segment_matches(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && segment_matches(rest, &name[1..]),
        Some((b'\\', rest)) if !rest.is_empty() => {
            !name.is_empty() && name[0] == rest[0] && segment_matches(&rest[1..], &name[1..])
        }
        Some((c, rest)) => !name.is_empty() && name[0] == *c && segment_matches(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_patterns_exclude_as_docker_does() {
        let ignore = Ignore::parse("# build output\nnode_modules\n*.log\n**/secret*\nbuild/\n!build/keep.txt\n");
        for (path, out) in [
            ("node_modules", true),
            ("node_modules/x/index.js", true),
            ("app.log", true),
            ("logs/app.log", false),
            ("a/b/secret.txt", true),
            ("secret.env", true),
            ("build/out.o", true),
            ("build/keep.txt", false),
            ("src/main.rs", false),
        ] {
            assert_eq!(ignore.excludes(path), out, "{path}");
        }
        assert!(ignore.has_negations());
        assert!(!Ignore::parse("").excludes("anything"));
    }

    #[test]
    fn the_context_tar_keeps_links_and_adds_an_outside_dockerfile() {
        let dir = std::env::temp_dir().join(format!("m3s-docker-build-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let context = dir.join("ctx");
        std::fs::create_dir_all(context.join("node_modules/x")).unwrap();
        std::fs::write(context.join("node_modules/x/a.js"), "x").unwrap();
        std::fs::write(context.join("app.txt"), "app").unwrap();
        std::fs::write(context.join(".dockerignore"), "node_modules\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", context.join("link")).unwrap();
        std::fs::write(dir.join("Other.Dockerfile"), "FROM scratch\n").unwrap();
        let request = BuildRequest {
            context: context.clone(),
            dockerfile: Dockerfile::Path(dir.join("Other.Dockerfile")),
            args: Vec::new(),
            target: None,
            labels: Vec::new(),
            additional_contexts: Vec::new(),
            secrets: Vec::new(),
            network: None,
            no_cache: false,
            pull: false,
            tags: vec!["a/b:1".parse().unwrap()],
            insecure_registries: Vec::new(),
        };
        let tar_path = dir.join("ctx.tar");
        assert_eq!(write_context(&request, &tar_path).unwrap(), SENT_DOCKERFILE);
        let mut archive = tar::Archive::new(std::fs::File::open(&tar_path).unwrap());
        let mut names = Vec::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            if name == "link" {
                assert_eq!(e.header().entry_type(), tar::EntryType::Symlink, "a link is sent as a link");
                assert_eq!(e.link_name().unwrap().unwrap().to_string_lossy(), "/etc/passwd");
            }
            names.push(name);
        }
        names.sort();
        assert_eq!(names, [".dockerignore", SENT_DOCKERFILE, "app.txt", "link"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
