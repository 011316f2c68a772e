//! Where sessions are delivered: the embedded store (in-process, a file under the target
//! directory) or a CAS over mTLS. Both answer the same two questions with the same [`Error`].

use crate::client::Client;
use crate::{Error, Store, Written};

/// A session's active version as a target answers it.
#[derive(Clone, Debug)]
pub struct Active {
    pub session: String,
    pub hash: String,
    /// Key hash of its creator, when the target tells.
    pub creator: Option<String>,
}

pub enum Target {
    /// The development store in-process; the caller is its owner.
    Embedded {
        store: Store,
        caller: String,
    },
    Remote {
        client: Client,
    },
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Embedded { store, .. } => {
                format!("the embedded development store {}", store.path().display())
            }
            Target::Remote { client } => format!("CAS {}", client.address()),
        }
    }

    /// How many requests to keep in flight: the embedded store answers at once, one by one.
    pub fn in_flight(&self) -> usize {
        match self {
            Target::Embedded { .. } => 1,
            Target::Remote { .. } => crate::client::IN_FLIGHT,
        }
    }

    /// The key hash this target writes as.
    /// The session encryption key the CAS says it has; `None` when it does not say (the
    /// embedded store has none).
    pub async fn session_encryption_key(&self) -> Result<Option<String>, Error> {
        match self {
            Target::Embedded { .. } => Ok(None),
            Target::Remote { client } => client.session_encryption_key().await,
        }
    }

    pub fn caller(&self) -> &str {
        match self {
            Target::Embedded { caller, .. } => caller,
            Target::Remote { client } => client.key_hash(),
        }
    }

    /// The active version, or `None` when the session does not exist.
    pub async fn read_active(&self, name: &str) -> Result<Option<Active>, Error> {
        let result = match self {
            Target::Embedded { store, caller } => {
                store
                    .read(caller, name, None)
                    .map(|(version, hash)| Active {
                        session: version.session,
                        hash,
                        creator: Some(version.creator),
                    })
            }
            Target::Remote { client } => client.read(name, None).await.map(|r| Active {
                session: r.session,
                hash: r.hash,
                creator: r.creator,
            }),
        };
        match result {
            Ok(found) => Ok(Some(found)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn write(&self, yaml: &str) -> Result<Written, Error> {
        match self {
            Target::Embedded { store, caller } => store.write(caller, yaml),
            Target::Remote { client } => client.write(yaml).await,
        }
    }

    /// Writes a signed session (its JSON): its signers, not the caller, are its authority.
    pub async fn write_signed(&self, json: &str) -> Result<Written, Error> {
        match self {
            Target::Embedded { store, caller } => {
                store.write_upload(caller, &crate::store::Upload::parse_signed(json)?, None)
            }
            Target::Remote { client } => client.write_signed(json).await,
        }
    }

    /// Writes an encrypted session (its JSON); the embedded store has no encryption key.
    pub async fn write_encrypted(&self, json: &str) -> Result<Written, Error> {
        match self {
            Target::Embedded { .. } => Err(Error::Invalid(
                "the embedded store takes no encrypted sessions: it has no address to encrypt for; use `meshfile cas serve`".into(),
            )),
            Target::Remote { client } => client.write_encrypted(json).await,
        }
    }
}
