//! Offline validation: the examples are valid, and every manifest of the invalid corpus is
//! rejected with its expected, specific message.

use std::path::{Path, PathBuf};

use flexgate::manifests::{load, validate};

fn lines_for(paths: &[PathBuf], previous: &[PathBuf]) -> Vec<String> {
    let (docs, problems) = load(paths);
    let (old, old_problems) = load(previous);
    assert!(
        old_problems.is_empty(),
        "previous versions must load: {old_problems:?}"
    );
    let mut lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.file.display(), p.message))
        .collect();
    lines.extend(validate(&docs, &old).iter().map(ToString::to_string));
    lines
}

#[test]
fn examples_are_valid_and_complete() {
    let examples = PathBuf::from("examples");
    let lines = lines_for(std::slice::from_ref(&examples), &[]);
    assert!(
        lines.is_empty(),
        "examples/ must be valid:\n{}",
        lines.join("\n")
    );

    let (docs, _) = load(&[examples]);
    let vendors: Vec<&str> = docs
        .iter()
        .filter(|d| d.kind() == Some("VendorConnection"))
        .filter_map(|d| d.value.pointer("/spec/vendor").and_then(|v| v.as_str()))
        .collect();
    for vendor in ["OfficeRnD", "Kisi", "SaltoKS", "Brivo", "Essensys"] {
        assert!(
            vendors.contains(&vendor),
            "examples/ lacks a {vendor} connection"
        );
    }
    let sources: Vec<String> = docs
        .iter()
        .filter(|d| d.kind() == Some("AccessGroupBinding"))
        .filter_map(|d| d.value.pointer("/spec/source").and_then(|s| s.as_object()))
        .flat_map(|s| s.keys().cloned())
        .collect();
    for source in [
        "plan",
        "location",
        "floor",
        "assignableResource",
        "bookableResource",
        "dayPasses",
    ] {
        assert!(
            sources.iter().any(|s| s == source),
            "examples/ lacks a {source} binding"
        );
    }
    assert!(docs.iter().any(|d| d.kind() == Some("SiteMapping")));
    let secrets = docs.iter().filter(|d| d.kind() == Some("Secret")).count();
    assert_eq!(secrets, 5, "each connection comes with its Secret");
}

#[test]
fn odd_but_valid_manifests_are_accepted() {
    // What the apiserver accepts must pass here too (tests/e2e/invalid.rs asks the server).
    let lines = lines_for(&[PathBuf::from("tests/valid")], &[]);
    assert!(lines.is_empty(), "{}", lines.join("\n"));
}

#[test]
fn every_invalid_manifest_is_rejected_with_its_message() {
    let corpus = Path::new("tests/invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !p.to_string_lossy().ends_with(".previous.yaml")
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "the corpus shrank to {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let text = std::fs::read_to_string(case).unwrap();
        let expects: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expects.is_empty(),
            "{} has no '# expect:' line",
            case.display()
        );
        let previous = case.with_extension("previous.yaml");
        let previous: Vec<PathBuf> = if previous.exists() {
            vec![previous]
        } else {
            vec![]
        };
        let lines = lines_for(std::slice::from_ref(case), &previous);
        if lines.is_empty() {
            failures.push(format!(
                "{}: accepted, expected {expects:?}",
                case.display()
            ));
            continue;
        }
        for expected in &expects {
            if !lines.iter().any(|line| line.contains(expected)) {
                failures.push(format!(
                    "{}: no problem contains {expected:?}; got:\n  {}",
                    case.display(),
                    lines.join("\n  ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn transition_rules_only_apply_to_updates() {
    // The same approved SiteMapping is fine on creation; only changing it once approved fails.
    let case = PathBuf::from("tests/invalid/sitemapping-approved-mapping-changed.yaml");
    assert!(lines_for(std::slice::from_ref(&case), &[]).is_empty());
    let previous =
        PathBuf::from("tests/invalid/sitemapping-approved-mapping-changed.previous.yaml");
    assert!(
        lines_for(
            std::slice::from_ref(&previous),
            std::slice::from_ref(&previous)
        )
        .is_empty(),
        "an unchanged approved mapping is valid"
    );
}

#[test]
fn findings_name_file_object_and_field() {
    let case = PathBuf::from("tests/invalid/binding-two-sources.yaml");
    let (docs, _) = load(std::slice::from_ref(&case));
    let findings = validate(&docs, &[]);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].file, case);
    assert_eq!(findings[0].object, "AccessGroupBinding default/two");
    assert_eq!(findings[0].field, "spec.source");
}

#[test]
fn other_api_groups_are_left_alone() {
    let dir = std::env::temp_dir().join(format!("flexgate-other-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {anything: goes}\n",
    )
    .unwrap();
    assert!(lines_for(std::slice::from_ref(&dir), &[]).is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}
