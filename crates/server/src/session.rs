//! The dashboard's browser sessions: a signed, expiring cookie instead of the
//! API's `Authorization` header, which a browser cannot send from a link.
//!
//! The cookie holds `<expiry seconds>.<subject>.<HMAC-SHA256 of both>`, nothing
//! secret (the subject is who signed in and their role, base64); the server keeps no session table. The CSRF token is a second
//! HMAC of the cookie, put in the page and sent back in a header by the
//! dashboard's forms, which a page of another site can neither read nor forge.

use std::sync::OnceLock;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use ring::hmac;

pub const COOKIE: &str = "m3s_session";
/// Twelve hours: a working day with the dashboard open.
pub const LIFETIME_S: u64 = 12 * 3600;

pub fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Random bytes drawn once per process, mixed into the signing key.
pub fn process_salt() -> &'static [u8; 32] {
    static SALT: OnceLock<[u8; 32]> = OnceLock::new();
    SALT.get_or_init(|| {
        let mut salt = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
            .expect("the system's random source is unavailable");
        salt
    })
}

fn sign(key: &hmac::Key, purpose: &str, data: &str) -> String {
    let tag = hmac::sign(key, format!("{purpose}:{data}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
}

/// A session for `subject` (who signed in, and as what: see `auth`), which
/// must not contain a '.'.
pub fn issue(key: &hmac::Key, now_s: u64, subject: &str) -> String {
    let payload =
        format!("{}.{}", now_s + LIFETIME_S, base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(subject));
    let tag = sign(key, "session", &payload);
    format!("{payload}.{tag}")
}

/// The subject of a session this key signed and that has not expired.
pub fn verify(key: &hmac::Key, value: &str, now_s: u64) -> Option<String> {
    let (payload, tag) = value.rsplit_once('.')?;
    let (expiry, subject) = payload.split_once('.')?;
    let expires_at = expiry.parse::<u64>().ok()?;
    let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag).ok()?;
    // `hmac::verify` compares in constant time.
    if expires_at <= now_s || hmac::verify(key, format!("session:{payload}").as_bytes(), &tag).is_err() {
        return None;
    }
    String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(subject).ok()?).ok()
}

pub fn csrf(key: &hmac::Key, session: &str) -> String {
    sign(key, "csrf", session)
}

/// The session cookie's value among the request's cookies.
pub fn from_cookies(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// `Set-Cookie` for a new session: HttpOnly (scripts cannot read it), SameSite=Strict
/// (other sites' pages do not send it), Secure when served over HTTPS.
pub fn set_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; Max-Age={LIFETIME_S}; HttpOnly; SameSite=Strict{secure}")
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes())
    }

    #[test]
    fn a_session_verifies_until_it_expires_and_only_under_its_key() {
        let k = key("a");
        let value = issue(&k, 1_000, "c:viewer:ro");
        assert_eq!(verify(&k, &value, 1_000).as_deref(), Some("c:viewer:ro"));
        assert!(verify(&k, &value, 1_000 + LIFETIME_S - 1).is_some());
        assert!(verify(&k, &value, 1_000 + LIFETIME_S).is_none());
        assert!(verify(&key("b"), &value, 1_000).is_none());
        // A later expiry, or another subject, with the old signature is refused.
        let (_, rest) = value.split_once('.').unwrap();
        assert!(verify(&k, &format!("{}.{rest}", 1_000 + 10 * LIFETIME_S), 1_000).is_none());
        let (_, tag) = value.rsplit_once('.').unwrap();
        let admin = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("c:admin:ro");
        assert!(verify(&k, &format!("{}.{admin}.{tag}", 1_000 + LIFETIME_S), 1_000).is_none());
        for junk in ["", ".", "..", "12", "x.y", "99999999999..", "1.!!.x", "1.YQ.!!"] {
            assert!(verify(&k, junk, 0).is_none(), "{junk:?}");
        }
    }

    proptest::proptest! {
        /// Any cookie text is refused without panicking, unless it is the signed value itself.
        #[test]
        fn arbitrary_cookies_are_refused(value in ".{0,80}") {
            let k = key("a");
            proptest::prop_assert_eq!(verify(&k, &value, 0).is_some(), value == issue(&k, 0, "s"));
        }
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_key() {
        let (a, b) = (issue(&key("a"), 1, "s"), issue(&key("a"), 2, "s"));
        assert_ne!(csrf(&key("a"), &a), csrf(&key("a"), &b));
        assert_ne!(csrf(&key("a"), &a), csrf(&key("b"), &a));
        assert_eq!(csrf(&key("a"), &a), csrf(&key("a"), &a));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; m3s_sessionx=2".parse().unwrap());
        assert_eq!(from_cookies(&h), None);
        h.append(header::COOKIE, "b=2;  m3s_session=9.abc ; c=3".parse().unwrap());
        assert_eq!(from_cookies(&h), Some("9.abc"));
    }
}
