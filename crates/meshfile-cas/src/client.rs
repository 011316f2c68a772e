//! A typed client for a CAS over mTLS (ours, or SCONE's REST surface that we follow).
//!
//! Asynchronous: a caller keeps many requests in flight on one connection pool (a CAS far
//! away answers each in tens of milliseconds). Answers become the domain's [`Error`].

use serde::Deserialize;

use crate::{Error, Preview, Written};

/// The JSON error body of our server; SCONE's `{msg}` and anything else fall back to the
/// status and the text.
#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
    session: Option<String>,
    operation: Option<String>,
    caller: Option<String>,
    active_hash: Option<String>,
    predecessor: Option<String>,
}

impl ErrorBody {
    /// The domain error the server meant, when the body says enough to rebuild it.
    fn into_error(self, status: u16) -> Error {
        let ErrorBody {
            code,
            message,
            session,
            operation,
            caller,
            active_hash,
            predecessor,
        } = self;
        match (code.as_str(), session, active_hash) {
            ("invalid", _, _) => Error::Invalid(message),
            ("not_found", _, _) => Error::NotFound(message),
            ("forbidden", Some(session), _) => Error::Forbidden {
                session,
                operation: operation.unwrap_or_else(|| "access".into()),
                caller: caller.unwrap_or_default(),
            },
            ("exists", Some(name), Some(active)) => Error::Exists { name, active },
            ("conflict", Some(name), Some(active)) => Error::Conflict {
                name,
                active,
                given: predecessor.unwrap_or_default(),
            },
            _ => Error::Server { status, message },
        }
    }
}

/// A session version as read back.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ReadSession {
    pub session: String,
    pub hash: String,
    pub predecessor: Option<String>,
}

