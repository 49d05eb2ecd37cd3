//! Checks a VendorConnection: are its credentials accepted, and what does the account offer.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

use crate::api::conditions::{condition, Reason, CONTRACT_PROVISIONAL};
use crate::api::vendor_connection::{AccountSummary, VendorConnection};
use crate::api::Vendor;
use crate::clock::Clock;
use crate::officernd::collection::{Collection, Feature};
use crate::officernd::model::{Location, Member};
use crate::vendors::essensys::EssensysApi;
use crate::vendors::DoorVendor;

use super::objects::Objects;
use super::reconcile::errors::essensys_check_reason;
pub use super::reconcile::errors::{officernd_reason, vendor_reason};
use super::status::{self, Outcome};
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
                Err(error) => return failed(Reason::InvalidSpec, error.to_string()),
            };
            // The scopes of everything that reads through this connection, asked for in one
            // token: a scope the application lacks is named here, before a sync needs it.
            let reads = super::context::reads_for(objects, &namespace, &connection.name_any())
                .union(Feature::ConnectionCheck.reads());
            let client = client.reading(reads);
            if let Err(error) = client.check_read_scopes(reads).await {
                return failed(
                    officernd_reason(&error),
                    format!("OfficeRnD refused or failed: {error}"),
                );
            }
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
                Err(error) => return failed(Reason::InvalidSpec, error.to_string()),
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
                Err(error) => return failed(Reason::InvalidSpec, error.to_string()),
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
                Err(error) => failed(essensys_check_reason(&error), error.to_string()),
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

/// What must be confirmed with essensys before a production deployment relies on flexgate's
/// essensys client (the README section "essensys: what to confirm" says the same).
pub const ESSENSYS_PROVISIONAL_MESSAGE: &str = "essensys publishes no Platform API reference: flexgate talks to it through a contract of its own design (src/vendors/essensys), built from essensys's documented behaviour. Before relying on it in production, confirm with essensys (partner team) the endpoints and their bodies, the sign-in, paging, error and rate-limit behaviour, and how tap-to-book bookings and Wi-Fi invitations are reported; see the README, \"essensys: what to confirm\". Syncing is not affected by this notice.";

/// A connection's conditions: Ready, Reconciling and Stalled from `outcome`, plus
/// `ContractProvisional` (True) for a vendor whose contract is flexgate's own design (essensys),
/// which never changes Ready.
pub fn status_conditions(
    connection: &VendorConnection,
    outcome: &Outcome,
    generation: Option<i64>,
    now: Time,
    previous: &[Condition],
) -> Vec<Condition> {
    let mut conditions = status::conditions(outcome, generation, now.clone(), previous);
    if connection.spec.vendor == Vendor::Essensys {
        conditions.push(condition(
            CONTRACT_PROVISIONAL,
            true,
            Reason::NoPublishedApi,
            ESSENSYS_PROVISIONAL_MESSAGE,
            generation,
            now,
            previous,
        ));
    }
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::{find, READY};

    fn connection(vendor: &str, settings: serde_json::Value) -> VendorConnection {
        let mut spec = serde_json::json!({
            "vendor": vendor,
            "credentialsSecretRef": {"name": "credentials"},
        });
        if let (Some(spec), Some(settings)) = (spec.as_object_mut(), settings.as_object()) {
            spec.extend(settings.clone());
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "flexgate.dev/v1alpha1",
            "kind": "VendorConnection",
            "metadata": {"name": "c", "namespace": "default", "generation": 3},
            "spec": spec,
        }))
        .expect("a valid VendorConnection")
    }

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).expect("a valid instant"))
    }

    #[test]
    fn an_essensys_connection_says_its_contract_is_provisional_without_touching_ready() {
        let essensys = connection(
            "Essensys",
            serde_json::json!({"essensys": {"platformUrl": "https://example.essensys.tech"}}),
        );
        let ready = Outcome::ready(Reason::Synced, "credentials accepted: 2 sites");

        let conditions = status_conditions(&essensys, &ready, Some(3), now(), &[]);

        let provisional = find(&conditions, CONTRACT_PROVISIONAL).expect("ContractProvisional");
        assert_eq!(provisional.status, "True");
        assert_eq!(provisional.reason, "NoPublishedApi");
        assert!(provisional.message.contains("confirm with essensys"));
        assert_eq!(
            find(&conditions, READY).map(|c| c.status.as_str()),
            Some("True")
        );
        // It stays when the check fails, and never turns Ready false by itself.
        let refused = Outcome::not_ready(Reason::CredentialsInvalid, "refused");
        let failing = status_conditions(&essensys, &refused, Some(3), now(), &conditions);
        assert_eq!(
            find(&failing, CONTRACT_PROVISIONAL).map(|c| &c.last_transition_time),
            Some(&provisional.last_transition_time)
        );

        let kisi = connection("Kisi", serde_json::json!({}));
        let conditions = status_conditions(&kisi, &ready, Some(3), now(), &[]);
        assert!(find(&conditions, CONTRACT_PROVISIONAL).is_none());
    }
}
