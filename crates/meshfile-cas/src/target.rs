//! Where sessions are delivered: the embedded store (in-process, a file under the target
//! directory) or a CAS over mTLS. Both answer the same two questions.

use crate::client::{Client, ClientError};
use crate::{Error, Store, Written};

/// A refusal (the CAS answered no) or an unreachable CAS (worth retrying).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{message}")]
    Refused {
        status: u16,
        message: String,
        active_hash: Option<String>,
    },
    #[error("{0}")]
    Unreachable(String),
}

impl From<Error> for DeliveryError {
    fn from(e: Error) -> Self {
        match e {
            Error::Locked(_) | Error::Storage(_) | Error::Internal(_) => {
                DeliveryError::Unreachable(e.to_string())
            }
            other => DeliveryError::Refused {
                status: other.status(),
                active_hash: other.active_hash().map(str::to_owned),
                message: other.to_string(),
            },
        }
    }
}

impl From<ClientError> for DeliveryError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Refused {
                status,
                message,
                active_hash,
                ..
            } => DeliveryError::Refused {
                status,
                message,
                active_hash,
            },
            other => DeliveryError::Unreachable(other.to_string()),
        }
    }
}

pub enum Target {
    /// The development store in-process; the caller is its owner.
    Embedded {
        store: Store,
        caller: String,
    },
    Remote {
        client: Client,
        address: String,
    },
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Embedded { store, .. } => {
                format!("the embedded development store {}", store.path().display())
            }
            Target::Remote { address, .. } => format!("CAS {address}"),
        }
    }

    /// The active version's YAML and hash, or `None` when the session does not exist.
    pub fn read_active(&self, name: &str) -> Result<Option<(String, String)>, DeliveryError> {
        let result = match self {
            Target::Embedded { store, caller } => store
                .read(caller, name, None)
                .map(|(v, h)| (v.session, h))
                .map_err(DeliveryError::from),
            Target::Remote { client, .. } => client
                .read(name, None)
                .map(|r| (r.session, r.hash))
                .map_err(DeliveryError::from),
        };
        match result {
            Ok(found) => Ok(Some(found)),
            Err(DeliveryError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn write(&self, yaml: &str) -> Result<Written, DeliveryError> {
        match self {
            Target::Embedded { store, caller } => Ok(store.write(caller, yaml)?),
            Target::Remote { client, .. } => Ok(client.write(yaml)?),
        }
    }
}
