//! `flexgate plan` and `explain` end to end: the examples evaluated against the sandbox's
//! OfficeRnD simulator with the demo data, through the real client.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use flexgate::cli::plan::{plan_report, write_explanation, PlanReport};
use flexgate::manifests;
use flexgate::operator::context::{build_all, Context};
use flexgate::operator::objects::Objects;
use flexgate::sandbox::{demo_start, Sandbox};

async fn demo_contexts() -> (Sandbox, Vec<Context>, Vec<String>) {
    let sandbox = Sandbox::start_demo().await.unwrap();
    let (documents, problems) = manifests::load(&[PathBuf::from("examples")]);
    assert!(problems.is_empty());
    let mut objects = Objects::from_documents(&documents).unwrap();
    sandbox.connect(&mut objects);
    let mut contexts = Vec::new();
    let mut errors = Vec::new();
    for result in build_all(&objects).await {
        match result {
            Ok(context) => {
                errors.extend(
                    context
                        .binding_errors
                        .iter()
                        .map(|(k, e)| format!("{k}: {e}")),
                );
                contexts.push(context);
            }
            Err((officernd, _, error)) => errors.push(format!("{officernd}: {error}")),
        }
    }
    (sandbox, contexts, errors)
}

fn members(report: &PlanReport, group: &str) -> Vec<String> {
    report
        .groups
        .iter()
        .filter(|g| g.group == group)
        .flat_map(|g| g.members.iter().map(|m| m.email.clone()))
        .collect()
}

fn at(offset_minutes: i64) -> DateTime<Utc> {
    demo_start() + Duration::minutes(offset_minutes)
}

#[tokio::test]
async fn demo_plan_follows_every_source_kind() {
    let (_sandbox, contexts, errors) = demo_contexts().await;
    assert!(errors.is_empty(), "{errors:?}");
    let report = plan_report(&contexts, Vec::new(), at(0));

    // Plan (Hot Desk) and day passes share the Lobby group: a union. Gus is a former member,
    // Ivy's membership is not approved but she holds day passes, Bob's passes are used up.
    assert_eq!(
        members(&report, "name:OFFICERND_Lobby"),
        [
            "ann.lee@example.com",
            "fay.quinn@example.com",
            "ivy.roe@example.com"
        ]
    );
    // A company membership without a member grants the whole team; Eli has no email.
    assert_eq!(
        members(&report, "name:OFFICERND_Office 101"),
        ["cyd.park@example.com", "dee.moss@example.com"]
    );
    assert!(
        report.problems.iter().any(|p| p.contains("has no email")),
        "{:?}",
        report.problems
    );
    // Location and floor: everyone assigned to a desk or office there.
    let building = [
        "bob.stone@example.com",
        "cyd.park@example.com",
        "dee.moss@example.com",
    ];
    assert_eq!(members(&report, "name:OFFICERND_London Building"), building);
    assert_eq!(members(&report, "name:OFFICERND_Floor 1"), building);
    // The meeting room is empty until the booking window opens.
    assert!(members(&report, "name:OFFICERND_Elephant Room").is_empty());
    assert_eq!(
        report.next_change_at.as_deref(),
        Some("2026-11-23T09:45:00Z")
    );
}

#[tokio::test]
async fn booking_window_opens_and_closes_and_a_membership_ends() {
    let (_sandbox, contexts, _) = demo_contexts().await;
    let room = "name:OFFICERND_Elephant Room";
    // Booking 10:00-11:00, grantBefore 15m, revokeAfter 5m; the guest comes with the booker.
    let party = [
        "cyd.park@example.com",
        "dee.moss@example.com",
        "zoe.guest@example.org",
    ];
    assert!(
        members(&plan_report(&contexts, vec![], at(104)), room).is_empty(),
        "09:44 is too early"
    );
    assert_eq!(
        members(&plan_report(&contexts, vec![], at(105)), room),
        party
    );
    assert_eq!(
        members(&plan_report(&contexts, vec![], at(184)), room),
        party,
        "11:04 is within revokeAfter"
    );
    assert!(members(&plan_report(&contexts, vec![], at(185)), room).is_empty());
    // Fay's membership ends 2026-11-23: access lasts through that day (London time), not after.
    let lobby = "name:OFFICERND_Lobby";
    assert!(
        members(&plan_report(&contexts, vec![], at(15 * 60 + 59)), lobby)
            .contains(&"fay.quinn@example.com".to_owned())
    );
    assert!(
        !members(&plan_report(&contexts, vec![], at(16 * 60)), lobby)
            .contains(&"fay.quinn@example.com".to_owned())
    );
}

