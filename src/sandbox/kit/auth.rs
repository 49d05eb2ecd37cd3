//! Reading credentials off a request (`Authorization: <scheme> <value>`, HTTP Basic with the
//! `base64` crate, plain API-key headers) and the bookkeeping of issued access tokens.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::header::{self, AsHeaderName};
use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};

/// A header's value as text (absent or not visible ASCII: `None`).
pub fn header_text<K: AsHeaderName>(headers: &HeaderMap, name: K) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The value after `<scheme> ` in `Authorization`, trimmed; the scheme is compared
/// case-insensitively (RFC 9110 §11.1).
pub fn credentials<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let (presented, value) = header_text(headers, header::AUTHORIZATION)?
        .trim()
        .split_once(' ')?;
    presented
        .eq_ignore_ascii_case(scheme)
        .then_some(value.trim())
}

/// The user and password of `Authorization: Basic base64(user:password)` (standard alphabet,
/// padded); `None` when absent or not decodable.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let decoded = STANDARD.decode(credentials(headers, "Basic")?).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Whether the request carries exactly these Basic credentials.
pub fn basic_matches(headers: &HeaderMap, user: &str, password: &str) -> bool {
    basic_credentials(headers).is_some_and(|(u, p)| u == user && p == password)
}

/// The `Authorization` value a client sends for these Basic credentials.
pub fn basic_value(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// What an access token presented to the API is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Valid,
    Expired,
    /// Never issued, or revoked.
    Unknown,
}

/// Access tokens issued by a simulated token endpoint, each with its expiry.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    expiry: HashMap<String, DateTime<Utc>>,
}

impl Tokens {
    /// Records `token`, valid for `lifetime` from `now`.
    pub fn issue(&mut self, token: impl Into<String>, now: DateTime<Utc>, lifetime: Duration) {
        let lifetime = chrono::Duration::from_std(lifetime).unwrap_or_default();
        self.expiry.insert(token.into(), now + lifetime);
    }

    /// A token is valid strictly before its expiry instant.
    pub fn check(&self, token: &str, now: DateTime<Utc>) -> TokenState {
        match self.expiry.get(token) {
            Some(expires_at) if now < *expires_at => TokenState::Valid,
            Some(_) => TokenState::Expired,
            None => TokenState::Unknown,
        }
    }

    /// Revokes every token issued so far.
    pub fn clear(&mut self) {
        self.expiry.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn basic_credentials_round_trip_through_base64() {
        // RFC 7617 §2's example.
        assert_eq!(
            basic_value("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        let headers = with_authorization("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(basic_matches(&headers, "Aladdin", "open sesame"));
        assert!(!basic_matches(&headers, "Aladdin", "open"));
        assert!(!basic_matches(
            &with_authorization("Basic !!"),
            "Aladdin",
            "open sesame"
        ));
        assert!(!basic_matches(&HeaderMap::new(), "", ""));
    }

    #[test]
    fn credentials_need_their_scheme() {
        let headers = with_authorization("KISI-LOGIN  abc ");
        assert_eq!(credentials(&headers, "kisi-login"), Some("abc"));
        assert_eq!(credentials(&headers, "Bearer"), None);
        assert_eq!(credentials(&with_authorization("Bearer"), "Bearer"), None);
    }

    #[test]
    fn tokens_expire_at_their_instant_and_can_be_revoked() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut tokens = Tokens::default();
        tokens.issue("t", now, Duration::from_secs(60));
        assert_eq!(tokens.check("t", now), TokenState::Valid);
        let later = now + chrono::Duration::seconds(60);
        assert_eq!(tokens.check("t", later), TokenState::Expired);
        assert_eq!(tokens.check("u", now), TokenState::Unknown);
        tokens.clear();
        assert_eq!(tokens.check("t", now), TokenState::Unknown);
    }
}
