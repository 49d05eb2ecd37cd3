//! Builds vendor API clients from a VendorConnection and its credentials.

use crate::api::vendor_connection::{CredentialRole, VendorConnection};
use crate::officernd::{OfficeRndClient, OfficeRndConfig};

use super::credentials::Credentials;

/// An OfficeRnD client for `connection`. `spec.endpoint`, when set, serves both the identity
/// (token) and the API paths, as the flexgate sandbox does.
pub fn officernd(
    connection: &VendorConnection,
    credentials: &Credentials,
) -> Result<OfficeRndClient, String> {
    let settings = connection
        .spec
        .officernd
        .as_ref()
        .ok_or("spec.officernd.organization is required for an OfficeRnD connection")?;
    let client_id = credentials
        .require(CredentialRole::ClientId)
        .map_err(|e| e.to_string())?;
    let client_secret = credentials
        .require(CredentialRole::ClientSecret)
        .map_err(|e| e.to_string())?;
    let mut config = OfficeRndConfig::new(
        &settings.organization,
        client_id.expose(),
        client_secret.clone(),
    )
    .map_err(|e| e.to_string())?;
    if let Some(endpoint) = &connection.spec.endpoint {
        config = config.with_base_url(endpoint).map_err(|e| e.to_string())?;
    }
    if let Some(rps) = connection.spec.requests_per_second {
        config.requests_per_second = f64::from(rps);
    }
    OfficeRndClient::new(config).map_err(|e| e.to_string())
}
