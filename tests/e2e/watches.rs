//! The operator's watches on the real server: one watch per kind serves all three controllers
//! (counted on a recording layer of its client), and a deletion reaches every object that
//! depends on what was deleted, as does the same name created again.

use std::time::Instant;

use flexgate::api::{Vendor, VendorConnection};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, PostParams};
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::support::calls::Calls;
use crate::support::{mapping_ready, wait_until, Operator, World, KISI_BINDINGS};

/// The Ready reason of every named binding, whatever generation it describes.
async fn binding_reasons(world: &World, names: &[&str]) -> Vec<Option<String>> {
    let mut reasons = Vec::new();
    for name in names {
        let reason = world.binding(name).await.and_then(|b| {
            let status = b.status?;
            flexgate::api::conditions::find(&status.conditions, flexgate::api::conditions::READY)
                .map(|c| c.reason.clone())
        });
        reasons.push(reason);
    }
    reasons
}

async fn wait_binding_reasons(world: &World, reason: &str) {
    wait_until(&format!("{KISI_BINDINGS:?} say {reason}"), async || {
        binding_reasons(world, &KISI_BINDINGS)
            .await
            .iter()
            .all(|r| r.as_deref() == Some(reason))
    })
    .await;
}

/// Waits until the SiteMapping `london` says `reason`, whatever generation it describes.
async fn wait_mapping_reason(world: &World, reason: &str) {
    wait_until(&format!("london says {reason}"), async || {
        world
            .site_mapping("london")
            .await
            .and_then(|m| {
                let generation = m.metadata.generation?;
                mapping_ready(&m, generation)
            })
            .is_some_and(|(_, r)| r == reason)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_watch_per_kind_and_every_deletion_reaches_what_depends_on_it() {
    let Some(world) = World::with(
        "watches",
        &[Vendor::OfficeRnD, Vendor::Kisi, Vendor::Essensys],
        &KISI_BINDINGS,
        &["london"],
    )
    .await
    else {
        return;
    };
    let started = Instant::now();
    let kubeconfig = Kubeconfig::read_from(&world.cluster.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    let calls = Calls::default();
    let client = ClientBuilder::try_from(config)
        .expect("client")
        .with_layer(&calls)
        .build();
    let operator = Operator::start(client, world.options("e2e-replica")).await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    world.wait_connection("kisi", "True", "Synced").await;
    wait_mapping_reason(&world, "AwaitingApproval").await;

    // The Kisi Secret deleted: its connection and every binding writing through it say so.
    let secrets = world.api::<Secret>();
    let secret = secrets.get("kisi-credentials").await.expect("secret");
    secrets
        .delete("kisi-credentials", &DeleteParams::default())
        .await
        .expect("secret deleted");
    world
        .wait_connection("kisi", "False", "SecretNotFound")
        .await;
    wait_binding_reasons(&world, "SecretNotFound").await;
    // Created again under its name: everything recovers without a restart.
    let mut again = secret.clone();
    again.metadata.resource_version = None;
    again.metadata.uid = None;
    again.metadata.creation_timestamp = None;
    again.metadata.managed_fields = None;
    secrets
        .create(&PostParams::default(), &again)
        .await
        .expect("secret created again");
    world.wait_connection("kisi", "True", "Synced").await;
    wait_binding_reasons(&world, "Synced").await;

    // The essensys connection deleted: the SiteMapping writing to it reports it missing.
    let connections = world.api::<VendorConnection>();
    connections
        .delete("essensys", &DeleteParams::default())
        .await
        .expect("connection deleted");
    wait_mapping_reason(&world, "ReferenceNotFound").await;

    // The Kisi connection deleted: its bindings report it missing; created again under its name
    // (generation 1 again, a new uid), it is checked and they sync again.
    let kisi = connections.get("kisi").await.expect("connection");
    connections
        .delete("kisi", &DeleteParams::default())
        .await
        .expect("connection deleted");
    wait_binding_reasons(&world, "ReferenceNotFound").await;
    wait_until("kisi is gone", async || {
        world.connection("kisi").await.is_none()
    })
    .await;
    let mut again = kisi.clone();
    again.metadata.resource_version = None;
    again.metadata.uid = None;
    again.metadata.creation_timestamp = None;
    again.metadata.managed_fields = None;
    again.metadata.generation = None;
    again.status = None;
    connections
        .create(&PostParams::default(), &again)
        .await
        .expect("connection created again");
    world.wait_connection("kisi", "True", "Synced").await;
    wait_binding_reasons(&world, "Synced").await;

    // One watch per kind for all three controllers (a watch ends after the server's timeout,
    // about five minutes, and is then opened again).
    let allowed = 1 + (started.elapsed().as_secs() / 290) as usize;
    let watched = calls.watched();
    let of = |resource: &str| watched.iter().filter(|r| *r == resource).count();
    println!("watch requests: {watched:?}");
    for resource in [
        "accessgroupbindings",
        "vendorconnections",
        "sitemappings",
        "secrets",
    ] {
        let opened = of(resource);
        assert!(
            (1..=allowed).contains(&opened),
            "{resource}: {opened} watches opened, expected 1 (up to {allowed}): {watched:?}"
        );
    }
    assert_eq!(
        watched.len(),
        of("accessgroupbindings") + of("vendorconnections") + of("sitemappings") + of("secrets"),
        "no other kind is watched: {watched:?}"
    );
    operator.stop().await;
    world.finish().await;
}
