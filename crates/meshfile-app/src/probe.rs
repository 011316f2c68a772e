//! `meshfile cas probe`: who a CAS is, before anything is sent to it, and what `--insecure`
//! says when nobody checks.

use meshfile_cas::client::{Client, Trust};

use crate::Error;
use crate::access::{CasAccess, Notices, with_port};
use crate::identity::identity;

/// What `meshfile cas probe` finds out about a CAS.
pub struct Probe {
    pub address: String,
    /// The certificates the server presented, end entity first.
    pub chain: Vec<meshfile_cas::pki::Names>,
    /// The server's key hash, hex and Base58Check.
    pub key_hash: Option<(String, String)>,
    /// What `/v1/version` answered.
    pub version: Result<serde_json::Value, meshfile_cas::Error>,
    /// The session encryption key `/v1/identification` names (`cas_encryption_key`), when it
    /// names one.
    pub session_encryption_key: Option<String>,
    /// Whether the configured trust accepts the server, and what it checked; `None`: no trust
    /// was configured.
    pub trust: Option<Result<meshfile_cas::client::Accepted, meshfile_cas::client::Refused>>,
}

/// Connects to `address` accepting any server (only to look), and checks what it presented
/// against the configured trust without relying on it.
/// What `--insecure` says, loudly: the CAS's identity is not checked, and the key hash it
/// presented, to pin instead.
pub(crate) fn insecure_warnings(address: &str, presented: Option<&str>) -> Vec<String> {
    let mut warnings = vec![format!(
        "WARNING: --insecure: the identity of the CAS at {address} is NOT checked. The connection is \
         encrypted, but whoever answers gets your policies and can change what you read."
    )];
    if let Some(key) = presented {
        warnings.push(format!(
            "WARNING: the server presented the key hash {key}. If that is your CAS, pass \
             `--cas-pin {key}` (or set `cas_key: {key}` in the Meshfile) instead of --insecure."
        ));
    }
    warnings
}

pub fn probe(address: &str, settings: &CasAccess) -> Result<(Probe, Notices), Error> {
    let address = with_port(address);
    let mut notices = Vec::new();
    let identity = identity(settings, &mut notices)?;
    let runtime = crate::runtime()?;
    let client = Client::with_trust(&address, Trust::AnyServer, &identity)
        .map_err(|e| Error::cas(&format!("CAS {address}"), &e))?;
    let version = runtime.block_on(client.version());
    let session_encryption_key = runtime
        .block_on(client.session_encryption_key())
        .ok()
        .flatten();
    let presented = client.presented_chain();
    if presented.is_empty() {
        let e = version
            .err()
            .unwrap_or_else(|| meshfile_cas::Error::Unreachable {
                address: address.clone(),
                detail: "no certificate was presented".into(),
            });
        return Err(Error::cas(&format!("CAS {address}"), &e));
    }
    let chain = (presented.iter())
        .map(|c| meshfile_cas::pki::names_of_der(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::cas(&format!("CAS {address}"), &e))?;
    let key_hash = meshfile_cas::pki::key_hash_of_der(&presented[0])
        .ok()
        .and_then(|hex| Some((meshfile_cas::pki::base58check(&hex).ok()?, hex)))
        .map(|(b58, hex)| (hex, b58));
    let ca;
    let trust = match (&settings.cas_pin, &settings.cas_ca) {
        (Some(pin), _) => Some(Trust::PinnedKey(pin)),
        (None, Some(path)) => {
            ca = crate::paths::read_key_file(path)?;
            Some(Trust::Ca {
                ca: &ca,
                name: &settings.server_name,
            })
        }
        (None, None) => None,
    };
    let trust = trust.map(|t| meshfile_cas::client::check_chain(&t, &presented));
    if settings.insecure {
        let key = key_hash.as_ref().map(|(hex, _)| hex.as_str());
        notices.extend(insecure_warnings(&address, key));
    }
    Ok((
        Probe {
            address,
            chain,
            key_hash,
            version,
            session_encryption_key,
            trust,
        },
        notices,
    ))
}
