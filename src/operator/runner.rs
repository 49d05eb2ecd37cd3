//! The folder host: runs the reconcile pipelines (`reconcile/`) over an object set without a
//! cluster, as `flexgate run --manifests`, `demo` and the integration tests do. Each OfficeRnD
//! organization is read whole at most once per pass; one client per vendor account, shared by
//! all its bindings so rate limits and tokens are per account. Statuses live on the objects (as
//! a cluster keeps them), so the next pass knows what the last one wrote.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use crate::api::{
    AccessGroupBindingStatus, SiteMappingStatus, VendorConnection, VendorConnectionStatus,
};
use crate::clock::Clock;
use crate::engine::BindingKey;
use crate::officernd::OfficeRndClient;

use super::binding::BindingResult;
use super::clients::{self, DoorClient};
use super::connection::MemberCount;
use super::context::{self, ReadFailure};
use super::credentials;
use super::desired::binding_key;
use super::door_cache::DirectoryCache;
use super::objects::Objects;
use super::reconcile::{self, BuildError, Host, Picture, Reconciled, Stop};

/// Keeps one door client per vendor connection, rebuilt when the connection or its Secret
/// changes (rotated credentials take effect on the next reconcile).
#[derive(Default)]
pub struct ClientCache {
    door: BTreeMap<(String, String), DoorEntry>,
}

/// A door client, the connection and Secret it was built from, and its cached directory.
struct DoorEntry {
    fingerprint: String,
    client: Arc<DoorClient>,
    directory: Arc<DirectoryCache>,
}

impl ClientCache {
    /// Drops the clients of connections `exists` no longer knows (`namespace`, `name`), so a
    /// long-running operator keeps no client, token or directory of a deleted connection.
    pub fn forget_deleted(&mut self, exists: impl Fn(&str, &str) -> bool) {
        self.door
            .retain(|(namespace, name), _| exists(namespace, name));
    }

    /// The door client for the VendorConnection `namespace/name` and its directory cache,
    /// shared (so a controller can release the cache before the slow vendor calls and one
    /// account's outage blocks no other). A new client starts with an empty directory.
    pub fn door_shared(
        &mut self,
        objects: &Objects,
        namespace: &str,
        name: &str,
        clock: &Clock,
    ) -> Result<(Arc<DoorClient>, Arc<DirectoryCache>), BuildError> {
        let connection =
            objects
                .connection(namespace, name)
                .ok_or_else(|| Stop::ConnectionNotFound {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    field: "vendorRef",
                })?;
        let secret = objects.secret(namespace, &connection.spec.credentials_secret_ref.name);
        let fingerprint = format!(
            "{:?}|{:?}",
            connection.spec,
            secret.map(|s| (
                &s.data,
                &s.string_data,
                s.metadata.resource_version.as_ref()
            ))
        );
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(entry) = self.door.get(&key).filter(|e| e.fingerprint == fingerprint) {
            return Ok((entry.client.clone(), entry.directory.clone()));
        }
        let credentials = credentials::read(connection, namespace, secret)?;
        let client = clients::door(connection, &credentials, clock.clone()).map_err(|source| {
            BuildError::Settings {
                connection: format!("{namespace}/{name}"),
                source,
            }
        })?;
        let entry = DoorEntry {
            fingerprint,
            client: Arc::new(client),
            directory: Arc::new(DirectoryCache::default()),
        };
        let shared = (entry.client.clone(), entry.directory.clone());
        self.door.insert(key, entry);
        Ok(shared)
    }
}

/// The host of one pass over a folder's objects.
pub struct FolderHost<'a> {
    clients: Mutex<&'a mut ClientCache>,
    clock: Clock,
    /// Each OfficeRnD organization's picture, read at most once per pass.
    pictures: tokio::sync::Mutex<BTreeMap<(String, String), Result<Picture, ReadFailure>>>,
}

