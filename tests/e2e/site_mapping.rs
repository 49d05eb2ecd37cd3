//! SiteMappings on the real server: the proposal waits for approval and then syncs, an idle
//! resync writes nothing, the CRD's CEL transition rule freezes an approved mapping, the one-time
//! provisioning of an empty site survives restarts in status, a spec change waits for a running
//! sync and says so, and the sync's Events (a Warning only when one is deserved).

use std::time::Duration;

use axum::http::{Method, StatusCode};
use flexgate::api::conditions::{find, READY, RECONCILING, STALLED};
use flexgate::api::{SiteMapping, Vendor};
use flexgate::officernd::Collection;
use flexgate::sandbox::essensys::Entity;
use flexgate::sandbox::faults::{Fault, FaultRule, Route};
use flexgate::sandbox::{ESSENSYS_LONDON_SITE, ESSENSYS_PARIS_SITE};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

use crate::support::{connection_ready, mapping_ready, occurrences, quiet, wait_until, World};

const KIND: &str = "SiteMapping";
/// The start of the message of the CRD's frozen-mapping transition rule.
const FROZEN_MESSAGE_START: &str = "this SiteMapping is approved and its mapping is frozen";

/// Changes the Secret's labels only: a new resourceVersion (a reconcile trigger), same data.
async fn touch_secret(world: &World, name: &str, value: &str) {
    world
        .api::<Secret>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"touched": value}}})),
        )
        .await
        .expect("secret labelled");
}

