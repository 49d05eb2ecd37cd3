//! The watches that drive the three controllers and what each change reaches: spec changes
//! and the reconcile-request annotation (never status writes), the Secrets and connections a
//! binding or SiteMapping reads (their deletions included: what reads a deleted connection or
//! Secret reports it missing), verified OfficeRnD webhooks (applied to the shared picture in
//! place; only the bindings they can affect reconcile), each whole OfficeRnD read (its
//! connection re-checks the member count), the caches' initial fill (no reconcile before it)
//! and the periodic pruning of the per-object maps.
//!
//! One watch per kind, four in all (three when the SiteMapping CRD is not installed).
//! AccessGroupBindings and SiteMappings are read by one controller each and are reflected in
//! its main stream. VendorConnections and Secrets are read by all three controllers: each is
//! watched once and fanned out to them (`fan_out.rs`, which also says why kube's own
//! `store_shared` is not used); the connection cache is the one the controllers, the `Ctx`
//! and the webhook receiver share, and Secrets are watched as metadata only, with no cache.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use futures::{stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::api::{
    AccessGroupBinding, SiteMapping, VendorConnection, ACKNOWLEDGE_REVOCATION,
    RECONCILE_REQUESTED_AT,
};

use super::cluster::{lock, Ctx, PRUNE_INTERVAL};
use super::cluster_binding::{binding_error_policy, reconcile_binding};
use super::cluster_connection::{connection_error_policy, reconcile_connection};
use super::cluster_site_mapping::{
    announce_waiting_change, reconcile_site_mapping, site_mapping_error_policy,
};
use super::context::Context;
use super::controller::{
    scoped, serves_site_mappings, stopped, OperatorError, RunOptions, FIELD_MANAGER,
};
use super::desired;
use super::fan_out::{resource_version, FanOut};
use super::objects::Objects;
use super::orgs::{Applied, OrgCache};
use super::reconcile::{BINDING_KIND, CONNECTION_KIND, SITE_MAPPING_KIND};
use super::runner::ClientCache;
use super::server::{self, Health, WebhookTrigger};
use super::webhook_keys::WebhookKeys;

