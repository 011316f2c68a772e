//! How to reach and trust a CAS: what every command that talks to one shares.

use std::path::PathBuf;
use std::time::Duration;

/// The CAS client API's port when `cas_url` names none.
pub const CAS_PORT: u16 = 8081;

/// How to reach and trust a CAS.
#[derive(Clone, Debug)]
pub struct CasAccess {
    /// Client identity (certificate and key, PEM); default: the user's, made on first use.
    pub identity: Option<PathBuf>,
    pub cas_ca: Option<PathBuf>,
    /// The name the CAS's certificate must carry with `cas_ca` (`cas`, as SCONE names it).
    pub server_name: String,
    pub cas_pin: Option<String>,
    pub insecure: bool,
    /// How long one request to CAS may take, connecting included.
    pub timeout: Duration,
}

/// What a connection had to say before anything was sent (warnings, a new identity).
pub type Notices = Vec<String>;

/// `cas_url` with the client API's default port when it names none.
pub fn with_port(cas_url: &str) -> String {
    let has_port = cas_url
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    if has_port {
        cas_url.to_owned()
    } else {
        format!("{cas_url}:{CAS_PORT}")
    }
}
