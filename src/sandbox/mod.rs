//! The built-in sandbox: every simulator together, demo data and a controllable clock, so the
//! demo and the tests run the real clients against faithful stand-ins of each vendor.

pub mod faults;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use serde_json::Value;

use crate::api::Vendor;
use crate::officernd::simulator::{ManualClock, Simulator, SimulatorError, SimulatorHandle};
use crate::operator::objects::Objects;

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
}

/// A Secret's namespace and name.
type SecretKey = (String, String);

/// Every running simulator and the clock they share.
pub struct Sandbox {
    /// The sandbox clock; simulators read it, the demo advances it.
    pub clock: ManualClock,
    /// OfficeRnD.
    pub officernd: SimulatorHandle,
}

impl Sandbox {
    /// Starts every simulator on 127.0.0.1 (ephemeral ports) with `seed` for OfficeRnD.
    pub async fn start(seed: Value, start_at: DateTime<Utc>) -> Result<Self, SandboxError> {
        let clock = ManualClock::new(start_at);
        let officernd = Simulator::start(seed, clock.clock()).await?;
        Ok(Self { clock, officernd })
    }

    /// Starts the sandbox with the built-in demo data.
    pub async fn start_demo() -> Result<Self, SandboxError> {
        Self::start(serde_json::from_str(DEMO_SEED)?, demo_start()).await
    }

    /// Endpoints and credentials, one line each, for people to paste into manifests.
    pub fn describe(&self) -> Vec<String> {
        vec![format!(
            "OfficeRnD  endpoint {}  organization {}  clientId {}  clientSecret {}",
            self.officernd.base_url,
            self.officernd.org_slug,
            self.officernd.client_id,
            self.officernd.client_secret.expose()
        )]
    }

    /// Points the connections of `objects` at the sandbox: sets `spec.endpoint` and replaces the
    /// referenced Secrets' contents with the sandbox's credentials. Vendors the sandbox does not
    /// simulate yet are left alone and reported.
    pub fn connect(&self, objects: &mut Objects) -> Vec<String> {
        let mut untouched = Vec::new();
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
                other => {
                    untouched.push(format!(
                        "{}/{} ({other}): not simulated by this sandbox yet",
                        namespace,
                        connection.metadata.name.as_deref().unwrap_or_default()
                    ));
                    continue;
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
