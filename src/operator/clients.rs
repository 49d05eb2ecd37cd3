//! Builds vendor API clients from a VendorConnection and its credentials.

use crate::api::vendor_connection::{CredentialRole, VendorConnection};
use crate::api::Vendor;
use crate::clock::Clock;
use crate::officernd::{OfficeRndClient, OfficeRndConfig};
use crate::vendors::brivo::{BrivoClient, BrivoConfig};
use crate::vendors::essensys::{EssensysClient, EssensysConfig};
use crate::vendors::kisi::{KisiClient, KisiConfig};
use crate::vendors::salto_ks::{SaltoKsClient, SaltoKsConfig};
use crate::vendors::{
    AccountInfo, DoorVendor, GrantContext, GrantNotices, NewUser, VendorError, VendorGroup,
    VendorUser,
};

use super::credentials::{Credentials, CredentialsError};

/// Why a connection's settings and credentials do not make a client (secret-free: the vendor
/// clients' configuration errors never carry a credential).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// A setting the vendor needs is absent.
    #[error("{0}")]
    MissingSetting(&'static str),
    /// A credential the vendor needs is absent.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// An endpoint is not a URL.
    #[error("{field} {value:?} is not a URL: {source}")]
    Url {
        /// `spec.endpoint` or `spec.authEndpoint`.
        field: &'static str,
        /// What it holds.
        value: String,
        /// Why.
        #[source]
        source: url::ParseError,
    },
    /// The connection is of a vendor this client is not for.
    #[error("{0}")]
    WrongVendor(String),
    /// The vendor client refused its configuration.
    #[error("{0}")]
    Config(#[source] std::sync::Arc<dyn std::error::Error + Send + Sync>),
}

/// The vendor client's own configuration error.
fn refused<E: std::error::Error + Send + Sync + 'static>(error: E) -> ClientError {
    ClientError::Config(std::sync::Arc::new(error))
}

/// `value` of `field` as a URL.
fn url(field: &'static str, value: &str) -> Result<url::Url, ClientError> {
    url::Url::parse(value).map_err(|source| ClientError::Url {
        field,
        value: value.to_owned(),
        source,
    })
}

/// An OfficeRnD client for `connection`. `spec.endpoint`, when set, serves both the identity
/// (token) and the API paths, as the flexgate sandbox does.
pub fn officernd(
    connection: &VendorConnection,
    credentials: &Credentials,
) -> Result<OfficeRndClient, ClientError> {
    let settings = connection
        .spec
        .officernd
        .as_ref()
        .ok_or(ClientError::MissingSetting(
            "spec.officernd.organization is required for an OfficeRnD connection",
        ))?;
    let client_id = credentials.require(CredentialRole::ClientId)?;
    let client_secret = credentials.require(CredentialRole::ClientSecret)?;
    let mut config = OfficeRndConfig::new(
        &settings.organization,
        client_id.expose(),
        client_secret.clone(),
    )
    .map_err(refused)?;
    if let Some(endpoint) = &connection.spec.endpoint {
        config = config.with_base_url(endpoint).map_err(refused)?;
    }
    if let Some(auth) = &connection.spec.auth_endpoint {
        config.identity_url = url("spec.authEndpoint", auth)?;
    }
    if let Some(rps) = connection.spec.requests_per_second {
        config.requests_per_second = f64::from(rps);
    }
    OfficeRndClient::new(config).map_err(refused)
}

/// An essensys Platform client for `connection`: the Platform URL is `spec.endpoint` when set
/// (the sandbox), else `spec.essensys.platformUrl`; the Secret holds the Platform user's
/// `username` and `password`. `clock` decides token expiry.
pub fn essensys(
    connection: &VendorConnection,
    credentials: &Credentials,
    clock: Clock,
) -> Result<EssensysClient, ClientError> {
    if connection.spec.vendor != Vendor::Essensys {
        return Err(ClientError::WrongVendor(format!(
            "{} is not an essensys connection",
            connection.spec.vendor
        )));
    }
    let settings = connection
        .spec
        .essensys
        .as_ref()
        .ok_or(ClientError::MissingSetting(
            "spec.essensys.platformUrl is required for an Essensys connection",
        ))?;
    let platform_url = connection
        .spec
        .endpoint
        .as_deref()
        .unwrap_or(&settings.platform_url);
    let username = credentials.require(CredentialRole::Username)?;
    let password = credentials.require(CredentialRole::Password)?;
    let mut config =
        EssensysConfig::new(platform_url, username.expose(), password.clone()).map_err(refused)?;
    if let Some(rps) = connection.spec.requests_per_second {
        config.requests_per_second = f64::from(rps);
    }
    EssensysClient::new(config)
        .map(|client| client.with_clock(clock))
        .map_err(refused)
}

