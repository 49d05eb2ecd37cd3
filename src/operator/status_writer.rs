//! Status writes as the real kube-apiserver accepts them: server-side apply of the whole status,
//! one field manager per kind.
//!
//! Why the whole status, every time: with server-side apply, the manager owns exactly the fields
//! of its last apply. A field left out of the next apply (a `nextChangeTime` that no longer
//! exists, problems that were fixed) is removed by the server because this manager owned it and
//! no longer does; no `null` placeholders are needed, and none are sent (the server refuses
//! `null` for a non-nullable array and fields another kind declares). Conditions are a
//! `listType: map` keyed by `type` in the CRD, so they merge by type with any other writer.
//!
//! Each kind has its own manager name, so `kubectl get -o yaml --show-managed-fields` tells
//! which reconciler wrote what.

use kube::api::{Api, Patch, PatchParams};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The field manager of VendorConnection statuses.
pub const CONNECTION_MANAGER: &str = "flexgate-connection-status";
/// The field manager of AccessGroupBinding statuses.
pub const BINDING_MANAGER: &str = "flexgate-binding-status";
/// The field manager of SiteMapping statuses.
pub const SITE_MAPPING_MANAGER: &str = "flexgate-sitemapping-status";

/// The field manager that owns the status of kind `K`.
pub fn manager_of<K: Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()).as_ref() {
        "VendorConnection" => CONNECTION_MANAGER,
        "SiteMapping" => SITE_MAPPING_MANAGER,
        _ => BINDING_MANAGER,
    }
}

/// The apply body: `apiVersion`, `kind`, `metadata.name` (and `resourceVersion` when the write
/// must fail with 409 if the object changed since it was read) and the whole status.
pub fn apply_body<K, S>(
    name: &str,
    status: &S,
    resource_version: Option<&str>,
) -> Result<Value, serde_json::Error>
where
    K: Resource<DynamicType = ()>,
    S: Serialize,
{
    let mut status = serde_json::to_value(status)?;
    drop_nulls(&mut status);
    let mut metadata = serde_json::json!({ "name": name });
    if let Some(version) = resource_version {
        metadata["resourceVersion"] = Value::String(version.to_owned());
    }
    Ok(serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": metadata,
        "status": status,
    }))
}

/// Removes `null` members at every depth: in an apply body, `null` does not mean "unset" to the
/// schema validation (a non-nullable field refuses it); leaving the field out does.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Server-side applies `status` as the whole status of `name`, with the kind's field manager.
pub async fn apply_status<K, S>(
    api: &Api<K>,
    name: &str,
    status: &S,
    resource_version: Option<&str>,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let body =
        apply_body::<K, S>(name, status, resource_version).map_err(kube::Error::SerdeError)?;
    let params = PatchParams::apply(manager_of::<K>()).force();
    api.patch_status(name, &params, &Patch::Apply(&body))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        AccessGroupBinding, AccessGroupBindingStatus, SiteMapping, SiteMappingStatus,
        VendorConnection, VendorConnectionStatus,
    };

    fn has_null(value: &Value) -> bool {
        match value {
            Value::Null => true,
            Value::Object(map) => map.values().any(has_null),
            Value::Array(items) => items.iter().any(has_null),
            _ => false,
        }
    }

    #[test]
    fn an_empty_status_is_sent_without_any_field_of_its_own_or_of_another_kind() {
        let body = apply_body::<AccessGroupBinding, _>(
            "lobby",
            &AccessGroupBindingStatus::default(),
            None,
        )
        .unwrap();
        assert_eq!(body["kind"], "AccessGroupBinding");
        assert_eq!(body["apiVersion"], crate::api::API_VERSION);
        assert_eq!(body["metadata"], serde_json::json!({"name": "lobby"}));
        let status = body["status"].as_object().unwrap();
        for absent in [
            "account",
            "planned",
            "nextChangeTime",
            "problems",
            "observedGeneration",
        ] {
            assert!(!status.contains_key(absent), "{absent} in {status:?}");
        }
        assert!(!has_null(&body));
    }

    #[test]
    fn no_kind_ever_sends_null() {
        let bodies = [
            apply_body::<VendorConnection, _>("c", &VendorConnectionStatus::default(), None),
            apply_body::<SiteMapping, _>("m", &SiteMappingStatus::default(), None),
            apply_body::<AccessGroupBinding, _>(
                "b",
                &serde_json::json!({"a": null, "b": [{"c": null, "d": 1}]}),
                Some("42"),
            ),
        ];
        for body in bodies {
            assert!(!has_null(&body.unwrap()));
        }
    }

    #[test]
    fn a_guarded_write_carries_the_resource_version_it_read() {
        let body =
            apply_body::<SiteMapping, _>("m", &SiteMappingStatus::default(), Some("123")).unwrap();
        assert_eq!(body["metadata"]["resourceVersion"], "123");
    }

    #[test]
    fn each_kind_has_its_own_manager() {
        assert_eq!(manager_of::<VendorConnection>(), CONNECTION_MANAGER);
        assert_eq!(manager_of::<AccessGroupBinding>(), BINDING_MANAGER);
        assert_eq!(manager_of::<SiteMapping>(), SITE_MAPPING_MANAGER);
    }
}
