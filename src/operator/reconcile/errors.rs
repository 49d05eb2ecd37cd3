//! The typed errors of the pipeline stages and the one place they become condition reasons: a
//! stage returns its own error (with its source), and [`Stop::reason`] / [`BuildError::reason`]
//! and the vendor mappings below decide what Ready says. Nothing upstream of the report stage
//! carries a `(Reason, String)`.

use std::sync::Arc;

use crate::api::conditions::Reason;
use crate::http::HttpError;
use crate::officernd::OfficeRndError;
use crate::sitesync::LocationError;
use crate::sync::ResolveError;
use crate::vendors::essensys::EssensysError;
use crate::vendors::VendorError;

use super::super::clients::ClientError;
use super::super::credentials::CredentialsError;
use super::super::deadline::Exceeded;
use super::super::status::Outcome;

/// Why the dereference or validate stage stopped a reconcile before anything was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    /// The object itself is suspended.
    #[error("spec.suspend is true: nothing is read or written")]
    Suspended,
    /// A connection it uses is suspended.
    #[error("VendorConnection {namespace}/{name} is suspended: nothing is read or written")]
    ConnectionSuspended {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A referenced connection does not exist.
    #[error("VendorConnection {namespace}/{name} ({field}) not found")]
    ConnectionNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The reference naming it (`vendorRef`, `officerndRef`, `essensysRef`).
        field: &'static str,
    },
    /// A referenced connection is of the wrong vendor.
    #[error("VendorConnection {namespace}/{name} ({field}) is a {found} connection; it must be {wanted}")]
    WrongVendor {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The reference naming it.
        field: &'static str,
        /// Its vendor.
        found: String,
        /// The vendor the reference needs.
        wanted: String,
    },
}

impl Stop {
    /// The Ready reason.
    pub fn reason(&self) -> Reason {
        match self {
            Stop::Suspended | Stop::ConnectionSuspended { .. } => Reason::Suspended,
            Stop::ConnectionNotFound { .. } => Reason::ReferenceNotFound,
            Stop::WrongVendor { .. } => Reason::InvalidSpec,
        }
    }

    /// The outcome: a suspension waits for a person without being a failure (not retried, not
    /// stalled); anything else follows its reason.
    pub fn outcome(&self) -> Outcome {
        match self.reason() {
            Reason::Suspended => Outcome {
                ready: false,
                reason: Reason::Suspended,
                message: self.to_string(),
                retrying: false,
            },
            reason => Outcome::not_ready(reason, self.to_string()),
        }
    }
}

/// Why the build stage could not make a client or read the OfficeRnD picture.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BuildError {
    /// The referenced connection is gone (or not of a kind that has this client).
    #[error(transparent)]
    Stop(#[from] Stop),
    /// The connection's credentials cannot be read.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The connection's settings do not make a client.
    #[error("VendorConnection {connection}: {source}")]
    Settings {
        /// `namespace/name`.
        connection: String,
        /// What is wrong.
        #[source]
        source: ClientError,
    },
    /// OfficeRnD could not be read.
    #[error("OfficeRnD connection {connection}: {source}")]
    OfficeRnd {
        /// `namespace/name`.
        connection: String,
        /// Why.
        #[source]
        source: ReadFailure,
    },
}

impl BuildError {
    /// The Ready reason.
    pub fn reason(&self) -> Reason {
        match self {
            BuildError::Stop(stop) => stop.reason(),
            BuildError::Credentials(_) => Reason::SecretNotFound,
            BuildError::Settings { .. } => Reason::InvalidSpec,
            BuildError::OfficeRnd { source, .. } => source.reason(),
        }
    }

    /// The outcome this error leads to.
    pub fn outcome(&self) -> Outcome {
        match self {
            BuildError::Stop(stop) => stop.outcome(),
            other => Outcome::not_ready(other.reason(), other.to_string()),
        }
    }
}

