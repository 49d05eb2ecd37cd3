//! One OfficeRnD organization's evaluation context: an indexed picture of it, and the bindings
//! that read from it mapped onto the engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use crate::api::{AccessGroupBinding, SiteMapping, VendorConnection};
use crate::engine::{Binding, BindingKey, Index};
use crate::officernd::{snapshot, CollectionSet, Feature, OfficeRndClient};

use super::binding::Entitlements;
use super::credentials;
use super::desired::{binding_key, engine_binding, Unmapped};
use super::objects::Objects;
pub use super::reconcile::errors::ReadFailure;

/// Everything the engine needs for the bindings of one OfficeRnD connection.
pub struct Context {
    /// The OfficeRnD connection as `namespace/name`.
    pub officernd: String,
    /// The indexed snapshot.
    pub index: Arc<Index>,
    /// How many members the snapshot held (for the empty-snapshot guard).
    pub members: usize,
    /// Bindings mapped onto the engine.
    pub bindings: Vec<Binding>,
    /// Bindings that could not be mapped, with why.
    pub binding_errors: Vec<(BindingKey, Unmapped)>,
}

impl Context {
    /// Maps `bindings` onto the engine against the picture `index` of `officernd`.
    pub fn new(
        officernd: String,
        index: Arc<Index>,
        members: usize,
        objects: &Objects,
        bindings: &[&AccessGroupBinding],
    ) -> Context {
        let mut engine_bindings = Vec::new();
        let mut binding_errors = Vec::new();
        for binding in bindings {
            match engine_binding(binding, objects, &index) {
                Ok(mapped) => engine_bindings.push(mapped),
                Err(error) => binding_errors.push((binding_key(binding), error)),
            }
        }
        Context {
            officernd,
            index,
            members,
            bindings: engine_bindings,
            binding_errors,
        }
    }

    /// What a binding reconcile needs from this context at `at`.
    pub fn entitlements(&self, at: DateTime<Utc>) -> Entitlements {
        Entitlements {
            index: self.index.clone(),
            bindings: self.bindings.clone(),
            unmapped: self.binding_errors.clone(),
            members: self.members,
            at,
        }
    }
}

/// Reads OfficeRnD whole once per OfficeRnD connection used by any binding and builds a context
/// for each (the one-shot paths: `run --manifests`, `plan`, `explain`, the demo). A connection
/// whose credentials or data cannot be read yields an error for all of its bindings, never a
/// partial context.
pub async fn build_all(
    objects: &Objects,
) -> Vec<Result<Context, (String, Vec<BindingKey>, ReadFailure)>> {
    let mut by_officernd: BTreeMap<(String, String), Vec<&AccessGroupBinding>> = BTreeMap::new();
    for binding in &objects.bindings {
        let namespace = binding.namespace().unwrap_or_default();
        by_officernd
            .entry((namespace, binding.spec.officernd_ref.name.clone()))
            .or_default()
            .push(binding);
    }
    let mut contexts = Vec::new();
    for ((namespace, name), bindings) in by_officernd {
        let label = format!("{namespace}/{name}");
        let keys: Vec<BindingKey> = bindings.iter().map(|b| binding_key(b)).collect();
        contexts.push(
            build(objects, &namespace, &name, &bindings)
                .await
                .map_err(|error| (label, keys, error)),
        );
    }
    contexts
}

async fn build(
    objects: &Objects,
    namespace: &str,
    name: &str,
    bindings: &[&AccessGroupBinding],
) -> Result<Context, ReadFailure> {
    let connection = officernd_connection(objects, namespace, name)?;
    let secret = objects.secret(namespace, &connection.spec.credentials_secret_ref.name);
    let client = officernd_client(connection, namespace, secret)?;
    let reads = bindings.iter().fold(CollectionSet::EMPTY, |reads, b| {
        reads.union(binding_reads(b))
    });
    let (index, members) = read_indexed(&client, reads).await?;
    Ok(Context::new(
        format!("{namespace}/{name}"),
        Arc::new(index),
        members,
        objects,
        bindings,
    ))
}

