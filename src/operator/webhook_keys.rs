//! The OfficeRnD webhook signing secrets, held in memory: the connection reconciler (which runs
//! whenever a VendorConnection or its Secret changes) stores each OfficeRnD connection's key, and
//! the webhook receiver verifies deliveries against them without any call to the API server, so
//! a flood of forged requests costs an HMAC each and nothing more.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::http::Secret;

/// A connection's webhook key as last read from its Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookKey {
    /// The connection signs deliveries with this secret.
    Signing(Secret),
    /// The connection has no webhook secret configured (or its Secret cannot be read): its
    /// deliveries cannot be verified.
    NotConfigured,
}

/// Webhook keys by OfficeRnD connection (`namespace`, `name`).
#[derive(Debug, Default)]
pub struct WebhookKeys {
    keys: RwLock<HashMap<(String, String), WebhookKey>>,
}

impl WebhookKeys {
    /// Records the key of the connection `namespace/name` as just read from its Secret.
    pub fn set(&self, namespace: &str, name: &str, key: WebhookKey) {
        self.keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert((namespace.to_owned(), name.to_owned()), key);
    }

    /// The key of `namespace/name`; `None` until the connection has been reconciled once.
    pub fn get(&self, namespace: &str, name: &str) -> Option<WebhookKey> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Forgets every connection `live` says is gone (deleted connections keep no key).
    pub fn retain(&self, live: impl Fn(&str, &str) -> bool) {
        self.keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|(namespace, name), _| live(namespace, name));
    }

    /// How many connections have a key recorded.
    pub fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Whether no connection has a key recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_replaced_and_pruned() {
        let keys = WebhookKeys::default();
        assert_eq!(keys.get("ns", "officernd"), None);
        keys.set("ns", "officernd", WebhookKey::Signing(Secret::new("old")));
        keys.set("ns", "officernd", WebhookKey::Signing(Secret::new("new")));
        keys.set("ns", "other", WebhookKey::NotConfigured);
        assert_eq!(
            keys.get("ns", "officernd"),
            Some(WebhookKey::Signing(Secret::new("new")))
        );
        keys.retain(|_, name| name == "officernd");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.get("ns", "other"), None);
    }
}
