//! The pure access engine: decides, from an OfficeRnD snapshot and a set of bindings, who belongs in which
//! vendor access group at an instant, why, and when that next changes. No I/O, no clock: the caller passes
//! the instant.
//!
//! Rules come from the integration help pages (seeds): Salto KS (002), Brivo (003) and Kisi (001). Each rule
//! is documented where it is implemented ([`rules`] and the `collect_*` functions of [`evaluate`]).

pub mod calendar;
pub(crate) mod eligibility;
pub mod evaluate;
pub mod explain;
pub(crate) mod hash;
pub mod index;
pub(crate) mod recurrence;
pub(crate) mod rules;
pub mod types;

pub use evaluate::{assemble, evaluate, evaluate_binding, BindingEvaluation, Engine, Recomputed};
pub use explain::{explain, BindingVerdict, Explanation, GroupExplanation};
pub use index::{Index, Touch, Touched};
pub use types::{
    Binding, BindingKey, BookingRole, Entitlement, Evaluation, Grant, GroupKey, ObjectKind,
    ObjectRef, PersonId, Problem, ProblemKind, Reason, SharedId, Source,
};