/// Why OfficeRnD could not be read for the bindings of a connection (each binding reports it).
/// Cloneable: one failed read is reported by every binding of the connection.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadFailure {
    /// The OfficeRnD connection named by `officerndRef` does not exist.
    #[error("VendorConnection {namespace}/{name} not found")]
    ConnectionNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// Its credentials cannot be read.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// Its settings do not make a client.
    #[error(transparent)]
    Settings(#[from] ClientError),
    /// OfficeRnD refused or failed the read (after the client's retries).
    #[error("reading OfficeRnD failed, nothing was evaluated: {0}")]
    Read(#[source] Arc<OfficeRndError>),
    /// The read ran past its deadline.
    #[error(transparent)]
    Deadline(#[from] Exceeded),
    /// Indexing the read picture failed (a panic on the blocking pool).
    #[error("indexing the OfficeRnD snapshot failed: {0}")]
    Indexing(String),
}

impl ReadFailure {
    /// The Ready reason: a missing connection or Secret, bad settings and refused credentials
    /// need a person; an outage or a deadline is retried.
    pub fn reason(&self) -> Reason {
        match self {
            ReadFailure::ConnectionNotFound { .. } => Reason::ReferenceNotFound,
            ReadFailure::Credentials(_) => Reason::SecretNotFound,
            ReadFailure::Settings(_) => Reason::InvalidSpec,
            ReadFailure::Read(error) => officernd_reason(error),
            ReadFailure::Deadline(_) | ReadFailure::Indexing(_) => Reason::VendorUnreachable,
        }
    }
}

impl From<OfficeRndError> for ReadFailure {
    fn from(error: OfficeRndError) -> Self {
        ReadFailure::Read(Arc::new(error))
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

/// Why a SiteMapping's location names no single OfficeRnD location: several with the name, none,
/// or a selector that names nothing (a spec the schema should have refused).
pub fn location_reason(error: &LocationError) -> Reason {
    match error {
        LocationError::Ambiguous { .. } => Reason::AmbiguousReference,
        LocationError::Unnamed => Reason::InvalidSpec,
        LocationError::NoSuchId(_) | LocationError::NoSuchName(_) => Reason::ReferenceNotFound,
    }
}

/// Why a binding's groups could not be resolved at the vendor: a group that may be hand-managed
/// first, then an ambiguous name, else a missing group (all need a person).
pub fn resolve_reason(errors: &[ResolveError]) -> Reason {
    if errors
        .iter()
        .any(|e| matches!(e, ResolveError::Unmanaged { .. }))
    {
        Reason::UnmanagedGroup
    } else if errors
        .iter()
        .any(|e| matches!(e, ResolveError::Ambiguous { .. }))
    {
        Reason::AmbiguousReference
    } else {
        Reason::ReferenceNotFound
    }
}

/// Why OfficeRnD refused: bad configuration, bad credentials or scopes, an organization that
/// does not exist, or anything else (retried).
pub fn officernd_reason(error: &OfficeRndError) -> Reason {
    match error {
        OfficeRndError::Config(_) => Reason::InvalidSpec,
        OfficeRndError::OrganizationNotFound { .. } => Reason::ReferenceNotFound,
        OfficeRndError::ScopeRefused { .. }
        | OfficeRndError::Unauthorized { .. }
        | OfficeRndError::Http(HttpError::Unauthorized { .. })
        | OfficeRndError::Token {
            source: HttpError::Unauthorized { .. } | HttpError::BadRequest { .. },
            ..
        } => Reason::CredentialsInvalid,
        _ => Reason::VendorUnreachable,
    }
}

/// Why essensys refused during a site sync: a sign-in refused for good or a refused token need a
/// person; anything else is retried.
pub fn essensys_reason(error: &EssensysError) -> Reason {
    match error {
        EssensysError::Login { source, .. } if !source.is_retryable_later() => {
            Reason::CredentialsInvalid
        }
        EssensysError::Unauthorized { .. } => Reason::CredentialsInvalid,
        _ => Reason::VendorUnreachable,
    }
}

/// Why essensys refused a connection check: only "try later" failures are retried.
pub fn essensys_check_reason(error: &EssensysError) -> Reason {
    if error.is_retryable_later() {
        Reason::VendorUnreachable
    } else {
        Reason::CredentialsInvalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_error_names_the_reason_a_person_reads() {
        let suspended = Stop::ConnectionSuspended {
            namespace: "ns".into(),
            name: "kisi".into(),
        };
        assert_eq!(suspended.reason(), Reason::Suspended);
        assert!(!suspended.outcome().retrying, "a suspension is not retried");
        let missing = BuildError::from(Stop::ConnectionNotFound {
            namespace: "ns".into(),
            name: "kisi".into(),
            field: "vendorRef",
        });
        assert_eq!(missing.reason(), Reason::ReferenceNotFound);
        assert_eq!(
            missing.to_string(),
            "VendorConnection ns/kisi (vendorRef) not found"
        );
        let secret = BuildError::from(CredentialsError::SecretNotFound {
            namespace: "ns".into(),
            name: "kisi-credentials".into(),
        });
        assert_eq!(secret.reason(), Reason::SecretNotFound);
        let read = BuildError::OfficeRnd {
            connection: "ns/officernd".into(),
            source: ReadFailure::Deadline(Exceeded {
                what: "reading OfficeRnD whole",
                deadline: std::time::Duration::from_secs(60),
            }),
        };
        assert_eq!(read.reason(), Reason::VendorUnreachable);
        assert!(read.outcome().retrying);
        assert!(read.to_string().starts_with(
            "OfficeRnD connection ns/officernd: reading OfficeRnD whole did not finish within"
        ));
        let no_secret = ReadFailure::from(CredentialsError::SecretNotFound {
            namespace: "ns".into(),
            name: "officernd-credentials".into(),
        });
        assert_eq!(
            no_secret.reason(),
            secret.reason(),
            "a missing Secret reads the same for OfficeRnD as for a door vendor"
        );
        let refused = ReadFailure::from(OfficeRndError::ScopeRefused {
            refused: vec!["flex.space.passes.read".into()],
        });
        assert_eq!(refused.reason(), Reason::CredentialsInvalid);
        assert!(
            std::error::Error::source(&refused).is_some(),
            "the OfficeRnD error is kept"
        );
    }

    #[test]
    fn officernd_failures_map_to_reasons_a_person_can_act_on() {
        assert_eq!(
            officernd_reason(&OfficeRndError::OrganizationNotFound {
                slug: "typo".into()
            }),
            Reason::ReferenceNotFound
        );
        assert_eq!(
            officernd_reason(&OfficeRndError::ScopeRefused {
                refused: vec!["flex.space.passes.read".into()]
            }),
            Reason::CredentialsInvalid
        );
    }
}