/// The row of `name` in `kubectl get sitemappings`, split into cells.
fn table_row(world: &World, name: &str) -> Vec<String> {
    let (ok, table, stderr) = world.cluster.kubectl(&["get", "sitemappings"]);
    assert!(ok, "{stderr}");
    let header = table.lines().next().unwrap_or_default();
    for column in ["SITE", "APPROVED", "READY", "REASON", "MATCHED"] {
        assert!(header.contains(column), "{column} missing in {table}");
    }
    table
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} row in {table}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_mapping_proposes_then_syncs_once_approved_and_a_resync_writes_nothing() {
    let Some(world) = World::essensys("sm-approval").await else {
        return;
    };
    let operator = world.start_operator().await;

    // Proposed, waiting for approval: the proposal is in status and nothing reached essensys.
    world
        .wait_mapping("london", 1, "False", "AwaitingApproval")
        .await;
    let status = world.site_mapping("london").await.unwrap().status.unwrap();
    let proposal = status.proposal.expect("status.proposal");
    let mut floors: Vec<(String, String)> = proposal
        .floors
        .matched
        .iter()
        .map(|p| (p.officernd.clone(), p.essensys.clone()))
        .collect();
    floors.sort();
    assert_eq!(
        floors,
        [
            ("Floor 1".to_owned(), "1st Floor".to_owned()),
            ("Floor 2".to_owned(), "Second Floor".to_owned())
        ]
    );
    // The example's override wins over name matching.
    assert!(
        proposal
            .resources
            .matched
            .iter()
            .any(|p| p.officernd == "Elephant" && p.essensys == "Meeting Room 3 (Elephant)"),
        "{:?}",
        proposal.resources
    );
    assert!(status.saved_mapping.is_none());
    assert!(status.last_sync_time.is_none());
    let ready = find(&status.conditions, READY).unwrap();
    assert!(
        ready.message.contains("spec.approved: true"),
        "{}",
        ready.message
    );
    // Waiting for a person is neither stalled nor in progress.
    for type_ in [STALLED, RECONCILING] {
        assert_eq!(find(&status.conditions, type_).unwrap().status, "False");
    }
    assert_eq!(world.essensys_writes(), 0);
    let row = table_row(&world, "london");
    assert!(
        row.contains(&"false".to_owned())
            && row.contains(&"False".to_owned())
            && row.contains(&"AwaitingApproval".to_owned()),
        "{row:?}"
    );

    // Approved: saved and synced to the essensys simulator.
    world
        .merge::<SiteMapping>("london", json!({"spec": {"approved": true}}))
        .await;
    world.wait_mapping("london", 2, "True", "Synced").await;
    let status = world.site_mapping("london").await.unwrap().status.unwrap();
    let saved = status.saved_mapping.expect("status.savedMapping");
    assert!(
        saved.fingerprint.starts_with("sha256:"),
        "{}",
        saved.fingerprint
    );
    assert!(status.last_sync_time.is_some());
    assert_eq!(status.counts.errors, 0);
    let essensys = &world.sandbox.essensys;
    let site = essensys
        .sites()
        .into_iter()
        .find(|s| s.name == ESSENSYS_LONDON_SITE)
        .unwrap();
    let occupiers = essensys.occupiers(&site.id);
    assert!(
        occupiers
            .iter()
            .any(|o| o.name == "Acme Ltd" && o.external_ref.is_some()),
        "{occupiers:?}"
    );
    assert!(essensys.writes(Entity::Occupier) > 0);
    assert!(essensys.writes(Entity::User) > 0);
    let mut emails: Vec<String> = essensys
        .users()
        .iter()
        .map(|u| u.email.to_lowercase())
        .collect();
    emails.sort();
    for email in ["ann.lee@example.com", "ivy.roe@example.com"] {
        assert!(emails.contains(&email.to_owned()), "{emails:?}");
    }
    let row = table_row(&world, "london");
    assert!(
        row.contains(&"true".to_owned())
            && row.contains(&"True".to_owned())
            && row.contains(&"Synced".to_owned()),
        "{row:?}"
    );

    // A second reconcile (requested by annotation) finds everything in sync: no essensys write,
    // the saved mapping and the last sync time as they were.
    let writes = world.essensys_writes();
    world
        .request_mapping_reconcile("london", "2026-11-23T09:00:00Z")
        .await;
    assert_eq!(world.essensys_writes(), writes);
    let again = world.site_mapping("london").await.unwrap();
    assert_eq!(
        mapping_ready(&again, 2),
        Some(("True".into(), "Synced".into()))
    );
    let again = again.status.unwrap();
    assert_eq!(again.saved_mapping, Some(saved));
    assert_eq!(again.last_sync_time, status.last_sync_time);

    // An idle resync (the essensys Secret touched) writes neither to essensys nor to status:
    // the object's resourceVersion stays.
    let before = quiet(&world.metrics, KIND, 2).await;
    let version = world
        .site_mapping("london")
        .await
        .unwrap()
        .resource_version();
    touch_secret(&world, "essensys-credentials", "1").await;
    world.wait_reconciles(KIND, before, 1).await;
    quiet(&world.metrics, KIND, 2).await;
    assert_eq!(world.essensys_writes(), writes);
    assert_eq!(
        world
            .site_mapping("london")
            .await
            .unwrap()
            .resource_version(),
        version,
        "an idle resync wrote the SiteMapping"
    );

    // The essensys connection is checked through the shared connection check.
    world.wait_connection("essensys", "True", "Synced").await;
    let account = world.connection("essensys").await.unwrap().status.unwrap();
    assert_eq!(
        account.account.and_then(|a| a.sites),
        Some(world.sandbox.essensys.sites().len() as u32)
    );

    let warnings = world.cluster.warnings().await;
    assert!(
        warnings.is_empty(),
        "Warning Events nobody deserved: {warnings:#?}"
    );
    operator.stop().await;
    world.finish().await;
}