/// Hashes and measurements are hex; anything else would need escaping in a URL.
fn hex_only(value: &str) -> Result<&str, Error> {
    if value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err(Error::Invalid(format!("`{value}` is not hexadecimal")))
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    address: String,
    /// The key hash the server presented, when its identity is not checked ([`Trust::AnyServer`]).
    observed_key: Option<std::sync::Arc<std::sync::Mutex<Option<String>>>>,
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// How the client trusts the server.
pub enum Trust<'a> {
    /// Certificates signed by this CA (PEM).
    Ca(&'a str),
    /// Exactly the server whose public key has this hash (hex SHA-256 of its SubjectPublicKeyInfo,
    /// as `meshfile cas key-hash` prints it), whoever signed its certificate.
    PinnedKey(&'a str),
    /// Any server (`--insecure`): the connection is still encrypted, but whoever answers is
    /// believed. The key it presented is kept, so that it can be pinned afterwards.
    AnyServer,
}

/// Accepts the server certificate whose key matches the pin, or any with no pin (recording its
/// key hash); handshake signatures are checked either way.
#[derive(Debug)]
struct ServerKey {
    pin: Option<String>,
    seen: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for ServerKey {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let hash = crate::pki::key_hash_of_der(end_entity)
            .map_err(|e| rustls::Error::General(format!("unreadable server certificate: {e}")))?;
        let accepted = self
            .pin
            .as_ref()
            .is_none_or(|pin| hash.eq_ignore_ascii_case(pin));
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(hash);
        }
        if accepted {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("server certificate pin mismatch: the server's key hash differs from the pinned one".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn setup_error(what: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Setup(format!("{what}: {e}"))
}

fn key_checking_tls(
    pin: Option<&str>,
    seen: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    identity_pem: &str,
) -> Result<rustls::ClientConfig, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(identity_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| setup_error("client identity", &e))?;
    let key = PrivateKeyDer::from_pem_slice(identity_pem.as_bytes())
        .map_err(|e| setup_error("client identity key", &e))?;
    let verifier = std::sync::Arc::new(ServerKey {
        pin: pin.map(str::to_owned),
        seen,
        algorithms: provider.signature_verification_algorithms,
    });
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup_error("TLS", &e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(certs, key)
        .map_err(|e| setup_error("client identity", &e))
}

/// Most requests a client keeps in flight: enough to hide a far CAS's latency, few enough
/// that a CAS serving a team is not swamped by one apply.
pub const IN_FLIGHT: usize = 64;

impl Client {
    /// `address` is `host:port`; `ca_pem` the CA that signed the server's certificate;
    /// `identity_pem` the client certificate and key (one PEM text).
    pub fn new(address: &str, ca_pem: &str, identity_pem: &str) -> Result<Client, Error> {
        Client::with_trust(address, Trust::Ca(ca_pem), identity_pem)
    }

    pub fn with_trust(
        address: &str,
        trust: Trust<'_>,
        identity_pem: &str,
    ) -> Result<Client, Error> {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let observed_key = matches!(trust, Trust::AnyServer).then(|| seen.clone());
        let builder = match trust {
            Trust::Ca(ca_pem) => {
                let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
                    .map_err(|e| setup_error("CA certificate", &chain(&e)))?;
                let identity = reqwest::Identity::from_pem(identity_pem.as_bytes())
                    .map_err(|e| setup_error("client identity", &chain(&e)))?;
                reqwest::Client::builder()
                    .tls_certs_only([ca])
                    .identity(identity)
            }
            Trust::PinnedKey(pin) => reqwest::Client::builder()
                .tls_backend_preconfigured(key_checking_tls(Some(pin), seen, identity_pem)?),
            Trust::AnyServer => reqwest::Client::builder()
                .tls_backend_preconfigured(key_checking_tls(None, seen, identity_pem)?),
        };
        let http = builder
            .timeout(std::time::Duration::from_secs(30))
            .pool_max_idle_per_host(IN_FLIGHT)
            .build()
            .map_err(|e| setup_error("HTTPS client", &chain(&e)))?;
        Ok(Client {
            http,
            base: format!("https://{address}"),
            address: address.to_owned(),
            observed_key,
        })
    }

    /// `host:port` of the CAS.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// With [`Trust::AnyServer`]: the key hash of the server answered last (once connected).
    pub fn unverified_server_key(&self) -> Option<String> {
        self.observed_key
            .as_ref()
            .and_then(|seen| seen.lock().ok().and_then(|k| k.clone()))
    }

    fn transport(&self, e: &reqwest::Error) -> Error {
        let detail = chain(e);
        // A certificate the configured trust refuses is no network failure: retrying will not
        // make it trusted.
        let untrusted = [
            "certificate",
            "pin mismatch",
            "UnknownIssuer",
            "NotValidForName",
        ]
        .iter()
        .any(|word| detail.contains(word));
        if untrusted {
            Error::Untrusted {
                address: self.address.clone(),
                detail,
            }
        } else {
            Error::Unreachable {
                address: self.address.clone(),
                detail,
            }
        }
    }

    /// Sends a request; a GET whose pooled connection the server had closed is sent once more.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        idempotent: bool,
    ) -> Result<T, Error> {
        let retry = request.try_clone().filter(|_| idempotent);
        let response = match (request.send().await, retry) {
            (Ok(response), _) => response,
            (Err(_), Some(again)) => again.send().await.map_err(|e| self.transport(&e))?,
            (Err(e), None) => return Err(self.transport(&e)),
        };
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| Error::Server {
                status: status.as_u16(),
                message: format!("an answer this client does not understand: {e}"),
            });
        }
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => body.into_error(status.as_u16()),
            Err(_) => Error::Server {
                status: status.as_u16(),
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            },
        })
    }

    /// Creates or updates (with `predecessor`) a session.
    pub async fn write(&self, session_yaml: &str) -> Result<Written, Error> {
        let url = format!("{}/v1/sessions", self.base);
        let request = self
            .http
            .post(&url)
            .header("content-type", "application/yaml")
            .body(session_yaml.to_owned());
        self.send(request, false).await
    }

    pub async fn read(&self, name: &str, hash: Option<&str>) -> Result<ReadSession, Error> {
        let mut url = format!("{}/v1/sessions/{name}", self.base);
        if let Some(h) = hash {
            url = format!("{url}?hash={}", hex_only(h)?);
        }
        self.send(self.http.get(&url), true).await
    }

    pub async fn preview(&self, config_id: &str, mrenclave: &str) -> Result<Preview, Error> {
        let url = format!(
            "{}/v1/preview/{config_id}?mrenclave={}",
            self.base,
            hex_only(mrenclave)?
        );
        self.send(self.http.get(&url), true).await
    }

    pub async fn values(
        &self,
        session: &str,
        secret: Option<&str>,
    ) -> Result<serde_json::Value, Error> {
        let spec = match secret {
            Some(s) => format!("session={session},secret={s}"),
            None => format!("session={session}"),
        };
        let url = format!("{}/v1/values/{spec}", self.base);
        self.send(self.http.get(&url), true).await
    }

    pub async fn version(&self) -> Result<serde_json::Value, Error> {
        let url = format!("{}/v1/version", self.base);
        self.send(self.http.get(&url), true).await
    }
}
