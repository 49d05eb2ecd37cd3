//! Reading flexgate manifests from files and folders, and checking them offline against the
//! generated CRD schemas and their CEL rules (what a real apiserver would accept).

mod load;
mod validate;

pub use load::{load, parse, Document, LoadProblem};
pub use validate::{validate, Finding};
