//! The record of write calls a simulator received, for tests that count writes or inspect the
//! bodies exactly as sent. Each simulator decides what counts as a write and under which kind
//! (a route, an entity, `"METHOD /path"`); the journal keeps them in order.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    kind: String,
    body: Option<Value>,
}

/// Write calls in the order received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Journal {
    entries: Vec<Entry>,
}

impl Journal {
    /// Records a write of `kind` without a body worth keeping.
    pub fn record(&mut self, kind: impl Into<String>) {
        self.record_body(kind, None);
    }

    /// Records a write of `kind` with its body as received (`None`: none or unreadable).
    pub fn record_body(&mut self, kind: impl Into<String>, body: Option<Value>) {
        self.entries.push(Entry {
            kind: kind.into(),
            body,
        });
    }

    /// Writes recorded, all kinds together.
    pub fn total(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Writes of one kind.
    pub fn count(&self, kind: &str) -> u64 {
        self.entries
            .iter()
            .filter(|entry| entry.kind == kind)
            .count() as u64
    }

    /// Writes per kind.
    pub fn by_kind(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for entry in &self.entries {
            *counts.entry(entry.kind.clone()).or_default() += 1;
        }
        counts
    }

    /// The kind of every write, in order.
    pub fn kinds(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|entry| entry.kind.clone())
            .collect()
    }

    /// The bodies recorded with writes of `kind`, in order.
    pub fn bodies(&self, kind: &str) -> Vec<Value> {
        self.entries
            .iter()
            .filter(|entry| entry.kind == kind)
            .filter_map(|entry| entry.body.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_order_counts_and_bodies() {
        let mut journal = Journal::default();
        journal.record_body("create", Some(json!({"a": 1})));
        journal.record("delete");
        journal.record_body("create", None);
        assert_eq!(journal.total(), 3);
        assert_eq!(journal.count("create"), 2);
        assert_eq!(journal.kinds(), ["create", "delete", "create"]);
        assert_eq!(journal.bodies("create"), vec![json!({"a": 1})]);
        assert_eq!(journal.by_kind().get("delete"), Some(&1));
    }
}