/// The token-service base URL: `spec.authEndpoint`, else the origin of `spec.endpoint`, else
/// `None` (the client's public default).
fn auth_base(connection: &VendorConnection) -> Result<Option<String>, ClientError> {
    if let Some(auth) = &connection.spec.auth_endpoint {
        return Ok(Some(auth.clone()));
    }
    let Some(endpoint) = &connection.spec.endpoint else {
        return Ok(None);
    };
    let url = url("spec.endpoint", endpoint)?;
    Ok(Some(url.origin().ascii_serialization()))
}

/// A door-access client for a Kisi, Salto KS or Brivo connection: one enum, so the sync and the
/// reconcilers stay generic over [`DoorVendor`] without boxing futures.
pub enum DoorClient {
    /// Kisi.
    Kisi(KisiClient),
    /// Salto KS.
    SaltoKs(SaltoKsClient),
    /// Brivo.
    Brivo(BrivoClient),
}

/// Builds the door client for `connection`, reading time from `clock` (token expiry).
pub fn door(
    connection: &VendorConnection,
    credentials: &Credentials,
    clock: Clock,
) -> Result<DoorClient, ClientError> {
    let need = |role| credentials.require(role).map_err(ClientError::from);
    let spec = &connection.spec;
    let rps = spec.requests_per_second.map(f64::from);
    match spec.vendor {
        Vendor::Kisi => {
            let mut config = KisiConfig::new(need(CredentialRole::ApiKey)?.clone())
                .map_err(refused)?
                .with_notification_policy(
                    spec.kisi.clone().unwrap_or_default().notification_policy,
                );
            if let Some(endpoint) = &spec.endpoint {
                config = config.with_base_url(endpoint).map_err(refused)?;
            }
            if let Some(rps) = rps {
                config.requests_per_second = rps;
            }
            KisiClient::new(config)
                .map(DoorClient::Kisi)
                .map_err(refused)
        }
        Vendor::SaltoKS => {
            let site = spec.salto_ks.as_ref().ok_or(ClientError::MissingSetting(
                "spec.saltoKs.siteId is required for a SaltoKS connection",
            ))?;
            let mut config = SaltoKsConfig::new(
                site.site_id.clone(),
                need(CredentialRole::ClientId)?.expose().to_owned(),
                need(CredentialRole::ClientSecret)?.clone(),
                need(CredentialRole::Username)?.expose().to_owned(),
                need(CredentialRole::Password)?.clone(),
            )
            .map_err(refused)?;
            if let Some(endpoint) = &spec.endpoint {
                config = config.with_base_url(endpoint).map_err(refused)?;
            }
            if let Some(auth) = auth_base(connection)? {
                config.identity_url = url("spec.authEndpoint", &auth)?;
            }
            if let Some(rps) = rps {
                config.requests_per_second = rps;
            }
            config.user_role_id = site.user_role_id.clone();
            SaltoKsClient::new(config)
                .map(|c| DoorClient::SaltoKs(c.with_clock(clock)))
                .map_err(refused)
        }
        Vendor::Brivo => {
            let mut config = BrivoConfig::new(
                need(CredentialRole::ApiKey)?.clone(),
                need(CredentialRole::ClientId)?.expose().to_owned(),
                need(CredentialRole::ClientSecret)?.clone(),
                need(CredentialRole::Username)?.expose().to_owned(),
                need(CredentialRole::Password)?.clone(),
            )
            .map_err(refused)?
            .with_mobile_pass_target(spec.brivo.clone().unwrap_or_default().mobile_pass_target);
            if let Some(endpoint) = &spec.endpoint {
                let auth = auth_base(connection)?
                    .unwrap_or_else(|| BrivoConfig::DEFAULT_AUTH_URL.to_owned());
                config = config.with_urls(endpoint, &auth).map_err(refused)?;
            } else if let Some(auth) = &spec.auth_endpoint {
                config.auth_url = url("spec.authEndpoint", auth)?;
            }
            if let Some(rps) = rps {
                config.requests_per_second = rps;
            }
            BrivoClient::new(config)
                .map(|c| DoorClient::Brivo(c.with_clock(clock)))
                .map_err(refused)
        }
        other => Err(ClientError::WrongVendor(format!(
            "{other} is not a door-access vendor"
        ))),
    }
}

