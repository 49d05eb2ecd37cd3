//! The `flexgate` binary as users run it: the demo, validate, crd and the sandbox's manifests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use flexgate::manifests;

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

#[test]
fn the_sandbox_writes_namespace_free_manifests_from_any_folder() {
    // A folder without examples/ or crds/: everything must come from the binary.
    let cwd = std::env::temp_dir().join(format!("flexgate-sandbox-cwd-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flexgate"))
        .args(["sandbox", "--write-manifests", "sbx"])
        .current_dir(&cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut printed = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let serving = line.starts_with("serving until interrupted");
        printed.push(line);
        if serving {
            break;
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let printed = printed.join("\n");
    assert!(
        printed.contains("serving until interrupted"),
        "the sandbox stopped ({status}): {printed}"
    );
    for command in [
        "flexgate crd | kubectl apply --server-side -f -",
        "kubectl create namespace flexgate-sandbox",
        "kubectl apply -n flexgate-sandbox -f sbx",
        "flexgate run --namespace flexgate-sandbox --leader-election false",
        "kubectl get vendorconnections,accessgroupbindings,sitemappings -n flexgate-sandbox",
        "kubectl patch sitemapping london -n flexgate-sandbox --type merge -p '{\"spec\":{\"approved\":true}}'",
    ] {
        assert!(printed.contains(command), "{command:?} missing in:\n{printed}");
    }

    let written = cwd.join("sbx");
    let text = std::fs::read_to_string(written.join("flexgate-sandbox.yaml")).unwrap();
    assert!(!text.contains("namespace:"), "{text}");
    let (documents, problems) = manifests::load(std::slice::from_ref(&written));
    assert!(problems.is_empty(), "{problems:?}");
    let findings = manifests::validate(&documents, &[]);
    assert!(findings.is_empty(), "{findings:?}");
    let (examples, _) = manifests::load(&[PathBuf::from("examples")]);
    let names = |documents: &[manifests::Document]| {
        let mut names: Vec<String> = documents.iter().map(|d| d.label()).collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&documents),
        names(&examples),
        "every example is written"
    );
    for document in documents
        .iter()
        .filter(|d| d.kind() == Some("VendorConnection"))
    {
        let endpoint = document
            .value
            .pointer("/spec/endpoint")
            .and_then(|e| e.as_str())
            .unwrap_or_default();
        assert!(
            endpoint.starts_with("http://127.0.0.1:"),
            "{} is not pointed at the sandbox: {endpoint:?}",
            document.label()
        );
    }

    let output = Command::new(env!("CARGO_BIN_EXE_flexgate"))
        .arg("crd")
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        std::fs::read_to_string("crds/flexgate.yaml").unwrap(),
        "flexgate crd works from any folder"
    );
    std::fs::remove_dir_all(&cwd).unwrap();
}
