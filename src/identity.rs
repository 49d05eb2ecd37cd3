//! The one email identity: how an email address is turned into the key that joins an OfficeRnD
//! member (or booking guest) to a vendor user, an essensys user and the engine's person look-ups.
//!
//! The email is the identity the integrations rely on (seed essensys 000: "Email addresses - used
//! as unique identifier"; the door integrations invite and match people by email), so every
//! place that compares two emails must agree on when they are the same person. Before this
//! module the engine lower-cased with Unicode rules while the door sync and the essensys matching
//! lower-cased ASCII only, so `ÉVA@example.com` and `éva@example.com` were one person to
//! `flexgate explain` and two to the sync.
//!
//! Decided here, and nowhere else:
//! - Surrounding whitespace is not part of an address (Unicode `White_Space`, as [`str::trim`]).
//!   Inner whitespace is kept: such an address is broken, and saying so beats guessing.
//! - Letters compare without case, with Unicode's lower-case mapping (`str::to_lowercase`) in the
//!   local part and the domain alike. RFC 5321 lets a server treat local parts case-sensitively,
//!   but no mailbox provider does, and OfficeRnD, Kisi, Salto KS, Brivo and essensys all treat
//!   `Ann@X` and `ann@x` as one person. The one context-dependent mapping, Greek capital sigma
//!   (`σ` inside a word, `ς` at its end), is folded to `σ` so the result does not depend on where
//!   the letter stands.
//! - Canonically equivalent spellings are one address: the result is in Unicode NFC, so `é`
//!   typed as one code point and as `e` + combining acute are the same person (macOS and some
//!   browsers send the decomposed form). NFC, not NFKC: compatibility forms (`ﬁ`, full-width
//!   letters) are different characters to every mail system and stay different here.
//! - Not done: full case folding (`ß` and `ss` stay different, as mail systems keep them), IDNA
//!   (a domain written as `xn--…` and in Unicode are two identities; OfficeRnD stores what was
//!   typed), and provider-specific rules (dots or `+tags` in Gmail local parts).
//!
//! Cost: ASCII addresses (nearly all) take the ASCII path, one pass and one allocation; NFC
//! comes from `unicode-normalization`, already a dependency of the name matcher.

use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// The identity of an email address: trimmed, lower-cased (Unicode), in NFC; `None` when nothing
/// is left after trimming. Two addresses are the same person exactly when their identities are
/// equal (see the module documentation for what is and is not folded).
pub fn canonical_email(email: &str) -> Option<String> {
    let trimmed = email.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.is_ascii() {
        return Some(trimmed.to_ascii_lowercase());
    }
    let lowered: String = trimmed
        .to_lowercase()
        .chars()
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect();
    Some(match is_nfc_quick(lowered.chars()) {
        IsNormalized::Yes => lowered,
        IsNormalized::No | IsNormalized::Maybe => lowered.nfc().collect(),
    })
}

/// Whether two addresses are the same person (blank addresses are nobody, so never equal).
pub fn same_email(a: &str, b: &str) -> bool {
    match (canonical_email(a), canonical_email(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lower_cases_ascii() {
        assert_eq!(
            canonical_email("  Ann.Lee@Example.COM \t\n").as_deref(),
            Some("ann.lee@example.com")
        );
        assert_eq!(canonical_email("   "), None);
        assert_eq!(canonical_email(""), None);
        // Unicode whitespace around the address is not part of it either.
        assert_eq!(
            canonical_email("\u{a0}\u{2003}bob@example.com\u{3000}").as_deref(),
            Some("bob@example.com")
        );
    }

    #[test]
    fn non_ascii_letters_compare_without_case_in_the_local_part_and_the_domain() {
        assert_eq!(
            canonical_email(" ÉVA.Ñúñez@Bücher.DE ").as_deref(),
            Some("éva.ñúñez@bücher.de")
        );
        assert!(same_email("ÉVA@BÜCHER.de", "éva@bücher.DE"));
        assert!(same_email("ДМИТРИЙ@ПОЧТА.РФ", "дмитрий@почта.рф"));
        assert!(same_email("İlker@example.com", "i\u{307}lker@example.com"));
        assert!(!same_email("eva@example.com", "éva@example.com"));
    }

    #[test]
    fn canonically_equivalent_spellings_are_one_address() {
        // "é" as one code point, and as "e" + combining acute accent; in the domain too.
        let composed = "ren\u{e9}@caf\u{e9}.fr";
        let decomposed = "RENE\u{301}@CAFE\u{301}.FR";
        assert_eq!(canonical_email(composed), canonical_email(decomposed));
        assert_eq!(canonical_email(decomposed).as_deref(), Some(composed));
    }

    #[test]
    fn greek_sigma_does_not_depend_on_its_place() {
        assert!(same_email("ΟΔΟΣ@example.gr", "οδοσ@example.gr"));
        assert!(same_email("ΟΔΟΣ@example.gr", "οδος@example.gr"));
        assert_eq!(
            canonical_email("ΣΑΣ@example.gr").as_deref(),
            Some("σασ@example.gr")
        );
    }

    #[test]
    fn what_is_deliberately_not_folded_stays_apart() {
        assert!(!same_email("strasse@example.de", "straße@example.de"));
        assert!(!same_email("ann@xn--bcher-kva.de", "ann@bücher.de"));
        assert!(!same_email("ﬁona@example.com", "fiona@example.com"));
        assert!(!same_email("ann+doors@example.com", "ann@example.com"));
        assert!(!same_email("", ""), "blank addresses are nobody");
    }
}