#[tokio::test]
async fn explain_answers_the_front_desk() {
    let (_sandbox, contexts, _) = demo_contexts().await;
    let mut out = Vec::new();
    write_explanation(
        &contexts,
        "FAY.QUINN@example.com",
        at(24 * 60 + 60),
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("NOT IN default/kisi group name:OFFICERND_Lobby"),
        "{text}"
    );
    assert!(text.contains("ended 2026-11-23"), "{text}");

    let mut out = Vec::new();
    write_explanation(&contexts, "gus.hart@example.com", at(0), &mut out).unwrap();
    assert!(String::from_utf8(out).unwrap().contains("former member"));

    let mut out = Vec::new();
    write_explanation(&contexts, "nobody@example.com", at(0), &mut out).unwrap();
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("no OfficeRnD member or booking guest has this email"));
}

#[tokio::test]
async fn plan_json_has_the_documented_shape() {
    let (_sandbox, contexts, _) = demo_contexts().await;
    let report = plan_report(&contexts, vec![], at(105));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["at"], "2026-11-23T09:45:00Z");
    let group = json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "name:OFFICERND_Elephant Room")
        .unwrap();
    assert_eq!(group["namespace"], "default");
    assert_eq!(group["vendorConnection"], "brivo");
    let member = &group["members"][0];
    assert_eq!(member["email"], "cyd.park@example.com");
    assert!(member["officerndMemberId"].is_string());
    assert_eq!(
        member["reasons"][0]["binding"],
        "default/elephant-meeting-room"
    );
    assert!(member["reasons"][0]["source"]
        .as_str()
        .unwrap()
        .starts_with("bookable resource"));
    let guest = &group["members"][2];
    assert!(guest["officerndMemberId"].is_null());
    assert!(guest["officerndVisitorId"].is_string());
}

/// Kills the sandbox process when the test ends, whether it passes or not.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The demo organization plus drop-in members: Jo in Acme (whose company membership holds Office
/// 101) and Kai in Globex, which gets a company day-pass set.
fn seed_with_drop_in_members() -> serde_json::Value {
    let mut seed: serde_json::Value =
        serde_json::from_str(include_str!("../src/sandbox/demo-seed.json")).unwrap();
    let members = seed["members"].as_array_mut().unwrap();
    members.push(
        serde_json::json!({"_id": "3e3be00000000000000000a1", "name": "Jo Drop",
        "email": "jo.drop@example.com", "status": "drop-in", "company": "c0000000000000000000000e",
        "location": "10ca71000000000000000001"}),
    );
    members.push(serde_json::json!({"_id": "3e3be00000000000000000a2", "name": "Kai Pass",
        "email": "Kai.Pass@Example.com", "status": "drop-in", "company": "c0000000000000000000000f"}));
    seed["passes"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
        "_id": "9a55000000000000000000a3", "count": 10, "usedCount": 4,
        "company": "c0000000000000000000000f", "isPersonal": false, "status": "valid",
        "validFrom": "2026-11-01T00:00:00.000Z", "validTo": "2026-11-30T00:00:00.000Z"}));
    seed
}