/// The OfficeRnD connection `namespace/name`, or why there is none.
pub(crate) fn officernd_connection<'a>(
    objects: &'a Objects,
    namespace: &str,
    name: &str,
) -> Result<&'a VendorConnection, ReadFailure> {
    objects
        .connection(namespace, name)
        .ok_or_else(|| ReadFailure::ConnectionNotFound {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
}

/// The OfficeRnD client for `connection` with the credentials in `secret`, or why there is none.
pub(crate) fn officernd_client(
    connection: &VendorConnection,
    namespace: &str,
    secret: Option<&Secret>,
) -> Result<OfficeRndClient, ReadFailure> {
    let credentials = credentials::read(connection, namespace, secret)?;
    Ok(super::clients::officernd(connection, &credentials)?)
}

/// The collections an evaluation of `binding` reads ([`Feature`] says which use needs which).
pub fn binding_reads(binding: &AccessGroupBinding) -> CollectionSet {
    let source = &binding.spec.source;
    let mut features = vec![Feature::DoorBindings];
    if source.plan.is_some() {
        features.push(Feature::PlanBindings);
    }
    if source.location.is_some() || source.assignable_resource.is_some() {
        features.push(Feature::AssignmentBindings);
    }
    if source.floor.is_some() {
        features.push(Feature::FloorBindings);
    }
    if source.bookable_resource.is_some() {
        features.push(Feature::BookingBindings);
        if binding.spec.include_guests {
            features.push(Feature::BookingGuests);
        }
    }
    if source.day_passes.is_some() {
        features.push(Feature::DayPassBindings);
    }
    features
        .into_iter()
        .fold(CollectionSet::EMPTY, |reads, f| reads.union(f.reads()))
}

/// The collections a sync of `mapping` reads.
pub fn site_mapping_reads(mapping: &SiteMapping) -> CollectionSet {
    let reads = Feature::SiteMappings.reads();
    if mapping.spec.sync.sync_calendar_bookings {
        reads.union(Feature::SiteMappingBookings.reads())
    } else {
        reads
    }
}

/// What the bindings of `objects` that use the OfficeRnD connection `namespace/name` read (their
/// shared picture of the organization); empty when none does.
pub fn bindings_read(objects: &Objects, namespace: &str, name: &str) -> CollectionSet {
    objects
        .bindings
        .iter()
        .filter(|b| {
            b.namespace().as_deref() == Some(namespace) && b.spec.officernd_ref.name == name
        })
        .map(binding_reads)
        .fold(CollectionSet::EMPTY, CollectionSet::union)
}

/// What is read through the OfficeRnD connection `namespace/name` by the bindings and site
/// mappings of `objects` that use it (what its check asks a token for); empty when none does.
pub fn reads_for(objects: &Objects, namespace: &str, name: &str) -> CollectionSet {
    objects
        .site_mappings
        .iter()
        .filter(|m| {
            m.namespace().as_deref() == Some(namespace) && m.spec.officernd_ref.name == name
        })
        .map(site_mapping_reads)
        .fold(
            bindings_read(objects, namespace, name),
            CollectionSet::union,
        )
}

/// The longest a whole OfficeRnD read may take: generous, since a large organization is
/// thousands of paged requests at the connection's rate limit (50,000 members and 300,000
/// bookings are about 8,000 requests, 27 minutes at the default 5 requests/s).
pub const READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(45 * 60);

/// Reads the collections `reads` of OfficeRnD whole and indexes them (indexing is CPU work: off
/// the async workers); returns the index and how many members it holds. Fails whole, never with a
/// partial picture.
pub(crate) async fn read_indexed(
    client: &OfficeRndClient,
    reads: CollectionSet,
) -> Result<(Index, usize), ReadFailure> {
    let snapshot = super::deadline::within(
        READ_DEADLINE,
        "reading OfficeRnD whole",
        snapshot::fetch(client, reads),
    )
    .await??;
    let members = snapshot.members.len();
    let index = tokio::task::spawn_blocking(move || Index::build(snapshot))
        .await
        .map_err(|e| ReadFailure::Indexing(e.to_string()))?;
    Ok((index, members))
}