pub(super) async fn run_controllers(
    client: Client,
    options: &RunOptions,
    health: Arc<Health>,
    webhook_listener: Option<TcpListener>,
    stop: watch::Receiver<bool>,
) -> Result<(), OperatorError> {
    let namespace = options.namespace.as_deref();
    let connections_api = scoped::<VendorConnection>(&client, namespace);
    let bindings_api = scoped::<AccessGroupBinding>(&client, namespace);
    let mappings_api = scoped::<SiteMapping>(&client, namespace);
    let site_mappings_served = serves_site_mappings(&client, namespace).await?;
    if !site_mappings_served {
        tracing::warn!("the SiteMapping CRD is not installed, so SiteMappings are not reconciled: kubectl apply --server-side -f crds/flexgate.yaml");
    }
    // `Api<PartialObjectMeta<_>>` asks for metadata only: no Secret's data reaches the watch.
    let secrets_api: Api<PartialObjectMeta<KubeSecret>> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let watch_config = watcher::Config::default();

    // One watch per kind. Bindings and SiteMappings are read by one controller each, so each is
    // reflected in its controller's main stream. Connections and Secrets are read by all three
    // controllers: their one watch is fanned out (`fan_out.rs`), with deletions, to each.
    let (binding_reader, binding_writer) = reflector::store();
    // Managed fields (a kilobyte or two per object, three managers each) are never read: they
    // are dropped before the cache keeps hundreds of bindings.
    let bindings_stream = watcher(bindings_api.clone(), watch_config.clone())
        .default_backoff()
        .modify(|binding| binding.managed_fields_mut().clear())
        .reflect(binding_writer)
        .applied_objects()
        .predicate_filter(spec_or_request, Default::default());
    let (connection_reader, connection_writer) = reflector::store();
    let mut connections = FanOut::<VendorConnection>::new();
    let mut secrets = FanOut::<PartialObjectMeta<KubeSecret>>::new();
    // A connection's own reconcile follows its changes; the bindings and SiteMappings reading
    // it follow its deletion too (they report it missing), and everything reading a Secret
    // follows its deletion.
    let connections_for_connections = connections.changed();
    let connections_for_bindings = connections.changed_or_deleted();
    let secrets_for_bindings = secrets.changed_or_deleted();
    let secrets_for_connections = secrets.changed_or_deleted();
    // The SiteMapping controller subscribes only when it runs: a subscriber nobody reads would
    // hold the watch once its buffer is full.
    let for_mappings = site_mappings_served.then(|| {
        (
            connections.changed_or_deleted(),
            secrets.changed_or_deleted(),
        )
    });
    let shared_watches = {
        let connection_watch = connections.run(
            watcher(connections_api.clone(), watch_config.clone())
                .default_backoff()
                .reflect(connection_writer),
            spec_or_request,
            CONNECTION_KIND,
        );
        // Only names matter (a Secret is read from the API when a reconcile needs it): metadata
        // only, and of that only what identifies it.
        let secret_watch = secrets.run(
            watcher(secrets_api, watch_config.clone())
                .default_backoff()
                .modify(|secret| {
                    secret.metadata.managed_fields = None;
                    secret.metadata.annotations = None;
                    secret.metadata.labels = None;
                }),
            resource_version,
            "Secret",
        );
        let stop = stop.clone();
        async move {
            tokio::select! {
                _ = async { futures::join!(connection_watch, secret_watch) } => {}
                () = stopped(stop) => {}
            }
        }
    };
    let (mapping_reader, mapping_writer) = reflector::store();

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: Some(options.identity.clone()),
        },
    );
    // After each whole OfficeRnD read, its connection's check runs again to report the count.
    let (org_read_tx, org_read_rx) = mpsc::unbounded_channel::<(String, String)>();
    let org_reads = stream::unfold(org_read_rx, |mut rx| async move {
        let (namespace, name) = rx.recv().await?;
        Some((
            ObjectRef::<VendorConnection>::new(&name).within(&namespace),
            rx,
        ))
    });
    let (caches_tx, caches_rx) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        caches: caches_rx.clone(),
        connections: connection_reader.clone(),
        bindings: binding_reader.clone(),
        clients: Mutex::new(ClientCache::default()),
        orgs: OrgCache::new(options.clock.clone()).notify_reads(org_read_tx),
        recorder,
        metrics: options.metrics.clone(),
        clock: options.clock.clone(),
        deletion_timeout: options.deletion_timeout,
        min_backoff: options.min_backoff,
        max_backoff: options.max_backoff,
        failures: Mutex::new(HashMap::new()),
        accounts: Mutex::new(HashMap::new()),
        triggered: Mutex::new(HashMap::new()),
        site_syncs: Mutex::new(HashMap::new()),
        written: Mutex::new(HashMap::new()),
        webhook_keys: Arc::new(WebhookKeys::default()),
    });

    // SiteMappings: a new generation that arrives while a sync of the mapping runs is announced
    // in status (it is reconciled when that sync ends; see the module doc).
    let mappings_stream = {
        let ctx = ctx.clone();
        watcher(mappings_api, watch_config.clone())
            .default_backoff()
            .reflect(mapping_writer)
            .applied_objects()
            .predicate_filter(spec_or_request, Default::default())
            .inspect_ok(move |mapping| announce_waiting_change(&ctx, mapping))
    };

    // Webhooks: verified deliveries name their OfficeRnD connection; its bindings and
    // SiteMappings reconcile.
    let (webhook_tx, mut webhook_rx) = mpsc::channel::<WebhookTrigger>(256);
    // Deliveries wait in the listen queue until the caches are filled: a connection missing
    // from a half-filled cache would refuse a valid delivery.
    let webhook_server = webhook_listener.map(|listener| {
        let router = server::webhook_router(
            connection_reader.clone(),
            ctx.webhook_keys.clone(),
            webhook_tx.clone(),
            options.clock.clone(),
            options.metrics.clone(),
        );
        let mut caches = caches_rx.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            if caches.wait_for(|ready| *ready).await.is_err() {
                return Ok(());
            }
            server::serve(listener, router, stopped(stop)).await
        })
    });
    drop(webhook_tx);
    // Fan each delivery out to both controllers. A full controller queue holds the fan-out,
    // which fills the receiver's queue, so the webhook server still answers 503 under overload.
    let (binding_webhook_tx, binding_webhook_rx) = mpsc::channel::<WebhookTrigger>(256);
    let (mapping_webhook_tx, mapping_webhook_rx) = mpsc::channel::<WebhookTrigger>(256);
    tokio::spawn(async move {
        while let Some(trigger) = webhook_rx.recv().await {
            // A controller that has stopped no longer listens; the other one still may.
            let _ = binding_webhook_tx.send(trigger.clone()).await;
            if site_mappings_served {
                let _ = mapping_webhook_tx.send(trigger).await;
            }
        }
    });
    let mapping_webhook_triggers = {
        let mappings = mapping_reader.clone();
        stream::unfold(mapping_webhook_rx, |mut rx| async move {
            rx.recv().await.map(|trigger| (trigger, rx))
        })
        .flat_map(move |trigger: WebhookTrigger| {
            // Events about nothing a site sync reads (invoices, fees...) reconcile nothing.
            let relevant = !trigger.event.affected.is_empty();
            let refs: Vec<ObjectRef<SiteMapping>> = trigger
                .connections
                .iter()
                .filter(|_| relevant)
                .flat_map(|(namespace, name)| {
                    mappings
                        .state()
                        .iter()
                        .filter(|m| {
                            m.namespace().as_deref() == Some(namespace.as_str())
                                && m.spec.officernd_ref.name == *name
                        })
                        .map(|m| ObjectRef::from_obj(m.as_ref()))
                        .collect::<Vec<_>>()
                })
                .collect();
            tracing::info!(event = %trigger.event.event_type, site_mappings = refs.len(), "OfficeRnD change: reconciling the SiteMappings of its connection");
            stream::iter(refs)
        })
    };
    let webhook_triggers = {
        let ctx = ctx.clone();
        stream::unfold(binding_webhook_rx, move |mut rx| {
            let ctx = ctx.clone();
            async move {
                let trigger = rx.recv().await?;
                let refs = bindings_to_reconcile(&ctx, &trigger).await;
                Some((stream::iter(refs), rx))
            }
        })
        .flatten()
    };

    let controller_config = controller::Config::default().concurrency(options.concurrency.max(1));

    let binding_controller = {
        let bindings_for_connections = binding_reader.clone();
        let bindings_for_secrets = binding_reader.clone();
        let connections = connection_reader.clone();
        Controller::for_stream(bindings_stream, binding_reader.clone())
            .with_config(controller_config.clone())
            .watches_shared_stream(
                connections_for_bindings,
                move |connection: Arc<VendorConnection>| {
                    bindings_of_connection(
                        &bindings_for_connections,
                        &connection.namespace().unwrap_or_default(),
                        &connection.name_any(),
                    )
                },
            )
            .watches_shared_stream(secrets_for_bindings, move |secret| {
                let namespace = secret.namespace().unwrap_or_default();
                connections_of_secret(&connections, &namespace, &secret.name_any())
                    .iter()
                    .flat_map(|c| {
                        bindings_of_connection(&bindings_for_secrets, &namespace, &c.name_any())
                    })
                    .collect::<Vec<_>>()
            })
            .reconcile_on(webhook_triggers)
            .graceful_shutdown_on(stopped(stop.clone()))
            .run(reconcile_binding, binding_error_policy, ctx.clone())
            .for_each(|result| async move {
                if let Err(error) = result {
                    tracing::debug!(%error, "binding controller");
                }
            })
    };
    let connection_controller = {
        let connections = connection_reader.clone();
        Controller::for_shared_stream(connections_for_connections, connection_reader.clone())
            .with_config(controller_config.clone())
            .watches_shared_stream(secrets_for_connections, move |secret| {
                let namespace = secret.namespace().unwrap_or_default();
                connections_of_secret(&connections, &namespace, &secret.name_any())
                    .iter()
                    .map(|c| ObjectRef::from_obj(c.as_ref()))
                    .collect::<Vec<_>>()
            })
            .reconcile_on(org_reads)
            .graceful_shutdown_on(stopped(stop.clone()))
            .run(reconcile_connection, connection_error_policy, ctx.clone())
            .for_each(|result| async move {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection controller");
                }
            })
    };
    let mapping_controller =
        for_mappings.map(|(connections_for_mappings, secrets_for_mappings)| {
            let mappings_for_connections = mapping_reader.clone();
            let mappings_for_secrets = mapping_reader.clone();
            let connections = connection_reader.clone();
            Controller::for_stream(mappings_stream, mapping_reader.clone())
                .with_config(controller_config)
                .watches_shared_stream(
                    connections_for_mappings,
                    move |connection: Arc<VendorConnection>| {
                        mappings_of_connection(
                            &mappings_for_connections,
                            &connection.namespace().unwrap_or_default(),
                            &connection.name_any(),
                        )
                    },
                )
                .watches_shared_stream(secrets_for_mappings, move |secret| {
                    let namespace = secret.namespace().unwrap_or_default();
                    connections_of_secret(&connections, &namespace, &secret.name_any())
                        .iter()
                        .flat_map(|c| {
                            mappings_of_connection(&mappings_for_secrets, &namespace, &c.name_any())
                        })
                        .collect::<Vec<_>>()
                })
                .reconcile_on(mapping_webhook_triggers)
                .graceful_shutdown_on(stopped(stop.clone()))
                .run(
                    reconcile_site_mapping,
                    site_mapping_error_policy,
                    ctx.clone(),
                )
                .for_each(|result| async move {
                    if let Err(error) = result {
                        tracing::debug!(%error, "site mapping controller");
                    }
                })
        });
    let mapping_controller = async move {
        if let Some(controller) = mapping_controller {
            controller.await;
        }
    };
    // The gate: every reconcile waits for it, and `/readyz` follows it.
    let caches_filled = {
        let stores = (
            connection_reader.clone(),
            binding_reader.clone(),
            mapping_reader.clone(),
        );
        let mut stop = stop.clone();
        async move {
            let filled = async {
                stores.0.wait_until_ready().await.is_ok()
                    && stores.1.wait_until_ready().await.is_ok()
                    && (!site_mappings_served || stores.2.wait_until_ready().await.is_ok())
            };
            tokio::select! {
                filled = filled => if filled {
                    tracing::info!("caches filled: reconciling");
                    let _ = caches_tx.send(true);
                    health.set_ready(true);
                },
                _ = stop.wait_for(|raised| *raised) => {}
            }
        }
    };
    let pruning = {
        let (ctx, bindings, connections, mappings) = (
            ctx.clone(),
            binding_reader.clone(),
            connection_reader.clone(),
            mapping_reader.clone(),
        );
        let mut stop = stop.clone();
        async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(PRUNE_INTERVAL) => {}
                    _ = stop.wait_for(|raised| *raised) => return,
                }
                ctx.forget_deleted(|kind, namespace, name| match kind {
                    BINDING_KIND => bindings
                        .get(&ObjectRef::new(name).within(namespace))
                        .is_some(),
                    CONNECTION_KIND => connections
                        .get(&ObjectRef::new(name).within(namespace))
                        .is_some(),
                    SITE_MAPPING_KIND => mappings
                        .get(&ObjectRef::new(name).within(namespace))
                        .is_some(),
                    _ => true,
                });
            }
        }
    };
    tracing::info!(namespace = ?options.namespace, "controllers started; waiting for the caches");
    futures::join!(
        caches_filled,
        shared_watches,
        binding_controller,
        connection_controller,
        mapping_controller,
        pruning
    );
    tracing::info!("controllers stopped");
    if let Some(server) = webhook_server {
        if let Ok(Err(source)) = server.await {
            return Err(OperatorError::Serve {
                what: "webhook",
                source,
            });
        }
    }
    Ok(())
}