impl<'a> FolderHost<'a> {
    /// A host for one pass, with the clients kept across passes.
    pub fn new(clients: &'a mut ClientCache, clock: &Clock) -> Self {
        Self {
            clients: Mutex::new(clients),
            clock: clock.clone(),
            pictures: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }
}

impl Host for FolderHost<'_> {
    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn door(
        &self,
        objects: &Objects,
        namespace: &str,
        name: &str,
    ) -> Result<(Arc<DoorClient>, Arc<DirectoryCache>), BuildError> {
        self.clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .door_shared(objects, namespace, name, &self.clock)
    }

    async fn picture(
        &self,
        objects: &Objects,
        namespace: &str,
        name: &str,
    ) -> Result<Picture, BuildError> {
        let mut pictures = self.pictures.lock().await;
        let key = (namespace.to_owned(), name.to_owned());
        let picture = match pictures.entry(key) {
            std::collections::btree_map::Entry::Occupied(read) => read.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => {
                let read = async {
                    let connection = context::officernd_connection(objects, namespace, name)?;
                    let secret =
                        objects.secret(namespace, &connection.spec.credentials_secret_ref.name);
                    let client = context::officernd_client(connection, namespace, secret)?;
                    let reads = context::bindings_read(objects, namespace, name);
                    let (index, members) = context::read_indexed(&client, reads).await?;
                    Ok(Picture {
                        index: Arc::new(index),
                        members,
                    })
                };
                slot.insert(read.await)
            }
        };
        picture.clone().map_err(|source| BuildError::OfficeRnd {
            connection: format!("{namespace}/{name}"),
            source,
        })
    }

    fn officernd(
        &self,
        _objects: &Objects,
        _namespace: &str,
        _name: &str,
    ) -> Option<OfficeRndClient> {
        None
    }

    /// As in the cluster: the horizon of the picture the bindings read in this pass.
    fn booking_horizon(&self, connection: &VendorConnection) -> Option<DateTime<Utc>> {
        let key = (
            connection.namespace().unwrap_or_default(),
            connection.name_any(),
        );
        self.pictures.try_lock().ok().and_then(|pictures| {
            pictures
                .get(&key)
                .and_then(|picture| picture.as_ref().ok())
                .and_then(|picture| picture.index.booking_horizon())
        })
    }

    /// As in the cluster: the count of the picture the bindings read (in this pass), none when
    /// no binding reads the organization.
    fn member_count(&self, connection: &VendorConnection) -> MemberCount {
        let key = (
            connection.namespace().unwrap_or_default(),
            connection.name_any(),
        );
        let members = self.pictures.try_lock().ok().and_then(|pictures| {
            pictures
                .get(&key)
                .and_then(|picture| picture.as_ref().ok())
                .map(|picture| picture.members)
        });
        MemberCount::Known(members)
    }
}

/// The result of one pass over all bindings.
pub struct Pass {
    /// Each binding's result.
    pub results: Vec<(BindingKey, BindingResult)>,
    /// Each binding's reconcile: status, Events, metrics, requeue.
    pub reconciled: Vec<(BindingKey, Reconciled<AccessGroupBindingStatus>)>,
    /// The earliest instant at which any binding's access changes by time alone.
    pub next_change_at: Option<DateTime<Utc>>,
}

/// Reconciles every binding of `objects` at `at` through the binding pipeline, reading each
/// OfficeRnD organization whole once.
pub async fn reconcile_all(
    objects: &Objects,
    at: DateTime<Utc>,
    clients: &mut ClientCache,
    clock: &Clock,
) -> Pass {
    let host = FolderHost::new(clients, clock);
    bindings_pass(&host, objects, at).await
}

/// Every binding of `objects` through the binding pipeline on `host`, in key order.
pub async fn bindings_pass(host: &FolderHost<'_>, objects: &Objects, at: DateTime<Utc>) -> Pass {
    let mut order: Vec<_> = objects.bindings.iter().collect();
    order.sort_by_key(|b| binding_key(b));
    let mut pass = Pass {
        results: Vec::new(),
        reconciled: Vec::new(),
        next_change_at: None,
    };
    for binding in order {
        let key = binding_key(binding);
        let (result, reconciled) = reconcile::binding::reconcile(host, objects, binding, at).await;
        pass.next_change_at = earliest(pass.next_change_at, result.next_change_at);
        pass.results.push((key.clone(), result));
        pass.reconciled.push((key, reconciled));
    }
    pass
}

