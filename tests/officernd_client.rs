//! OfficeRnD client against the in-process simulator: paging, retries, token lifecycle, all-or-nothing
//! lists, incremental refresh, query validation, assignments fan-out and writes.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flexgate::clock::ManualClock;
use flexgate::http::{HttpError, RetryPolicy};
use flexgate::officernd::client::{
    BookingWindow, ListQuery, OfficeRndClient, OfficeRndConfig, OfficeRndError,
};
use flexgate::officernd::{system_clock, Clock, Collection, CollectionSet};
use flexgate::sandbox::faults::{Fault, FaultRule, RetryAfter, Route};
use flexgate::sandbox::officernd::{Simulator, SimulatorHandle};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn member(index: usize) -> Value {
    json!({
        "_id": format!("{:024x}", index + 1),
        "name": format!("Member {index}"),
        "email": format!("member{index}@example.com"),
        "status": if index.is_multiple_of(3) { "pending" } else { "active" },
        "createdAt": "2025-01-01T00:00:00.000Z",
        "modifiedAt": "2025-01-01T00:00:00.000Z",
    })
}

fn members_seed(count: usize) -> Value {
    json!({ "members": (0..count).map(member).collect::<Vec<_>>() })
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_total: Duration::from_secs(30),
        default_retry_after: Duration::from_millis(10),
    }
}

fn config_for(sim: &SimulatorHandle, retry: RetryPolicy) -> OfficeRndConfig {
    let mut config = sim.client_config().unwrap();
    config.retry = retry;
    config.requests_per_second = 1000.0;
    config
}

async fn start(
    seed: Value,
    clock: Clock,
    retry: RetryPolicy,
) -> (SimulatorHandle, OfficeRndClient) {
    start_with_rounds(seed, clock, retry, 0).await
}

/// As [`start`], with `page_rounds` further rounds for a page the retry policy gave up on.
async fn start_with_rounds(
    seed: Value,
    clock: Clock,
    retry: RetryPolicy,
    page_rounds: u32,
) -> (SimulatorHandle, OfficeRndClient) {
    let sim = Simulator::start(seed, clock.clone()).await.unwrap();
    let mut config = config_for(&sim, retry);
    config.page_rounds = page_rounds;
    let client = OfficeRndClient::new(config).unwrap().with_clock(clock);
    (sim, client)
}

fn members_route(sim: &SimulatorHandle) -> Route {
    Route::path(sim.collection_path(Collection::Members)).method(Method::GET)
}

fn token_requests(sim: &SimulatorHandle) -> u64 {
    sim.faults().requests(&Method::POST, "/oauth/token")
}

