//! Quality of the name matcher on a labelled set of coworking names, plus its contract: one-to-one
//! pairs, overrides, ambiguity through the margin, and the email matcher's error list.

use std::collections::{HashMap, HashSet};

use flexgate::matching::{
    match_emails, match_names, similarity, EmailMatchError, MatchError, MatchOptions, MatchResult,
    MatchedVia, Override, OverrideTarget, Person,
};
use proptest::prelude::*;

/// (OfficeRnD name, essensys name) pairs that refer to the same thing.
const LABELLED: &[(&str, &str)] = &[
    // Floors
    ("Ground Floor", "Ground Flr"),
    ("Floor 1", "1st Floor"),
    ("Floor 2", "Second Floor"),
    ("Floor 12", "FLOOR 12"),
    ("Floor 10", "10th floor"),
    ("Level 3", "Lvl 3"),
    ("Level 4", "Level 04"),
    ("Mezzanine", "Mezanine"),
    ("Basement", "basement"),
    ("Rooftop Terrace", "Roof-top Terrace"),
    ("Floor 5 - East Wing", "5th Floor East Wing"),
    ("Floor 5 - West Wing", "5th Floor, West Wing"),
    ("Floor 2 - Reception", "Reception (2nd Floor)"),
    // Meeting rooms and other resources
    ("Meeting Room 1", "Mtg Rm 1"),
    ("Meeting Room 10", "Mtg Room 10"),
    ("Meeting Room 2", "Meeting Rm 2"),
    ("Meeting Room 12", "Meeting-Room 12"),
    ("Room 1", "Room 01"),
    ("Room 10", "ROOM 10"),
    ("Boardroom", "Board Room"),
    ("Conference Room A", "Conf Room A"),
    ("Conference Room B", "Conf. Rm B"),
    ("Phone Booth 1", "Phonebooth 1"),
    ("Phone Booth 2", "Phone Booth #2"),
    ("Focus Room Blue", "Blue Focus Room"),
    ("Focus Room Green", "Focus Rm Green"),
    ("Café Meeting Space", "Cafe Meeting Space"),
    ("Training Room", "Trainig Room"),
    ("Event Space", "Events Space"),
    ("Podcast Studio", "Podcast Studio"),
    ("Suite 101", "Ste 101"),
    ("Suite 110", "Ste. 110"),
    ("Office 4.12", "Office 4-12"),
    ("Private Office 7", "Private Office #7"),
    ("Private Office 17", "private office 17"),
    ("Hot Desk Area", "Hot-Desk Area"),
    ("Dedicated Desk 3", "Dedicated Desk 03"),
    ("Kitchen & Lounge", "Kitchen and Lounge"),
    ("Wellness Room", "Wellness Rm"),
    ("Meeting Room Everest", "Mtg Rm Everest"),
    ("Meeting Room Kilimanjaro", "Meeting Room Kilimanjro"),
    ("Innovation Lab", "Innovation Lab."),
    ("Workshop Room", "Work Shop Room"),
    ("Studio A", "Studio  A"),
    ("Room No. 5", "Room 5"),
    ("Second Floor Lounge", "Lounge, Floor 2"),
    // Companies
    ("Acme Ltd", "ACME Limited"),
    ("Acme Labs Ltd", "Acme Labs Limited"),
    ("Smith & Jones LLP", "Smith and Jones"),
    ("Brightwave Technologies Inc.", "Brightwave Technologies"),
    ("Nordström Design AB", "Nordstrom Design"),
    ("Müller GmbH", "Mueller GmbH"),
    ("O'Brien Consulting", "OBrien Consulting"),
    ("Blue Fox Studio", "Bluefox Studio"),
    ("Green Leaf Ventures Ltd", "Greenleaf Ventures"),
    ("Pixel & Code Ltd", "Pixel and Code Limited"),
    ("Harbour Capital Partners", "Harbor Capital Partners"),
    ("Quantum Analytics Co", "Quantum Analytics Company"),
    ("Stellar Marketing Inc", "Stellar Marketing Incorporated"),
    ("Redwood Legal LLP", "Redwood Legal"),
    ("Northwind Traders", "Northwind Traders Ltd"),
    ("Atlas Architects", "Atlas Architect"),
    ("Kite & Key Events", "Kite and Key Events"),
    ("Zenith Health", "Zenith Heath"),
    ("Copper Kettle Coffee", "Copper Kettle Cofee"),
    ("Lumen Robotics", "Lumen Robotics Limited"),
    ("Oakridge Financial Services", "Oakridge Financial Svcs"),
    ("Meridian Consulting Group", "Meridian Consulting Grp"),
    ("Vertex AI Ltd", "Vertex Ai Limited"),
    ("Hello World Inc.", "Hello-World, Inc"),
    ("Bright Minds Education", "BrightMinds Education"),
    ("Silverline Media", "Silver Line Media"),
    ("Tandem Bikes Co.", "Tandem Bikes Company"),
    ("Papier & Co", "Papier and Company"),
    ("Cobalt Security Ltd", "Cobalt Security Limited"),
    ("Cobalt Systems Ltd", "Cobalt Systems"),
    ("Alpha Partners", "Alpha Partners LLP"),
    ("Alpha Partners International", "Alpha Partners Intl"),
    ("Foxglove Therapy", "Foxglove Therapies"),
    ("Élan Vital Yoga", "Elan Vital Yoga"),
    ("Søren Studio", "Soren Studio"),
    ("Nine Dots Ltd", "9 Dots Limited"),
    ("Studio 54 Productions", "Studio 54 Productions Ltd"),
    ("3D Print Hub", "3D-Print Hub"),
    ("Wild Atlantic Tours", "Wild Atlantic Tours Ltd."),
    ("Jones & Partners", "Jones and Partners"),
    ("Byte Size Labs", "Bytesize Labs"),
    ("The Hive Collective", "Hive Collective"),
    ("Saint James Bakery", "St James Bakery"),
    // Hard cases that plain edit distance is not expected to catch; they count against recall.
    ("Mosaic Creative Agency", "Mosaic Creative"),
    ("International Business Machines", "IBM"),
    ("Two Sigma Design Studio", "2Sigma Design"),
];

