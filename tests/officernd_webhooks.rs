//! OfficeRnD webhook verification, event routing, the axum receiver, and signed deliveries from the
//! simulator.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use flexgate::http::Secret;
use flexgate::officernd::client::OfficeRndClient;
use flexgate::officernd::webhooks::{
    parse_event, sign, verify, verify_any, webhook_router, AffectedObject, EventAction,
    WebhookError, WebhookEvent, SIGNATURE_HEADER,
};
use flexgate::officernd::{system_clock, Collection};
use flexgate::sandbox::officernd::Simulator;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const SECRET: &str = "1b1b1b1b-1b1b-1b1b-1b1b-1b1b1b1b1b1b";

fn secret() -> Secret {
    Secret::new(SECRET)
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-05-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn booking_updated() -> Vec<u8> {
    json!({
        "event": "6650a1b2c3d4e5f60718293a",
        "eventType": "booking.updated",
        "data": {
            "object": {"_id": "b1", "resource": "r-new", "member": "m1", "start": "2025-05-01T09:00:00.000Z"},
            "previousAttributes": {"resource": "r-old"}
        },
        "createdAt": "2025-05-01T10:00:00.000Z"
    })
    .to_string()
    .into_bytes()
}

fn affected(event: &WebhookEvent) -> Vec<(Collection, &str)> {
    event
        .affected
        .iter()
        .map(|AffectedObject { collection, id }| (*collection, id.as_str()))
        .collect()
}

#[test]
fn a_valid_delivery_verifies_and_names_what_to_recompute() {
    let body = booking_updated();
    let header = sign(&secret(), &body, now().timestamp());

    let event = verify(&secret(), Some(&header), &body, now()).unwrap();

    assert_eq!(event.event_type, "booking.updated");
    assert_eq!(event.subject, "booking");
    assert_eq!(event.action, EventAction::Updated);
    assert_eq!(event.event_id.as_deref(), Some("6650a1b2c3d4e5f60718293a"));
    assert_eq!(event.created_at, Some(now()));
    assert_eq!(
        affected(&event),
        vec![
            (Collection::Bookings, "b1"),
            (Collection::Resources, "r-new"),
            (Collection::Resources, "r-old"),
        ]
    );
}

#[test]
fn the_signature_is_hmac_sha256_over_body_dot_timestamp() {
    // Expected value computed independently (Python: hmac.new(b"key", b"{}.1700000000", sha256)).
    let header = sign(&Secret::new("key"), b"{}", 1_700_000_000);

    assert_eq!(
        header,
        "t=1700000000,signature=79b6d3663ab2bf632d7c773568f6db3719af1507c82386935065317b0209b524"
    );
}

#[test]
fn forged_deliveries_are_rejected() {
    let body = booking_updated();
    let wrong_secret = sign(&Secret::new("not-the-secret"), &body, now().timestamp());
    assert_eq!(
        verify(&secret(), Some(&wrong_secret), &body, now()),
        Err(WebhookError::BadSignature)
    );

    let header = sign(&secret(), &body, now().timestamp());
    let mut tampered = body.clone();
    let position = tampered.iter().position(|b| *b == b'1').unwrap();
    tampered[position] = b'2';
    assert_eq!(
        verify(&secret(), Some(&header), &tampered, now()),
        Err(WebhookError::BadSignature)
    );

    // The timestamp is covered by the signature: moving it invalidates the delivery.
    let moved = header.replacen(
        &now().timestamp().to_string(),
        &(now().timestamp() + 1).to_string(),
        1,
    );
    assert_eq!(
        verify(&secret(), Some(&moved), &body, now()),
        Err(WebhookError::BadSignature)
    );

    let truncated = &header[..header.len() - 2];
    assert_eq!(
        verify(&secret(), Some(truncated), &body, now()),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn stale_and_future_timestamps_beyond_five_minutes_are_rejected() {
    let body = booking_updated();
    let at = |offset: i64| sign(&secret(), &body, now().timestamp() + offset);

    assert_eq!(
        verify(&secret(), Some(&at(-301)), &body, now()),
        Err(WebhookError::StaleTimestamp { skew_seconds: 301 })
    );
    assert_eq!(
        verify(&secret(), Some(&at(301)), &body, now()),
        Err(WebhookError::StaleTimestamp { skew_seconds: -301 })
    );
    assert!(verify(&secret(), Some(&at(-300)), &body, now()).is_ok());
    assert!(verify(&secret(), Some(&at(300)), &body, now()).is_ok());
}

#[test]
fn malformed_or_missing_headers_are_rejected() {
    let body = booking_updated();
    assert_eq!(
        verify(&secret(), None, &body, now()),
        Err(WebhookError::MissingHeader)
    );
    let valid = sign(&secret(), &body, now().timestamp());
    let signature = valid.split_once(',').unwrap().1;
    for header in [
        "",
        "garbage",
        signature,
        &format!("t={}", now().timestamp()),
        &format!("t=yesterday,{signature}"),
        &format!("t={},signature=not-hex", now().timestamp()),
        &format!("t=1,t=2,{signature}"),
    ] {
        assert!(
            matches!(
                verify(&secret(), Some(header), &body, now()),
                Err(WebhookError::MalformedHeader(_))
            ),
            "{header:?} must be malformed"
        );
    }
    // The legacy `v1=` form some clients assumed is not OfficeRnD's format.
    let legacy = valid.replace("signature=", "v1=");
    assert!(matches!(
        verify(&secret(), Some(&legacy), &body, now()),
        Err(WebhookError::MalformedHeader(_))
    ));
}

#[test]
fn authentic_but_malformed_bodies_are_rejected() {
    for body in [
        b"not json".to_vec(),
        br#"{"data":{"object":{"_id":"x"}}}"#.to_vec(),
        br#"{"eventType":"member.updated"}"#.to_vec(),
        br#"{"eventType":"member.updated","data":{"object":"x"}}"#.to_vec(),
        br#"{"eventType":"member.updated","data":{"object":{"name":"no id"}}}"#.to_vec(),
        br#"{"eventType":"member.updated","data":{"object":{"_id":"m"}},"createdAt":"yesterday"}"#
            .to_vec(),
    ] {
        let header = sign(&secret(), &body, now().timestamp());
        assert!(
            matches!(
                verify(&secret(), Some(&header), &body, now()),
                Err(WebhookError::MalformedBody(_))
            ),
            "{} must be malformed",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn a_rotated_secret_is_accepted_alongside_the_new_one() {
    let body = booking_updated();
    let old = Secret::new("old-secret");
    let header = sign(&old, &body, now().timestamp());

    assert!(verify_any(&[secret(), old], Some(&header), &body, now()).is_ok());
    assert_eq!(
        verify_any(&[secret()], Some(&header), &body, now()),
        Err(WebhookError::BadSignature)
    );
}

fn event(event_type: &str, object: Value) -> WebhookEvent {
    parse_event(
        json!({"eventType": event_type, "data": {"object": object}})
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

#[test]
fn events_map_to_the_objects_they_affect() {
    let membership = event(
        "membership.created",
        json!({"_id": "ms1", "member": "m1", "plan": "p1", "isPersonal": true}),
    );
    assert_eq!(
        affected(&membership),
        vec![
            (Collection::Memberships, "ms1"),
            (Collection::Members, "m1"),
            (Collection::Plans, "p1")
        ]
    );

    let company_membership = event(
        "membership.removed",
        json!({"_id": "ms2", "company": "c1", "plan": "p1"}),
    );
    assert_eq!(company_membership.action, EventAction::Removed);
    assert_eq!(
        affected(&company_membership),
        vec![
            (Collection::Memberships, "ms2"),
            (Collection::Companies, "c1"),
            (Collection::Plans, "p1")
        ]
    );

    assert_eq!(
        affected(&event(
            "member.updated",
            json!({"_id": "m1", "company": "c1"})
        )),
        vec![(Collection::Members, "m1")]
    );
    assert_eq!(
        affected(&event("company.removed", json!({"_id": "c1"}))),
        vec![(Collection::Companies, "c1")]
    );
    assert_eq!(
        affected(&event("pass.created", json!({"_id": "ps1"}))),
        vec![(Collection::Passes, "ps1")]
    );

    let payment = event("company.paymentdetails.removed", json!({"_id": "pd1"}));
    assert_eq!(payment.subject, "company.paymentdetails");
    assert!(payment.affected.is_empty());
    assert!(event("invoice.created", json!({"_id": "i1"}))
        .affected
        .is_empty());
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/")
}

#[tokio::test]
async fn the_receiver_accepts_signed_deliveries_and_refuses_the_rest() {
    let (sink, mut events) = mpsc::channel(8);
    let url = serve(webhook_router(secret(), sink)).await;
    let http = reqwest::Client::new();
    let body = booking_updated();
    let post = |header: Option<String>, body: Vec<u8>| {
        let mut request = http.post(&url).body(body);
        if let Some(header) = header {
            request = request.header(SIGNATURE_HEADER, header);
        }
        request.send()
    };

    let accepted = post(
        Some(sign(&secret(), &body, Utc::now().timestamp())),
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert_eq!(events.recv().await.unwrap().event_type, "booking.updated");

    let cases = [
        (
            None,
            body.clone(),
            StatusCode::UNAUTHORIZED,
            "missing_signature",
        ),
        (
            Some("t=1".to_owned()),
            body.clone(),
            StatusCode::UNAUTHORIZED,
            "malformed_signature",
        ),
        (
            Some(sign(&Secret::new("forged"), &body, Utc::now().timestamp())),
            body.clone(),
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        (
            Some(sign(&secret(), &body, Utc::now().timestamp() - 3600)),
            body.clone(),
            StatusCode::UNAUTHORIZED,
            "stale_timestamp",
        ),
        (
            Some(sign(&secret(), b"[]", Utc::now().timestamp())),
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_body",
        ),
    ];
    for (header, body, status, code) in cases {
        let response = post(header, body).await.unwrap();
        assert_eq!(response.status(), status, "{code}");
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["error"], code);
        assert!(!reply["message"].as_str().unwrap().contains(SECRET));
    }
    assert!(
        events.try_recv().is_err(),
        "refused deliveries must not reach the sink"
    );
}

#[tokio::test]
async fn the_receiver_asks_for_redelivery_when_its_queue_is_full() {
    let (sink, _events) = mpsc::channel(1);
    let url = serve(webhook_router(secret(), sink)).await;
    let http = reqwest::Client::new();
    let body = booking_updated();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let header = sign(&secret(), &body, Utc::now().timestamp());
        let response = http
            .post(&url)
            .header(SIGNATURE_HEADER, header)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
    }
    assert_eq!(
        statuses,
        vec![StatusCode::ACCEPTED, StatusCode::SERVICE_UNAVAILABLE]
    );
}

async fn next_event(events: &mut mpsc::Receiver<WebhookEvent>) -> WebhookEvent {
    // Guard against a hang only; not a timing assertion.
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("no webhook delivered")
        .expect("sink closed")
}

const ROOM_1: &str = "0000000000000000000000a1";
const ROOM_2: &str = "0000000000000000000000b2";

#[tokio::test]
async fn the_simulator_sends_signed_webhooks_that_verify() {
    let seed = json!({
        "resources": [{"_id": ROOM_1, "name": "Room 1", "type": "meeting_room"}],
        "bookings": [],
    });
    let sim = Simulator::start(seed, system_clock()).await.unwrap();
    let client = OfficeRndClient::new(sim.client_config().unwrap()).unwrap();

    let secrets: Arc<Mutex<Vec<Secret>>> = Arc::default();
    let source = Arc::clone(&secrets);
    let (sink, mut events) = mpsc::channel(16);
    let url = serve(webhook_router(move || source.lock().unwrap().clone(), sink)).await;
    let registered = client
        .register_webhook(
            &url,
            &["booking.created", "booking.updated", "member.created"],
            "flexgate",
        )
        .await
        .unwrap();
    secrets.lock().unwrap().push(registered.secret.clone());

    // A change through the API …
    let created: Value = client
        .create_booking(&json!({
            "resource": ROOM_1,
            "start": "2025-05-01T09:00:00.000Z",
            "end": "2025-05-01T10:00:00.000Z",
        }))
        .await
        .unwrap();
    let booking_id = created["_id"].as_str().unwrap().to_owned();
    let first = next_event(&mut events).await;
    assert_eq!(first.event_type, "booking.created");
    assert!(first.affected.contains(&AffectedObject {
        collection: Collection::Bookings,
        id: booking_id.clone()
    }));

    // … and one through the sandbox control surface.
    let mut moved = created.clone();
    moved["resource"] = json!(ROOM_2);
    sim.upsert(Collection::Bookings, moved).unwrap();
    let second = next_event(&mut events).await;
    assert_eq!(second.event_type, "booking.updated");
    assert_eq!(
        second.previous_attributes.as_ref().unwrap()["resource"],
        created["resource"]
    );
    assert!(second.affected.contains(&AffectedObject {
        collection: Collection::Resources,
        id: ROOM_2.into()
    }));

    // Not subscribed: no delivery. Subscribed member.created: delivered after it.
    sim.remove(Collection::Bookings, &booking_id);
    sim.upsert(Collection::Members, json!({"name": "New member"}))
        .unwrap();
    assert_eq!(next_event(&mut events).await.event_type, "member.created");

    let mut deliveries = sim.deliveries();
    for _ in 0..200 {
        if deliveries.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        deliveries = sim.deliveries();
    }
    let statuses: Vec<Option<u16>> = deliveries.iter().map(|d| d.status).collect();
    assert_eq!(statuses, vec![Some(202), Some(202), Some(202)]);
}