/// Stores each binding's new status on its object, as a cluster would, and returns them: the
/// next pass then knows when each group last changed (the revocation guard asks) and an idle
/// pass rewrites nothing. The statuses are the pipeline's (`now` is kept for callers).
pub fn record_statuses(
    objects: &mut Objects,
    pass: &Pass,
    _now: DateTime<Utc>,
) -> Vec<(BindingKey, AccessGroupBindingStatus)> {
    let mut statuses = Vec::new();
    for (key, reconciled) in &pass.reconciled {
        let Some(binding) = objects.bindings.iter_mut().find(|b| binding_key(b) == *key) else {
            continue;
        };
        binding.status = Some(reconciled.status.clone());
        statuses.push((key.clone(), reconciled.status.clone()));
    }
    statuses
}

/// Checks every connection through the connection pipeline and keeps each status on its
/// object.
pub async fn connections_pass(
    host: &FolderHost<'_>,
    objects: &mut Objects,
    at: DateTime<Utc>,
) -> Vec<Reconciled<VendorConnectionStatus>> {
    let mut all = Vec::new();
    for position in 0..objects.connections.len() {
        let connection = objects.connections[position].clone();
        let reconciled = reconcile::connection::reconcile(host, objects, &connection, at).await;
        objects.connections[position].status = Some(reconciled.status.clone());
        all.push(reconciled);
    }
    all
}

