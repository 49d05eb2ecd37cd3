//! Reads a VendorConnection's credentials from its Secret. Values are wrapped in [`Secret`] at
//! once, so they never reach a log, an Event or a status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret as KubeSecret;

use crate::api::vendor_connection::{CredentialRole, VendorConnection};
use crate::http::Secret;

/// The credentials a vendor client needs, by role.
#[derive(Debug, Clone, Default)]
pub struct Credentials(BTreeMap<&'static str, Secret>);

impl Credentials {
    /// The value for `role`, if the Secret held it.
    pub fn get(&self, role: CredentialRole) -> Option<&Secret> {
        self.0.get(role_name(role))
    }

    /// The value for `role`, or an error naming the missing key.
    pub fn require(&self, role: CredentialRole) -> Result<&Secret, CredentialsError> {
        self.get(role)
            .ok_or(CredentialsError::MissingRole(role_name(role)))
    }
}

/// Why the credentials could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The Secret does not exist.
    #[error("Secret {namespace}/{name} not found; create it with the vendor's credentials")]
    SecretNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A key the vendor needs is absent or empty.
    #[error("Secret {namespace}/{name} has no non-empty key {key:?} (the {role}); add it or point credentialsSecretRef.keys.{role} at the right key")]
    MissingKey {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The key looked for.
        key: String,
        /// The role it plays.
        role: &'static str,
    },
    /// A client asked for a role the Secret did not provide.
    #[error("no {0} in the credentials")]
    MissingRole(&'static str),
}

fn role_name(role: CredentialRole) -> &'static str {
    match role {
        CredentialRole::ClientId => "clientId",
        CredentialRole::ClientSecret => "clientSecret",
        CredentialRole::ApiKey => "apiKey",
        CredentialRole::Username => "username",
        CredentialRole::Password => "password",
    }
}

/// Reads every credential the connection's vendor requires (and, for OfficeRnD, the webhook
/// secret when configured) from `secret`.
pub fn read(
    connection: &VendorConnection,
    namespace: &str,
    secret: Option<&KubeSecret>,
) -> Result<Credentials, CredentialsError> {
    let reference = &connection.spec.credentials_secret_ref;
    let Some(secret) = secret else {
        return Err(CredentialsError::SecretNotFound {
            namespace: namespace.to_owned(),
            name: reference.name.clone(),
        });
    };
    let lookup = |key: &str| -> Option<String> {
        let from_data = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok());
        let from_string_data = secret
            .string_data
            .as_ref()
            .and_then(|d| d.get(key))
            .cloned();
        from_string_data
            .or(from_data)
            .filter(|v| !v.trim().is_empty())
    };
    let mut credentials = Credentials::default();
    for role in connection.spec.vendor.required_credentials() {
        let key = reference.keys.key_for(*role);
        let value = lookup(key).ok_or_else(|| CredentialsError::MissingKey {
            namespace: namespace.to_owned(),
            name: reference.name.clone(),
            key: key.to_owned(),
            role: role_name(*role),
        })?;
        credentials.0.insert(role_name(*role), Secret::new(value));
    }
    if let Some(key) = connection
        .spec
        .officernd
        .as_ref()
        .and_then(|o| o.webhook_secret_key.as_deref())
    {
        let value = lookup(key).ok_or_else(|| CredentialsError::MissingKey {
            namespace: namespace.to_owned(),
            name: reference.name.clone(),
            key: key.to_owned(),
            role: "webhookSecret",
        })?;
        credentials.0.insert("webhookSecret", Secret::new(value));
    }
    Ok(credentials)
}

/// The OfficeRnD webhook signing secret, when configured.
pub fn webhook_secret(credentials: &Credentials) -> Option<&Secret> {
    credentials.0.get("webhookSecret")
}
