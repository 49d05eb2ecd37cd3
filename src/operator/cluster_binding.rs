//! The cluster host of the AccessGroupBinding pipeline: the finalizer, the per-account sync
//! slot, the objects of the binding's namespace (connections from the cache, Secrets read
//! fresh), the status write and the Events; and the cleanup of a deleted binding (revoke what it
//! alone granted, or orphan with an Event saying why), which only a cluster has.

use std::sync::Arc;

use futures::FutureExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use crate::api::access_group_binding::{BindingMode, DeletionPolicy};
use crate::api::conditions::Reason;
use crate::api::{AccessGroupBinding, FINALIZER};

use super::cluster::{
    contained, error_policy, event, jitter, lock, CleanupError, Ctx, ReconcileError,
    ACCOUNT_BUSY_RETRY,
};
use super::credentials;
use super::door_cache::CachedDoor;
use super::finalizer;
use super::objects::Objects;
use super::reconcile::{self, actions, reasons, stamp, Host, Notice, BINDING_KIND};
use super::status::{self, Outcome};

pub(super) fn reconcile_binding(
    binding: Arc<AccessGroupBinding>,
    ctx: Arc<Ctx>,
) -> futures::future::BoxFuture<'static, Result<Action, ReconcileError>> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "reconcile",
        kind = BINDING_KIND,
        namespace = %binding.namespace().unwrap_or_default(),
        name = %binding.name_any()
    );
    contained(reconcile_binding_inner(binding, ctx))
        .instrument(span)
        .boxed()
}

pub(super) fn binding_error_policy(
    binding: Arc<AccessGroupBinding>,
    error: &ReconcileError,
    ctx: Arc<Ctx>,
) -> Action {
    error_policy(BINDING_KIND, binding.as_ref(), error, &ctx)
}

async fn reconcile_binding_inner(
    binding: Arc<AccessGroupBinding>,
    ctx: Arc<Ctx>,
) -> Result<Action, ReconcileError> {
    ctx.caches_ready().await?;
    let name = binding.name_any();
    let api: Api<AccessGroupBinding> =
        Api::namespaced(ctx.client.clone(), &binding.namespace().unwrap_or_default());
    let has_finalizer = binding.finalizers().iter().any(|f| f == FINALIZER);
    if binding.meta().deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        // The finalizer stays until the cleanup succeeded (or gave up and orphaned).
        let action = cleanup_binding(&ctx, &binding).await?;
        finalizer::remove(&api, &name, FINALIZER).await?;
        return Ok(action);
    }
    // Before anything is granted, so that a deletion always gets to revoke it.
    if !has_finalizer {
        finalizer::add(&api, &name, FINALIZER).await?;
    }
    apply_binding(&ctx, &binding).await
}

/// Runs the binding pipeline with the account's sync slot held, then writes and tells what it
/// decided.
async fn apply_binding(ctx: &Ctx, binding: &AccessGroupBinding) -> Result<Action, ReconcileError> {
    let namespace = binding.namespace().unwrap_or_default();
    let name = binding.name_any();
    let Ok(_account) = ctx.account_lock(binding).try_lock_owned() else {
        // The account is busy (another sync, or a slow or failing vendor): come back shortly
        // without holding one of the controller's slots, so other accounts keep going.
        return Ok(Action::requeue(jitter(ACCOUNT_BUSY_RETRY)));
    };
    let objects = ctx
        .objects(
            &namespace,
            ctx.siblings(&namespace),
            vec![
                binding.spec.officernd_ref.name.clone(),
                binding.spec.vendor_ref.name.clone(),
            ],
        )
        .await?;
    let (result, reconciled) =
        reconcile::binding::reconcile(ctx, &objects, binding, ctx.now()).await;
    let written = ctx
        .write_status(
            BINDING_KIND,
            binding,
            binding.status.as_ref(),
            &reconciled.status,
            false,
        )
        .await?;
    let triggered = lock(&ctx.triggered)
        .remove(&(namespace.clone(), name.clone()))
        .map(|since| since.elapsed());
    ctx.tell(binding, &reconciled, written, triggered).await;
    let (granted, revoked) = result.applied;
    tracing::info!(reason = %reconciled.outcome.reason, granted, revoked, status_written = written, "binding reconciled");
    Ok(ctx.requeue(BINDING_KIND, &namespace, &name, &reconciled))
}

