//! OfficeRnD webhooks on the real server: a signed delivery from the OfficeRnD simulator reaches
//! the door (and the essensys site) without waiting for a resync, only the bindings its change
//! can affect are reconciled, and a forged or stale delivery changes nothing.

use flexgate::api::{SiteMapping, VendorConnection};
use flexgate::http::Secret;
use flexgate::officernd::webhooks::{sign, SIGNATURE_HEADER};
use flexgate::officernd::Collection;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::support::{connection_ready, quiet, wait_until, Operator, World, KISI_BINDINGS};

const BINDING_KIND: &str = "AccessGroupBinding";
const HAL: &str = "hal.ives@example.com";

/// Hal (no plan in the demo) on the Hot Desk plan: Ann's membership, made his.
fn hal_hot_desk(world: &World) -> serde_json::Value {
    let mut hal = world
        .sandbox
        .officernd
        .list(Collection::Memberships)
        .into_iter()
        .find(|m| m["name"] == "Ann - Hot Desk")
        .unwrap();
    hal["_id"] = json!("3e3b500000000000000000aa");
    hal["name"] = json!("Hal - Hot Desk");
    hal["member"] = json!("3e3be0000000000000000017");
    hal.as_object_mut().unwrap().remove("company");
    hal
}

/// Registers the operator's webhook endpoint at the OfficeRnD simulator for `events` and gives
/// the OfficeRnD connection the signing secret (a Secret key and `spec.officernd.
/// webhookSecretKey`, as a real set-up has them); returns the webhook id and the secret once
/// the connection is Ready with it.
async fn enable_webhooks(world: &World, operator: &Operator, events: &[&str]) -> (String, Secret) {
    let url = format!("http://{}/webhooks/officernd", operator.webhook);
    let (webhook_id, secret) = world.sandbox.officernd.register_webhook(&url, events);
    world
        .api::<KubeSecret>()
        .patch(
            "officernd-credentials",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"webhookSecret": secret.expose()}})),
        )
        .await
        .expect("secret patched");
    world
        .merge::<VendorConnection>(
            "officernd",
            json!({"spec": {"officernd": {"webhookSecretKey": "webhookSecret"}}}),
        )
        .await;
    wait_until(
        "the OfficeRnD connection is Ready with its webhook secret",
        async || {
            world.connection("officernd").await.is_some_and(|c| {
                c.status.as_ref().and_then(|st| st.observed_generation) == Some(2)
                    && connection_ready(&c) == Some(("True".into(), "Synced".into()))
            })
        },
    )
    .await;
    (webhook_id, secret)
}

