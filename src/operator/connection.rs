//! Checks a VendorConnection: are its credentials accepted, and what does the account offer.

use kube::ResourceExt;

use crate::api::conditions::Reason;
use crate::api::vendor_connection::{AccountSummary, VendorConnection};
use crate::api::Vendor;
use crate::clock::Clock;
use crate::http::HttpError;
use crate::officernd::collection::Collection;
use crate::officernd::model::{Location, Member};
use crate::officernd::OfficeRndError;
use crate::vendors::essensys::EssensysApi;
use crate::vendors::{DoorVendor, VendorError};

use super::objects::Objects;
use super::status::Outcome;
use super::{clients, credentials};

/// What checking a connection found.
#[derive(Debug, Clone)]
pub struct ConnectionResult {
    /// Ready / Reconciling / Stalled.
    pub outcome: Outcome,
    /// What the account offers, when the check got that far.
    pub account: Option<AccountSummary>,
}

fn failed(reason: Reason, message: String) -> ConnectionResult {
    ConnectionResult {
        outcome: Outcome::not_ready(reason, message),
        account: None,
    }
}

/// How a check learns how many members an OfficeRnD organization has.
#[derive(Debug, Clone, Copy)]
pub enum MemberCount {
    /// List every member (one-shot runs, where the organization is read whole anyway).
    ListAll,
    /// Taken from the operator's shared picture (`None` until it is read); the check itself
    /// reads one member, so checking a large organization costs two requests, not thousands.
    Known(Option<usize>),
}

/// Checks `connection`'s credentials against its vendor.
pub async fn check(
    connection: &VendorConnection,
    objects: &Objects,
    clock: &Clock,
    member_count: MemberCount,
) -> ConnectionResult {
    let namespace = connection.namespace().unwrap_or_default();
    if connection.spec.suspend {
        return failed(
            Reason::Suspended,
            "spec.suspend is true: no call is made".to_owned(),
        );
    }
    let secret = objects.secret(&namespace, &connection.spec.credentials_secret_ref.name);
    let credentials = match credentials::read(connection, &namespace, secret) {
        Ok(credentials) => credentials,
        Err(error) => return failed(Reason::SecretNotFound, error.to_string()),
    };
    match connection.spec.vendor {
        Vendor::OfficeRnD => {
            let client = match clients::officernd(connection, &credentials) {
                Ok(client) => client,
                Err(error) => return failed(Reason::InvalidSpec, error),
            };
            let members = async {
                match member_count {
                    MemberCount::ListAll => client
                        .list_members::<Member>(None)
                        .await
                        .map(|members| Some(members.len())),
                    MemberCount::Known(known) => client
                        .probe::<Member>(Collection::Members)
                        .await
                        .map(|_| known),
                }
            };
            let (locations, members) =
                match futures::try_join!(client.list_locations::<Location>(), members) {
                    Ok(found) => found,
                    Err(error) => {
                        return failed(
                            officernd_reason(&error),
                            format!("OfficeRnD refused or failed: {error}"),
                        )
                    }
                };
            let counted = members.map_or_else(String::new, |n| format!(", {n} members"));
            ready(
                format!(
                    "credentials accepted: {} locations{counted}",
                    locations.len()
                ),
                AccountSummary {
                    groups: None,
                    sites: Some(locations.len() as u32),
                    people: members.map(|n| n as u32),
                },
            )
        }
        Vendor::Kisi | Vendor::SaltoKS | Vendor::Brivo => {
            let client = match clients::door(connection, &credentials, clock.clone()) {
                Ok(client) => client,
                Err(error) => return failed(Reason::InvalidSpec, error),
            };
            match client.check().await {
                Ok(info) => ready(
                    format!(
                        "credentials accepted: {} groups, {} users",
                        info.groups, info.users
                    ),
                    AccountSummary {
                        groups: Some(info.groups),
                        sites: None,
                        people: Some(info.users),
                    },
                ),
                Err(error) => failed(vendor_reason(&error), error.to_string()),
            }
        }
        Vendor::Essensys => {
            let client = match clients::essensys(connection, &credentials, clock.clone()) {
                Ok(client) => client,
                Err(error) => return failed(Reason::InvalidSpec, error),
            };
            match client.list_sites().await {
                Ok(sites) => ready(
                    format!("credentials accepted: {} sites", sites.len()),
                    AccountSummary {
                        groups: None,
                        sites: Some(sites.len() as u32),
                        people: None,
                    },
                ),
                Err(error) if error.is_retryable_later() => {
                    failed(Reason::VendorUnreachable, error.to_string())
                }
                Err(error) => failed(Reason::CredentialsInvalid, error.to_string()),
            }
        }
    }
}

fn ready(message: String, account: AccountSummary) -> ConnectionResult {
    ConnectionResult {
        outcome: Outcome::ready(Reason::Synced, message),
        account: Some(account),
    }
}

/// Why a door vendor refused: credentials (a person must act) or anything else (retried).
pub fn vendor_reason(error: &VendorError) -> Reason {
    match error {
        VendorError::CredentialsInvalid(_) | VendorError::Http(HttpError::Unauthorized { .. }) => {
            Reason::CredentialsInvalid
        }
        _ => Reason::VendorUnreachable,
    }
}

/// Why OfficeRnD refused: bad configuration, bad credentials or scopes, or anything else.
pub fn officernd_reason(error: &OfficeRndError) -> Reason {
    match error {
        OfficeRndError::Config(_) => Reason::InvalidSpec,
        OfficeRndError::Unauthorized { .. }
        | OfficeRndError::Http(HttpError::Unauthorized { .. })
        | OfficeRndError::Token {
            source: HttpError::Unauthorized { .. } | HttpError::BadRequest { .. },
            ..
        } => Reason::CredentialsInvalid,
        _ => Reason::VendorUnreachable,
    }
}
