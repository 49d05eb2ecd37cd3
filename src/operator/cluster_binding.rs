//! The cluster host of the AccessGroupBinding pipeline: the finalizer, the per-account sync
//! slot, the objects of the binding's namespace (connections from the cache, Secrets read
//! fresh), the status write and the Events; and the cleanup of a deleted binding (revoke what it
//! alone granted, or orphan with an Event saying why), which only a cluster has.

use std::sync::Arc;

use futures::FutureExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::Event;
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

fn deleted(reason: &str, note: &str, warning: bool) -> Event {
    event(&Notice {
        warning,
        ..Notice::normal(reason, actions::DELETE, note)
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
    if binding.spec.deletion_policy == DeletionPolicy::Orphan {
        let note = "deletionPolicy Orphan: vendor groups left as they are";
        ctx.publish(binding, deleted(reasons::ORPHANED, note, false))
            .await;
        return Ok(Action::await_change());
    }
    if binding.spec.mode == BindingMode::Plan {
        let note = "mode Plan never writes to the vendor, so deleting it revokes nothing";
        ctx.publish(binding, deleted(reasons::ORPHANED, note, false))
            .await;
        return Ok(Action::await_change());
    }
    // The deletion deadline uses the wall clock: the API server stamps deletionTimestamp with it.
    let age = binding
        .meta()
        .deletion_timestamp
        .as_ref()
        .map(|t| Timestamp::now().as_second() - t.0.as_second())
        .unwrap_or(0);
    if age >= i64::try_from(ctx.deletion_timeout.as_secs()).unwrap_or(i64::MAX) {
        let note = format!(
            "could not revoke this binding's access within {} s of its deletion; orphaned: the vendor groups keep their members until another binding manages them or someone removes them",
            ctx.deletion_timeout.as_secs()
        );
        ctx.publish(binding, deleted(reasons::DELETION_TIMED_OUT, &note, true))
            .await;
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
    // Without the connections or their credentials the access cannot be revoked, and waiting
    // will not help: orphan at once and say so.
    for connection in [
        &binding.spec.vendor_ref.name,
        &binding.spec.officernd_ref.name,
    ] {
        let gone = match objects.connection(&namespace, connection) {
            None => Some(format!("VendorConnection {namespace}/{connection} is gone")),
            Some(c) => credentials::read(
                c,
                &namespace,
                objects.secret(&namespace, &c.spec.credentials_secret_ref.name),
            )
            .err()
            .map(|e| e.to_string()),
        };
        if let Some(why) = gone {
            let note = format!(
                "{why}; the access this binding granted cannot be revoked and is left in place"
            );
            ctx.publish(binding, deleted(reasons::ORPHANED, &note, true))
                .await;
            return Ok(Action::await_change());
        }
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
        ctx.publish(binding, deleted(reasons::REVOKED, &note, false))
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