/// `flexgate plan --output json` as a user runs it, on the sandbox serving `seed`.
fn plan_json(seed: &serde_json::Value, at: &str) -> serde_json::Value {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = std::env::temp_dir().join(format!(
        "flexgate-plan-drop-in-{}-{}",
        std::process::id(),
        at.replace(':', "")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let seed_file = dir.join("seed.json");
    std::fs::write(&seed_file, serde_json::to_vec(seed).unwrap()).unwrap();
    let manifests = dir.join("sbx");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flexgate"))
        .arg("sandbox")
        .arg("--seed")
        .arg(&seed_file)
        .arg("--write-manifests")
        .arg(&manifests)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _serving = Serving(child);
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let ready = line.starts_with("serving until interrupted");
        printed.push(line);
        if ready {
            break;
        }
    }
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with("serving until interrupted")),
        "the sandbox stopped: {printed:?}"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_flexgate"))
        .arg("plan")
        .arg("--manifests")
        .arg(&manifests)
        .args(["--at", at, "--output", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The members of `group` in a plan's JSON, by email, with the `via` of each of their reasons.
fn group_members(plan: &serde_json::Value, group: &str) -> Vec<(String, Vec<String>)> {
    plan["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["group"] == group)
        .flat_map(|g| g["members"].as_array().unwrap().iter())
        .map(|m| {
            let via = m["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["via"].as_str().unwrap().to_owned())
                .collect();
            (m["email"].as_str().unwrap().to_owned(), via)
        })
        .collect()
}

#[test]
fn plan_json_grants_drop_in_members_of_a_team() {
    let plan = plan_json(&seed_with_drop_in_members(), "2026-11-23T09:50:00Z");
    // Acme's company membership is assigned to Office 101: the whole team, Jo (drop-in) included.
    // Eli has no email.
    let office = group_members(&plan, "name:OFFICERND_Office 101");
    let emails: Vec<&str> = office.iter().map(|(email, _)| email.as_str()).collect();
    assert_eq!(
        emails,
        [
            "cyd.park@example.com",
            "dee.moss@example.com",
            "jo.drop@example.com"
        ]
    );
    assert_eq!(
        office[2].1,
        ["assignment a55000000000000000000020 of membership 3e3b5000000000000000001c (whole company c0000000000000000000000e)"]
    );
    // The location and floor bindings follow the same assignment.
    for group in ["name:OFFICERND_London Building", "name:OFFICERND_Floor 1"] {
        assert!(
            group_members(&plan, group)
                .iter()
                .any(|(email, _)| email == "jo.drop@example.com"),
            "{group}: {plan}"
        );
    }
    // Globex's company day passes cover Kai, a drop-in member (email kept as OfficeRnD holds it).
    let lobby = group_members(&plan, "name:OFFICERND_Lobby");
    let kai = lobby
        .iter()
        .find(|(email, _)| email == "Kai.Pass@Example.com")
        .unwrap_or_else(|| panic!("Kai is not in the lobby: {lobby:?}"));
    assert_eq!(
        kai.1,
        ["day pass set 9a55000000000000000000a3 (6 left) (whole company c0000000000000000000000f)"]
    );
}

#[tokio::test]
async fn booking_reasons_print_timestamps_as_rfc_3339() {
    let (_sandbox, contexts, _) = demo_contexts().await;
    let report = plan_report(&contexts, vec![], at(105));
    let room = report
        .groups
        .iter()
        .find(|g| g.group == "name:OFFICERND_Elephant Room")
        .unwrap();
    let vias: Vec<&str> = room
        .members
        .iter()
        .flat_map(|m| m.reasons.iter().map(|r| r.via.as_str()))
        .collect();
    // The booking starts 10:00 London (UTC in November): upper-case T and Z, lower-case role.
    assert_eq!(
        vias,
        [
            "booking b00000000000000000000024 at 2026-11-23T10:00:00Z as booker",
            "booking b00000000000000000000024 at 2026-11-23T10:00:00Z as teammate",
            "booking b00000000000000000000024 at 2026-11-23T10:00:00Z as guest",
        ]
    );
    let until: Vec<Option<&str>> = room
        .members
        .iter()
        .flat_map(|m| m.reasons.iter().map(|r| r.until.as_deref()))
        .collect();
    assert_eq!(until, [Some("2026-11-23T11:05:00Z"); 3]);
}