impl DoorVendor for DoorClient {
    async fn check(&self) -> Result<AccountInfo, VendorError> {
        match self {
            DoorClient::Kisi(c) => c.check().await,
            DoorClient::SaltoKs(c) => c.check().await,
            DoorClient::Brivo(c) => c.check().await,
        }
    }

    async fn list_groups(&self) -> Result<Vec<VendorGroup>, VendorError> {
        match self {
            DoorClient::Kisi(c) => c.list_groups().await,
            DoorClient::SaltoKs(c) => c.list_groups().await,
            DoorClient::Brivo(c) => c.list_groups().await,
        }
    }

    async fn list_users(&self) -> Result<Vec<VendorUser>, VendorError> {
        match self {
            DoorClient::Kisi(c) => c.list_users().await,
            DoorClient::SaltoKs(c) => c.list_users().await,
            DoorClient::Brivo(c) => c.list_users().await,
        }
    }

    async fn list_group_members(&self, group: &VendorGroup) -> Result<Vec<String>, VendorError> {
        match self {
            DoorClient::Kisi(c) => c.list_group_members(group).await,
            DoorClient::SaltoKs(c) => c.list_group_members(group).await,
            DoorClient::Brivo(c) => c.list_group_members(group).await,
        }
    }

    async fn create_user(&self, user: &NewUser) -> Result<VendorUser, VendorError> {
        match self {
            DoorClient::Kisi(c) => c.create_user(user).await,
            DoorClient::SaltoKs(c) => c.create_user(user).await,
            DoorClient::Brivo(c) => c.create_user(user).await,
        }
    }

    async fn add_to_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
        context: GrantContext,
    ) -> Result<(), VendorError> {
        match self {
            DoorClient::Kisi(c) => c.add_to_group(user_id, group, context).await,
            DoorClient::SaltoKs(c) => c.add_to_group(user_id, group, context).await,
            DoorClient::Brivo(c) => c.add_to_group(user_id, group, context).await,
        }
    }

    async fn remove_from_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
    ) -> Result<(), VendorError> {
        match self {
            DoorClient::Kisi(c) => c.remove_from_group(user_id, group).await,
            DoorClient::SaltoKs(c) => c.remove_from_group(user_id, group).await,
            DoorClient::Brivo(c) => c.remove_from_group(user_id, group).await,
        }
    }

    fn access_blocked(&self, user_id: &str) -> Option<String> {
        match self {
            DoorClient::Kisi(c) => c.access_blocked(user_id),
            DoorClient::SaltoKs(c) => c.access_blocked(user_id),
            DoorClient::Brivo(c) => c.access_blocked(user_id),
        }
    }

    fn grant_notices(&self) -> GrantNotices {
        match self {
            DoorClient::Kisi(c) => c.grant_notices(),
            DoorClient::SaltoKs(c) => c.grant_notices(),
            DoorClient::Brivo(c) => c.grant_notices(),
        }
    }

    async fn holds_access(&self, user_id: &str) -> Result<bool, VendorError> {
        match self {
            DoorClient::Kisi(c) => c.holds_access(user_id).await,
            DoorClient::SaltoKs(c) => c.holds_access(user_id).await,
            DoorClient::Brivo(c) => c.holds_access(user_id).await,
        }
    }
}
