//! The built-in sandbox: every simulator together, demo data and a controllable clock, so the
//! demo and the tests run the real clients against faithful stand-ins of each vendor. One file
//! per vendor (`officernd`, `kisi`, `salto_ks`, `brivo`, `essensys`) holds only that vendor's
//! wire behaviour; the plumbing they share is [`kit`] and [`faults`].

pub mod brivo;
pub mod essensys;
pub mod faults;
pub mod kisi;
pub mod kit;
pub mod manifests;
pub mod officernd;
pub mod salto_ks;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use serde_json::Value;

use std::collections::BTreeMap;

use crate::api::vendor_connection::CredentialKeys;
use crate::api::Vendor;
use crate::clock::ManualClock;
use crate::operator::objects::Objects;
use crate::vendors::essensys::model::{OccupierKind, SiteService};
use essensys::{FloorSeed, SiteSeed};
use kit::{Login, OAuthClient};
use officernd::{Simulator, SimulatorError, SimulatorHandle};

/// The demo organization (London and Paris, hot desks, a private office, a meeting room with
/// bookings, day passes), in the seed-file format: the OfficeRnD API's own field names.
pub const DEMO_SEED: &str = include_str!("demo-seed.json");

/// The instant the demo starts at: Monday 2026-11-23 08:00 UTC, an hour and three quarters
/// before the demo's board-meeting booking opens its door.
pub fn demo_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The seed is not valid JSON.
    #[error("the seed is not valid JSON: {0}")]
    Seed(#[from] serde_json::Error),
    /// The OfficeRnD simulator refused the seed or could not bind.
    #[error("OfficeRnD simulator: {0}")]
    OfficeRnd(#[from] SimulatorError),
    /// A door-vendor simulator could not start or be seeded.
    #[error("{vendor} simulator: {message}")]
    Vendor {
        /// Which vendor.
        vendor: Vendor,
        /// What went wrong.
        message: String,
    },
}

fn vendor_error(vendor: Vendor) -> impl Fn(String) -> SandboxError {
    move |message| SandboxError::Vendor { vendor, message }
}

/// A Secret's entries for an OAuth client, under the key names the connection reads.
fn client_entries(keys: &CredentialKeys, client: &OAuthClient) -> Vec<(String, String)> {
    vec![
        (keys.client_id.clone(), client.id.clone()),
        (
            keys.client_secret.clone(),
            client.secret.expose().to_owned(),
        ),
    ]
}

/// A Secret's entries for a login, under the key names the connection reads.
fn login_entries(keys: &CredentialKeys, login: &Login) -> Vec<(String, String)> {
    vec![
        (keys.username.clone(), login.username.clone()),
        (keys.password.clone(), login.password.expose().to_owned()),
    ]
}

/// A Secret's namespace and name.
type SecretKey = (String, String);

/// Every running simulator and the clock they share.
pub struct Sandbox {
    /// The sandbox clock; simulators read it, the demo advances it.
    pub clock: ManualClock,
    /// OfficeRnD.
    pub officernd: SimulatorHandle,
    /// Kisi.
    pub kisi: kisi::SimulatorHandle,
    /// Salto KS (one site).
    pub salto_ks: salto_ks::SimulatorHandle,
    /// Brivo.
    pub brivo: brivo::SimulatorHandle,
    /// essensys Platform: site "London Bridge" (Wi-Fi and elumo, set up by hand with names that
    /// differ slightly from OfficeRnD's London) and the empty site "Paris Rive Gauche" (Wi-Fi).
    pub essensys: essensys::SimulatorHandle,
    /// Group ids by vendor and name, as seeded.
    groups: BTreeMap<(Vendor, String), String>,
}

/// The essensys site the London example maps to (Wi-Fi and elumo, already set up).
pub const ESSENSYS_LONDON_SITE: &str = "London Bridge";
/// The empty essensys site (Wi-Fi only), for the one-time provisioning.
pub const ESSENSYS_PARIS_SITE: &str = "Paris Rive Gauche";

/// Groups every door vendor starts with: the managed ones the examples bind (prefixed
/// OFFICERND_) and a hand-managed one flexgate must never touch.
const SEED_GROUPS: [(Vendor, &str); 8] = [
    (Vendor::Kisi, "OFFICERND_Lobby"),
    (Vendor::Kisi, "OFFICERND_Office 101"),
    (Vendor::Kisi, "Cleaners"),
    (Vendor::SaltoKS, "OFFICERND_Floor 1"),
    (Vendor::SaltoKS, "Staff"),
    (Vendor::Brivo, "OFFICERND_London Building"),
    (Vendor::Brivo, "OFFICERND_Elephant Room"),
    (Vendor::Brivo, "VIP Guests"),
];

impl Sandbox {
    /// Starts every simulator on 127.0.0.1 (ephemeral ports) with `seed` for OfficeRnD.
    pub async fn start(seed: Value, start_at: DateTime<Utc>) -> Result<Self, SandboxError> {
        let clock = ManualClock::new(start_at);
        let officernd = Simulator::start(seed, clock.clock()).await?;
        let kisi = kisi::Simulator::start(kisi::SimulatorOptions::default())
            .await
            .map_err(|e| vendor_error(Vendor::Kisi)(e.to_string()))?;
        let salto_ks = salto_ks::start(salto_ks::SimulatorOptions {
            site_name: "London".to_owned(),
            clock: clock.clock().into(),
            ..Default::default()
        })
        .await
        .map_err(|e| vendor_error(Vendor::SaltoKS)(e.to_string()))?;
        let brivo = brivo::Simulator::start(brivo::SimulatorOptions {
            clock: clock.clock().into(),
            ..Default::default()
        })
        .await
        .map_err(|e| vendor_error(Vendor::Brivo)(e.to_string()))?;
        let essensys = essensys::Simulator::start(essensys::SimulatorOptions {
            clock: clock.clock().into(),
            ..Default::default()
        })
        .await
        .map_err(|e| vendor_error(Vendor::Essensys)(e.to_string()))?;
        let mut sandbox = Self {
            clock,
            officernd,
            kisi,
            salto_ks,
            brivo,
            essensys,
            groups: BTreeMap::new(),
        };
        sandbox.seed_vendors()?;
        sandbox.seed_essensys()?;
        Ok(sandbox)
    }

    /// Seeds the door vendors as a space would have them before flexgate: the groups, a member
    /// who already has a Kisi account (under a differently-cased email), someone added by hand to
    /// a managed group, and people in the hand-managed groups.
    fn seed_vendors(&mut self) -> Result<(), SandboxError> {
        for (vendor, name) in SEED_GROUPS {
            let id = match vendor {
                Vendor::Kisi => self.kisi.add_group(name),
                Vendor::SaltoKS => self.salto_ks.add_group(name),
                _ => self.brivo.add_group(name),
            };
            self.groups.insert((vendor, name.to_owned()), id);
        }
        let kisi_error = vendor_error(Vendor::Kisi);
        self.kisi
            .add_user("Ann Lee", "Ann.Lee@Example.com")
            .map_err(|e| kisi_error(e.to_string()))?;
        let intruder = self
            .kisi
            .add_user("Mallory Tailgate", "mallory@example.net")
            .map_err(|e| kisi_error(e.to_string()))?;
        self.kisi
            .dashboard_add_to_group(&intruder, &self.group_id(Vendor::Kisi, "OFFICERND_Lobby"))
            .map_err(|e| kisi_error(e.to_string()))?;
        let cleaner = self
            .kisi
            .add_user("Carl Cleaner", "carl@cleaning.example")
            .map_err(|e| kisi_error(e.to_string()))?;
        self.kisi
            .dashboard_add_to_group(&cleaner, &self.group_id(Vendor::Kisi, "Cleaners"))
            .map_err(|e| kisi_error(e.to_string()))?;
        self.salto_ks
            .add_user("Sam", "Staff", Some("sam.staff@example.com"));
        self.salto_ks
            .dashboard_add_to_group(
                &self.group_id(Vendor::SaltoKS, "Staff"),
                "sam.staff@example.com",
            )
            .map_err(|e| vendor_error(Vendor::SaltoKS)(e.to_string()))?;
        let vip = self
            .brivo
            .add_user(brivo::SeedUser::new("Vera", "Important").email("vera@vip.example"));
        self.brivo
            .dashboard_add_to_group(&self.group_id(Vendor::Brivo, "VIP Guests"), &vip)
            .map_err(|e| vendor_error(Vendor::Brivo)(e.to_string()))?;
        Ok(())
    }

    /// Seeds essensys as an operator would have it before flexgate: "London Bridge" with floors,
    /// spaces and occupiers named slightly differently from OfficeRnD's London ("1st Floor",
    /// "Office No. 101", "Meeting Room 3 (Elephant)", "ACME Limited", ...), one user already
    /// there (under a differently-cased email, with another mobile number), plus things OfficeRnD
    /// does not have; and the empty site "Paris Rive Gauche".
    fn seed_essensys(&mut self) -> Result<(), SandboxError> {
        let fail = vendor_error(Vendor::Essensys);
        let spaces = |names: &[(&str, bool)]| {
            names
                .iter()
                .map(|(name, bookable)| (name.to_string(), *bookable))
                .collect()
        };
        let london = self
            .essensys
            .seed_site(&SiteSeed {
                name: ESSENSYS_LONDON_SITE.to_owned(),
                services: vec![SiteService::Wifi, SiteService::Elumo],
                floors: vec![
                    FloorSeed {
                        name: "1st Floor".to_owned(),
                        spaces: spaces(&[("Office No. 101", false), ("Desk-12", false)]),
                    },
                    FloorSeed {
                        name: "Second Floor".to_owned(),
                        spaces: spaces(&[
                            ("Meeting Room 3 (Elephant)", true),
                            ("Phone Booth 09", true),
                            ("Boardroom", true),
                        ]),
                    },
                ],
                occupiers: vec!["ACME Limited".to_owned(), "Wayne Enterprises".to_owned()],
            })
            .map_err(|e| fail(e.to_string()))?;
        let acme = self
            .essensys
            .occupiers(&london.id)
            .into_iter()
            .find(|o| o.name == "ACME Limited" && o.kind == OccupierKind::Company)
            .ok_or_else(|| fail("seeded occupier ACME Limited is missing".to_owned()))?;
        self.essensys
            .add_user(
                &acme.id,
                "Cyd.Park@Example.com",
                "Cyd",
                Some("+447700900003"),
            )
            .map_err(|e| fail(e.to_string()))?;
        self.essensys
            .seed_site(&SiteSeed {
                name: ESSENSYS_PARIS_SITE.to_owned(),
                services: vec![SiteService::Wifi],
                ..SiteSeed::default()
            })
            .map_err(|e| fail(e.to_string()))?;
        Ok(())
    }

    /// The id of a seeded group (empty when unknown).
    pub fn group_id(&self, vendor: Vendor, name: &str) -> String {
        self.groups
            .get(&(vendor, name.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// The emails in a seeded group at the vendor right now, sorted and lowercased.
    pub fn group_members(&self, vendor: Vendor, name: &str) -> Vec<String> {
        let id = self.group_id(vendor, name);
        let mut emails = match vendor {
            Vendor::Kisi => self.kisi.group_member_emails(&id),
            Vendor::SaltoKS => self.salto_ks.group_member_emails(&id),
            _ => self.brivo.group_member_emails(&id),
        };
        emails.iter_mut().for_each(|e| *e = e.to_ascii_lowercase());
        emails.sort();
        emails
    }

    /// Every seeded group, as (vendor, name).
    pub fn seeded_groups(&self) -> Vec<(Vendor, String)> {
        self.groups.keys().cloned().collect()
    }

    /// Starts the sandbox with the built-in demo data.
    pub async fn start_demo() -> Result<Self, SandboxError> {
        Self::start(serde_json::from_str(DEMO_SEED)?, demo_start()).await
    }

    /// Endpoints and credentials, one line each, for people to paste into manifests.
    pub fn describe(&self) -> Vec<String> {
        vec![
            format!(
                "OfficeRnD  endpoint {}  organization {}  clientId {}  clientSecret {}",
                self.officernd.base_url,
                self.officernd.org_slug,
                self.officernd.client_id,
                self.officernd.client_secret.expose()
            ),
            format!("Kisi       endpoint {}  apiKey {}", self.kisi.base_url, self.kisi.api_key.expose()),
            format!(
                "Salto KS   endpoint {}  siteId {}  clientId {}  clientSecret {}  username {}  password {}",
                self.salto_ks.base_url,
                self.salto_ks.site_id,
                self.salto_ks.client.id,
                self.salto_ks.client.secret.expose(),
                self.salto_ks.login.username,
                self.salto_ks.login.password.expose()
            ),
            format!(
                "Brivo      endpoint {}  apiKey {}  clientId {}  clientSecret {}  username {}  password {}",
                self.brivo.api_url(),
                self.brivo.api_key.expose(),
                self.brivo.client.id,
                self.brivo.client.secret.expose(),
                self.brivo.login.username,
                self.brivo.login.password.expose()
            ),
            format!(
                "essensys   platformUrl {}  username {}  password {}",
                self.essensys.base_url,
                self.essensys.login.username,
                self.essensys.login.password.expose()
            ),
        ]
    }

    /// Points the connections of `objects` at the sandbox: sets `spec.endpoint` and replaces the
    /// referenced Secrets' contents with the sandbox's credentials. Vendors the sandbox does not
    /// simulate yet are left alone and reported.
    pub fn connect(&self, objects: &mut Objects) -> Vec<String> {
        // Every vendor is simulated now; the list stays for vendors added later.
        let untouched = Vec::new();
        let mut secrets: Vec<(SecretKey, Vec<(String, String)>)> = Vec::new();
        for connection in &mut objects.connections {
            let namespace = connection.metadata.namespace.clone().unwrap_or_default();
            let keys = &connection.spec.credentials_secret_ref.keys;
            let values = match connection.spec.vendor {
                Vendor::OfficeRnD => {
                    connection.spec.endpoint = Some(self.officernd.base_url.clone());
                    if let Some(settings) = connection.spec.officernd.as_mut() {
                        settings.organization = self.officernd.org_slug.clone();
                        settings.webhook_secret_key = None;
                    }
                    vec![
                        (keys.client_id.clone(), self.officernd.client_id.clone()),
                        (
                            keys.client_secret.clone(),
                            self.officernd.client_secret.expose().to_owned(),
                        ),
                    ]
                }
                Vendor::Kisi => {
                    connection.spec.endpoint = Some(self.kisi.base_url.clone());
                    vec![(keys.api_key.clone(), self.kisi.api_key.expose().to_owned())]
                }
                Vendor::SaltoKS => {
                    connection.spec.endpoint = Some(self.salto_ks.base_url.clone());
                    connection.spec.auth_endpoint = None;
                    if let Some(settings) = connection.spec.salto_ks.as_mut() {
                        settings.site_id = self.salto_ks.site_id.clone();
                    }
                    let mut values = client_entries(keys, &self.salto_ks.client);
                    values.extend(login_entries(keys, &self.salto_ks.login));
                    values
                }
                Vendor::Brivo => {
                    connection.spec.endpoint = Some(self.brivo.api_url());
                    connection.spec.auth_endpoint = Some(self.brivo.base_url.clone());
                    let mut values =
                        vec![(keys.api_key.clone(), self.brivo.api_key.expose().to_owned())];
                    values.extend(client_entries(keys, &self.brivo.client));
                    values.extend(login_entries(keys, &self.brivo.login));
                    values
                }
                Vendor::Essensys => {
                    connection.spec.endpoint = Some(self.essensys.base_url.clone());
                    if let Some(settings) = connection.spec.essensys.as_mut() {
                        settings.platform_url = self.essensys.base_url.clone();
                    }
                    login_entries(keys, &self.essensys.login)
                }
            };
            secrets.push((
                (
                    namespace,
                    connection.spec.credentials_secret_ref.name.clone(),
                ),
                values,
            ));
        }
        for (key, values) in secrets {
            let secret = objects
                .secrets
                .entry(key.clone())
                .or_insert_with(|| KubeSecret {
                    metadata: kube::api::ObjectMeta {
                        namespace: Some(key.0.clone()),
                        name: Some(key.1.clone()),
                        ..Default::default()
                    },
                    ..Default::default()
                });
            secret.data = None;
            secret.string_data = Some(values.into_iter().collect());
        }
        untouched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options derive `Debug`; their credentials are `Secret`s, so no secret is ever shown.
    #[test]
    fn simulator_options_never_show_a_secret() {
        let brivo = brivo::SimulatorOptions::default();
        let salto_ks = salto_ks::SimulatorOptions::default();
        let essensys = essensys::SimulatorOptions::default();
        let kisi = kisi::SimulatorOptions::default();
        let shown = format!("{brivo:?} {salto_ks:?} {essensys:?} {kisi:?}");
        assert!(shown.contains(&brivo.login.username), "{shown}");
        assert!(shown.contains(&salto_ks.client.id), "{shown}");
        for secret in [
            brivo.api_key.expose(),
            brivo.client.secret.expose(),
            brivo.login.password.expose(),
            salto_ks.client.secret.expose(),
            salto_ks.login.password.expose(),
            essensys.login.password.expose(),
            kisi.api_key.expose(),
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