/// Asserts that the server refused a patch of `london` with the frozen-mapping CEL message.
async fn assert_frozen(world: &World, patch: serde_json::Value) {
    let refused = world
        .api::<SiteMapping>()
        .patch("london", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err(&format!("the server accepted {patch}"));
    let kube::Error::Api(status) = refused else {
        panic!("not an API refusal: {refused:?}");
    };
    assert_eq!(status.code, 422, "{patch}: {status:?}");
    assert!(
        status.message.contains(FROZEN_MESSAGE_START),
        "{patch}: {}",
        status.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_a_change_of_an_approved_mapping() {
    let Some(world) = World::essensys("sm-frozen").await else {
        return;
    };
    let operator = world.start_operator().await;
    world
        .wait_mapping("london", 1, "False", "AwaitingApproval")
        .await;
    // Before approval the mapping is open: an override edit is accepted and proposed again.
    world
        .merge::<SiteMapping>(
            "london",
            json!({"spec": {"matching": {"floors": [{"officernd": "Floor 2", "essensys": "1st Floor"}]}}}),
        )
        .await;
    world
        .wait_mapping("london", 2, "False", "AwaitingApproval")
        .await;
    world
        .merge::<SiteMapping>(
            "london",
            json!({"spec": {"matching": {"floors": null}, "approved": true}}),
        )
        .await;
    world.wait_mapping("london", 3, "True", "Synced").await;
    let before = world.site_mapping("london").await.unwrap();

    // Every frozen field, alone: the server answers 422 with the rule's message.
    for patch in [
        json!({"spec": {"approved": false}}),
        json!({"spec": {"matching": {"threshold": 0.6}}}),
        json!({"spec": {"matching": {"companies": [{"officernd": "Acme Ltd", "doNotMap": true}]}}}),
        json!({"spec": {"provisionEmptySite": true}}),
    ] {
        assert_frozen(&world, patch).await;
    }
    // The immutable references have rules of their own.
    let refused = world
        .api::<SiteMapping>()
        .patch(
            "london",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"site": ESSENSYS_PARIS_SITE}})),
        )
        .await
        .expect_err("spec.site changed");
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 422 && s.message.contains("spec.site is immutable")),
        "{refused:?}"
    );

    // As a person meets it: kubectl apply of the edited manifest.
    let mut spec = serde_json::to_value(&before.spec).unwrap();
    spec["matching"]["threshold"] = json!(0.5);
    let manifest = json!({
        "apiVersion": "flexgate.dev/v1alpha1",
        "kind": "SiteMapping",
        "metadata": {"name": "london"},
        "spec": spec,
    });
    let path = std::env::temp_dir().join(format!("{}-london.json", world.namespace()));
    std::fs::write(&path, manifest.to_string()).unwrap();
    let (ok, stdout, stderr) = world.cluster.kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        path.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&path);
    assert!(!ok, "kubectl apply accepted a frozen change: {stdout}");
    assert!(
        stderr.contains("Invalid value") && stderr.contains(FROZEN_MESSAGE_START),
        "{stderr}"
    );

    // Nothing changed: same spec, generation and resourceVersion.
    let after = world.site_mapping("london").await.unwrap();
    assert_eq!(after.spec, before.spec);
    assert_eq!(after.metadata.generation, before.metadata.generation);
    assert_eq!(after.resource_version(), before.resource_version());

    // The sync toggles and suspend stay editable, and the saved mapping still holds.
    world
        .merge::<SiteMapping>(
            "london",
            json!({"spec": {"sync": {"syncCalendarBookings": false}}}),
        )
        .await;
    world.wait_mapping("london", 4, "True", "Synced").await;
    assert_eq!(
        world
            .site_mapping("london")
            .await
            .unwrap()
            .status
            .unwrap()
            .saved_mapping,
        before.status.unwrap().saved_mapping
    );
    world
        .merge::<SiteMapping>("london", json!({"spec": {"suspend": true}}))
        .await;
    world.wait_mapping("london", 5, "False", "Suspended").await;

    let warnings = world.cluster.warnings().await;
    assert!(
        warnings.is_empty(),
        "Warning Events nobody deserved: {warnings:#?}"
    );
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_site_is_provisioned_once_even_across_restarts() {
    let Some(mut world) = World::prepared(
        "sm-provision",
        &[Vendor::OfficeRnD, Vendor::Essensys],
        &[],
        &["london"],
    )
    .await
    else {
        return;
    };
    // The Paris location onto the empty essensys site, approved with the provisioning opt-in.
    let paris = &mut world.objects.site_mappings[0];
    paris.metadata.name = Some("paris".into());
    paris.spec.location.name = Some("Paris".into());
    paris.spec.site = ESSENSYS_PARIS_SITE.into();
    paris.spec.matching = Default::default();
    paris.spec.provision_empty_site = true;
    paris.spec.approved = true;
    world.apply().await;
    let site = world
        .sandbox
        .essensys
        .sites()
        .into_iter()
        .find(|s| s.name == ESSENSYS_PARIS_SITE)
        .unwrap();
    let essensys = &world.sandbox.essensys;
    assert!(essensys.floors(&site.id).is_empty() && essensys.spaces(&site.id).is_empty());

    let operator = world.start_operator().await;
    world.wait_mapping("paris", 1, "True", "Synced").await;
    let status = world.site_mapping("paris").await.unwrap().status.unwrap();
    let provisioned = status.provisioned_time.clone().expect("provisionedTime");
    assert!(status.saved_mapping.is_some());
    let names = |mut names: Vec<String>| {
        names.sort();
        names
    };
    assert_eq!(
        names(
            essensys
                .floors(&site.id)
                .into_iter()
                .map(|f| f.name)
                .collect()
        ),
        ["Floor 1"]
    );
    assert_eq!(
        names(
            essensys
                .spaces(&site.id)
                .into_iter()
                .map(|s| s.name)
                .collect()
        ),
        ["Atelier"]
    );
    assert_eq!(
        names(
            essensys
                .occupiers(&site.id)
                .into_iter()
                .map(|o| o.name)
                .collect()
        ),
        ["Globex Corporation"]
    );
    // Every entity was created exactly once.
    let created = |world: &World| {
        [Entity::Floor, Entity::Space, Entity::Occupier].map(|e| world.sandbox.essensys.writes(e))
    };
    assert_eq!(created(&world), [1, 1, 1]);
    wait_until("SiteProvisioned is recorded", async || {
        world.occurrences_of("paris", "SiteProvisioned").await == 1
    })
    .await;
    let writes = world.essensys_writes();
    let still_provisioned_once = async |world: &World| {
        let status = world.site_mapping("paris").await.unwrap().status.unwrap();
        assert_eq!(status.provisioned_time.as_ref(), Some(&provisioned));
        assert_eq!(created(world), [1, 1, 1]);
        assert_eq!(world.essensys_writes(), writes);
        assert_eq!(world.occurrences_of("paris", "SiteProvisioned").await, 1);
    };

    // Re-reconciles: nothing created again.
    world
        .request_mapping_reconcile("paris", "2026-11-23T09:00:00Z")
        .await;
    still_provisioned_once(&world).await;

    // A restarted operator reconciles everything on start: still nothing created.
    operator.stop().await;
    let before = world.metrics.reconciles_of(KIND);
    let operator = world.start_operator().await;
    world.wait_reconciles(KIND, before, 1).await;
    world
        .request_mapping_reconcile("paris", "2026-11-23T09:00:01Z")
        .await;
    still_provisioned_once(&world).await;
    assert_eq!(
        mapping_ready(&world.site_mapping("paris").await.unwrap(), 1),
        Some(("True".into(), "Synced".into()))
    );

    // The site looks empty again (its listings answer nothing) to a freshly started operator:
    // the provisioning recorded in status on the server is not run a second time.
    operator.stop().await;
    let faults = world.sandbox.essensys.faults();
    for collection in ["floors", "spaces", "occupiers"] {
        faults.add(FaultRule::new(
            Route::path(format!("/api/v1/sites/{}/{collection}", site.id)).method(Method::GET),
            Fault::Status {
                status: StatusCode::OK,
                body: Some(json!({"items": [], "nextCursor": null})),
            },
        ));
    }
    let operator = world.start_operator().await;
    world
        .request_mapping_reconcile("paris", "2026-11-23T09:00:02Z")
        .await;
    world.wait_mapping("paris", 1, "False", "InvalidSpec").await;
    let status = world.site_mapping("paris").await.unwrap().status.unwrap();
    let ready = find(&status.conditions, READY).unwrap();
    assert!(ready.message.contains("never twice"), "{}", ready.message);
    still_provisioned_once(&world).await;
    // A site emptied behind its back deserves a Warning, once.
    wait_until(
        "the Warning about the emptied site is recorded",
        async || world.occurrences_of("paris", "InvalidSpec").await == 1,
    )
    .await;
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_change_during_a_site_sync_waits_for_it_and_a_condition_says_so() {
    let Some(world) = World::essensys("sm-waiting").await else {
        return;
    };
    let operator = world.start_operator().await;
    // The connection check also lists the sites; let it finish first, so the only listing
    // later is the mapping's sync.
    world.wait_connection("essensys", "True", "Synced").await;
    world
        .merge::<SiteMapping>("london", json!({"spec": {"approved": true}}))
        .await;
    world.wait_mapping("london", 2, "True", "Synced").await;
    quiet(&world.metrics, KIND, 2).await;

    // Hold the next sync inside its essensys site listing (long enough for a loaded machine to
    // see the note), and request it.
    let sites = Route::path("/api/v1/sites").method(Method::GET);
    let faults = world.sandbox.essensys.faults();
    let listed = faults.requests_matching(&sites);
    faults.add(FaultRule::new(sites.clone(), Fault::Latency(Duration::from_secs(15))).times(1));
    world
        .merge::<SiteMapping>(
            "london",
            json!({"metadata": {"annotations": {flexgate::api::RECONCILE_REQUESTED_AT: "2026-11-23T10:00:00Z"}}}),
        )
        .await;
    wait_until("the sync of generation 2 is inside essensys", async || {
        faults.requests_matching(&sites) > listed
    })
    .await;

    // A spec change meanwhile (generation 3) waits, and the status says so.
    world
        .merge::<SiteMapping>(
            "london",
            json!({"spec": {"sync": {"autoSendWifiInvitations": false}}}),
        )
        .await;
    let mut waiting = None;
    wait_until(
        "Reconciling=True says generation 3 waits for the sync of 2",
        async || {
            let mapping = world.site_mapping("london").await;
            let noted = mapping
                .as_ref()
                .and_then(|m| m.status.as_ref())
                .and_then(|st| find(&st.conditions, RECONCILING))
                .is_some_and(|c| {
                    c.status == "True"
                        && c.reason == "Progressing"
                        && c.observed_generation == Some(3)
                        && c.message
                            == "a sync of generation 2 is running; the change to generation 3 is applied when it ends"
                });
            if noted {
                waiting = mapping;
            }
            noted
        },
    )
    .await;
    // The running sync was not interrupted: generation 2 is still what the status describes,
    // and the note kept the rest of the status (the saved mapping, Ready).
    let waiting = waiting.unwrap().status.unwrap();
    assert_eq!(waiting.observed_generation, Some(2));
    assert!(waiting.saved_mapping.is_some());
    assert_eq!(find(&waiting.conditions, READY).unwrap().status, "True");

    // When it ends, generation 3 is reconciled and the note is replaced.
    world.wait_mapping("london", 3, "True", "Synced").await;
    let status = world.site_mapping("london").await.unwrap().status.unwrap();
    let reconciling = find(&status.conditions, RECONCILING).unwrap();
    assert_eq!(
        (reconciling.status.as_str(), reconciling.observed_generation),
        ("False", Some(3))
    );
    assert_eq!(
        status.last_handled_reconcile_at.as_deref(),
        Some("2026-11-23T10:00:00Z")
    );
    let warnings = world.cluster.warnings().await;
    assert!(
        warnings.is_empty(),
        "Warning Events nobody deserved: {warnings:#?}"
    );
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_sync_records_normal_events_and_a_warning_only_when_deserved() {
    let Some(mut world) = World::prepared(
        "sm-events",
        &[Vendor::OfficeRnD, Vendor::Essensys],
        &[],
        &["london"],
    )
    .await
    else {
        return;
    };
    // A second mapping naming a site essensys does not have: that one deserves a Warning.
    let mut nowhere = world.objects.site_mappings[0].clone();
    nowhere.metadata.name = Some("nowhere".into());
    nowhere.spec.site = "Atlantis".into();
    world.objects.site_mappings.push(nowhere);
    world.apply().await;
    let operator = world.start_operator().await;
    world
        .wait_mapping("london", 1, "False", "AwaitingApproval")
        .await;
    world
        .wait_mapping("nowhere", 1, "False", "ReferenceNotFound")
        .await;
    wait_until("the Warning about nowhere is recorded", async || {
        world.occurrences_of("nowhere", "ReferenceNotFound").await > 0
    })
    .await;
    let warning = world
        .cluster
        .events_about("nowhere", "ReferenceNotFound")
        .await
        .remove(0);
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert!(
        warning
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("Atlantis"),
        "{warning:?}"
    );

    // Approval: MappingSaved, SyncStarted and SyncCompleted, each once, Normal, with counts.
    world
        .merge::<SiteMapping>("london", json!({"spec": {"approved": true}}))
        .await;
    world.wait_mapping("london", 2, "True", "Synced").await;
    let reasons = ["MappingSaved", "SyncStarted", "SyncCompleted"];
    wait_until("the sync's Events are recorded", async || {
        for reason in reasons {
            if world.occurrences_of("london", reason).await == 0 {
                return false;
            }
        }
        true
    })
    .await;
    for reason in reasons {
        let events = world.cluster.events_about("london", reason).await;
        assert_eq!(events.len(), 1, "{reason}: {events:#?}");
        assert_eq!(world.occurrences_of("london", reason).await, 1, "{reason}");
        let event = &events[0];
        assert_eq!(event.type_.as_deref(), Some("Normal"), "{event:?}");
        let note = event.note.as_deref().unwrap_or_default();
        assert!(
            note.contains("London") && note.contains(ESSENSYS_LONDON_SITE),
            "{reason}: {note}"
        );
    }
    let completed = world.cluster.events_about("london", "SyncCompleted").await;
    let note = completed[0].note.clone().unwrap_or_default();
    assert!(note.contains("occupiers"), "{note}");

    // Restarts and idle resyncs record nothing new, and the Warning is not repeated.
    let quiet_count = quiet(&world.metrics, KIND, 2).await;
    operator.stop().await;
    let operator = world.start_operator().await;
    world.wait_reconciles(KIND, quiet_count, 2).await;
    touch_secret(&world, "essensys-credentials", "1").await;
    world.wait_reconciles(KIND, quiet_count, 4).await;
    quiet(&world.metrics, KIND, 2).await;
    for reason in reasons {
        assert_eq!(world.occurrences_of("london", reason).await, 1, "{reason}");
    }
    assert_eq!(
        world.occurrences_of("nowhere", "ReferenceNotFound").await,
        1
    );
    let warnings = world.cluster.warnings().await;
    assert_eq!(warnings.len(), 1, "{warnings:#?}");

    // A sync some of whose writes fail: its SyncCompleted is a Warning naming the failures.
    world
        .sandbox
        .officernd
        .upsert(
            Collection::Companies,
            json!({
                "_id": "c000000000000000000000a1",
                "name": "Initech",
                "location": "10ca71000000000000000001",
                "status": "active"
            }),
        )
        .unwrap();
    let occupiers = Route::path_suffix("/occupiers").method(Method::POST);
    world.sandbox.essensys.faults().add(FaultRule::new(
        occupiers.clone(),
        Fault::Status {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: None,
        },
    ));
    world
        .request_mapping_reconcile("london", "2026-11-23T09:00:00Z")
        .await;
    world
        .wait_mapping("london", 2, "False", "PartialFailure")
        .await;
    wait_until("a Warning SyncCompleted is recorded", async || {
        world
            .cluster
            .events_about("london", "SyncCompleted")
            .await
            .iter()
            .any(|e| e.type_.as_deref() == Some("Warning"))
    })
    .await;
    let failed = world
        .cluster
        .events_about("london", "SyncCompleted")
        .await
        .into_iter()
        .find(|e| e.type_.as_deref() == Some("Warning"))
        .unwrap();
    assert!(
        failed
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("failed"),
        "{failed:?}"
    );

    // Healed: the next sync creates the company and its SyncCompleted is Normal again.
    world.sandbox.essensys.faults().clear();
    world
        .request_mapping_reconcile("london", "2026-11-23T09:00:01Z")
        .await;
    world.wait_mapping("london", 2, "True", "Synced").await;
    assert!(world
        .sandbox
        .essensys
        .sites()
        .into_iter()
        .find(|s| s.name == ESSENSYS_LONDON_SITE)
        .is_some_and(|site| world
            .sandbox
            .essensys
            .occupiers(&site.id)
            .iter()
            .any(|o| o.name == "Initech")));
    wait_until("a second Normal SyncCompleted is recorded", async || {
        world
            .cluster
            .events_about("london", "SyncCompleted")
            .await
            .iter()
            .filter(|e| e.type_.as_deref() == Some("Normal"))
            .map(occurrences)
            .sum::<i32>()
            == 2
    })
    .await;
    // The partial failure is told by its SyncCompleted Warning alone.
    let london_warnings: Vec<String> = world
        .cluster
        .warnings()
        .await
        .into_iter()
        .filter(|w| w.contains("/london "))
        .collect();
    assert_eq!(london_warnings.len(), 1, "{london_warnings:#?}");
    assert!(
        connection_ready(&world.connection("essensys").await.unwrap())
            .is_some_and(|(status, _)| status == "True")
    );
    // Issue #12: the provisional essensys contract is said next to Ready, as the server stores it.
    let essensys = world.connection("essensys").await.unwrap();
    let provisional = essensys.status.as_ref().and_then(|s| {
        flexgate::api::conditions::find(
            &s.conditions,
            flexgate::api::conditions::CONTRACT_PROVISIONAL,
        )
    });
    assert!(
        provisional.is_some_and(|c| c.status == "True" && c.reason == "NoPublishedApi"),
        "{provisional:?}"
    );
    operator.stop().await;
    world.finish().await;
}