/// Syncs every SiteMapping through the SiteMapping pipeline and keeps each status on its
/// object.
pub async fn site_mappings_pass(
    host: &FolderHost<'_>,
    objects: &mut Objects,
    at: DateTime<Utc>,
) -> Vec<Reconciled<SiteMappingStatus>> {
    let mut all = Vec::new();
    for position in 0..objects.site_mappings.len() {
        let mapping = objects.site_mappings[position].clone();
        let reconciled = reconcile::site_mapping::reconcile(host, objects, &mapping, at).await;
        objects.site_mappings[position].status = Some(reconciled.status.clone());
        all.push(reconciled);
    }
    all
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One object's reconcile in a folder pass.
pub struct Done<S> {
    /// The kind.
    pub kind: &'static str,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Whether the status differs from the one it replaced (the cluster would write it).
    pub changed: bool,
    /// What the pipeline decided.
    pub reconciled: Reconciled<S>,
}

impl<S> Done<S> {
    /// The Events the cluster would publish: always the pipeline's, and those kept for a
    /// status change when the status changed.
    pub fn events(&self) -> impl Iterator<Item = &reconcile::Notice> {
        let changed: &[reconcile::Notice] = if self.changed {
            &self.reconciled.on_change
        } else {
            &[]
        };
        self.reconciled.events.iter().chain(changed)
    }
}

/// Everything one folder pass did, in the order the statuses are printed.
pub struct FolderPass {
    /// Each connection's check.
    pub connections: Vec<Done<VendorConnectionStatus>>,
    /// Each binding's sync.
    pub bindings: Vec<Done<AccessGroupBindingStatus>>,
    /// Each SiteMapping's sync.
    pub site_mappings: Vec<Done<SiteMappingStatus>>,
}

impl FolderPass {
    /// Whether every object is Ready.
    pub fn all_ready(&self) -> bool {
        self.connections.iter().all(|d| d.reconciled.outcome.ready)
            && self.bindings.iter().all(|d| d.reconciled.outcome.ready)
            && self
                .site_mappings
                .iter()
                .all(|d| d.reconciled.outcome.ready)
    }

    /// How long until the next pass: the soonest requeue of any object (a failure waits for its
    /// resync here: a folder has nobody to back off for).
    pub fn next_pass_in(&self, now: DateTime<Utc>) -> std::time::Duration {
        let delay = |requeue: &reconcile::Requeue| requeue.delay(|| requeue.resync, |r| r, now);
        self.connections
            .iter()
            .map(|d| delay(&d.reconciled.requeue))
            .chain(self.bindings.iter().map(|d| delay(&d.reconciled.requeue)))
            .chain(
                self.site_mappings
                    .iter()
                    .map(|d| delay(&d.reconciled.requeue)),
            )
            .min()
            .unwrap_or(crate::api::vendor_connection::DEFAULT_SYNC_INTERVAL)
    }
}

/// One pass over every object of `objects` at `now`, as the cluster would reconcile them:
/// bindings, then SiteMappings, then connections, each through its pipeline; the new statuses
/// are kept on the objects.
pub async fn pass(
    objects: &mut Objects,
    now: DateTime<Utc>,
    clients: &mut ClientCache,
    clock: &Clock,
) -> FolderPass {
    first_generation(objects);
    let host = FolderHost::new(clients, clock);
    // Bindings first: a connection check reports the member count of the picture they read.
    let bindings_pass = bindings_pass(&host, objects, now).await;
    let mut bindings = Vec::new();
    for (key, reconciled) in bindings_pass.reconciled {
        let Some(binding) = objects.bindings.iter_mut().find(|b| binding_key(b) == key) else {
            continue;
        };
        let changed = binding.status.as_ref() != Some(&reconciled.status);
        binding.status = Some(reconciled.status.clone());
        bindings.push(Done {
            kind: reconcile::BINDING_KIND,
            namespace: key.namespace,
            name: key.name,
            changed,
            reconciled,
        });
    }
    let before: Vec<_> = objects
        .site_mappings
        .iter()
        .map(|m| m.status.clone())
        .collect();
    let site_mappings = site_mappings_pass(&host, objects, now).await;
    let site_mappings = objects
        .site_mappings
        .iter()
        .zip(before)
        .zip(site_mappings)
        .map(|((object, before), reconciled)| Done {
            kind: reconcile::SITE_MAPPING_KIND,
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
            changed: before.as_ref() != Some(&reconciled.status),
            reconciled,
        })
        .collect();
    let before: Vec<_> = objects
        .connections
        .iter()
        .map(|c| c.status.clone())
        .collect();
    let connections = connections_pass(&host, objects, now).await;
    let connections = objects
        .connections
        .iter()
        .zip(before)
        .zip(connections)
        .map(|((object, before), reconciled)| Done {
            kind: reconcile::CONNECTION_KIND,
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
            changed: before.as_ref() != Some(&reconciled.status),
            reconciled,
        })
        .collect();
    FolderPass {
        connections,
        bindings,
        site_mappings,
    }
}

/// Objects read from manifests carry no generation: they start at 1, as the API server starts
/// them, so `observedGeneration` reads the same in both hosts.
fn first_generation(objects: &mut Objects) {
    let metas = objects
        .connections
        .iter_mut()
        .map(|o| &mut o.metadata)
        .chain(objects.bindings.iter_mut().map(|o| &mut o.metadata))
        .chain(objects.site_mappings.iter_mut().map(|o| &mut o.metadata));
    for meta in metas {
        meta.generation.get_or_insert(1);
    }
}

/// The generation of an object re-read from manifests: the previous one, one up when its spec
/// changed (as the API server counts).
fn next_generation<S: PartialEq>(old: Option<(&S, Option<i64>)>, spec: &S) -> Option<i64> {
    let (old_spec, generation) = old?;
    let generation = generation.unwrap_or(1);
    Some(if old_spec == spec {
        generation
    } else {
        generation + 1
    })
}

/// Keeps the statuses of `old` on the same objects of `fresh` (re-read manifests), and counts
/// their generations: statuses live with the objects here, and an edit keeps them, as in a
/// cluster.
pub fn carry_statuses(fresh: &mut Objects, old: &Objects) {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let same = |a: &ObjectMeta, b: &ObjectMeta| a.namespace == b.namespace && a.name == b.name;
    for connection in &mut fresh.connections {
        let before = old
            .connections
            .iter()
            .find(|o| same(&o.metadata, &connection.metadata));
        connection.metadata.generation = next_generation(
            before.map(|o| (&o.spec, o.metadata.generation)),
            &connection.spec,
        );
    }
    for binding in &mut fresh.bindings {
        let before = old
            .bindings
            .iter()
            .find(|o| same(&o.metadata, &binding.metadata));
        binding.metadata.generation = next_generation(
            before.map(|o| (&o.spec, o.metadata.generation)),
            &binding.spec,
        );
    }
    for mapping in &mut fresh.site_mappings {
        let before = old
            .site_mappings
            .iter()
            .find(|o| same(&o.metadata, &mapping.metadata));
        mapping.metadata.generation = next_generation(
            before.map(|o| (&o.spec, o.metadata.generation)),
            &mapping.spec,
        );
    }
    for connection in &mut fresh.connections {
        connection.status = old
            .connections
            .iter()
            .find(|o| same(&o.metadata, &connection.metadata))
            .and_then(|o| o.status.clone());
    }
    for binding in &mut fresh.bindings {
        binding.status = old
            .bindings
            .iter()
            .find(|o| same(&o.metadata, &binding.metadata))
            .and_then(|o| o.status.clone());
    }
    for mapping in &mut fresh.site_mappings {
        mapping.status = old
            .site_mappings
            .iter()
            .find(|o| same(&o.metadata, &mapping.metadata))
            .and_then(|o| o.status.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::reconcile::fixtures::objects;

    #[test]
    fn a_deleted_connections_client_is_forgotten() {
        let mut objects = objects(None);
        let secret: k8s_openapi::api::core::v1::Secret = serde_yaml::from_str(
            "metadata: {name: kisi-credentials, namespace: doors}\nstringData: {apiKey: not-a-real-key}",
        )
        .expect("a Secret");
        objects
            .secrets
            .insert(("doors".into(), "kisi-credentials".into()), secret);
        let clock = crate::clock::system_clock();
        let mut cache = ClientCache::default();
        let (first, _) = cache
            .door_shared(&objects, "doors", "kisi", &clock)
            .expect("a client");
        let (again, _) = cache
            .door_shared(&objects, "doors", "kisi", &clock)
            .expect("a client");
        assert!(Arc::ptr_eq(&first, &again), "one client per account");
        cache.forget_deleted(|_, name| name != "kisi");
        assert!(cache.door.is_empty());
    }

    #[test]
    fn a_re_read_manifest_keeps_its_status_and_counts_a_spec_change_as_a_generation() {
        use crate::operator::reconcile::fixtures::binding;
        let mut old = objects(None);
        old.bindings.push(binding("lobby", "officernd", "kisi"));
        old.bindings.push(binding("annex", "officernd", "kisi"));
        first_generation(&mut old);
        old.bindings[0].status = Some(AccessGroupBindingStatus {
            last_handled_reconcile_at: Some("kept".into()),
            ..Default::default()
        });
        let mut fresh = objects(None);
        fresh.bindings.push(binding("lobby", "officernd", "kisi"));
        let mut edited = binding("annex", "officernd", "kisi");
        edited.spec.suspend = true;
        fresh.bindings.push(edited);
        fresh.bindings.push(binding("new", "officernd", "kisi"));
        for b in &mut fresh.bindings {
            b.metadata.generation = None;
        }
        carry_statuses(&mut fresh, &old);
        first_generation(&mut fresh);
        let generations: Vec<Option<i64>> = fresh
            .bindings
            .iter()
            .map(|b| b.metadata.generation)
            .collect();
        assert_eq!(generations, [Some(1), Some(2), Some(1)]);
        assert_eq!(fresh.bindings[0].status, old.bindings[0].status);
        assert!(fresh.bindings[2].status.is_none());
    }
}
