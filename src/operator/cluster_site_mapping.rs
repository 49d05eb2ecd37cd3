//! The cluster host of the SiteMapping pipeline: the mapping read fresh (its saved mapping and
//! provisioning record live in its status, which the cache may not hold yet), the sync
//! registered as in flight so a spec change arriving meanwhile is announced in status as waiting
//! for it, the status write and the Events. A SiteMapping has no finalizer: deleting it stops
//! the sync and leaves the essensys site as it is.

use std::sync::Arc;

use futures::FutureExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use crate::api::conditions::{self as vocabulary, Reason, RECONCILING};
use crate::api::SiteMapping;
use crate::sitesync::lifecycle;

use super::cluster::{contained, error_policy, lock, Ctx, ReconcileError, SiteSync};
use super::reconcile::{self, stamp, SITE_MAPPING_KIND};
use super::status_writer;

pub(super) fn reconcile_site_mapping(
    mapping: Arc<SiteMapping>,
    ctx: Arc<Ctx>,
) -> futures::future::BoxFuture<'static, Result<Action, ReconcileError>> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "reconcile",
        kind = SITE_MAPPING_KIND,
        namespace = %mapping.namespace().unwrap_or_default(),
        name = %mapping.name_any()
    );
    contained(reconcile_site_mapping_inner(mapping, ctx))
        .instrument(span)
        .boxed()
}

pub(super) fn site_mapping_error_policy(
    mapping: Arc<SiteMapping>,
    error: &ReconcileError,
    ctx: Arc<Ctx>,
) -> Action {
    error_policy(SITE_MAPPING_KIND, mapping.as_ref(), error, &ctx)
}

/// Registers a SiteMapping reconcile as in flight for as long as it lives (also when the
/// reconcile is dropped, e.g. on a lost lease).
struct SiteSyncGuard<'a> {
    ctx: &'a Ctx,
    key: (String, String),
}

impl<'a> SiteSyncGuard<'a> {
    fn start(ctx: &'a Ctx, key: (String, String), generation: Option<i64>) -> Self {
        lock(&ctx.site_syncs).insert(
            key.clone(),
            SiteSync {
                generation,
                announced: false,
            },
        );
        Self { ctx, key }
    }

    /// Ends the registration; whether a waiting change was announced in status meanwhile.
    fn finish(self) -> bool {
        lock(&self.ctx.site_syncs)
            .remove(&self.key)
            .is_some_and(|sync| sync.announced)
    }
}

impl Drop for SiteSyncGuard<'_> {
    fn drop(&mut self) {
        lock(&self.ctx.site_syncs).remove(&self.key);
    }
}

/// Called for every SiteMapping spec change or reconcile request the watch delivers: when a
/// sync of another generation of that mapping is running, say in status that the change waits
/// for it (the change itself is reconciled by the controller once the sync returns).
pub(super) fn announce_waiting_change(ctx: &Arc<Ctx>, mapping: &SiteMapping) {
    let key = (mapping.namespace().unwrap_or_default(), mapping.name_any());
    let Some(wanted) = mapping.meta().generation else {
        return;
    };
    let running = {
        let mut syncs = lock(&ctx.site_syncs);
        let Some(sync) = syncs.get_mut(&key) else {
            return;
        };
        match sync.generation {
            Some(running) if running != wanted => {
                sync.announced = true;
                running
            }
            _ => return,
        }
    };
    let ctx = ctx.clone();
    let mapping = mapping.clone();
    tokio::spawn(async move {
        match write_waiting_change(&ctx, &mapping, running, wanted).await {
            Ok(()) => {}
            // The status changed since this version was read: the sync has written its own.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => {
                tracing::debug!(%error, "could not announce a SiteMapping change waiting for a running sync");
            }
        }
    });
}

/// The `Reconciling=True` (`Progressing`) note that generation `wanted` waits for the running
/// sync of generation `running`, merged into the conditions `mapping` carries, guarded by its
/// resourceVersion.
async fn write_waiting_change(
    ctx: &Ctx,
    mapping: &SiteMapping,
    running: i64,
    wanted: i64,
) -> Result<(), kube::Error> {
    let mut status = mapping.status.clone().unwrap_or_default();
    let note = vocabulary::condition(
        RECONCILING,
        true,
        Reason::Progressing,
        lifecycle::waiting_change(running, wanted),
        Some(wanted),
        stamp(ctx.now()),
        &status.conditions,
    );
    status.conditions.retain(|c| c.type_ != RECONCILING);
    status.conditions.push(note);
    let api: Api<SiteMapping> =
        Api::namespaced(ctx.client.clone(), &mapping.namespace().unwrap_or_default());
    // The whole status as read plus the note, guarded by the resourceVersion it was read at:
    // the apply owns every field it names, so a partial apply would drop the others.
    status_writer::apply_status(
        &api,
        &mapping.name_any(),
        &status,
        mapping.resource_version().as_deref(),
    )
    .await?;
    ctx.metrics.status_written();
    Ok(())
}

async fn reconcile_site_mapping_inner(
    cached: Arc<SiteMapping>,
    ctx: Arc<Ctx>,
) -> Result<Action, ReconcileError> {
    let ctx = ctx.as_ref();
    ctx.caches_ready().await?;
    let namespace = cached.namespace().unwrap_or_default();
    let name = cached.name_any();
    let api: Api<SiteMapping> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(mapping) = api.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    let in_flight = SiteSyncGuard::start(
        ctx,
        (namespace.clone(), name.clone()),
        mapping.meta().generation,
    );
    let objects = ctx
        .objects(
            &namespace,
            Vec::new(),
            vec![
                mapping.spec.officernd_ref.name.clone(),
                mapping.spec.essensys_ref.name.clone(),
            ],
        )
        .await?;
    let reconciled = reconcile::site_mapping::reconcile(ctx, &objects, &mapping, ctx.now()).await;
    let announced = in_flight.finish();
    // A waiting change announced meanwhile is replaced by this status in any case.
    let written = ctx
        .write_status(
            SITE_MAPPING_KIND,
            &mapping,
            mapping.status.as_ref(),
            &reconciled.status,
            announced,
        )
        .await?;
    ctx.tell(&mapping, &reconciled, written, None).await;
    tracing::info!(reason = %reconciled.outcome.reason, status_written = written, events = reconciled.events.len(), "site mapping reconciled");
    Ok(ctx.requeue(SITE_MAPPING_KIND, &namespace, &name, &reconciled))
}
