//! Shared test-support code for integration tests (each test binary uses a subset, hence `dead_code`).
#![allow(dead_code)]

pub mod apiserver;
