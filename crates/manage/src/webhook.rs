//! Push webhooks of the forges operators use, verified before anything of the
//! body is believed:
//!
//! - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, `X-GitHub-Event`.
//! - Gitea, Forgejo, Gogs: `X-Gitea-Signature` / `X-Forgejo-Signature` /
//!   `X-Gogs-Signature: <hex HMAC-SHA256>`, `X-Gitea-Event` (and the others').
//! - GitLab: `X-Gitlab-Token: <the secret>`, `X-Gitlab-Event: Push Hook`.
//!
//! Headers come in as (lower- or any-case name, value) pairs, so this stays
//! free of any HTTP library.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// `github`, `gitea` or `gitlab`.
    pub forge: &'static str,
    /// `push`, `ping`, `Push Hook`, ...
    pub event: String,
    /// `refs/heads/main`; empty for events without one.
    pub reference: String,
    /// The commit the branch moved to (may be empty).
    pub after: String,
}

impl Push {
    pub fn is_push(&self) -> bool {
        self.event == "push" || self.event == "Push Hook"
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error(
        "no signature: expected X-Hub-Signature-256 (GitHub), X-Gitea-Signature (Gitea) or X-Gitlab-Token (GitLab)"
    )]
    Unsigned,
    #[error("the signature does not match the configured secret")]
    BadSignature,
    #[error("the body is not a push payload: {0}")]
    BadPayload(String),
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
}

fn hmac_matches(secret: &str, body: &[u8], hex_signature: &str) -> bool {
    let Some(signature) = unhex(hex_signature) else { return false };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    // `verify` compares in constant time.
    ring::hmac::verify(&key, body, &signature).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default, rename = "ref")]
    reference: String,
    #[serde(default)]
    after: String,
}

/// Which forge sent `body`, whether `secret` signed it, and what it says.
pub fn verify(headers: &[(String, String)], body: &[u8], secret: &str) -> Result<Push, WebhookError> {
    let (forge, event_header) = if let Some(sig) = header(headers, "x-hub-signature-256") {
        let hex = sig.strip_prefix("sha256=").ok_or(WebhookError::BadSignature)?;
        if !hmac_matches(secret, body, hex) {
            return Err(WebhookError::BadSignature);
        }
        // Gitea sends GitHub's header too; its own event header says which it is.
        if header(headers, "x-gitea-event").is_some() {
            ("gitea", "x-gitea-event")
        } else {
            ("github", "x-github-event")
        }
    } else if let Some(sig) =
        ["x-gitea-signature", "x-forgejo-signature", "x-gogs-signature"].iter().find_map(|name| header(headers, name))
    {
        if !hmac_matches(secret, body, sig) {
            return Err(WebhookError::BadSignature);
        }
        let event = ["x-gitea-event", "x-forgejo-event", "x-gogs-event"]
            .into_iter()
            .find(|name| header(headers, name).is_some())
            .unwrap_or("x-gitea-event");
        ("gitea", event)
    } else if let Some(token) = header(headers, "x-gitlab-token") {
        if !mesos::transport::constant_time_eq(secret.as_bytes(), token.as_bytes()) {
            return Err(WebhookError::BadSignature);
        }
        ("gitlab", "x-gitlab-event")
    } else {
        return Err(WebhookError::Unsigned);
    };
    let event = header(headers, event_header).unwrap_or("push").to_owned();
    let payload: Payload = if event == "ping" {
        Payload { reference: String::new(), after: String::new() }
    } else {
        serde_json::from_slice(body).map_err(|e| WebhookError::BadPayload(e.to_string()))?
    };
    let commit_length = matches!(payload.after.len(), 0 | 40 | 64);
    if !commit_length || !payload.after.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(WebhookError::BadPayload(format!("after: {:?} is not a commit id", payload.after)));
    }
    Ok(Push { forge, event, reference: payload.reference, after: payload.after })
}

/// The `X-Hub-Signature-256` value GitHub would send for `body` (for tests and clients).
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    format!("sha256={}", tag.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","commits":[]}"#;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn each_forge_is_verified_and_read() {
        let sig = github_signature("s3", BODY);
        let github = verify(&h(&[("X-Hub-Signature-256", &sig), ("X-GitHub-Event", "push")]), BODY, "s3").unwrap();
        assert_eq!(github.forge, "github");
        assert_eq!(github.reference, "refs/heads/main");
        assert_eq!(github.after, "0123456789abcdef0123456789abcdef01234567");
        assert!(github.is_push());

        let hex = sig.trim_start_matches("sha256=");
        let gitea = verify(&h(&[("x-gitea-signature", hex), ("x-gitea-event", "push")]), BODY, "s3").unwrap();
        assert_eq!((gitea.forge, gitea.is_push()), ("gitea", true));
        let both = h(&[("x-hub-signature-256", &sig), ("x-gitea-signature", hex), ("x-gitea-event", "push")]);
        assert_eq!(verify(&both, BODY, "s3").unwrap().forge, "gitea");

        let gitlab = verify(&h(&[("X-Gitlab-Token", "s3"), ("X-Gitlab-Event", "Push Hook")]), BODY, "s3").unwrap();
        assert_eq!((gitlab.forge, gitlab.is_push()), ("gitlab", true));

        let ping = verify(
            &h(&[("X-Hub-Signature-256", &github_signature("s3", b"{}")), ("X-GitHub-Event", "ping")]),
            b"{}",
            "s3",
        );
        assert!(!ping.unwrap().is_push());
    }

    #[test]
    fn wrong_or_missing_signatures_are_refused() {
        let sig = github_signature("other", BODY);
        assert_eq!(verify(&h(&[("X-Hub-Signature-256", &sig)]), BODY, "s3"), Err(WebhookError::BadSignature));
        let tampered = br#"{"ref":"refs/heads/main","after":"ffffffffffffffffffffffffffffffffffffffff","commits":[]}"#;
        let sig = github_signature("s3", BODY);
        assert_eq!(verify(&h(&[("X-Hub-Signature-256", &sig)]), tampered, "s3"), Err(WebhookError::BadSignature));
        assert_eq!(verify(&h(&[("X-Hub-Signature-256", "sha1=00")]), BODY, "s3"), Err(WebhookError::BadSignature));
        assert_eq!(verify(&h(&[("X-Gitea-Signature", "zz")]), BODY, "s3"), Err(WebhookError::BadSignature));
        assert_eq!(verify(&h(&[("X-Gitlab-Token", "s")]), BODY, "s3"), Err(WebhookError::BadSignature));
        assert_eq!(verify(&h(&[("X-GitHub-Event", "push")]), BODY, "s3"), Err(WebhookError::Unsigned));
    }

    #[test]
    fn a_signed_body_that_is_not_a_push_is_named() {
        let body = br#"{"ref":"refs/heads/main","after":"$(rm -rf /)"}"#;
        let sig = github_signature("s3", body);
        let e = verify(&h(&[("X-Hub-Signature-256", &sig)]), body, "s3").unwrap_err();
        assert!(matches!(&e, WebhookError::BadPayload(m) if m.contains("after")), "{e}");
        let sig = github_signature("s3", b"not json");
        assert!(matches!(
            verify(&h(&[("X-Hub-Signature-256", &sig)]), b"not json", "s3"),
            Err(WebhookError::BadPayload(_))
        ));
    }
}
