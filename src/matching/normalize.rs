//! Name normalisation: reduces a display name to the canonical form that similarity is measured on.
//!
//! The steps, in order:
//! 1. Unicode compatibility decomposition (NFKD), combining marks dropped, a few letters that do
//!    not decompose folded by hand (`ø`→`o`, `ß`→`ss`, `æ`→`ae`, ...), then lower-cased.
//! 2. `&` becomes the word `and`; apostrophes vanish (`O'Neil`→`oneil`); every other character that
//!    is not a letter or digit separates words.
//! 3. Ordinals lose their suffix (`2nd`→`2`) and letters and digits glued together are split
//!    (`Room1`→`room 1`); numbers lose leading zeros (`07`→`7`).
//! 4. Each word is expanded through [`ABBREVIATIONS`] and [`NUMBER_WORDS`] (`Rm`→`room`,
//!    `Second`→`2`).
//! 5. `the` is dropped, `no`/`nr`/`number` is dropped before a number (`Room No. 5`→`room 5`), and
//!    trailing legal forms ([`LEGAL_FORMS`]: `Ltd`, `Limited`, `LLC`, `GmbH`, ...) are dropped unless
//!    they are the whole name, so `Acme`, `Acme Ltd` and `ACME Limited` are the same company.
//! 6. Words are joined by single spaces. Numbers and single letters are also kept apart as the
//!    name's identifiers (see [`NormalizedName::identifiers`]).

use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

/// Abbreviation → full word. Applied to whole words after lower-casing.
pub const ABBREVIATIONS: &[(&str, &str)] = &[
    ("ltd", "limited"),
    ("co", "company"),
    ("inc", "incorporated"),
    ("corp", "corporation"),
    ("rm", "room"),
    ("rms", "rooms"),
    ("flr", "floor"),
    ("fl", "floor"),
    ("lvl", "level"),
    ("mtg", "meeting"),
    ("conf", "conference"),
    ("ste", "suite"),
    ("st", "street"),
    ("rd", "road"),
    ("ave", "avenue"),
    ("sq", "square"),
    ("bldg", "building"),
    ("blk", "block"),
    ("ctr", "centre"),
    ("center", "centre"),
    ("dept", "department"),
    ("intl", "international"),
    ("mgmt", "management"),
    ("svc", "service"),
    ("svcs", "services"),
    ("assoc", "associates"),
    ("bros", "brothers"),
];

/// Number words → digits, so `Second Floor` and `Floor 2` carry the same number.
pub const NUMBER_WORDS: &[(&str, &str)] = &[
    ("zero", "0"),
    ("one", "1"),
    ("first", "1"),
    ("two", "2"),
    ("second", "2"),
    ("three", "3"),
    ("third", "3"),
    ("four", "4"),
    ("fourth", "4"),
    ("five", "5"),
    ("fifth", "5"),
    ("six", "6"),
    ("sixth", "6"),
    ("seven", "7"),
    ("seventh", "7"),
    ("eight", "8"),
    ("eighth", "8"),
    ("nine", "9"),
    ("ninth", "9"),
    ("ten", "10"),
    ("tenth", "10"),
    ("eleven", "11"),
    ("eleventh", "11"),
    ("twelve", "12"),
    ("twelfth", "12"),
];

/// Legal-form words (after abbreviation expansion) dropped from the end of a name.
pub const LEGAL_FORMS: &[&str] = &[
    "limited",
    "incorporated",
    "corporation",
    "llc",
    "llp",
    "lp",
    "plc",
    "pty",
    "gmbh",
    "ag",
    "bv",
    "nv",
    "sa",
    "sas",
    "sarl",
    "srl",
    "spa",
    "ab",
    "oy",
    "aps",
];

/// Words dropped before a number: `Room No. 5`, `Desk Nr 5`.
const NUMBER_MARKERS: &[&str] = &["no", "nr", "num", "number"];

/// A name in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NormalizedName {
    /// Canonical words joined by single spaces, in their original order.
    pub text: String,
    /// The same words sorted, so that reordered names (`Blue Meeting Room` /
    /// `Meeting Room Blue`) compare equal. Same length as `text`.
    pub sorted_text: String,
    /// The name's identifiers, sorted: every number (leading zeros removed) and every single-letter
    /// word. Names whose identifiers differ are different things (`Room 1` / `Room 10`,
    /// `Studio B` / `Studio D`) and never match automatically.
    pub identifiers: Vec<String>,
}

