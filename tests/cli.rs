//! The `flexgate` binary as users run it: the demo, validate and crd.

use std::process::Command;

fn flexgate(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_flexgate"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn the_demo_grants_and_revokes_on_the_sandbox() {
    let (code, text) = flexgate(&["demo"]);
    assert_eq!(code, 0, "{text}");
    let chapters: Vec<&str> = text.split("\n=== ").collect();
    assert_eq!(chapters.len(), 5, "{text}");
    let room = |chapter: &str| {
        chapter
            .lines()
            .find(|l| l.starts_with("  Brivo") && l.contains("OFFICERND_Elephant Room"))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert!(room(chapters[1]).contains("(empty)"), "{}", chapters[1]);
    assert!(
        room(chapters[2]).contains("zoe.guest@example.org"),
        "{}",
        chapters[2]
    );
    assert!(room(chapters[3]).contains("(empty)"), "{}", chapters[3]);
    let lobby = |chapter: &str| {
        chapter
            .lines()
            .find(|l| l.starts_with("  Kisi") && l.contains("OFFICERND_Lobby "))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert!(
        !lobby(chapters[1]).contains("mallory"),
        "the hand-added person must be removed"
    );
    assert!(lobby(chapters[3]).contains("fay.quinn@example.com"));
    assert!(!lobby(chapters[4]).contains("fay.quinn@example.com"));
    assert!(text.contains("carl@cleaning.example (not managed: never touched)"));
    assert!(
        !text.contains("clientSecret"),
        "the demo must not print secrets"
    );
}

#[test]
fn validate_reports_file_object_field_and_fails() {
    let (code, text) = flexgate(&["validate", "tests/invalid/binding-two-sources.yaml"]);
    assert_eq!(code, 1);
    assert!(text.contains("tests/invalid/binding-two-sources.yaml: AccessGroupBinding default/two: spec.source: exactly one of"), "{text}");
    let (code, text) = flexgate(&["validate", "examples"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0 problem(s)"));
}

#[test]
fn crd_prints_what_crds_holds() {
    let (code, text) = flexgate(&["crd"]);
    assert_eq!(code, 0);
    assert_eq!(text, std::fs::read_to_string("crds/flexgate.yaml").unwrap());
}
