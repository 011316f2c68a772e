//! A CAS-compatible session store for development and CI. It is NOT SCONE CAS: no SGX, no
//! attestation, secrets kept in a local file. Real deployments point `cas_url` at SCONE CAS.
//!
//! It keeps every session version (hash = SHA-256 of the canonical YAML, `predecessor`
//! included), enforces access policies by client key hash, generates and migrates secrets,
//! checks imports against exports, and previews what an attested program would receive.

/// Largest session body the store and the server accept: sessions are kilobytes.
pub const BODY_LIMIT: usize = 1024 * 1024;

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

/// Why a CAS operation failed: one type for the embedded store, the server that serves it and
/// the client that talks to a CAS over the network, so callers decide on the domain's terms
/// (not found, conflict, forbidden, ...) and never on HTTP status codes.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// The request or the session is malformed; sending it again will not help.
    #[error("{0}")]
    Invalid(String),
    /// The caller's key hash is not admitted by the access policy.
    #[error(
        "client key {caller} may not {operation} session `{session}`; add its key hash to the session's access_policy"
    )]
    Forbidden {
        session: String,
        operation: String,
        caller: String,
    },
    /// A signed session whose signatures do not meet the access policy's signers and thresholds.
    #[error(
        "{operation} of session `{session}` is not approved by its signatures: missing {unmet}"
    )]
    Unapproved {
        session: String,
        operation: String,
        unmet: String,
    },
    #[error("{0}")]
    NotFound(String),
    /// A program whose measurement the service's attestation does not list asked for its
    /// configuration.
    #[error(
        "a program with MRENCLAVE {mrenclave} is not one service `{service}` of session `{session}` accepts: its attestation lists other MRENCLAVEs"
    )]
    NotAttested {
        session: String,
        service: String,
        mrenclave: String,
    },
    /// A create of a session that exists.
    #[error(
        "session `{name}` exists (active version {active}); to update it, name that hash as `predecessor`"
    )]
    Exists { name: String, active: String },
    /// An update whose predecessor is no longer the active version: someone else wrote first.
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
    /// The server cannot listen where it was asked to (an address in use, or not this host's).
    #[error("cannot listen on {address}: {detail}")]
    Listen { address: String, detail: String },
    #[error("storage error: {0}")]
    Storage(String),
    /// Stored data no longer matches its hash or checksum: never served, always reported.
    #[error("the store is damaged: {0}")]
    Damaged(String),
    /// The identity has written as much as the store keeps for one identity.
    #[error(
        "client key {caller} has used {used} of its {limit} bytes of storage; versions are kept forever, so this identity cannot write more here"
    )]
    QuotaExceeded {
        caller: String,
        used: u64,
        limit: u64,
    },
    /// The request took too long and was not committed; sending it again may succeed.
    #[error("{0}")]
    TimedOut(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// No answer: the CAS is down, the address is wrong, or the network is (worth retrying).
    #[error("cannot reach CAS at {address}: {detail}")]
    Unreachable { address: String, detail: String },
    /// The CAS took the connection but did not answer in time; asking again would wait as long.
    #[error("CAS at {address} did not answer within {seconds} s")]
    NoAnswer { address: String, seconds: u64 },
    /// The server is not the CAS the client trusts (certificate, pin); retrying will not help.
    #[error("CAS at {address} is not trusted: {detail}")]
    Untrusted { address: String, detail: String },
    /// The CAS answered with an error this client does not otherwise understand.
    #[error("CAS answered {status}: {message}")]
    Server { status: u16, message: String },
    /// The client could not be set up (identity, CA file, TLS configuration).
    #[error("{0}")]
    Setup(String),
}

impl Error {
    /// The HTTP status the server answers with.
    pub fn status(&self) -> u16 {
        match self {
            Error::Invalid(_) => 400,
            Error::Forbidden { .. } | Error::Unapproved { .. } | Error::NotAttested { .. } => 403,
            Error::NotFound(_) => 404,
            Error::Exists { .. } | Error::Conflict { .. } => 409,
            Error::Server { status, .. } => *status,
            Error::Unreachable { .. } | Error::Untrusted { .. } => 502,
            Error::NoAnswer { .. } => 504,
            Error::QuotaExceeded { .. } => 507,
            Error::TimedOut(_) => 503,
            Error::Locked(_)
            | Error::Listen { .. }
            | Error::Storage(_)
            | Error::Damaged(_)
            | Error::Internal(_)
            | Error::Setup(_) => 500,
        }
    }

    /// The stable code of the JSON error body, by which the client knows the error again.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid",
            Error::Forbidden { .. } => "forbidden",
            Error::NotAttested { .. } => "not_attested",
            Error::Unapproved { .. } => "unapproved",
            Error::NotFound(_) => "not_found",
            Error::Exists { .. } => "exists",
            Error::Conflict { .. } => "conflict",
            Error::Damaged(_) => "damaged",
            Error::QuotaExceeded { .. } => "quota_exceeded",
            Error::TimedOut(_) => "timed_out",
            Error::Locked(_)
            | Error::Listen { .. }
            | Error::Storage(_)
            | Error::Internal(_)
            | Error::Server { .. }
            | Error::Unreachable { .. }
            | Error::NoAnswer { .. }
            | Error::Untrusted { .. }
            | Error::Setup(_) => "internal",
        }
    }

    /// The active hash a conflict reports, for clients that retry.
    pub fn active_hash(&self) -> Option<&str> {
        match self {
            Error::Exists { active, .. } | Error::Conflict { active, .. } => Some(active),
            _ => None,
        }
    }

    /// Whether the same request may succeed later (the CAS was down or overloaded).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::TimedOut(_) => true,
            Error::Server { status, .. } => *status >= 500 || *status == 408,
            _ => false,
        }
    }
}