fn deleted(reason: &str, note: &str, warning: bool) -> Notice {
    Notice {
        warning,
        ..Notice::normal(reason, actions::DELETE, note)
    }
}

/// Whether a deleted binding is orphaned before anything is read (`age`: seconds since its
/// deletionTimestamp): by its policy, because mode Plan never granted anything, or because
/// revoking did not succeed within `timeout`.
fn orphaned_before_reading(
    binding: &AccessGroupBinding,
    age: i64,
    timeout: std::time::Duration,
) -> Option<Notice> {
    if binding.spec.deletion_policy == DeletionPolicy::Orphan {
        let note = "deletionPolicy Orphan: vendor groups left as they are";
        return Some(deleted(reasons::ORPHANED, note, false));
    }
    if binding.spec.mode == BindingMode::Plan {
        let note = "mode Plan never writes to the vendor, so deleting it revokes nothing";
        return Some(deleted(reasons::ORPHANED, note, false));
    }
    if age >= i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX) {
        let note = format!(
            "could not revoke this binding's access within {} s of its deletion; orphaned: the vendor groups keep their members until another binding manages them or someone removes them",
            timeout.as_secs()
        );
        return Some(deleted(reasons::DELETION_TIMED_OUT, &note, true));
    }
    None
}

/// Without the connections or their credentials the access cannot be revoked, and waiting will
/// not help: the binding is orphaned at once, with a Warning saying why.
fn orphaned_without_connections(binding: &AccessGroupBinding, objects: &Objects) -> Option<Notice> {
    let namespace = binding.namespace().unwrap_or_default();
    [
        &binding.spec.vendor_ref.name,
        &binding.spec.officernd_ref.name,
    ]
    .into_iter()
    .find_map(
        |connection| match objects.connection(&namespace, connection) {
            None => Some(format!("VendorConnection {namespace}/{connection} is gone")),
            Some(c) => credentials::read(
                c,
                &namespace,
                objects.secret(&namespace, &c.spec.credentials_secret_ref.name),
            )
            .err()
            .map(|e| e.to_string()),
        },
    )
    .map(|why| {
        let note = format!(
            "{why}; the access this binding granted cannot be revoked and is left in place"
        );
        deleted(reasons::ORPHANED, &note, true)
    })
}

