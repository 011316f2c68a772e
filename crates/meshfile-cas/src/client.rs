//! A typed client for a CAS over mTLS (ours, or SCONE's REST surface that we follow).

use serde::Deserialize;

use crate::{Preview, Written};

/// Why a request failed: the server's answer, or the transport (with the whole cause chain).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("CAS answered {status}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
        active_hash: Option<String>,
    },
    #[error("cannot reach CAS at {url}: {detail}")]
    Transport { url: String, detail: String },
    #[error("{0}")]
    Setup(String),
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
    active_hash: Option<String>,
}

/// A session version as read back.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ReadSession {
    pub session: String,
    pub hash: String,
    pub predecessor: Option<String>,
}

/// Hashes and measurements are hex; anything else would need escaping in a URL.
fn hex_only(value: &str) -> Result<&str, ClientError> {
    if value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err(ClientError::Setup(format!("`{value}` is not hexadecimal")))
    }
}

pub struct Client {
    http: reqwest::blocking::Client,
    base: String,
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

fn setup_error(what: &str, e: &dyn std::fmt::Display) -> ClientError {
    ClientError::Setup(format!("{what}: {e}"))
}

fn key_checking_tls(
    pin: Option<&str>,
    seen: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    identity_pem: &str,
) -> Result<rustls::ClientConfig, ClientError> {
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

impl Client {
    /// `address` is `host:port`; `ca_pem` the CA that signed the server's certificate;
    /// `identity_pem` the client certificate and key (one PEM text).
    pub fn new(address: &str, ca_pem: &str, identity_pem: &str) -> Result<Client, ClientError> {
        Client::with_trust(address, Trust::Ca(ca_pem), identity_pem)
    }

    pub fn with_trust(
        address: &str,
        trust: Trust<'_>,
        identity_pem: &str,
    ) -> Result<Client, ClientError> {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let observed_key = matches!(trust, Trust::AnyServer).then(|| seen.clone());
        let builder = match trust {
            Trust::Ca(ca_pem) => {
                let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
                    .map_err(|e| setup_error("CA certificate", &chain(&e)))?;
                let identity = reqwest::Identity::from_pem(identity_pem.as_bytes())
                    .map_err(|e| setup_error("client identity", &chain(&e)))?;
                reqwest::blocking::Client::builder()
                    .tls_certs_only([ca])
                    .identity(identity)
            }
            Trust::PinnedKey(pin) => reqwest::blocking::Client::builder()
                .tls_backend_preconfigured(key_checking_tls(Some(pin), seen, identity_pem)?),
            Trust::AnyServer => reqwest::blocking::Client::builder()
                .tls_backend_preconfigured(key_checking_tls(None, seen, identity_pem)?),
        };
        let http = builder
            .timeout(std::time::Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build()
            .map_err(|e| setup_error("HTTPS client", &chain(&e)))?;
        Ok(Client {
            http,
            base: format!("https://{address}"),
            observed_key,
        })
    }

    /// With [`Trust::AnyServer`]: the key hash of the server answered last (once connected).
    pub fn unverified_server_key(&self) -> Option<String> {
        self.observed_key
            .as_ref()
            .and_then(|seen| seen.lock().ok().and_then(|k| k.clone()))
    }

    /// Sends a request; a GET whose pooled connection the server had closed is sent once more.
    fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::blocking::RequestBuilder,
        url: &str,
    ) -> Result<T, ClientError> {
        let transport = |e: reqwest::Error| ClientError::Transport {
            url: url.to_owned(),
            detail: chain(&e),
        };
        let retry = request
            .try_clone()
            .filter(|_| !url.ends_with("/v1/sessions"));
        let response = match (request.send(), retry) {
            (Ok(response), _) => response,
            (Err(_), Some(again)) => again.send().map_err(transport)?,
            (Err(e), None) => return Err(transport(e)),
        };
        let status = response.status();
        let bytes = response.bytes().map_err(|e| ClientError::Transport {
            url: url.to_owned(),
            detail: chain(&e),
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Transport {
                url: url.to_owned(),
                detail: format!("unexpected answer: {e}"),
            });
        }
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap_or(ErrorBody {
            code: "http".into(),
            message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            active_hash: None,
        });
        Err(ClientError::Refused {
            status: status.as_u16(),
            code: body.code,
            message: body.message,
            active_hash: body.active_hash,
        })
    }

    /// Creates or updates (with `predecessor`) a session.
    pub fn write(&self, session_yaml: &str) -> Result<Written, ClientError> {
        let url = format!("{}/v1/sessions", self.base);
        self.send(
            self.http
                .post(&url)
                .header("content-type", "application/yaml")
                .body(session_yaml.to_owned()),
            &url,
        )
    }

    pub fn read(&self, name: &str, hash: Option<&str>) -> Result<ReadSession, ClientError> {
        let mut url = format!("{}/v1/sessions/{name}", self.base);
        if let Some(h) = hash {
            url = format!("{url}?hash={}", hex_only(h)?);
        }
        self.send(self.http.get(&url), &url)
    }

    pub fn preview(&self, config_id: &str, mrenclave: &str) -> Result<Preview, ClientError> {
        let url = format!(
            "{}/v1/preview/{config_id}?mrenclave={}",
            self.base,
            hex_only(mrenclave)?
        );
        self.send(self.http.get(&url), &url)
    }

    pub fn values(
        &self,
        session: &str,
        secret: Option<&str>,
    ) -> Result<serde_json::Value, ClientError> {
        let spec = match secret {
            Some(s) => format!("session={session},secret={s}"),
            None => format!("session={session}"),
        };
        let url = format!("{}/v1/values/{spec}", self.base);
        self.send(self.http.get(&url), &url)
    }

    pub fn version(&self) -> Result<serde_json::Value, ClientError> {
        let url = format!("{}/v1/version", self.base);
        self.send(self.http.get(&url), &url)
    }
}
