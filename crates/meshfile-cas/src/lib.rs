//! A CAS-compatible session store for development and CI. It is NOT SCONE CAS: no SGX, no
//! attestation, secrets kept in a local file. Real deployments point `cas_url` at SCONE CAS.
//!
//! It keeps every session version (hash = SHA-256 of the canonical YAML, `predecessor`
//! included), enforces access policies by client key hash, generates and migrates secrets,
//! checks imports against exports, and previews what an attested program would receive.

pub mod client;
pub mod pki;
pub mod policy;
pub mod preview;
pub mod secrets;
pub mod server;
pub mod session;
pub mod store;
pub mod target;

pub use preview::Preview;
pub use store::{Store, Version, Written};

use std::path::PathBuf;

/// Why the store refused or failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "client key {caller} may not {operation} session `{session}`; add its key hash to the session's access_policy"
    )]
    Forbidden {
        session: String,
        operation: &'static str,
        caller: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error(
        "session `{name}` exists (active version {active}); to update it, name that hash as `predecessor`"
    )]
    Exists { name: String, active: String },
    #[error(
        "session `{name}` changed: its active version is {active}, not the predecessor {given}; read it again and retry"
    )]
    Conflict {
        name: String,
        active: String,
        given: String,
    },
    #[error("the store {} is open in another process", .0.display())]
    Locked(PathBuf),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn status(&self) -> u16 {
        match self {
            Error::Invalid(_) => 400,
            Error::Forbidden { .. } => 403,
            Error::NotFound(_) => 404,
            Error::Exists { .. } | Error::Conflict { .. } => 409,
            Error::Locked(_) | Error::Storage(_) | Error::Internal(_) => 500,
        }
    }

    /// The active hash a 409 reports, for clients that retry.
    pub fn active_hash(&self) -> Option<&str> {
        match self {
            Error::Exists { active, .. } | Error::Conflict { active, .. } => Some(active),
            _ => None,
        }
    }
}
