//! Lease-based leader election on `coordination.k8s.io/v1` Leases (kube 5 ships none): acquire,
//! renew and release with optimistic concurrency on `resourceVersion`, so two replicas never
//! both believe they lead.
//!
//! Timing: lease 15 s, renewed every 5 s; a leader that has not renewed for 10 s (the renew
//! deadline, well inside the lease) stops leading on its own before anyone may take over.
//! Times are wall-clock (the apiserver's and the other replicas'), never the engine's clock.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;
use tokio::sync::watch;

/// Leader-election settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// How often the leader renews.
    pub renew_every: Duration,
    /// A leader that could not renew for this long stops leading (less than `lease_duration`).
    pub renew_deadline: Duration,
    /// How often a follower retries to acquire.
    pub retry_every: Duration,
}

impl LeaseConfig {
    /// The standard timing (15 s lease, 5 s renewals, 10 s deadline, 2 s retries).
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            renew_deadline: Duration::from_secs(10),
            retry_every: Duration::from_secs(2),
        }
    }
}

/// Why a lease operation failed (other than losing a race, which is not an error).
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The API server refused or could not be reached.
    #[error("Lease {namespace}/{name}: {source}; check that the operator may get, create and update leases.coordination.k8s.io in {namespace}")]
    Api {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// Who holds the lease after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// This replica holds it.
    Leading,
    /// Another replica holds a valid lease (or won the race just now).
    Following {
        /// The current holder, when known.
        holder: Option<String>,
    },
}

/// Acquires, renews and releases one Lease.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

impl LeaderElector {
    /// An elector for `config` through `client`.
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    fn api_error(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source,
        }
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(15)
    }

    /// One attempt: create the lease if absent, renew it if held, take it over if expired.
    /// Every write carries the resourceVersion just read, so of two racing replicas exactly one
    /// wins and the other gets 409 and follows.
    pub async fn try_acquire_or_renew(&self) -> Result<LeaseState, LeaderError> {
        let current = match self.api.get(&self.config.name).await {
            Ok(lease) => lease,
            Err(error) if is_not_found(&error) => return self.create().await,
            Err(error) => return Err(self.api_error(error)),
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let held_by_us = holder.as_deref() == Some(self.config.identity.as_str());
        if !held_by_us && holder.is_some() && !Self::expired(&spec) {
            return Ok(LeaseState::Following { holder });
        }
        let mut next = current.clone();
        let stamp = now();
        let next_spec = next.spec.get_or_insert_with(LeaseSpec::default);
        if !held_by_us {
            next_spec.acquire_time = Some(stamp.clone());
            next_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            next_spec.holder_identity = Some(self.config.identity.clone());
        }
        next_spec.renew_time = Some(stamp);
        next_spec.lease_duration_seconds = Some(self.lease_seconds());
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(LeaseState::Leading),
            Err(error) if is_conflict(&error) => Ok(LeaseState::Following { holder }),
            Err(error) => Err(self.api_error(error)),
        }
    }

    async fn create(&self) -> Result<LeaseState, LeaderError> {
        let stamp = now();
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.lease_seconds()),
                acquire_time: Some(stamp.clone()),
                renew_time: Some(stamp),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(LeaseState::Leading),
            Err(error) if is_conflict(&error) => Ok(LeaseState::Following { holder: None }),
            Err(error) => Err(self.api_error(error)),
        }
    }

    fn expired(spec: &LeaseSpec) -> bool {
        let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
            return true;
        };
        let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(15));
        let until = renewed.0.as_second().saturating_add(seconds);
        Timestamp::now().as_second() > until
    }

    /// Gives the lease up if this replica holds it, so a standby takes over at once instead of
    /// after the lease expires.
    pub async fn release(&self) -> Result<(), LeaderError> {
        let current = match self.api.get(&self.config.name).await {
            Ok(lease) => lease,
            Err(error) if is_not_found(&error) => return Ok(()),
            Err(error) => return Err(self.api_error(error)),
        };
        let held_by_us = current
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(self.config.identity.as_str());
        if !held_by_us {
            return Ok(());
        }
        let mut next = current;
        if let Some(spec) = next.spec.as_mut() {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(now());
        }
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if is_conflict(&error) => Ok(()),
            Err(error) => Err(self.api_error(error)),
        }
    }

    /// Waits until this replica leads (`Ok(true)`) or `stop` is raised (`Ok(false)`). Errors
    /// talking to the API server are logged and retried.
    pub async fn acquire(&self, stop: &mut watch::Receiver<bool>) -> bool {
        loop {
            if *stop.borrow() {
                return false;
            }
            match self.try_acquire_or_renew().await {
                Ok(LeaseState::Leading) => return true,
                Ok(LeaseState::Following { holder }) => {
                    tracing::debug!(?holder, "another replica leads; standing by");
                }
                Err(error) => tracing::warn!(%error, "leader election attempt failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.retry_every) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Renews the lease every `renew_every` until `stop` is raised. Returns `true` when it had to
    /// give up leading (lost the lease, or could not renew within the deadline) and `false` on a
    /// requested stop. The caller must stop writing as soon as this returns `true`.
    pub async fn keep_leading(&self, stop: &mut watch::Receiver<bool>) -> bool {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.config.renew_every) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return false;
            }
            match self.try_acquire_or_renew().await {
                Ok(LeaseState::Leading) => last_renewed = tokio::time::Instant::now(),
                Ok(LeaseState::Following { holder }) => {
                    tracing::error!(?holder, "lost the leader lease; stopping all writes");
                    return true;
                }
                Err(error) => {
                    tracing::warn!(%error, "could not renew the leader lease");
                    if last_renewed.elapsed() >= self.config.renew_deadline {
                        tracing::error!(
                            "leader lease not renewed within the deadline; stopping all writes"
                        );
                        return true;
                    }
                }
            }
        }
    }
}