/// Revokes what a deleted binding alone granted (or orphans it, saying why); retried with
/// backoff until the deletion timeout.
async fn cleanup_binding(
    ctx: &Ctx,
    binding: &AccessGroupBinding,
) -> Result<Action, ReconcileError> {
    let namespace = binding.namespace().unwrap_or_default();
    let name = binding.name_any();
    // The deletion deadline uses the wall clock: the API server stamps deletionTimestamp with it.
    let age = binding
        .meta()
        .deletion_timestamp
        .as_ref()
        .map(|t| Timestamp::now().as_second() - t.0.as_second())
        .unwrap_or(0);
    if let Some(orphan) = orphaned_before_reading(binding, age, ctx.deletion_timeout) {
        ctx.publish(binding, event(&orphan)).await;
        return Ok(Action::await_change());
    }
    // Deletions are rare: wait for the account rather than requeue.
    let _account = ctx.account_lock(binding).lock_owned().await;
    let objects = ctx
        .objects(
            &namespace,
            ctx.siblings(&namespace),
            vec![
                binding.spec.officernd_ref.name.clone(),
                binding.spec.vendor_ref.name.clone(),
            ],
        )
        .await?;
    if let Some(orphan) = orphaned_without_connections(binding, &objects) {
        ctx.publish(binding, event(&orphan)).await;
        return Ok(Action::await_change());
    }
    let (door, directory) = ctx
        .door(&objects, &namespace, &binding.spec.vendor_ref.name)
        .map_err(CleanupError::Build)?;
    let door = CachedDoor::new(door.as_ref(), directory.as_ref());
    let result = match reconcile::binding::build(ctx, &objects, binding).await {
        Ok(built) => {
            reconcile::binding::apply(&objects, binding, &built.picture, ctx.now(), &door, true)
                .await
        }
        Err(error) => super::binding::BindingResult::stopped(error.outcome()),
    };
    let outcome = &result.outcome;
    let (granted, revoked) = result.applied;
    let vendor = objects
        .connection(&namespace, &binding.spec.vendor_ref.name)
        .map(|c| c.spec.vendor.as_str())
        .unwrap_or("unknown");
    ctx.metrics.access_changed(vendor, granted, revoked);
    ctx.metrics.reconciled(
        BINDING_KIND,
        if outcome.ready {
            "Deleted"
        } else {
            outcome.reason.as_str()
        },
    );
    if outcome.ready && outcome.reason == Reason::Synced {
        let note = format!(
            "deleted: revoked {revoked} (access only this binding granted), granted {granted}"
        );
        ctx.publish(binding, event(&deleted(reasons::REVOKED, &note, false)))
            .await;
        ctx.succeeded(BINDING_KIND, &namespace, &name);
        return Ok(Action::await_change());
    }
    // Say why the deletion waits, in status and as an Event, then retry with backoff.
    let waiting = Outcome::not_ready(
        Reason::Deleting,
        format!(
            "deleting: revoking this binding's access failed and is retried (orphaned after {} s): {}",
            ctx.deletion_timeout.as_secs(),
            outcome.message
        ),
    );
    let previous = binding.status.clone().unwrap_or_default();
    let mut next = previous.clone();
    next.conditions = status::conditions(
        &waiting,
        binding.meta().generation,
        stamp(ctx.now()),
        &previous.conditions,
    );
    if ctx
        .write_status(BINDING_KIND, binding, binding.status.as_ref(), &next, false)
        .await?
    {
        ctx.publish(binding, event(&Notice::warning(&waiting, actions::DELETE)))
            .await;
    }
    Err(CleanupError::Sync(outcome.message.clone()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::reconcile::fixtures::{binding, objects};
    use std::time::Duration;

    const TIMEOUT: Duration = Duration::from_secs(600);

    #[test]
    fn a_deleted_binding_is_orphaned_by_its_policy_its_mode_or_the_deadline() {
        let lobby = binding("lobby", "officernd", "kisi");
        assert_eq!(orphaned_before_reading(&lobby, 10, TIMEOUT), None, "revoke");

        let mut kept = lobby.clone();
        kept.spec.deletion_policy = DeletionPolicy::Orphan;
        let orphan = orphaned_before_reading(&kept, 10, TIMEOUT).expect("orphaned");
        assert_eq!(
            (orphan.reason.as_str(), orphan.warning),
            ("Orphaned", false)
        );

        let mut planned = lobby.clone();
        planned.spec.mode = BindingMode::Plan;
        let orphan = orphaned_before_reading(&planned, 10, TIMEOUT).expect("orphaned");
        assert!(orphan.note.contains("mode Plan"), "{}", orphan.note);

        let late = orphaned_before_reading(&lobby, 600, TIMEOUT).expect("timed out");
        assert_eq!(
            (late.reason.as_str(), late.warning, late.action),
            ("DeletionTimedOut", true, actions::DELETE)
        );
    }

    #[test]
    fn a_deleted_binding_without_its_connection_or_secret_is_orphaned_at_once() {
        let lobby = binding("lobby", "officernd", "kisi");
        let gone = binding("lobby", "officernd", "brivo");
        let orphan = orphaned_without_connections(&gone, &objects(None)).expect("orphaned");
        assert!(orphan.warning);
        assert!(
            orphan
                .note
                .starts_with("VendorConnection doors/brivo is gone;"),
            "{}",
            orphan.note
        );
        // The fixtures' connections have no Secrets.
        let orphan = orphaned_without_connections(&lobby, &objects(None)).expect("orphaned");
        assert!(orphan.note.contains("kisi-credentials"), "{}", orphan.note);
    }
}
