//! Reading credentials off a request (`Authorization: <scheme> <value>`, HTTP Basic with the
//! `base64` crate, plain API-key headers) and the bookkeeping of issued access tokens.

use std::collections::{HashMap, HashSet};
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

/// What a simulated token endpoint issued: access tokens with their expiry, the lifetime of
/// those it issues next, and refresh tokens (whether one is used once or reused is the vendor's
/// rule: [`Self::take_refresh`] or [`Self::knows_refresh`]).
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    expiry: HashMap<String, DateTime<Utc>>,
    lifetime: Duration,
    refresh: HashSet<String>,
}

impl Tokens {
    /// Nothing issued yet; tokens will live `lifetime`.
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            ..Self::default()
        }
    }

    /// The lifetime of the tokens issued next.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub fn set_lifetime(&mut self, lifetime: Duration) {
        self.lifetime = lifetime;
    }

    /// Records the access token `token`, valid for the current lifetime from `now`.
    pub fn issue(&mut self, token: impl Into<String>, now: DateTime<Utc>) {
        let lifetime = chrono::Duration::from_std(self.lifetime).unwrap_or_default();
        self.expiry.insert(token.into(), now + lifetime);
    }

    /// An access token is valid strictly before its expiry instant.
    pub fn check(&self, token: &str, now: DateTime<Utc>) -> TokenState {
        match self.expiry.get(token) {
            Some(expires_at) if now < *expires_at => TokenState::Valid,
            Some(_) => TokenState::Expired,
            None => TokenState::Unknown,
        }
    }

    /// Revokes every access token issued so far.
    pub fn revoke_access(&mut self) {
        self.expiry.clear();
    }

    /// Records a refresh token.
    pub fn keep_refresh(&mut self, token: impl Into<String>) {
        self.refresh.insert(token.into());
    }

    /// Whether `token` is a live refresh token (for refresh tokens that may be reused).
    pub fn knows_refresh(&self, token: &str) -> bool {
        self.refresh.contains(token)
    }

    /// Uses up `token`: whether it was a live refresh token (for one-time refresh tokens).
    pub fn take_refresh(&mut self, token: &str) -> bool {
        self.refresh.remove(token)
    }

    /// Revokes every refresh token issued so far.
    pub fn revoke_refresh(&mut self) {
        self.refresh.clear();
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
        let mut tokens = Tokens::new(Duration::from_secs(60));
        tokens.issue("t", now);
        assert_eq!(tokens.check("t", now), TokenState::Valid);
        let later = now + chrono::Duration::seconds(60);
        assert_eq!(tokens.check("t", later), TokenState::Expired);
        assert_eq!(tokens.check("u", now), TokenState::Unknown);
        tokens.set_lifetime(Duration::from_secs(120));
        tokens.issue("v", now);
        assert_eq!(tokens.check("v", later), TokenState::Valid);
        tokens.revoke_access();
        assert_eq!(tokens.check("t", now), TokenState::Unknown);
        tokens.keep_refresh("r");
        assert!(tokens.knows_refresh("r") && tokens.take_refresh("r"));
        assert!(!tokens.take_refresh("r"));
        tokens.keep_refresh("s");
        tokens.revoke_refresh();
        assert!(!tokens.knows_refresh("s"));
    }
}
