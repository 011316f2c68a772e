//! Where sessions are delivered: the embedded store (in-process, a file under the target
//! directory) or a CAS over mTLS. Both answer the same two questions with the same [`Error`].

use crate::client::Client;
use crate::{Error, Store, Written};

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

    /// The active version's YAML and hash, or `None` when the session does not exist.
    pub async fn read_active(&self, name: &str) -> Result<Option<(String, String)>, Error> {
        let result = match self {
            Target::Embedded { store, caller } => store
                .read(caller, name, None)
                .map(|(version, hash)| (version.session, hash)),
            Target::Remote { client } => client.read(name, None).await.map(|r| (r.session, r.hash)),
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
}
