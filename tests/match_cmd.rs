//! Drives `flexgate match` (`cli::match_cmd::run`) end to end on files written by the test.

use std::path::PathBuf;

use flexgate::cli::match_cmd::{run, MatchArgs, MatchCommandError, OutputFormat};

/// Writes `lines` to a file unique to this test and process.
fn names_file(test: &str, side: &str, lines: &[&str]) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("flexgate-{}-{test}-{side}.txt", std::process::id()));
    std::fs::write(&path, lines.join("\n")).expect("temp dir is writable");
    path
}

fn args(test: &str, left: &[&str], right: &[&str], output: OutputFormat) -> MatchArgs {
    MatchArgs {
        left: names_file(test, "left", left),
        right: names_file(test, "right", right),
        threshold: 0.8,
        margin: 0.05,
        output,
    }
}

const LEFT: &[&str] = &[
    "  Meeting Room 1 ",
    "",
    "Acme Ltd",
    "Greenwich Suite",
    "Bike Storage",
];
const RIGHT: &[&str] = &[
    "Mtg Rm 1",
    "ACME",
    "Greenwich Suit",
    "Greenwich Suites",
    "Server Room",
];

#[test]
fn json_output_has_the_documented_shape() {
    let mut out = Vec::new();
    run(&args("json", LEFT, RIGHT, OutputFormat::Json), &mut out).expect("run succeeds");
    let json: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    let keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert_eq!(json["pairs"][0]["left"], "Meeting Room 1");
    assert_eq!(json["pairs"][0]["right"], "Mtg Rm 1");
    assert_eq!(json["pairs"][0]["score"], 1.0);
    assert_eq!(json["pairs"][1]["right"], "ACME");
    assert_eq!(json["unmatchedLeft"], serde_json::json!(["Bike Storage"]));
    assert_eq!(
        json["unmatchedRight"],
        serde_json::json!(["Greenwich Suit", "Greenwich Suites", "Server Room"])
    );
    assert_eq!(json["ambiguous"][0]["left"], "Greenwich Suite");
    assert_eq!(
        json["ambiguous"][0]["candidates"][0]["right"],
        "Greenwich Suites"
    );
    assert!(json["ambiguous"][0]["candidates"][1]["score"]
        .as_f64()
        .is_some());
}

#[test]
fn table_output_lists_pairs_then_unmatched_then_ambiguous() {
    let mut out = Vec::new();
    run(&args("table", LEFT, RIGHT, OutputFormat::Table), &mut out).expect("run succeeds");
    let text = String::from_utf8(out).expect("UTF-8");
    let position = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing in\n{text}"))
    };
    assert!(position("PAIRS (2)") < position("UNMATCHED LEFT (1)"));
    assert!(position("UNMATCHED LEFT (1)") < position("UNMATCHED RIGHT (3)"));
    assert!(position("UNMATCHED RIGHT (3)") < position("AMBIGUOUS (1)"));
    assert!(text.contains("1.000  Meeting Room 1  Mtg Rm 1"), "{text}");
}

#[test]
fn duplicate_names_are_reported_with_line_numbers() {
    let left = ["Room 1", "Kitchen", " Room 1"];
    let error = run(
        &args("dup", &left, RIGHT, OutputFormat::Json),
        &mut Vec::new(),
    )
    .expect_err("duplicate must fail");
    match error {
        MatchCommandError::DuplicateName {
            name,
            first_line,
            line,
            ..
        } => {
            assert_eq!((name.as_str(), first_line, line), ("Room 1", 1, 3));
        }
        other => panic!("unexpected error: {other}"),
    }
}

#[test]
fn missing_file_names_the_path() {
    let mut bad = args("missing", LEFT, RIGHT, OutputFormat::Json);
    bad.left = std::env::temp_dir().join("flexgate-no-such-file.txt");
    let error = run(&bad, &mut Vec::new()).expect_err("missing file must fail");
    assert!(
        error.to_string().contains("flexgate-no-such-file.txt"),
        "{error}"
    );
}