/// What passes the trigger filter: a spec change (generation), a new reconcile-request or
/// acknowledgement annotation, and the start of a deletion. Status writes do not.
pub(super) fn spec_or_request<K: Resource>(object: &K) -> Option<u64> {
    let meta = object.meta();
    let annotations = meta.annotations.as_ref();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    annotations
        .and_then(|a| a.get(RECONCILE_REQUESTED_AT))
        .hash(&mut hasher);
    annotations
        .and_then(|a| a.get(ACKNOWLEDGE_REVOCATION))
        .hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// Bindings in `namespace` that read from or write to the connection `name`.
pub(super) fn bindings_of_connection(
    bindings: &Store<AccessGroupBinding>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<AccessGroupBinding>> {
    bindings
        .state()
        .iter()
        .filter(|b| {
            b.namespace().as_deref() == Some(namespace)
                && (b.spec.officernd_ref.name == name || b.spec.vendor_ref.name == name)
        })
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// SiteMappings in `namespace` that read from or write to the connection `name`.
pub(super) fn mappings_of_connection(
    mappings: &Store<SiteMapping>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<SiteMapping>> {
    mappings
        .state()
        .iter()
        .filter(|m| {
            m.namespace().as_deref() == Some(namespace)
                && (m.spec.officernd_ref.name == name || m.spec.essensys_ref.name == name)
        })
        .map(|m| ObjectRef::from_obj(m.as_ref()))
        .collect()
}

/// Connections in `namespace` whose credentials live in the Secret `secret`.
pub(super) fn connections_of_secret(
    connections: &Store<VendorConnection>,
    namespace: &str,
    secret: &str,
) -> Vec<Arc<VendorConnection>> {
    connections
        .state()
        .into_iter()
        .filter(|c| {
            c.namespace().as_deref() == Some(namespace)
                && c.spec.credentials_secret_ref.name == secret
        })
        .collect()
}

/// Applies a verified OfficeRnD change to the shared picture of each connection it came for, and
/// returns the bindings whose answer it may change (every binding of the connection when it could
/// not be applied in place). Each is timed from now for the change-to-door latency histogram.
pub(super) async fn bindings_to_reconcile(
    ctx: &Ctx,
    trigger: &WebhookTrigger,
) -> Vec<ObjectRef<AccessGroupBinding>> {
    let mut refs = Vec::new();
    for (namespace, name) in &trigger.connections {
        let of_connection: Vec<Arc<AccessGroupBinding>> = ctx
            .bindings
            .state()
            .into_iter()
            .filter(|b| {
                b.namespace().as_deref() == Some(namespace.as_str())
                    && b.spec.officernd_ref.name == *name
            })
            .collect();
        let applied = ctx.orgs.apply(namespace, name, &trigger.event).await;
        let chosen: Vec<&Arc<AccessGroupBinding>> = match &applied {
            Applied::Nothing => Vec::new(),
            Applied::Everything(_) => of_connection.iter().collect(),
            Applied::Touched(touched, view) => {
                let objects = Objects {
                    connections: ctx.connections_in(namespace),
                    bindings: Vec::new(),
                    site_mappings: Vec::new(),
                    secrets: BTreeMap::new(),
                };
                let bindings: Vec<&AccessGroupBinding> =
                    of_connection.iter().map(AsRef::as_ref).collect();
                let context = Context::new(
                    format!("{namespace}/{name}"),
                    view.index.clone(),
                    view.members,
                    &objects,
                    &bindings,
                );
                let mut keys: Vec<&crate::engine::BindingKey> = context
                    .index
                    .affected_bindings(&context.bindings, touched)
                    .into_iter()
                    .filter_map(|position| context.bindings.get(position).map(|b| &b.key))
                    .collect();
                // A binding that cannot be mapped is reconciled too: its status says why.
                keys.extend(context.binding_errors.iter().map(|(key, _)| key));
                of_connection
                    .iter()
                    .filter(|b| keys.contains(&&desired::binding_key(b)))
                    .collect()
            }
        };
        for binding in chosen {
            lock(&ctx.triggered)
                .entry((namespace.clone(), binding.name_any()))
                .or_insert_with(tokio::time::Instant::now);
            refs.push(ObjectRef::from_obj(binding.as_ref()));
        }
        tracing::info!(event = %trigger.event.event_type, connection = %format!("{namespace}/{name}"), bindings = refs.len(), of = of_connection.len(), "OfficeRnD change applied: reconciling the bindings it may affect");
    }
    refs
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