/// Normalises `name` as described in the module documentation.
pub fn normalize(name: &str) -> NormalizedName {
    let folded = fold_characters(name);
    let mut words: Vec<String> = Vec::new();
    for raw in folded.split_whitespace() {
        for piece in split_word(raw) {
            words.push(canonical_word(piece));
        }
    }
    let words = drop_noise_words(words);

    let mut identifiers: Vec<String> = words.iter().filter(|w| is_identifier(w)).cloned().collect();
    identifiers.sort_unstable();
    let mut sorted_words = words.clone();
    sorted_words.sort_unstable();

    NormalizedName {
        text: words.join(" "),
        sorted_text: sorted_words.join(" "),
        identifiers,
    }
}

fn fold_characters(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.nfkd() {
        match c {
            c if is_combining_mark(c) => {}
            '\'' | '\u{2018}' | '\u{2019}' | '\u{02BC}' | '`' | '\u{00B4}' => {}
            '&' => out.push_str(" and "),
            'ø' | 'Ø' => out.push('o'),
            'ł' | 'Ł' => out.push('l'),
            'đ' | 'Đ' | 'ð' | 'Ð' => out.push('d'),
            'ħ' | 'Ħ' => out.push('h'),
            'ı' => out.push('i'),
            'ß' => out.push_str("ss"),
            'æ' | 'Æ' => out.push_str("ae"),
            'œ' | 'Œ' => out.push_str("oe"),
            'þ' | 'Þ' => out.push_str("th"),
            c if c.is_alphanumeric() => out.extend(c.to_lowercase()),
            _ => out.push(' '),
        }
    }
    out
}

/// Splits a word into letter runs and digit runs; an ordinal (`2nd`, `21st`) stays one number.
fn split_word(word: &str) -> Vec<&str> {
    let digits_end = word
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(word.len());
    if digits_end > 0 && matches!(&word[digits_end..], "st" | "nd" | "rd" | "th") {
        return vec![&word[..digits_end]];
    }
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut previous_is_digit = None;
    for (index, c) in word.char_indices() {
        let is_digit = c.is_ascii_digit();
        if previous_is_digit.is_some_and(|previous| previous != is_digit) {
            pieces.push(&word[start..index]);
            start = index;
        }
        previous_is_digit = Some(is_digit);
    }
    pieces.push(&word[start..]);
    pieces
}

fn canonical_word(word: &str) -> String {
    if is_number(word) {
        let trimmed = word.trim_start_matches('0');
        return if trimmed.is_empty() { "0" } else { trimmed }.to_owned();
    }
    ABBREVIATIONS
        .iter()
        .chain(NUMBER_WORDS)
        .find(|(short, _)| *short == word)
        .map_or(word, |(_, long)| long)
        .to_owned()
}

fn drop_noise_words(words: Vec<String>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::with_capacity(words.len());
    for (index, word) in words.iter().enumerate() {
        let before_number = words.get(index + 1).is_some_and(|next| is_number(next));
        let is_marker = NUMBER_MARKERS.contains(&word.as_str()) && before_number;
        if word != "the" && !is_marker {
            kept.push(word.clone());
        }
    }
    while kept.len() > 1
        && kept
            .last()
            .is_some_and(|w| LEGAL_FORMS.contains(&w.as_str()))
    {
        kept.pop();
    }
    kept
}

fn is_identifier(word: &str) -> bool {
    is_number(word) || word.chars().count() == 1
}

fn is_number(word: &str) -> bool {
    !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str) -> String {
        normalize(name).text
    }

    #[test]
    fn folds_case_whitespace_punctuation_and_diacritics() {
        assert_eq!(text("  Café   Zürich!! "), "cafe zurich");
        assert_eq!(text("Søren's  Ærø-Studio"), "sorens aero studio");
        assert_eq!(text("O’Neil & Sons"), "oneil and sons");
        assert_eq!(text("Straße"), "strasse");
    }

    #[test]
    fn expands_abbreviations_and_drops_legal_forms() {
        assert_eq!(text("Mtg Rm 3"), "meeting room 3");
        assert_eq!(text("Ste. 4, Lvl 2"), "suite 4 level 2");
        assert_eq!(text("Smith & Co Ltd"), "smith and company");
        assert_eq!(text("ACME LIMITED"), text("Acme Ltd."));
        assert_eq!(text("Acme Inc"), "acme");
        assert_eq!(text("Limited"), "limited");
    }

    #[test]
    fn numbers_are_canonical() {
        assert_eq!(text("2nd Flr"), "2 floor");
        assert_eq!(text("Second Floor"), "2 floor");
        assert_eq!(text("Room1"), "room 1");
        assert_eq!(text("Room No. 07"), "room 7");
        assert_eq!(
            normalize("Floor 12, Desk 3A").identifiers,
            vec!["12", "3", "a"]
        );
        assert_eq!(normalize("Room 1").identifiers, vec!["1"]);
    }

    #[test]
    fn sorted_text_ignores_word_order() {
        assert_eq!(
            normalize("Blue Meeting Room").sorted_text,
            normalize("Meeting Room - Blue").sorted_text
        );
    }
}
