//! Ids and secrets the simulators make up: random hex, version-4 UUIDs, and counters whose
//! ids grow with creation (so lists in id order are stable while appending).

use std::collections::BTreeMap;

/// `bytes` random bytes as lower-case hex (credentials, tokens, access codes).
pub fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    fastrand::fill(&mut raw);
    hex::encode(raw)
}

/// A random version-4 UUID in the hyphenated lower-case form.
pub fn uuid_v4() -> String {
    let mut raw = [0u8; 16];
    fastrand::fill(&mut raw);
    uuid::Builder::from_random_bytes(raw)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Whether `text` is a UUID in the hyphenated 8-4-4-4-12 form (the only form the simulated
/// APIs accept in paths; the simple, braced and URN forms are refused).
pub fn is_uuid(text: &str) -> bool {
    text.len() == uuid::fmt::Hyphenated::LENGTH && uuid::Uuid::try_parse(text).is_ok()
}

/// The integer id `text` names when `rows` holds it (surrounding blanks ignored).
pub fn known<V>(rows: &BTreeMap<u64, V>, text: &str) -> Option<u64> {
    text.trim().parse().ok().filter(|id| rows.contains_key(id))
}

/// A counter handing out increasing ids after a starting value (`Default`: from 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sequence {
    last: u64,
}

impl Sequence {
    /// The first id handed out is `after + 1`.
    pub const fn after(after: u64) -> Self {
        Self { last: after }
    }

    pub fn next_id(&mut self) -> u64 {
        self.last += 1;
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_version_4_uuids() {
        let id = uuid_v4();
        assert!(is_uuid(&id), "{id}");
        assert_eq!(id.as_bytes()[14], b'4', "{id}");
        assert!(
            matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'),
            "{id}"
        );
        assert_ne!(id, uuid_v4());
    }

    #[test]
    fn only_the_hyphenated_form_is_a_uuid() {
        assert!(!is_uuid("DE4520168385"));
        assert!(!is_uuid("67e5504410b1426f9247bb680e5fe0c8"));
        assert!(!is_uuid("{67e55044-10b1-426f-9247-bb680e5fe0c8}"));
        assert!(!is_uuid("67e55044-10b1-426f-9247-bb680e5fe0cg"));
        assert!(is_uuid("67e55044-10b1-426f-9247-bb680e5fe0c8"));
    }

    #[test]
    fn hex_has_two_digits_a_byte_and_sequences_count_up() {
        let hex = random_hex(16);
        assert_eq!(hex.len(), 32);
        assert!(hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let mut ids = Sequence::after(1_000);
        assert_eq!((ids.next_id(), ids.next_id()), (1_001, 1_002));
        let rows = BTreeMap::from([(7_u64, ())]);
        assert_eq!(known(&rows, " 7"), Some(7));
        assert_eq!(known(&rows, "8"), None);
        assert_eq!(known(&rows, "x"), None);
    }
}