fn ids(items: &[Value]) -> HashSet<String> {
    items
        .iter()
        .map(|item| item["_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn lists_137_members_in_three_pages_following_cursors() {
    let (sim, client) = start(members_seed(137), system_clock(), fast_retries()).await;

    let members: Vec<Value> = client.list_members(None).await.unwrap();

    assert_eq!(members.len(), 137);
    assert_eq!(ids(&members), ids(&sim.list(Collection::Members)));
    assert_eq!(
        sim.faults().requests_matching(&members_route(&sim)),
        3,
        "50 + 50 + 37"
    );
    assert_eq!(token_requests(&sim), 1);
}

#[tokio::test]
async fn honours_429_with_retry_after_and_then_succeeds() {
    let (sim, client) = start(members_seed(60), system_clock(), fast_retries()).await;
    sim.faults().inject_429(members_route(&sim), 2, 0);

    let members: Vec<Value> = client.list_members(None).await.unwrap();

    assert_eq!(members.len(), 60);
    assert_eq!(
        sim.faults()
            .responses_matching(&members_route(&sim), StatusCode::TOO_MANY_REQUESTS),
        2
    );
    assert_eq!(
        sim.faults().requests_matching(&members_route(&sim)),
        4,
        "2 × 429 + 2 pages"
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_is_reported_not_slept() {
    let (sim, client) = start(members_seed(5), system_clock(), fast_retries()).await;
    sim.faults().inject_429(members_route(&sim), 1, 3600);

    let error = client.list_members::<Value>(None).await.unwrap_err();

    match &error {
        OfficeRndError::Http(HttpError::RateLimited { retry_after, .. }) => {
            assert_eq!(*retry_after, Some(Duration::from_secs(3600)));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(error.is_retryable_later());
    assert_eq!(sim.faults().requests_matching(&members_route(&sim)), 1);
}

#[tokio::test]
async fn refreshes_the_token_before_it_expires() {
    let clock = ManualClock::new(at("2025-03-01T09:00:00Z"));
    let (sim, client) = start(members_seed(3), clock.clock(), fast_retries()).await;

    client.list_members::<Value>(None).await.unwrap();
    // 3599 s lifetime, refreshed 60 s early: at +3550 s the cached token is due for renewal.
    clock.advance(chrono::Duration::seconds(3550));
    client.list_members::<Value>(None).await.unwrap();

    assert_eq!(token_requests(&sim), 2);
    assert_eq!(
        sim.faults()
            .responses_matching(&Route::any(), StatusCode::UNAUTHORIZED),
        0
    );
}

#[tokio::test]
async fn keeps_using_a_cached_token_while_it_is_fresh() {
    let clock = ManualClock::new(at("2025-03-01T09:00:00Z"));
    let (sim, client) = start(members_seed(3), clock.clock(), fast_retries()).await;

    client.list_members::<Value>(None).await.unwrap();
    clock.advance(chrono::Duration::seconds(3000));
    client.list_members::<Value>(None).await.unwrap();

    assert_eq!(token_requests(&sim), 1);
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_once_and_the_call_succeeds() {
    let (sim, client) = start(members_seed(3), system_clock(), fast_retries()).await;
    client.list_members::<Value>(None).await.unwrap();

    sim.revoke_tokens();
    let members: Vec<Value> = client.list_members(None).await.unwrap();

    assert_eq!(members.len(), 3);
    assert_eq!(token_requests(&sim), 2);
    assert_eq!(
        sim.faults()
            .responses_matching(&members_route(&sim), StatusCode::UNAUTHORIZED),
        1
    );
}

#[tokio::test]
async fn a_second_401_fails_after_exactly_one_refresh() {
    let (sim, client) = start(members_seed(3), system_clock(), fast_retries()).await;
    sim.faults().add(FaultRule::new(
        members_route(&sim),
        Fault::Status {
            status: StatusCode::UNAUTHORIZED,
            body: Some(json!({"statusCode": 401, "message": "Unauthorized access", "error": "Unauthorized"})),
        },
    ));

    let error = client.list_members::<Value>(None).await.unwrap_err();

    match &error {
        OfficeRndError::Unauthorized { scopes, .. } => {
            assert!(scopes.contains("flex.community.members.read"))
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_eq!(token_requests(&sim), 2, "initial token + one refresh");
    assert_eq!(sim.faults().requests_matching(&members_route(&sim)), 2);
}

#[tokio::test]
async fn a_500_mid_list_retries_that_page_and_returns_the_whole_list() {
    let (sim, client) = start(members_seed(137), system_clock(), fast_retries()).await;
    sim.faults().add(
        FaultRule::new(
            members_route(&sim),
            Fault::Status {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: None,
            },
        )
        .after(1)
        .times(1),
    );

    let members: Vec<Value> = client.list_members(None).await.unwrap();

    assert_eq!(ids(&members).len(), 137);
    assert_eq!(
        sim.faults().requests_matching(&members_route(&sim)),
        4,
        "3 pages + 1 retried page"
    );
}

#[tokio::test]
async fn a_500_mid_list_without_retries_is_an_error_never_a_partial_list() {
    let (sim, client) = start(members_seed(137), system_clock(), RetryPolicy::no_retries()).await;
    sim.faults().add(
        FaultRule::new(
            members_route(&sim),
            Fault::Status {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: None,
            },
        )
        .after(1)
        .times(1),
    );

    let result: Result<Vec<Value>, _> = client.list_members(None).await;

    let error = result.unwrap_err();
    assert!(
        matches!(
            &error,
            OfficeRndError::Http(HttpError::Transient { attempts: 1, .. })
        ),
        "{error:?}"
    );
    assert!(error.is_retryable_later());
    assert_eq!(sim.faults().requests_matching(&members_route(&sim)), 2);
}

#[tokio::test]
async fn a_persistent_500_exhausts_the_attempt_budget() {
    let (sim, client) = start(members_seed(137), system_clock(), fast_retries()).await;
    sim.faults().add(
        FaultRule::new(
            members_route(&sim),
            Fault::Status {
                status: StatusCode::BAD_GATEWAY,
                body: None,
            },
        )
        .after(1),
    );

    let error = client.list_members::<Value>(None).await.unwrap_err();

    assert!(
        matches!(
            &error,
            OfficeRndError::Http(HttpError::Transient { attempts: 4, .. })
        ),
        "{error:?}"
    );
    assert_eq!(sim.faults().requests_matching(&members_route(&sim)), 1 + 4);
}

/// A page the retry policy gave up on is asked for again (same cursor, after a longer wait), the
/// pages before it kept: a flaky page costs a few requests, not the whole read.
#[tokio::test]
async fn a_page_the_policy_gave_up_on_is_retried_alone_and_the_list_is_whole() {
    let (sim, client) =
        start_with_rounds(members_seed(137), system_clock(), fast_retries(), 2).await;
    // Page 2 fails all 4 attempts of the policy, then once more in the first extra round.
    sim.faults().add(
        FaultRule::new(
            members_route(&sim),
            Fault::Status {
                status: StatusCode::BAD_GATEWAY,
                body: None,
            },
        )
        .after(1)
        .times(5),
    );

    let members: Vec<Value> = client.list_members(None).await.unwrap();

    assert_eq!(ids(&members), ids(&sim.list(Collection::Members)));
    assert_eq!(
        sim.faults().requests_matching(&members_route(&sim)),
        1 + 5 + 1 + 1,
        "page 1 once, page 2 failing 5 times then served, page 3 once: nothing read twice"
    );
}

/// When the extra rounds are spent too, the list fails whole: never a partial list.
#[tokio::test]
async fn a_page_failing_through_every_round_fails_the_list_whole() {
    let (sim, client) =
        start_with_rounds(members_seed(137), system_clock(), fast_retries(), 2).await;
    sim.faults().add(
        FaultRule::new(
            members_route(&sim),
            Fault::Status {
                status: StatusCode::BAD_GATEWAY,
                body: None,
            },
        )
        .after(1),
    );

    let error = client.list_members::<Value>(None).await.unwrap_err();

    assert!(error.is_retryable_later(), "{error:?}");
    assert_eq!(
        sim.faults().requests_matching(&members_route(&sim)),
        1 + 4 * 3,
        "the policy's 4 attempts, in the first round and 2 more"
    );
}

#[tokio::test]
async fn incremental_refresh_returns_only_objects_modified_after_the_mark() {
    let clock = ManualClock::new(at("2025-06-01T12:00:00Z"));
    let (sim, client) = start(members_seed(20), clock.clock(), fast_retries()).await;
    let mut changed = member(4);
    changed["name"] = json!("Renamed");
    sim.upsert(Collection::Members, changed).unwrap();
    sim.upsert(
        Collection::Members,
        json!({"name": "Newcomer", "email": "new@example.com"}),
    )
    .unwrap();

    let since: Vec<Value> = client
        .list_members(Some(at("2025-03-01T00:00:00Z")))
        .await
        .unwrap();

    let names: HashSet<&str> = since.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, HashSet::from(["Renamed", "Newcomer"]));
    let everything: Vec<Value> = client.list_members(None).await.unwrap();
    assert_eq!(everything.len(), 21);
}

#[tokio::test]
async fn memberships_refuse_incremental_queries_before_sending() {
    let (sim, client) = start(json!({"memberships": []}), system_clock(), fast_retries()).await;

    let error = client
        .list::<Value>(
            Collection::Memberships,
            &ListQuery::new().modified_after(Utc::now()),
        )
        .await
        .unwrap_err();

    assert!(matches!(
        error,
        OfficeRndError::UnsupportedQuery {
            collection: Collection::Memberships,
            ..
        }
    ));
    assert_eq!(
        sim.faults()
            .requests_matching(&Route::path_suffix("/memberships")),
        0
    );
}

#[tokio::test]
async fn filters_status_in_and_exact_match() {
    let (_sim, client) = start(members_seed(30), system_clock(), fast_retries()).await;

    let pending: Vec<Value> = client
        .list(
            Collection::Members,
            &ListQuery::new().any_of("status", &["pending"]),
        )
        .await
        .unwrap();
    let one: Vec<Value> = client
        .list(
            Collection::Members,
            &ListQuery::new().eq("email", "member7@example.com"),
        )
        .await
        .unwrap();

    assert_eq!(pending.len(), 10);
    assert!(pending.iter().all(|m| m["status"] == "pending"));
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["name"], "Member 7");
}

async fn raw_token(sim: &SimulatorHandle, scope: &str) -> String {
    let response: Value = reqwest::Client::new()
        .post(format!("{}/oauth/token", sim.base_url))
        .form(&[
            ("client_id", sim.client_id.as_str()),
            ("client_secret", sim.client_secret.expose()),
            ("grant_type", "client_credentials"),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["token_type"], "Bearer");
    assert_eq!(response["expires_in"], 3599);
    response["access_token"].as_str().unwrap().to_owned()
}

async fn raw_get(sim: &SimulatorHandle, token: &str, path_and_query: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(format!(
            "{}{}{}",
            sim.base_url,
            sim.collection_path(Collection::Members),
            path_and_query
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn simulator_enforces_the_observed_query_rules() {
    let sim = Simulator::start(members_seed(30), system_clock())
        .await
        .unwrap();
    let token = raw_token(&sim, "flex.community.members.read").await;

    let (status, body) = raw_get(&sim, &token, "?$limit=51").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "$limit must not be greater than 50");

    let (status, body) = raw_get(&sim, &token, "?unknownParam=value").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "property unknownParam should not exist");

    let (status, body) = raw_get(&sim, &token, "?$limit=0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"].as_array().unwrap().len(), 20);
    assert_eq!(body["rangeStart"], 1);
    assert_eq!(body["rangeEnd"], 20);
    assert!(body["cursorNext"].is_string());
    assert!(body.get("cursorPrev").is_none());

    let (status, body) = raw_get(&sim, &token, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"].as_array().unwrap().len(), 30);
    assert!(
        body.get("cursorNext").is_none(),
        "cursorNext must be ABSENT when everything fits"
    );

    let (status, body) = raw_get(&sim, &token, "/aaaaaaaaaaaaaaaaaaaaaaaa").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Item with Id (aaaaaaaaaaaaaaaaaaaaaaaa)");

    let wrong_scope = raw_token(&sim, "flex.community.companies.read").await;
    let (status, body) = raw_get(&sim, &wrong_scope, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"statusCode": 401, "message": "Unauthorized access", "error": "Unauthorized"})
    );
}

#[tokio::test]
async fn the_client_surfaces_simulator_validation_errors_as_bad_requests() {
    let (_sim, client) = start(members_seed(3), system_clock(), fast_retries()).await;

    let error = client
        .list::<Value>(Collection::Members, &ListQuery::new().eq("bogus", "1"))
        .await
        .unwrap_err();

    match error {
        OfficeRndError::Http(HttpError::BadRequest {
            status, message, ..
        }) => {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(message, "property bogus should not exist");
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_object_is_not_found() {
    let (_sim, client) = start(members_seed(1), system_clock(), fast_retries()).await;

    let error = client
        .get::<Value>(Collection::Members, "aaaaaaaaaaaaaaaaaaaaaaaa")
        .await
        .unwrap_err();

    assert!(
        matches!(error, OfficeRndError::Http(HttpError::NotFound { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn assignments_are_fetched_in_batches_of_resources_and_never_unfiltered() {
    let resources: Vec<Value> = (0..3)
        .map(|i| json!({"_id": format!("{:024x}", 0x100 + i), "name": format!("Office {i}"), "type": "team_room"}))
        .collect();
    let assignments: Vec<Value> = (0..5)
        .map(|i| {
            json!({
                "_id": format!("{:024x}", 0x200 + i),
                "resource": format!("{:024x}", 0x100 + (i % 2)),
                "membership": format!("{:024x}", 0x300 + i),
                "startDate": "2025-01-01T00:00:00.000Z",
            })
        })
        .collect();
    let seed = json!({"resources": resources, "assignments": assignments});
    let (sim, client) = start(seed, system_clock(), fast_retries()).await;
    let resource_ids: Vec<String> = sim
        .list(Collection::Resources)
        .iter()
        .map(|r| r["_id"].as_str().unwrap().to_owned())
        .collect();

    let found: Vec<Value> = client
        .list_assignments_for_resources(&resource_ids)
        .await
        .unwrap();
    let unfiltered = client
        .list::<Value>(Collection::Assignments, &ListQuery::new())
        .await;

    assert_eq!(ids(&found), ids(&sim.list(Collection::Assignments)));
    let assignments_route = Route::path(sim.collection_path(Collection::Assignments));
    assert_eq!(
        sim.faults().requests_matching(&assignments_route),
        1,
        "one resource[$in] list for up to 100 resources, not one list per resource"
    );
    assert!(matches!(
        unfiltered,
        Err(OfficeRndError::UnsupportedQuery { .. })
    ));
}

#[tokio::test]
async fn bookings_are_filtered_by_time_window() {
    let booking = |i: u32, start: &str, end: &str| json!({"_id": format!("{:024x}", 0x400 + i), "resource": "r1", "start": start, "end": end});
    let seed = json!({"bookings": [
        booking(1, "2025-05-01T09:00:00.000Z", "2025-05-01T10:00:00.000Z"),
        booking(2, "2025-05-02T09:00:00.000Z", "2025-05-02T10:00:00.000Z"),
        booking(3, "2025-05-03T09:00:00.000Z", "2025-05-03T10:00:00.000Z"),
        {"_id": format!("{:024x}", 0x404), "resource": "r1",
         "start": "2025-04-01T09:00:00.000Z", "end": "2025-04-01T10:00:00.000Z",
         "recurrence": {"rrule": "FREQ=DAILY;COUNT=60"},
         "seriesStart": "2025-04-01T09:00:00.000Z", "seriesEnd": "2025-05-30T10:00:00.000Z"},
    ]});
    let (_sim, client) = start(seed, system_clock(), fast_retries()).await;

    let window = BookingWindow {
        from: at("2025-05-01T09:30:00Z"),
        to: at("2025-05-02T12:00:00Z"),
    };
    let found: Vec<Value> = client.list_bookings(Some(window), None).await.unwrap();

    assert_eq!(
        ids(&found),
        HashSet::from([
            format!("{:024x}", 0x401),
            format!("{:024x}", 0x402),
            format!("{:024x}", 0x404),
        ]),
        "the series started before the window and runs through it"
    );
}

#[tokio::test]
async fn the_simulator_refuses_start_and_end_booking_filters_like_the_real_api() {
    let seed = json!({"bookings": [{"_id": format!("{:024x}", 0x401), "resource": "r1",
        "start": "2025-05-01T09:00:00.000Z", "end": "2025-05-01T10:00:00.000Z"}]});
    let sim = Simulator::start(seed, system_clock()).await.unwrap();
    let token = raw_token(&sim, "flex.space.bookings.read").await;
    let bookings = |query: &str| {
        let url = format!(
            "{}{}?{query}",
            sim.base_url,
            sim.collection_path(Collection::Bookings)
        );
        let token = token.clone();
        async move {
            let response = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };

    for (field, query) in [
        ("start", "start%5B%24lt%5D=2025-05-02T00:00:00.000Z"),
        ("end", "end%5B%24gt%5D=2025-05-01T00:00:00.000Z"),
        ("start", "start=2025-05-01T09:00:00.000Z"),
    ] {
        let (status, body) = bookings(query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            body,
            json!({"statusCode": 400, "message": format!("property {field} should not exist"), "error": "Bad Request"})
        );
    }
    let (status, body) = bookings(
        "seriesStart%5B%24lt%5D=2025-05-02T00:00:00.000Z&seriesEnd%5B%24gte%5D=2025-05-01T00:00:00.000Z",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
    assert_eq!(body["results"][0]["seriesEnd"], "2025-05-01T10:00:00.000Z");
}

#[tokio::test]
async fn creates_a_booking_with_a_separately_scoped_token() {
    let (sim, client) = start(members_seed(1), system_clock(), fast_retries()).await;
    client.list_members::<Value>(None).await.unwrap();

    let created: Value = client
        .create_booking(&json!({
            "resource": "r1",
            "member": format!("{:024x}", 1),
            "start": "2025-05-01T09:00:00.000Z",
            "end": "2025-05-01T10:00:00.000Z",
        }))
        .await
        .unwrap();

    let id = created["_id"].as_str().unwrap();
    assert_eq!(id.len(), 24);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(sim.get(Collection::Bookings, id).unwrap()["resource"], "r1");
    assert_eq!(
        token_requests(&sim),
        2,
        "read token and create token are separate"
    );
}

#[tokio::test]
async fn registers_a_webhook_and_keeps_its_secret_out_of_debug_output() {
    let (_sim, client) = start(members_seed(1), system_clock(), fast_retries()).await;

    let webhook = client
        .register_webhook("http://127.0.0.1:9/hook", &["booking.updated"], "flexgate")
        .await
        .unwrap();

    assert_eq!(webhook.id.len(), 24);
    assert_eq!(webhook.event_types, vec!["booking.updated"]);
    assert!(!webhook.secret.expose().is_empty());
    assert!(!format!("{webhook:?}").contains(webhook.secret.expose()));
}

#[tokio::test]
async fn wrong_credentials_are_a_token_error_without_the_secret_in_it() {
    let sim = Simulator::start(members_seed(1), system_clock())
        .await
        .unwrap();
    let mut config = config_for(&sim, fast_retries());
    config.client_secret = "definitely-wrong-secret-123".into();
    let client = OfficeRndClient::new(config).unwrap();

    let error = client.list_members::<Value>(None).await.unwrap_err();

    assert!(matches!(error, OfficeRndError::Token { .. }), "{error:?}");
    let text = format!("{error} {error:?}");
    assert!(!text.contains("definitely-wrong-secret-123"));
    assert!(!text.contains(sim.client_secret.expose()));
    assert_eq!(
        token_requests(&sim),
        1,
        "401 from the token endpoint is not retried"
    );
}

#[tokio::test]
async fn a_call_asks_only_for_the_scope_it_reads() {
    // An application granted two read scopes (issue #12: asking for all eleven got it no token).
    let sim = Simulator::start(members_seed(3), system_clock())
        .await
        .unwrap();
    sim.set_granted_scopes(Some(vec![
        "flex.community.members.read".into(),
        "flex.space.locations.read".into(),
    ]));
    let client = OfficeRndClient::new(config_for(&sim, fast_retries())).unwrap();

    let members: Vec<Value> = client.list_members(None).await.unwrap();
    let locations: Vec<Value> = client.list_locations().await.unwrap();

    assert_eq!(members.len(), 3);
    assert!(locations.is_empty());
}

#[tokio::test]
async fn a_refused_scope_is_named_with_what_needs_it() {
    let sim = Simulator::start(members_seed(1), system_clock())
        .await
        .unwrap();
    sim.set_granted_scopes(Some(vec![
        "flex.community.members.read".into(),
        "flex.space.locations.read".into(),
    ]));
    let client = OfficeRndClient::new(config_for(&sim, fast_retries()))
        .unwrap()
        .reading(CollectionSet::of(&[
            Collection::Members,
            Collection::Locations,
            Collection::Passes,
        ]));

    let error = client.list_members::<Value>(None).await.unwrap_err();

    match &error {
        OfficeRndError::ScopeRefused { refused } => {
            assert_eq!(refused, &vec!["flex.space.passes.read".to_owned()]);
        }
        other => panic!("expected ScopeRefused, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains("flex.space.passes.read"), "{text}");
    assert!(text.contains("source.dayPasses"), "{text}");
    assert!(!error.is_retryable_later());
    // The refusal, then each of the three scopes alone.
    assert_eq!(token_requests(&sim), 4);
}

#[tokio::test]
async fn wrong_credentials_are_not_blamed_on_a_scope() {
    let sim = Simulator::start(members_seed(1), system_clock())
        .await
        .unwrap();
    let mut config = config_for(&sim, fast_retries());
    config.client_secret = "wrong".into();
    let client = OfficeRndClient::new(config)
        .unwrap()
        .reading(CollectionSet::of(&[
            Collection::Members,
            Collection::Passes,
        ]));

    let error = client.list_members::<Value>(None).await.unwrap_err();

    assert!(matches!(error, OfficeRndError::Token { .. }), "{error:?}");
    assert_eq!(token_requests(&sim), 1, "no scope was probed");
}

#[tokio::test]
async fn the_simulator_refuses_scopes_that_do_not_exist() {
    let sim = Simulator::start(members_seed(1), system_clock())
        .await
        .unwrap();

    let response = reqwest::Client::new()
        .post(format!("{}/oauth/token", sim.base_url))
        .form(&[
            ("client_id", sim.client_id.as_str()),
            ("client_secret", sim.client_secret.expose()),
            ("grant_type", "client_credentials"),
            (
                "scope",
                "flex.community.members.read flex.space.booking.read",
            ),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "invalid_scope"})
    );
}

#[tokio::test]
async fn a_wrong_organization_slug_is_final_at_once_not_an_outage() {
    let sim = Simulator::start(members_seed(3), system_clock())
        .await
        .unwrap();
    let mut config = config_for(&sim, fast_retries());
    config.org_slug = "no-such-org".into();
    let client = OfficeRndClient::new(config).unwrap();

    let error = client.list_members::<Value>(None).await.unwrap_err();

    match &error {
        OfficeRndError::OrganizationNotFound { slug } => assert_eq!(slug, "no-such-org"),
        other => panic!("expected OrganizationNotFound, got {other:?}"),
    }
    assert!(!error.is_retryable_later());
    assert!(error.to_string().contains("spec.officernd.organization"));
    let wrong_members = Route::path("/api/v2/organizations/no-such-org/members");
    assert_eq!(
        sim.faults().requests_matching(&wrong_members),
        1,
        "not retried"
    );
}

#[tokio::test]
async fn an_outage_before_the_first_success_is_still_retried() {
    let (sim, client) = start(members_seed(3), system_clock(), fast_retries()).await;
    sim.faults().add(
        FaultRule::new(
            members_route(&sim),
            Fault::Status {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: None,
            },
        )
        .times(2),
    );

    let members: Vec<Value> = client.list_members(None).await.unwrap();

    assert_eq!(members.len(), 3);
    assert_eq!(sim.faults().requests_matching(&members_route(&sim)), 3);
}

#[tokio::test]
async fn an_organization_gone_later_is_final_after_the_retries() {
    let (sim, client) = start(members_seed(137), system_clock(), fast_retries()).await;
    sim.faults().add(
        FaultRule::new(
            members_route(&sim),
            Fault::Status {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: Some(json!({"statusCode": 500, "message": "Organization not found", "error": "Internal Server Error"})),
            },
        )
        .after(1),
    );

    let error = client.list_members::<Value>(None).await.unwrap_err();

    assert!(
        matches!(error, OfficeRndError::OrganizationNotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn concurrent_lists_share_one_token() {
    let (sim, client) = start(members_seed(120), system_clock(), fast_retries()).await;

    let lists = futures::future::join_all((0..6).map(|_| client.list_members::<Value>(None))).await;

    assert!(lists
        .iter()
        .all(|list| list.as_ref().map(Vec::len).ok() == Some(120)));
    assert_eq!(token_requests(&sim), 1);
}

#[tokio::test]
async fn seeds_with_unknown_collections_are_rejected() {
    let result = Simulator::start(json!({"teams": []}), system_clock()).await;

    assert!(result.is_err());
    let stamped = Simulator::start(json!({"plans": [{"name": "Hot desk"}]}), system_clock())
        .await
        .unwrap();
    let plan = &stamped.list(Collection::Plans)[0];
    assert_eq!(plan["_id"].as_str().unwrap().len(), 24);
    assert!(plan["createdAt"].is_string());
}

#[tokio::test]
async fn honours_a_retry_after_given_as_an_http_date() {
    let (sim, client) = start(members_seed(3), system_clock(), fast_retries()).await;
    let already_passed = Utc::now() - chrono::Duration::seconds(5);
    sim.faults().add(
        FaultRule::new(
            members_route(&sim),
            Fault::TooManyRequests(RetryAfter::HttpDate(already_passed)),
        )
        .times(1),
    );

    let members: Vec<Value> = client.list_members(None).await.unwrap();

    assert_eq!(members.len(), 3);
    assert_eq!(sim.faults().requests_matching(&members_route(&sim)), 2);
}

#[tokio::test]
async fn a_reply_of_the_wrong_shape_is_a_protocol_error_with_a_redacted_excerpt() {
    let (sim, client) = start(members_seed(3), system_clock(), fast_retries()).await;
    sim.faults().add(
        FaultRule::new(
            members_route(&sim),
            Fault::Status {
                status: StatusCode::OK,
                body: Some(json!({"items": [], "sessionToken": "tok_live_0123456789abcdefghij"})),
            },
        )
        .times(1),
    );

    let error = client.list_members::<Value>(None).await.unwrap_err();

    match &error {
        OfficeRndError::Http(HttpError::Protocol { excerpt, .. }) => {
            assert!(excerpt.as_str().contains("items"), "{excerpt:?}");
        }
        other => panic!("expected Protocol, got {other:?}"),
    }
    assert!(!format!("{error} {error:?}").contains("tok_live_0123456789abcdefghij"));
    assert!(!error.is_retryable_later());
}

#[tokio::test]
async fn simulator_writes_stamp_return_and_delete_objects() {
    let clock = ManualClock::new(at("2025-06-01T12:00:00Z"));
    let sim = Simulator::start(json!({"memberships": [], "bookings": []}), clock.clock())
        .await
        .unwrap();
    let scopes = "flex.community.memberships.create flex.community.memberships.update flex.space.bookings.delete";
    let token = raw_token(&sim, scopes).await;
    let http = reqwest::Client::new();
    let memberships = format!(
        "{}{}",
        sim.base_url,
        sim.collection_path(Collection::Memberships)
    );

    let invalid = http
        .post(&memberships)
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let invalid: Value = invalid.json().await.unwrap();
    assert!(invalid["message"]
        .as_array()
        .unwrap()
        .contains(&json!("plan must be a string")));

    let created = http
        .post(&memberships)
        .bearer_auth(&token)
        .json(&json!({"name": "Desk", "startDate": "2025-06-01T00:00:00.000Z", "location": "l1", "plan": "p1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["createdAt"], "2025-06-01T12:00:00.000Z");
    let id = created["_id"].as_str().unwrap();

    clock.advance(chrono::Duration::minutes(5));
    let updated: Value = http
        .put(format!("{memberships}/{id}"))
        .bearer_auth(&token)
        .json(&json!({"price": 250}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["price"], 250);
    assert_eq!(updated["createdAt"], "2025-06-01T12:00:00.000Z");
    assert_eq!(updated["modifiedAt"], "2025-06-01T12:05:00.000Z");

    let booking = sim
        .upsert(
            Collection::Bookings,
            json!({"resource": "r1", "start": "2025-06-02T09:00:00.000Z"}),
        )
        .unwrap();
    let booking_url = format!(
        "{}{}/{}?isSilent=true",
        sim.base_url,
        sim.collection_path(Collection::Bookings),
        booking["_id"].as_str().unwrap()
    );
    let deleted = http
        .delete(&booking_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(deleted.json::<Value>().await.unwrap()["resource"], "r1");
    let again = http
        .delete(&booking_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert!(sim.list(Collection::Bookings).is_empty());

    let not_creatable = http
        .post(format!(
            "{}{}",
            sim.base_url,
            sim.collection_path(Collection::Plans)
        ))
        .bearer_auth(&token)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        not_creatable.status(),
        StatusCode::UNAUTHORIZED,
        "no plans.create scope"
    );
}

/// Three desks, each held by a membership of its own, read as an assignment binding reads them.
fn desks_seed() -> Value {
    let id = |n: u32| format!("{n:024x}");
    let resources: Vec<Value> = (0..3)
        .map(|i| json!({"_id": id(0x100 + i), "name": format!("Desk {i}"), "type": "desk_tr"}))
        .collect();
    let memberships: Vec<Value> = (0..3)
        .map(|i| json!({"_id": id(0x300 + i), "name": format!("Desk plan {i}"), "member": id(0x500 + i),
            "status": "approved", "type": "month_to_month", "startDate": "2025-01-01T00:00:00.000Z"}))
        .collect();
    let assignments: Vec<Value> = (0..3)
        .map(|i| {
            json!({"_id": id(0x200 + i), "resource": id(0x100 + i), "membership": id(0x300 + i),
            "startDate": "2025-01-01T00:00:00.000Z"})
        })
        .collect();
    json!({"resources": resources, "memberships": memberships, "assignments": assignments})
}

fn desk_reads() -> CollectionSet {
    CollectionSet::of(&[
        Collection::Resources,
        Collection::Memberships,
        Collection::Assignments,
    ])
}

/// Requests to `/assignments` (lists) and to `/assignments/count`.
fn assignment_requests(sim: &SimulatorHandle) -> (u64, u64) {
    let path = sim.collection_path(Collection::Assignments);
    let faults = sim.faults();
    (
        faults.requests_matching(&Route::path(path.clone())),
        faults.requests_matching(&Route::path(format!("{path}/count"))),
    )
}

/// Moves desk `n`'s assignment to `membership` at OfficeRnD, without a webhook.
fn move_desk(sim: &SimulatorHandle, n: u32, membership: &str) {
    let mut assignment = sim
        .get(Collection::Assignments, &format!("{:024x}", 0x200 + n))
        .unwrap();
    assignment["membership"] = json!(membership);
    sim.upsert(Collection::Assignments, assignment).unwrap();
}

fn held_membership(index: &flexgate::engine::Index, assignment: u32) -> Option<String> {
    index
        .assignment(&format!("{:024x}", 0x200 + assignment))
        .and_then(|a| a.membership.clone())
}

/// Issue #14: assignments cannot be asked what changed, so each resync asks their count (one
/// request) and lists them only when it moved; a desk moved with the total unchanged arrives
/// with the read `assignments_every` after the last whole one, and not before.
#[tokio::test]
async fn assignments_are_counted_each_resync_and_listed_when_the_total_moves_or_hourly() {
    use flexgate::officernd::refresh::{self, Held, ReadPolicy};
    let clock = ManualClock::new(at("2026-03-02T09:00:00Z"));
    let (sim, client) = start(desks_seed(), clock.clock(), fast_retries()).await;
    let policy = ReadPolicy::default();
    let (snapshot, mut mark) = refresh::read_complete(&client, desk_reads(), clock.now(), &policy)
        .await
        .unwrap();
    let mut index = refresh::index(snapshot, &mark);
    assert_eq!(mark.assignments_total, Some(3));
    assert_eq!(assignment_requests(&sim), (1, 1));

    let clock = &clock;
    let client = &client;
    let mark = &mut mark;
    macro_rules! resync {
        ($minutes:expr, $index:expr) => {{
            clock.advance(chrono::Duration::minutes($minutes));
            let (changes, next) =
                refresh::read_changes(client, mark, Held::of($index), clock.now(), &policy)
                    .await
                    .unwrap();
            refresh::apply($index, &changes);
            *mark = next;
            changes
        }};
    }

    // Nothing changed: the count, no list.
    let quiet = resync!(15, &mut index);
    assert!(quiet.assignments.is_none() && quiet.membership_assignments.is_none());
    assert_eq!(assignment_requests(&sim), (1, 2));

    // A desk newly assigned, no webhook: the total moved, the assignments are listed whole.
    sim.upsert(
        Collection::Assignments,
        json!({"_id": format!("{:024x}", 0x2aa), "resource": format!("{:024x}", 0x100),
            "membership": format!("{:024x}", 0x301), "startDate": "2026-03-01T00:00:00.000Z"}),
    )
    .unwrap();
    let new_desk = resync!(15, &mut index);
    assert!(new_desk.assignments.is_some());
    assert!(index.assignment(&format!("{:024x}", 0x2aa)).is_some());
    assert_eq!(assignment_requests(&sim), (2, 3));

    // Desk 0 moved to membership 2: same total, no membership changed. Not seen until an hour
    // after the last whole read (at +30 min), then seen.
    let to = format!("{:024x}", 0x302);
    move_desk(&sim, 0, &to);
    for _ in 0..3 {
        let changes = resync!(15, &mut index);
        assert!(changes.assignments.is_none(), "listed before the hour");
        assert_eq!(held_membership(&index, 0), Some(format!("{:024x}", 0x300)));
    }
    assert_eq!(assignment_requests(&sim), (2, 6));
    let hourly = resync!(15, &mut index);
    assert!(hourly.assignments.is_some(), "not listed after the hour");
    assert_eq!(held_membership(&index, 0), Some(to));
    assert_eq!(assignment_requests(&sim), (3, 7));
}

/// Issue #14: memberships read whole because their count moved re-read the assignments of the
/// memberships that are new or changed (`membership[$in]`), so a desk given to a membership
/// created without a webhook arrives with that resync although the assignments total did not move.
#[tokio::test]
async fn a_new_membership_brings_its_assignments_without_a_whole_assignments_read() {
    use flexgate::officernd::refresh::{self, Held, ReadPolicy};
    let clock = ManualClock::new(at("2026-03-02T09:00:00Z"));
    let (sim, client) = start(desks_seed(), clock.clock(), fast_retries()).await;
    let policy = ReadPolicy::default();
    let (snapshot, mark) = refresh::read_complete(&client, desk_reads(), clock.now(), &policy)
        .await
        .unwrap();
    let mut index = refresh::index(snapshot, &mark);

    let new = format!("{:024x}", 0x3aa);
    sim.upsert(
        Collection::Memberships,
        json!({"_id": new, "name": "Silent", "member": format!("{:024x}", 0x5aa), "status": "approved",
            "type": "month_to_month", "startDate": "2026-03-01T00:00:00.000Z"}),
    )
    .unwrap();
    move_desk(&sim, 1, &new);
    clock.advance(chrono::Duration::minutes(15));
    let (changes, _) =
        refresh::read_changes(&client, &mark, Held::of(&index), clock.now(), &policy)
            .await
            .unwrap();

    assert!(changes.memberships.is_some(), "the membership count moved");
    assert!(
        changes.assignments.is_none(),
        "the assignments total did not move"
    );
    let read = changes
        .membership_assignments
        .as_ref()
        .expect("read by membership");
    assert_eq!(
        read.memberships,
        vec![new.clone()],
        "only the new membership"
    );
    refresh::apply(&mut index, &changes);
    assert_eq!(held_membership(&index, 1), Some(new));
    assert_eq!(assignment_requests(&sim), (2, 2));
}

/// An API that refuses `/assignments/count` (404: no such route; 400: `count` taken for an id)
/// gets what it got before the count existed: assignments read whole at every resync, and the
/// refused count is not asked again.
#[tokio::test]
async fn a_refused_assignments_count_falls_back_to_whole_reads() {
    use flexgate::officernd::refresh::{self, Held, ReadPolicy};
    for status in [StatusCode::NOT_FOUND, StatusCode::BAD_REQUEST] {
        let clock = ManualClock::new(at("2026-03-02T09:00:00Z"));
        let (sim, client) = start(desks_seed(), clock.clock(), fast_retries()).await;
        sim.refuse_count(Collection::Assignments, Some(status));
        assert_eq!(
            client
                .count_if_served(Collection::Assignments)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            client
                .count_if_served(Collection::Memberships)
                .await
                .unwrap(),
            Some(3)
        );
        let policy = ReadPolicy::default();
        let (snapshot, mut mark) =
            refresh::read_complete(&client, desk_reads(), clock.now(), &policy)
                .await
                .unwrap();
        let mut index = refresh::index(snapshot, &mark);
        assert!(mark.whole.contains(Collection::Assignments), "{status}");
        assert_eq!(mark.assignments_total, None);

        move_desk(&sim, 0, &format!("{:024x}", 0x302));
        for n in 1..=2 {
            clock.advance(chrono::Duration::minutes(15));
            let (changes, next) =
                refresh::read_changes(&client, &mark, Held::of(&index), clock.now(), &policy)
                    .await
                    .unwrap();
            assert!(changes.assignments.is_some(), "{status}: not read whole");
            refresh::apply(&mut index, &changes);
            mark = next;
            assert_eq!(assignment_requests(&sim), (1 + n, 2), "{status}");
        }
        assert_eq!(
            held_membership(&index, 0),
            Some(format!("{:024x}", 0x302)),
            "{status}"
        );
    }
}
