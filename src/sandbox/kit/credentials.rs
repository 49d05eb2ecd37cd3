//! The credentials a simulator accepts, as its start-up options set them and its handle hands
//! them to tests: a user's login ([`Login`]) and a registered OAuth client ([`OAuthClient`]).
//! Secrets are [`Secret`]s, so options and handles derive `Debug` without ever printing one.
//! How a request must present them (form fields, HTTP Basic, a JSON body) and how strictly they
//! are compared is each vendor's rule and stays in its simulator.

use crate::http::Secret;

/// A user name and password: the service user of a login endpoint or a password grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: Secret,
}

impl Login {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: Secret::new(password),
        }
    }
}

/// A registered OAuth 2 client: its `client_id` and `client_secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub id: String,
    pub secret: Secret,
}

impl OAuthClient {
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            secret: Secret::new(secret),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_and_never_secrets() {
        let shown = format!(
            "{:?} {:?}",
            Login::new("service@example.com", "pa55-word"),
            OAuthClient::new("client-7", "client-secret")
        );
        assert!(shown.contains("service@example.com") && shown.contains("client-7"));
        assert!(!shown.contains("pa55-word"), "{shown}");
        assert!(!shown.contains("client-secret"), "{shown}");
    }
}
