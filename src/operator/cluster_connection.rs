//! The cluster host of the VendorConnection pipeline: the connection as delivered with its
//! Secret read fresh, the OfficeRnD webhook key kept current (the webhook receiver never reads
//! a Secret itself), the status write and the Events.

use std::sync::Arc;

use futures::FutureExt;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::ResourceExt;

use crate::api::{Vendor, VendorConnection};

use super::cluster::{contained, error_policy, Ctx, ReconcileError};
use super::credentials;
use super::reconcile::{self, CONNECTION_KIND};
use super::webhook_keys::WebhookKey;

pub(super) fn reconcile_connection(
    connection: Arc<VendorConnection>,
    ctx: Arc<Ctx>,
) -> futures::future::BoxFuture<'static, Result<Action, ReconcileError>> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "reconcile",
        kind = CONNECTION_KIND,
        namespace = %connection.namespace().unwrap_or_default(),
        name = %connection.name_any()
    );
    contained(reconcile_connection_inner(connection, ctx))
        .instrument(span)
        .boxed()
}

pub(super) fn connection_error_policy(
    connection: Arc<VendorConnection>,
    error: &ReconcileError,
    ctx: Arc<Ctx>,
) -> Action {
    error_policy(CONNECTION_KIND, connection.as_ref(), error, &ctx)
}

async fn reconcile_connection_inner(
    connection: Arc<VendorConnection>,
    ctx: Arc<Ctx>,
) -> Result<Action, ReconcileError> {
    ctx.caches_ready().await?;
    let namespace = connection.namespace().unwrap_or_default();
    let name = connection.name_any();
    let mut objects = ctx
        .objects(&namespace, ctx.siblings(&namespace), Vec::new())
        .await?;
    // The connection as delivered (the cache may lag a moment behind its own watch), and its
    // Secret read fresh.
    objects
        .connections
        .retain(|c| !(c.namespace() == connection.namespace() && c.name_any() == name));
    objects.connections.push((*connection).clone());
    let api: Api<KubeSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let secret_name = &connection.spec.credentials_secret_ref.name;
    let secret = api.get_opt(secret_name).await?;
    if connection.spec.vendor == Vendor::OfficeRnD {
        // This reconcile runs on every change of the connection or its Secret: the webhook
        // receiver's key is kept current here, so it never reads a Secret itself.
        let key = credentials::read(&connection, &namespace, secret.as_ref())
            .ok()
            .and_then(|credentials| credentials::webhook_secret(&credentials).cloned())
            .map_or(WebhookKey::NotConfigured, WebhookKey::Signing);
        ctx.webhook_keys.set(&namespace, &name, key);
    }
    if let Some(secret) = secret {
        objects
            .secrets
            .insert((namespace.clone(), secret_name.clone()), secret);
    }
    let reconciled =
        reconcile::connection::reconcile(ctx.as_ref(), &objects, &connection, ctx.now()).await;
    let written = ctx
        .write_status(
            CONNECTION_KIND,
            connection.as_ref(),
            connection.status.as_ref(),
            &reconciled.status,
            false,
        )
        .await?;
    ctx.tell(connection.as_ref(), &reconciled, written, None)
        .await;
    tracing::info!(reason = %reconciled.outcome.reason, status_written = written, "connection reconciled");
    Ok(ctx.requeue(CONNECTION_KIND, &namespace, &name, &reconciled))
}
