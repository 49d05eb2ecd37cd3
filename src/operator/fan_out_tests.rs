//! What one shared watch hands on, from fixtures: the predicate, deletions (also those a
//! re-list reveals), lists held until complete, which subscriber gets what, and why kube's own
//! `ReflectHandle` is not used.

use std::sync::Arc;

use futures::{stream, StreamExt};
use kube::runtime::watcher::Event;
use kube::ResourceExt;

use super::*;
use crate::api::VendorConnection;
use crate::operator::reconcile::fixtures::connection;
use crate::operator::watches::spec_or_request;

fn kisi(uid: &str, generation: i64) -> VendorConnection {
    let mut object = connection("kisi", "Kisi", "kisi-credentials");
    object.metadata.namespace = Some("ns".into());
    object.metadata.uid = Some(uid.into());
    object.metadata.generation = Some(generation);
    object
}

fn named(name: &str) -> VendorConnection {
    let mut object = kisi(&format!("uid-{name}"), 1);
    object.metadata.name = Some(name.into());
    object
}

/// The changes of `events`, as "applied name/generation" and "deleted name" lines.
async fn lines(events: Vec<Event<VendorConnection>>) -> Vec<String> {
    changes(stream::iter(events.into_iter().map(Ok)), spec_or_request)
        .map(|change| match change {
            Ok(Change::Applied(c)) => format!(
                "applied {}/{}",
                c.name_any(),
                c.metadata.generation.unwrap_or_default()
            ),
            Ok(Change::Deleted(c)) => format!("deleted {}", c.name_any()),
            Err(error) => format!("error {error}"),
        })
        .collect()
        .await
}

#[tokio::test]
async fn a_change_passes_once_and_a_status_write_never() {
    let mut status_written = kisi("a", 1);
    status_written.metadata.resource_version = Some("7".into());
    status_written.status = Some(Default::default());
    let got = lines(vec![
        Event::Apply(kisi("a", 1)),
        Event::Apply(status_written),
        Event::Apply(kisi("a", 2)),
        Event::Apply(kisi("a", 2)),
    ])
    .await;
    assert_eq!(got, ["applied kisi/1", "applied kisi/2"]);
}

#[tokio::test]
async fn a_deletion_passes_and_the_same_name_created_again_passes_too() {
    let got = lines(vec![
        Event::Apply(kisi("a", 1)),
        Event::Delete(kisi("a", 1)),
        // Created again under its name: generation 1 again, a new uid.
        Event::Apply(kisi("b", 1)),
        Event::Apply(kisi("b", 1)),
    ])
    .await;
    assert_eq!(got, ["applied kisi/1", "deleted kisi", "applied kisi/1"]);
}

#[tokio::test]
async fn an_object_of_the_same_name_with_another_uid_passes_without_a_deletion_seen() {
    let got = lines(vec![Event::Apply(kisi("a", 1)), Event::Apply(kisi("b", 1))]).await;
    assert_eq!(got, ["applied kisi/1", "applied kisi/1"]);
}

#[tokio::test]
async fn a_list_is_handed_on_when_complete_and_a_relist_reveals_what_went_meanwhile() {
    let got = lines(vec![
        Event::Init,
        Event::InitApply(named("a")),
        Event::InitApply(named("b")),
        Event::InitDone,
        // The watch broke; `b` was deleted and `c` created while it was down.
        Event::Init,
        Event::InitApply(named("a")),
        Event::InitApply(named("c")),
        Event::InitDone,
    ])
    .await;
    assert_eq!(
        got,
        ["applied a/1", "applied b/1", "deleted b", "applied c/1",]
    );
}

#[tokio::test]
async fn nothing_of_a_list_passes_before_it_is_complete() {
    let got = lines(vec![Event::Init, Event::InitApply(named("a"))]).await;
    assert!(got.is_empty(), "{got:?}");
}

#[tokio::test]
async fn every_subscriber_gets_the_changes_and_only_dependents_the_deletions() {
    let mut fan_out = FanOut::<VendorConnection>::new();
    let own = fan_out.changed();
    let dependent = fan_out.changed_or_deleted();
    let events = stream::iter(
        [
            Event::Apply(named("a")),
            Event::Delete(named("a")),
            Event::Apply(named("b")),
        ]
        .into_iter()
        .map(Ok),
    );
    fan_out
        .run(events, spec_or_request, "VendorConnection")
        .await;
    let names = |objects: Vec<Arc<VendorConnection>>| -> Vec<String> {
        objects.iter().map(|o| o.name_any()).collect()
    };
    assert_eq!(names(own.collect().await), ["a", "b"]);
    assert_eq!(names(dependent.collect().await), ["a", "a", "b"]);
}

/// Why `FanOut` exists: kube-runtime 5's `ReflectHandle` returns `Pending` without a wake-up
/// when a reference it reads names an object already gone from the store, so inside a
/// `SelectAll` (how a controller polls its triggers) it is never polled again and the objects
/// after it never arrive. When this fails, kube has fixed it, and `store_shared` may replace
/// `FanOut` for the changes (deletions would still need routing).
#[tokio::test]
async fn kube_reflect_handle_stalls_for_good_on_an_object_deleted_before_it_was_read() {
    use kube::runtime::{reflector, WatchStreamExt};
    use std::task::Poll;

    // What a subscriber polled as a controller polls it receives, after the watch ran ahead.
    async fn received(events: Vec<Event<VendorConnection>>) -> Vec<String> {
        let (_reader, writer) = reflector::store_shared::<VendorConnection>(16);
        let handle = writer.subscribe().expect("a shared store");
        let _: Vec<_> = stream::iter(events.into_iter().map(Ok))
            .reflect_shared(writer)
            .collect()
            .await;
        let mut triggers = stream::select_all([handle.boxed()]);
        let mut seen = Vec::new();
        for _ in 0..3 {
            if let Poll::Ready(Some(object)) = futures::poll!(triggers.next()) {
                seen.push(object.name_any());
            }
        }
        seen
    }

    // Nothing deleted: both arrive.
    let seen = received(vec![Event::Apply(named("a")), Event::Apply(named("b"))]).await;
    assert_eq!(seen, ["a", "b"]);
    // `a` broadcast, then deleted from the store before it was read, then `b` broadcast.
    let seen = received(vec![
        Event::Apply(named("a")),
        Event::Delete(named("a")),
        Event::Apply(named("b")),
    ])
    .await;
    assert!(
        seen.is_empty(),
        "kube's ReflectHandle no longer stalls (it delivered {seen:?})"
    );
}