/// Deliveries the operator accepted so far.
fn accepted(world: &World) -> usize {
    world
        .sandbox
        .officernd
        .deliveries()
        .iter()
        .filter(|d| d.status == Some(202))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officernd_webhook_reaches_the_door_without_a_resync() {
    let Some(world) = World::kisi("webhook-door").await else {
        return;
    };
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    let (webhook_id, _) = enable_webhooks(&world, &operator, &["membership.created"]).await;
    // The reconciles the Secret and connection edits started are over: from here only the
    // webhook can bring Hal in (the examples' syncInterval is 15 minutes).
    quiet(&world.metrics, BINDING_KIND, 2).await;
    assert!(!world.lobby().contains(&HAL.to_owned()));

    // Hal joins the Hot Desk plan: OfficeRnD sends membership.created, the lobby follows.
    world
        .sandbox
        .officernd
        .upsert(Collection::Memberships, hal_hot_desk(&world))
        .unwrap();
    wait_until("Hal is in the lobby", async || {
        world.lobby().contains(&HAL.to_owned())
    })
    .await;
    assert!(world
        .sandbox
        .officernd
        .deliveries()
        .iter()
        .any(|d| d.webhook_id == webhook_id
            && d.event_type == "membership.created"
            && d.status == Some(202)));
    // The binding's status follows too.
    wait_until("hot-desk-lobby counts Hal", async || {
        world
            .binding("hot-desk-lobby")
            .await
            .and_then(|b| b.status)
            .is_some_and(|s| s.counts.granted as usize == world.lobby().len())
    })
    .await;
    let warnings = world.cluster.warnings().await;
    assert!(
        warnings.is_empty(),
        "Warning Events nobody deserved: {warnings:#?}"
    );
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_reconciles_only_the_bindings_its_change_can_affect() {
    let Some(world) = World::kisi("webhook-scope").await else {
        return;
    };
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    enable_webhooks(
        &world,
        &operator,
        &["booking.created", "membership.created"],
    )
    .await;
    // Let the reconciles that the Secret and connection changes started settle: none for three
    // seconds (a busy vendor account sends a reconcile back for about two).
    let before = quiet(&world.metrics, BINDING_KIND, 3).await;
    let delivered = accepted(&world);

    // A booking of the Elephant room: no binding here reads that room, so none is reconciled.
    world
        .sandbox
        .officernd
        .upsert(
            Collection::Bookings,
            json!({
                "_id": "b000000000000000000000f1",
                "title": "Bob's call",
                "resource": "7e5000a00000000000000008",
                "location": "10ca71000000000000000001",
                "timezone": "Europe/London",
                "start": "2026-11-23T15:00:00.000Z",
                "end": "2026-11-23T16:00:00.000Z",
                "member": "3e3be0000000000000000012",
                "isCancelled": false,
                "isTentative": false
            }),
        )
        .unwrap();
    wait_until("the booking delivery is accepted", async || {
        accepted(&world) > delivered
    })
    .await;
    let after_booking = quiet(&world.metrics, BINDING_KIND, 2).await;
    assert_eq!(
        after_booking, before,
        "a change no binding reads reconciles nothing"
    );

    // Hal joins the Hot Desk plan: only hot-desk-lobby (a plan binding on that plan) is
    // reconciled, not day-passes or office-101.
    world
        .sandbox
        .officernd
        .upsert(Collection::Memberships, hal_hot_desk(&world))
        .unwrap();
    wait_until("Hal is in the lobby", async || {
        world.lobby().contains(&HAL.to_owned())
    })
    .await;
    let after_membership = quiet(&world.metrics, BINDING_KIND, 2).await;
    assert_eq!(
        after_membership,
        before + 1,
        "only hot-desk-lobby is reconciled"
    );
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_stale_webhook_delivery_is_refused_and_changes_nothing() {
    let Some(world) = World::kisi("webhook-forged").await else {
        return;
    };
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    // Registered for an event nothing here sends (an empty list would mean every event): the
    // deliveries below are the test's own.
    let (_, secret) = enable_webhooks(&world, &operator, &["pass.removed"]).await;
    let before = quiet(&world.metrics, BINDING_KIND, 2).await;

    // Hal's membership exists in OfficeRnD, but the operator only learns of it from a delivery.
    let hal = world
        .sandbox
        .officernd
        .upsert(Collection::Memberships, hal_hot_desk(&world))
        .unwrap();
    let body = json!({
        "event": "e0000000000000000000e001",
        "eventType": "membership.created",
        "data": {"object": hal},
        "createdAt": world.sandbox.clock.now().to_rfc3339(),
    })
    .to_string();
    let now = world.sandbox.clock.now().timestamp();
    let deliver = async |signature: Option<String>| {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/webhooks/officernd", operator.webhook))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        request.send().await.unwrap().status().as_u16()
    };
    let forged = Secret::new("not-the-webhook-secret");
    for (what, signature) in [
        ("unsigned", None),
        ("forged", Some(sign(&forged, body.as_bytes(), now))),
        (
            "stale (10 minutes old)",
            Some(sign(&secret, body.as_bytes(), now - 600)),
        ),
    ] {
        assert_eq!(deliver(signature).await, 401, "{what}");
    }
    assert_eq!(quiet(&world.metrics, BINDING_KIND, 2).await, before);
    assert!(!world.lobby().contains(&HAL.to_owned()));

    // The same body, signed with the secret: accepted, and Hal gets in.
    let genuine = sign(&secret, body.as_bytes(), now);
    assert_eq!(deliver(Some(genuine.clone())).await, 202);
    wait_until("Hal is in the lobby", async || {
        world.lobby().contains(&HAL.to_owned())
    })
    .await;
    // The captured delivery sent again within the signature's tolerance: refused, not acted on.
    let settled = quiet(&world.metrics, BINDING_KIND, 2).await;
    assert_eq!(deliver(Some(genuine)).await, 409, "a replay");
    assert_eq!(quiet(&world.metrics, BINDING_KIND, 2).await, settled);
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officernd_webhook_reaches_the_essensys_site() {
    let Some(world) = World::essensys("webhook-site").await else {
        return;
    };
    let operator = world.start_operator().await;
    world
        .merge::<SiteMapping>("london", json!({"spec": {"approved": true}}))
        .await;
    world.wait_mapping("london", 2, "True", "Synced").await;
    enable_webhooks(&world, &operator, &["member.created"]).await;
    quiet(&world.metrics, "SiteMapping", 2).await;
    let delivered = accepted(&world);

    // A new member at London: member.created, and the site gets a user for her.
    world
        .sandbox
        .officernd
        .upsert(
            Collection::Members,
            json!({
                "_id": "3e3be00000000000000000a1",
                "name": "Jo Park",
                "status": "active",
                "location": "10ca71000000000000000001",
                "startDate": "2026-01-05T00:00:00.000Z",
                "email": "jo.park@example.com"
            }),
        )
        .unwrap();
    wait_until("the essensys site has a user for Jo", async || {
        world
            .sandbox
            .essensys
            .users()
            .iter()
            .any(|u| u.email.eq_ignore_ascii_case("jo.park@example.com"))
    })
    .await;
    assert!(accepted(&world) > delivered);
    world.wait_mapping("london", 2, "True", "Synced").await;
    let warnings = world.cluster.warnings().await;
    assert!(
        warnings.is_empty(),
        "Warning Events nobody deserved: {warnings:#?}"
    );
    operator.stop().await;
    world.finish().await;
}
