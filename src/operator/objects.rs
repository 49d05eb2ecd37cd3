//! The flexgate objects one reconcile looks at, read either from a cluster or from a folder of
//! manifests, plus the Secrets they reference.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use crate::api::{AccessGroupBinding, SiteMapping, VendorConnection};
use crate::manifests::Document;

/// Every flexgate object and Secret in scope.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    /// VendorConnections.
    pub connections: Vec<VendorConnection>,
    /// AccessGroupBindings.
    pub bindings: Vec<AccessGroupBinding>,
    /// SiteMappings.
    pub site_mappings: Vec<SiteMapping>,
    /// Secrets by (namespace, name).
    pub secrets: BTreeMap<(String, String), Secret>,
}

impl Objects {
    /// Builds the set from loaded manifests (already validated). Documents of other kinds are
    /// ignored; a document that does not deserialize is an error naming it.
    pub fn from_documents(documents: &[Document]) -> Result<Self, String> {
        let mut objects = Objects::default();
        for doc in documents {
            let mut value = doc.value.clone();
            if value.pointer("/metadata/namespace").is_none() {
                if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                    meta.insert("namespace".into(), doc.namespace().into());
                }
            }
            let describe =
                |e: serde_json::Error| format!("{}: {}: {e}", doc.file.display(), doc.label());
            match (doc.api_version(), doc.kind()) {
                (Some("v1"), Some("Secret")) => {
                    let secret: Secret = serde_json::from_value(value).map_err(describe)?;
                    let key = (secret.namespace().unwrap_or_default(), secret.name_any());
                    objects.secrets.insert(key, secret);
                }
                (Some(crate::api::API_VERSION), Some("VendorConnection")) => objects
                    .connections
                    .push(serde_json::from_value(value).map_err(describe)?),
                (Some(crate::api::API_VERSION), Some("AccessGroupBinding")) => objects
                    .bindings
                    .push(serde_json::from_value(value).map_err(describe)?),
                (Some(crate::api::API_VERSION), Some("SiteMapping")) => objects
                    .site_mappings
                    .push(serde_json::from_value(value).map_err(describe)?),
                _ => {}
            }
        }
        Ok(objects)
    }

    /// The VendorConnection `name` in `namespace`.
    pub fn connection(&self, namespace: &str, name: &str) -> Option<&VendorConnection> {
        self.connections
            .iter()
            .find(|c| c.namespace().as_deref() == Some(namespace) && c.name_any() == name)
    }

    /// The Secret `name` in `namespace`.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
        self.secrets.get(&(namespace.to_owned(), name.to_owned()))
    }
}
