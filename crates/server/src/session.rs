//! The dashboard's browser sessions: a signed, expiring cookie instead of the
//! API's `Authorization` header, which a browser cannot send from a link.
//!
//! The cookie holds `<expiry seconds>.<HMAC-SHA256 of the expiry>`, nothing
//! secret; the server keeps no session table. The CSRF token is a second
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

pub fn issue(key: &hmac::Key, now_s: u64) -> String {
    let expiry = (now_s + LIFETIME_S).to_string();
    let tag = sign(key, "session", &expiry);
    format!("{expiry}.{tag}")
}

pub fn verify(key: &hmac::Key, value: &str, now_s: u64) -> bool {
    let Some((expiry, tag)) = value.split_once('.') else { return false };
    let Ok(expires_at) = expiry.parse::<u64>() else { return false };
    let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag) else { return false };
    // `hmac::verify` compares in constant time.
    expires_at > now_s && hmac::verify(key, format!("session:{expiry}").as_bytes(), &tag).is_ok()
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
        let value = issue(&k, 1_000);
        assert!(verify(&k, &value, 1_000));
        assert!(verify(&k, &value, 1_000 + LIFETIME_S - 1));
        assert!(!verify(&k, &value, 1_000 + LIFETIME_S));
        assert!(!verify(&key("b"), &value, 1_000));
        // A later expiry with the old signature is refused.
        let (_, tag) = value.split_once('.').unwrap();
        assert!(!verify(&k, &format!("{}.{tag}", 1_000 + 10 * LIFETIME_S), 1_000));
        for junk in ["", ".", "12", "x.y", "99999999999.", "1.!!"] {
            assert!(!verify(&k, junk, 0), "{junk:?}");
        }
    }

    proptest::proptest! {
        /// Any cookie text is refused without panicking, unless it is the signed value itself.
        #[test]
        fn arbitrary_cookies_are_refused(value in ".{0,80}") {
            let k = key("a");
            proptest::prop_assert_eq!(verify(&k, &value, 0), value == issue(&k, 0));
        }
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_key() {
        let (a, b) = (issue(&key("a"), 1), issue(&key("a"), 2));
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
