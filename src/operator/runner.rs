//! Reconciles AccessGroupBindings, outside or inside a cluster: every binding of an object set
//! in one pass (one OfficeRnD read per organization), or one binding against the shared picture
//! of its organization; one client per vendor account, shared by all its bindings so rate limits
//! and tokens are per account.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use crate::api::conditions::Reason;
use crate::clock::Clock;
use crate::engine::BindingKey;

use super::binding::{self, BindingResult};
use super::clients::{self, DoorClient};
use super::context::{self, Context};
use super::credentials;
use super::door_cache::DirectoryCache;
use super::objects::Objects;
use super::orgs::OrgView;

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
    fn door(
        &mut self,
        objects: &Objects,
        namespace: &str,
        name: &str,
        clock: &Clock,
    ) -> Result<&DoorClient, (Reason, String)> {
        let connection = objects.connection(namespace, name).ok_or_else(|| {
            (
                Reason::ReferenceNotFound,
                format!("VendorConnection {namespace}/{name} (vendorRef) not found"),
            )
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
        let stale = self
            .door
            .get(&key)
            .is_none_or(|entry| entry.fingerprint != fingerprint);
        if stale {
            let credentials = credentials::read(connection, namespace, secret)
                .map_err(|e| (Reason::SecretNotFound, e.to_string()))?;
            let client = clients::door(connection, &credentials, clock.clone())
                .map_err(|e| (Reason::InvalidSpec, e))?;
            self.door.insert(
                key.clone(),
                DoorEntry {
                    fingerprint,
                    client: Arc::new(client),
                    directory: Arc::new(DirectoryCache::default()),
                },
            );
        }
        self.door
            .get(&key)
            .map(|entry| entry.client.as_ref())
            .ok_or_else(|| (Reason::InvalidSpec, "no client".to_owned()))
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
    ) -> Result<(Arc<DoorClient>, Arc<DirectoryCache>), (Reason, String)> {
        self.door(objects, namespace, name, clock)?;
        self.door
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|entry| (entry.client.clone(), entry.directory.clone()))
            .ok_or_else(|| (Reason::InvalidSpec, "no client".to_owned()))
    }
}

/// The result of one pass over all bindings.
pub struct Pass {
    /// Each binding's result.
    pub results: Vec<(BindingKey, BindingResult)>,
    /// The earliest instant at which any binding's access changes by time alone.
    pub next_change_at: Option<DateTime<Utc>>,
}

/// Reconciles every binding of `objects` at `at`, reading each OfficeRnD organization whole once.
pub async fn reconcile_all(
    objects: &Objects,
    at: DateTime<Utc>,
    clients: &mut ClientCache,
    clock: &Clock,
) -> Pass {
    let mut results = Vec::new();
    let mut next_change_at: Option<DateTime<Utc>> = None;
    for context in context::build_all(objects).await {
        let context = match context {
            Ok(context) => context,
            Err((officernd, keys, error)) => {
                for key in keys {
                    let result = BindingResult::not_ready(
                        error.reason,
                        format!("OfficeRnD connection {officernd}: {error}"),
                    );
                    results.push((key, result));
                }
                continue;
            }
        };
        for (key, error) in &context.binding_errors {
            results.push((
                key.clone(),
                BindingResult::not_ready(error.reason, error.message.clone()),
            ));
        }
        for binding in &objects.bindings {
            let key = super::desired::binding_key(binding);
            if !context.bindings.iter().any(|b| b.key == key) {
                continue;
            }
            let namespace = binding.namespace().unwrap_or_default();
            let result =
                match clients.door(objects, &namespace, &binding.spec.vendor_ref.name, clock) {
                    Ok(client) => {
                        binding::reconcile(
                            binding,
                            objects,
                            context.entitlements(at),
                            client,
                            false,
                        )
                        .await
                    }
                    Err((reason, message)) => BindingResult::not_ready(reason, message),
                };
            next_change_at = earliest(next_change_at, result.next_change_at);
            results.push((key, result));
        }
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    Pass {
        results,
        next_change_at,
    }
}

/// Stores each binding's new status on its object, as a cluster would, and returns them: the
/// next pass then knows when each group last changed (the revocation guard asks) and an idle
/// pass rewrites nothing. Timestamps are whole seconds, as Kubernetes stores them.
pub fn record_statuses(
    objects: &mut Objects,
    pass: &Pass,
    now: DateTime<Utc>,
) -> Vec<(BindingKey, crate::api::AccessGroupBindingStatus)> {
    let stamp = |at: DateTime<Utc>| {
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(at.timestamp()).unwrap_or_default(),
        )
    };
    let mut statuses = Vec::new();
    for (key, result) in &pass.results {
        let Some(binding) = objects
            .bindings
            .iter_mut()
            .find(|b| super::desired::binding_key(b) == *key)
        else {
            continue;
        };
        let handled = binding
            .annotations()
            .get(crate::api::RECONCILE_REQUESTED_AT)
            .cloned();
        let status = result.to_status(
            &binding.status.clone().unwrap_or_default(),
            binding.metadata.generation,
            handled,
            pass.next_change_at.map(stamp),
            stamp(now),
        );
        binding.status = Some(status.clone());
        statuses.push((key.clone(), status));
    }
    statuses
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reconciles one binding (the cluster controller's unit of work) against `view`, the shared
/// picture of its OfficeRnD organization: the bindings that share its OfficeRnD and vendor
/// connections are mapped onto the engine, those naming one of its groups are evaluated (so a
/// group named by several bindings gets their union), and the binding syncs through `vendor`.
/// With `deleting`, the binding is left out of the evaluation and the sync removes exactly the
/// access it alone granted. Bindings on the same vendor connection that read another OfficeRnD
/// connection are not part of the union (an unusual set-up).
pub async fn reconcile_binding<V: crate::vendors::DoorVendor>(
    objects: &Objects,
    binding: &crate::api::AccessGroupBinding,
    view: &OrgView,
    at: DateTime<Utc>,
    vendor: &V,
    deleting: bool,
) -> BindingResult {
    let namespace = binding.namespace().unwrap_or_default();
    let key = super::desired::binding_key(binding);
    let related = |other: &crate::api::AccessGroupBinding| {
        other.namespace().as_deref() == Some(namespace.as_str())
            && other.spec.officernd_ref == binding.spec.officernd_ref
            && other.spec.vendor_ref == binding.spec.vendor_ref
            && super::desired::binding_key(other) != key
    };
    let mut scoped = Objects {
        connections: objects.connections.clone(),
        bindings: objects
            .bindings
            .iter()
            .filter(|b| related(b))
            .cloned()
            .collect(),
        site_mappings: Vec::new(),
        secrets: objects.secrets.clone(),
    };
    // The binding itself is always part of the set; when deleting, it is left out of the
    // evaluation only.
    scoped.bindings.push(binding.clone());
    let mapped: Vec<&crate::api::AccessGroupBinding> = scoped.bindings.iter().collect();
    let context = Context::new(
        format!("{namespace}/{}", binding.spec.officernd_ref.name),
        view.index.clone(),
        view.members,
        &scoped,
        &mapped,
    );
    if !deleting {
        if let Some((_, error)) = context.binding_errors.iter().find(|(k, _)| *k == key) {
            return BindingResult::not_ready(error.reason, error.message.clone());
        }
    }
    let entitlements = context.entitlements(at);
    drop(context);
    binding::reconcile(binding, &scoped, entitlements, vendor, deleting).await
}
