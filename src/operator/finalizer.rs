//! The binding cleanup finalizer, written so that a stale cache can never make it fail.
//!
//! kube-runtime's finalizer helper adds with a JSON patch that first tests the finalizer list it
//! saw; when the reconcile runs again before the watch delivered its own addition, the test fails
//! and the server answers 422. Here the finalizer is added by server-side apply with a field
//! manager of its own: `metadata.finalizers` is a set, so the apply is idempotent whatever the
//! cache says, and the reconcile goes on in the same pass. Removal reads the object fresh and
//! removes the entry at the index it has there, guarded by a test of that entry.

use std::str::FromStr;

use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch as JsonPatch, PatchOperation, RemoveOperation, TestOperation};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// The field manager that owns the finalizer entry.
pub const FINALIZER_MANAGER: &str = "flexgate-finalizer";

/// Adds `finalizer` to `name` (a no-op when it is there already).
pub async fn add<K>(api: &Api<K>, name: &str, finalizer: &str) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": { "name": name, "finalizers": [finalizer] },
    });
    api.patch(
        name,
        &PatchParams::apply(FINALIZER_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// Removes `finalizer` from `name`, as the server has it now (gone or without it: done).
pub async fn remove<K>(api: &Api<K>, name: &str, finalizer: &str) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let Some(object) = api.get_opt(name).await? else {
        return Ok(());
    };
    let Some(index) = object.finalizers().iter().position(|f| f == finalizer) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    let pointer = PointerBuf::from_str(&path)
        .map_err(|error| kube::Error::Service(format!("finalizer path {path}: {error}").into()))?;
    let patch = JsonPatch(vec![
        // Another controller may have removed an earlier entry meanwhile: then the test fails
        // (422) and the next reconcile retries with a fresh read.
        PatchOperation::Test(TestOperation {
            path: pointer.clone(),
            value: finalizer.into(),
        }),
        PatchOperation::Remove(RemoveOperation { path: pointer }),
    ]);
    match api
        .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
    {
        Ok(_) => Ok(()),
        // Deleted meanwhile: nothing left to hold.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error),
    }
}
