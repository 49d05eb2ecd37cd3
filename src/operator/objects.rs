//! The flexgate objects one reconcile looks at, read either from a cluster or from a folder of
//! manifests, plus the Secrets they reference.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use crate::api::{AccessGroupBinding, SiteMapping, VendorConnection};
use crate::manifests::Document;

/// A manifest that is valid YAML but not a valid object of its kind.
#[derive(Debug, thiserror::Error)]
#[error("{}: {object}: {source}", file.display())]
pub struct ObjectsError {
    /// The file it came from.
    pub file: std::path::PathBuf,
    /// Which document (`Kind namespace/name`).
    pub object: String,
    /// Why it does not deserialize.
    #[source]
    pub source: serde_json::Error,
}

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
    pub fn from_documents(documents: &[Document]) -> Result<Self, ObjectsError> {
        let mut objects = Objects::default();
        for doc in documents {
            let mut value = doc.value.clone();
            if value.pointer("/metadata/namespace").is_none() {
                if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                    meta.insert("namespace".into(), doc.namespace().into());
                }
            }
            let describe = |source: serde_json::Error| ObjectsError {
                file: doc.file.clone(),
                object: doc.label(),
                source,
            };
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
