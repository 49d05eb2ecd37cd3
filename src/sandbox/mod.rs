//! Sandbox support shared by the vendor simulators (this scratch crate holds only fault injection).

pub mod faults;