/// Names with no counterpart, several of them one digit or letter away from a labelled name.
const LEFT_ONLY: &[&str] = &[
    "Meeting Room 3",
    "Floor 3",
    "Acme Holdings",
    "Bike Storage",
    "Studio B",
    "Room 100",
    "Phone Booth 3",
];
const RIGHT_ONLY: &[&str] = &[
    "Meeting Room 13",
    "Floor 13",
    "Storage Room",
    "Server Room",
    "Cobalt Solutions",
    "Studio D",
    "Room 11",
    "Suite 111",
];

fn labelled_lists() -> (Vec<String>, Vec<String>) {
    let mut left: Vec<String> = LABELLED.iter().map(|(l, _)| l.to_string()).collect();
    left.extend(LEFT_ONLY.iter().map(|s| s.to_string()));
    // The right side in a different order, as a second system would list it.
    let mut right: Vec<String> = LABELLED.iter().rev().map(|(_, r)| r.to_string()).collect();
    right.extend(RIGHT_ONLY.iter().map(|s| s.to_string()));
    (left, right)
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn pair_map(result: &MatchResult) -> HashMap<&str, &str> {
    result
        .pairs
        .iter()
        .map(|p| (p.left.as_str(), p.right.as_str()))
        .collect()
}

#[test]
fn labelled_set_has_perfect_precision_and_high_recall() {
    let (left, right) = labelled_lists();
    let result = match_names(&left, &right, &MatchOptions::default()).expect("valid input");
    let truth: HashMap<&str, &str> = LABELLED.iter().copied().collect();

    let wrong: Vec<_> = result
        .pairs
        .iter()
        .filter(|p| truth.get(p.left.as_str()) != Some(&p.right.as_str()))
        .map(|p| format!("{} -> {} ({:.3})", p.left, p.right, p.score))
        .collect();
    assert!(wrong.is_empty(), "wrong pairs: {wrong:#?}");

    let recall = result.pairs.len() as f64 / LABELLED.len() as f64;
    let missed: Vec<_> = LABELLED
        .iter()
        .filter(|(l, _)| !result.pairs.iter().any(|p| p.left == *l))
        .collect();
    eprintln!(
        "recall {recall:.3} on {} labelled pairs; missed: {missed:?}",
        LABELLED.len()
    );
    assert!(recall >= 0.95, "recall {recall:.3}, missed: {missed:#?}");
    assert!(LABELLED.len() >= 80);
}

#[test]
fn numbered_and_lettered_names_never_pair_across_identifiers() {
    let left = strings(&["Room 1", "Floor 2", "Meeting Room 3", "Studio B"]);
    let right = strings(&["Room 10", "Floor 12", "Meeting Room 13", "Studio D"]);
    let result = match_names(&left, &right, &MatchOptions::default()).expect("valid input");
    assert!(result.pairs.is_empty(), "{:?}", result.pairs);
    assert!(result.ambiguous.is_empty());
    assert_eq!(result.unmatched_left, left);
    assert_eq!(similarity("Room 1", "Room 10"), 0.0);
    assert_eq!(similarity("Floor 2", "2nd floor"), 1.0);
}

#[test]
fn similar_companies_stay_apart() {
    let left = strings(&["Acme Ltd", "Acme Labs Ltd"]);
    let right = strings(&["Acme Labs Limited", "ACME LIMITED"]);
    let result = match_names(&left, &right, &MatchOptions::default()).expect("valid input");
    let pairs = pair_map(&result);
    assert_eq!(pairs.get("Acme Ltd"), Some(&"ACME LIMITED"));
    assert_eq!(pairs.get("Acme Labs Ltd"), Some(&"Acme Labs Limited"));
}

#[test]
fn assignment_maximises_total_score() {
    // "Northgate Suite" is closest to "Northgate Suites", but "Northgate Suites UK" can only use
    // "Northgate Suites": the best total gives "Northgate Suite" the runner-up "Northgate Suit".
    let left = strings(&["Northgate Suite", "Northgate Suites UK"]);
    let right = strings(&["Northgate Suites", "Northgate Suit"]);
    assert!(
        similarity("Northgate Suite", "Northgate Suites")
            > similarity("Northgate Suite", "Northgate Suit")
    );
    assert!(similarity("Northgate Suites UK", "Northgate Suit") < 0.75);
    let result = match_names(&left, &right, &MatchOptions::default()).expect("valid input");
    let pairs = pair_map(&result);
    assert_eq!(pairs.get("Northgate Suite"), Some(&"Northgate Suit"));
    assert_eq!(pairs.get("Northgate Suites UK"), Some(&"Northgate Suites"));
}

#[test]
fn runner_up_just_below_threshold_counts_for_the_margin() {
    // 0.80 vs 0.76 (below the 0.8 threshold): a lead of 0.04 is not the default 0.05 margin.
    let left = strings(&["Riverside Conference Hall"]);
    let right = strings(&["Riverside Conference", "River Side Conference"]);
    let best = similarity("Riverside Conference Hall", "Riverside Conference");
    let runner_up = similarity("Riverside Conference Hall", "River Side Conference");
    assert!(
        best >= 0.8 && runner_up < 0.8 && best - runner_up < 0.05,
        "{best} {runner_up}"
    );
    let result = match_names(&left, &right, &MatchOptions::default()).expect("valid input");
    assert!(result.pairs.is_empty());
    assert_eq!(result.ambiguous[0].candidates.len(), 2);
}

#[test]
fn close_runner_up_makes_a_pair_ambiguous() {
    let left = strings(&["Greenwich Suite", "Kitchen"]);
    let right = strings(&["Greenwich Suit", "Greenwich Suites", "Kitchen"]);
    let result = match_names(&left, &right, &MatchOptions::default()).expect("valid input");
    assert_eq!(pair_map(&result).get("Kitchen"), Some(&"Kitchen"));
    assert_eq!(result.ambiguous.len(), 1);
    let ambiguity = &result.ambiguous[0];
    assert_eq!(ambiguity.left, "Greenwich Suite");
    let candidates: Vec<&str> = ambiguity
        .candidates
        .iter()
        .map(|c| c.right.as_str())
        .collect();
    assert_eq!(candidates, ["Greenwich Suites", "Greenwich Suit"]);
    assert!(ambiguity.candidates[0].score >= ambiguity.candidates[1].score);
    assert_eq!(
        result.unmatched_right,
        ["Greenwich Suit", "Greenwich Suites"]
    );

    // Without a margin the better candidate wins.
    let options = MatchOptions {
        margin: 0.0,
        ..MatchOptions::default()
    };
    let result = match_names(&left, &right, &options).expect("valid input");
    assert_eq!(
        pair_map(&result).get("Greenwich Suite"),
        Some(&"Greenwich Suites")
    );
}

#[test]
fn exact_ties_are_never_resolved_automatically() {
    let left = strings(&["Meeting Room Blue"]);
    let right = strings(&["Meeting Room Blues", "Meeting Room Bluer"]);
    let options = MatchOptions {
        margin: 0.0,
        ..MatchOptions::default()
    };
    let result = match_names(&left, &right, &options).expect("valid input");
    assert!(result.pairs.is_empty());
    assert_eq!(result.ambiguous[0].candidates.len(), 2);
}

#[test]
fn overrides_and_do_not_map_win() {
    let left = strings(&["Room 1", "Kitchen", "Lounge", "Acme Ltd"]);
    let right = strings(&["Room 1", "Kitchen", "Lobby", "Acme"]);
    let options = MatchOptions {
        overrides: vec![
            // A pair automatic matching would never make.
            Override {
                left: "Lounge".into(),
                target: OverrideTarget::Right("Room 1".into()),
            },
            Override {
                left: "Kitchen".into(),
                target: OverrideTarget::DoNotMap,
            },
        ],
        ..MatchOptions::default()
    };
    let result = match_names(&left, &right, &options).expect("valid input");
    let lounge = result
        .pairs
        .iter()
        .find(|p| p.left == "Lounge")
        .expect("override pair");
    assert_eq!(
        (lounge.right.as_str(), lounge.via),
        ("Room 1", MatchedVia::Override)
    );
    let acme = result
        .pairs
        .iter()
        .find(|p| p.left == "Acme Ltd")
        .expect("automatic pair");
    assert_eq!(
        (acme.right.as_str(), acme.via),
        ("Acme", MatchedVia::Automatic)
    );
    assert_eq!(result.do_not_map, ["Kitchen"]);
    // "Room 1" went to the override, so the left "Room 1" has nothing left to pair with.
    assert_eq!(result.unmatched_left, ["Room 1"]);
    assert_eq!(result.unmatched_right, ["Kitchen", "Lobby"]);
    assert_eq!(result.pairs.len(), 2);
}

#[test]
fn invalid_input_is_rejected_with_specific_errors() {
    let names = strings(&["Room 1", "Room 2"]);
    let run = |options: MatchOptions| match_names(&names, &names, &options);
    assert_eq!(
        run(MatchOptions {
            threshold: 0.0,
            ..Default::default()
        }),
        Err(MatchError::InvalidThreshold(0.0))
    );
    assert!(matches!(
        run(MatchOptions {
            margin: 0.9,
            ..Default::default()
        }),
        Err(MatchError::InvalidMargin { .. })
    ));
    let to = |l: &str, r: &str| Override {
        left: l.into(),
        target: OverrideTarget::Right(r.into()),
    };
    assert_eq!(
        run(MatchOptions {
            overrides: vec![to("Room 9", "Room 1")],
            ..Default::default()
        }),
        Err(MatchError::UnknownOverrideLeft("Room 9".into()))
    );
    assert!(matches!(
        run(MatchOptions {
            overrides: vec![to("Room 1", "Room 9")],
            ..Default::default()
        }),
        Err(MatchError::UnknownOverrideRight { .. })
    ));
    assert!(matches!(
        run(MatchOptions {
            overrides: vec![to("Room 1", "Room 2"), to("Room 2", "Room 2")],
            ..Default::default()
        }),
        Err(MatchError::OverrideTargetTaken { .. })
    ));
    let duplicated = strings(&["Room 1", "Room 1"]);
    assert!(matches!(
        match_names(&duplicated, &names, &MatchOptions::default()),
        Err(MatchError::DuplicateName { .. })
    ));
}

#[test]
fn email_matcher_reports_count_and_errors() {
    let person = |id: &str, email: Option<&str>| Person {
        id: id.into(),
        email: email.map(Into::into),
    };
    let members = [
        person("m1", Some("  Ana@Example.com ")),
        person("m2", None),
        person("m3", Some("   ")),
        person("m4", Some("dup@example.com")),
        person("m5", Some("DUP@example.com")),
        person("m6", Some("shared@example.com")),
        person("m7", Some("nobody@example.com")),
        person("m8", Some("bo@example.com")),
    ];
    let users = [
        person("u1", Some("ana@example.com")),
        person("u2", Some("dup@example.com")),
        person("u3", Some("shared@example.com")),
        person("u4", Some("Shared@Example.com")),
        person("u5", Some("BO@EXAMPLE.COM")),
        person("u6", None),
    ];
    let report = match_emails(&members, &users);
    assert_eq!(report.matched, 2);
    assert_eq!(
        report.errors,
        vec![
            EmailMatchError::MemberWithoutEmail {
                member_id: "m2".into()
            },
            EmailMatchError::MemberWithoutEmail {
                member_id: "m3".into()
            },
            EmailMatchError::DuplicateMemberEmail {
                email: "dup@example.com".into(),
                member_ids: vec!["m4".into(), "m5".into()],
            },
            EmailMatchError::DuplicateUserEmail {
                email: "shared@example.com".into(),
                user_ids: vec!["u3".into(), "u4".into()],
            },
            EmailMatchError::NoUserWithEmail {
                member_id: "m7".into(),
                email: "nobody@example.com".into(),
            },
        ]
    );
}

/// Names drawn from a small vocabulary so that many are similar, duplicated or numbered alike.
fn name_list() -> impl Strategy<Value = Vec<String>> {
    let word = prop::sample::select(vec![
        "Room", "Rm", "Meeting", "Mtg", "Blue", "Blu", "Floor", "2", "12", "Acme", "Labs", "Ltd",
        "Suite",
    ]);
    prop::collection::vec(prop::collection::vec(word, 1..4), 0..14).prop_map(|names| {
        let mut seen = HashSet::new();
        names
            .into_iter()
            .map(|words| words.join(" "))
            .filter(|name| seen.insert(name.clone()))
            .collect()
    })
}

proptest! {
    #[test]
    fn every_name_is_accounted_for_exactly_once(left in name_list(), right in name_list(), margin in 0.0..0.2f64) {
        let options = MatchOptions { margin, ..MatchOptions::default() };
        let result = match_names(&left, &right, &options).expect("valid input");

        let mut left_seen: Vec<&str> = result.pairs.iter().map(|p| p.left.as_str()).collect();
        left_seen.extend(result.unmatched_left.iter().map(String::as_str));
        left_seen.extend(result.ambiguous.iter().map(|a| a.left.as_str()));
        left_seen.sort_unstable();
        let mut left_expected: Vec<&str> = left.iter().map(String::as_str).collect();
        left_expected.sort_unstable();
        prop_assert_eq!(left_seen, left_expected);

        let mut right_seen: Vec<&str> = result.pairs.iter().map(|p| p.right.as_str()).collect();
        right_seen.extend(result.unmatched_right.iter().map(String::as_str));
        right_seen.sort_unstable();
        let mut right_expected: Vec<&str> = right.iter().map(String::as_str).collect();
        right_expected.sort_unstable();
        prop_assert_eq!(right_seen, right_expected);

        for pair in &result.pairs {
            prop_assert!(pair.score >= options.threshold - 1e-9);
            prop_assert!((pair.score - similarity(&pair.left, &pair.right)).abs() < 1e-6);
        }
    }
}
