//! How the client trusts a CAS: a CA and the name its certificate is for, a pinned key hash,
//! or (to look, never to send) any server; the rustls verifiers that check it.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::Error;

/// How the client trusts the server.
pub enum Trust<'a> {
    /// A certificate that chains to one in `ca` (PEM; every certificate in it is a trust
    /// anchor, so the file `scone cas show-certificate` writes serves as it is) and is for
    /// `name`, the CAS's configured name (`cas` by default, as SCONE names its CAS), not the
    /// address dialled: SCONE CAS's certificate often names no address at all.
    Ca { ca: &'a str, name: &'a str },
    /// Exactly the server whose public key has this hash (hex SHA-256 of its SubjectPublicKeyInfo,
    /// as `meshfile cas key-hash` prints it), whoever signed its certificate.
    PinnedKey(&'a str),
    /// Any server (`--insecure`): the connection is still encrypted, but whoever answers is
    /// believed. The chain it presented is kept, so that it can be pinned afterwards.
    AnyServer,
}

type Shared<T> = std::sync::Arc<std::sync::Mutex<T>>;

/// The chain a server presented in the last handshake.
pub(super) type SeenChain = Shared<Vec<CertificateDer<'static>>>;

/// Accepts the server certificate whose key matches the pin, or any with no pin (recording the
/// chain); handshake signatures are checked either way.
#[derive(Debug)]
struct ServerKey {
    pin: Option<String>,
    seen: SeenChain,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ServerKey {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let hash = crate::pki::key_hash_of_der(end_entity)
            .map_err(|e| rustls::Error::General(format!("unreadable server certificate: {e}")))?;
        if let Ok(mut seen) = self.seen.lock() {
            *seen = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
        }
        match &self.pin {
            Some(pin) if !hash.eq_ignore_ascii_case(pin) => Err(rustls::Error::General(format!(
                "server certificate pin mismatch: the server presents the key hash {hash} ({}), the pinned one is {pin} ({})",
                meshfile_session::key_hash::base58check(&hash).unwrap_or_default(),
                meshfile_session::key_hash::base58check(pin).unwrap_or_default(),
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Checks the chain against the CA and the certificate against the CAS's configured name,
/// whatever address was dialled.
#[derive(Debug)]
struct NamedServer {
    chain: std::sync::Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl NamedServer {
    fn new(
        ca_pem: &str,
        name: &str,
        provider: &std::sync::Arc<CryptoProvider>,
    ) -> Result<NamedServer, Error> {
        let mut roots = rustls::RootCertStore::empty();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| setup_error("CA certificate", &e))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(Error::Setup(
                "the CA file holds no certificate (PEM)".into(),
            ));
        }
        let chain = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| setup_error("CA certificate", &e))?;
        let name = ServerName::try_from(name.to_owned())
            .map_err(|_| Error::Setup(format!("`{name}` is not a server name")))?;
        Ok(NamedServer { chain, name })
    }
}

impl ServerCertVerifier for NamedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialled: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error as TlsError};
        self.chain
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
            .map_err(|e| match e {
                TlsError::InvalidCertificate(
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
                ) => {
                    let presented = crate::pki::names_of_der(end_entity)
                        .map_or_else(|_| "an unreadable certificate".into(), |n| n.to_string());
                    TlsError::General(format!(
                        "certificate name mismatch: expected the name `{}`, the CAS presented {presented}; pass --cas-server-name with one of its names",
                        self.name.to_str()
                    ))
                }
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

pub(super) fn setup_error(what: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Setup(format!("{what}: {e}"))
}

pub(super) fn provider() -> std::sync::Arc<CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The TLS configuration for a trust: the verifier, and the client identity presented.
pub(super) fn tls_config(
    trust: &Trust<'_>,
    seen: SeenChain,
    identity_pem: &str,
) -> Result<rustls::ClientConfig, Error> {
    use rustls::pki_types::PrivateKeyDer;
    let provider = provider();
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(identity_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| setup_error("client identity", &e))?;
    let key = PrivateKeyDer::from_pem_slice(identity_pem.as_bytes())
        .map_err(|e| setup_error("client identity key", &e))?;
    let verifier: std::sync::Arc<dyn ServerCertVerifier> = match trust {
        Trust::Ca { ca, name } => std::sync::Arc::new(NamedServer::new(ca, name, &provider)?),
        Trust::PinnedKey(pin) => std::sync::Arc::new(ServerKey {
            pin: Some((*pin).to_owned()),
            seen,
            algorithms: provider.signature_verification_algorithms,
        }),
        Trust::AnyServer => std::sync::Arc::new(ServerKey {
            pin: None,
            seen,
            algorithms: provider.signature_verification_algorithms,
        }),
    };
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup_error("TLS", &e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(certs, key)
        .map_err(|e| setup_error("client identity", &e))
}

/// What a trust checked of a chain it accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Accepted {
    #[error("the chain leads to the CA and the certificate is for `{0}`")]
    ChainToCa(String),
    #[error("the server's key hash is the pinned one")]
    PinnedKey,
}

/// Why a trust refuses a chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the server presented no certificate")]
    NoCertificate,
    /// What the certificate verifier said.
    #[error("{0}")]
    Verifier(String),
    #[error("the server's key hash {hash} is not the pinned {pin}")]
    OtherKey { hash: String, pin: String },
    #[error("nothing checks who the server is (--insecure)")]
    Unchecked,
}

/// Whether `trust` accepts a chain a server presented (as [`Client::presented_chain`] kept
/// it): what was checked, or why not.
pub fn check_chain(
    trust: &Trust<'_>,
    chain: &[CertificateDer<'static>],
) -> Result<Accepted, Refused> {
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return Err(Refused::NoCertificate);
    };
    let refused = |e: &dyn std::fmt::Display| Refused::Verifier(e.to_string());
    match trust {
        Trust::Ca { ca, name } => {
            let verifier = NamedServer::new(ca, name, &provider()).map_err(|e| refused(&e))?;
            let dialled = ServerName::try_from("cas").map_err(|e| refused(&e))?;
            verifier
                .verify_server_cert(end_entity, intermediates, &dialled, &[], UnixTime::now())
                .map(|_| Accepted::ChainToCa((*name).to_owned()))
                .map_err(|e| refused(&e))
        }
        Trust::PinnedKey(pin) => {
            let hash = crate::pki::key_hash_of_der(end_entity).map_err(|e| refused(&e))?;
            if hash.eq_ignore_ascii_case(pin) {
                Ok(Accepted::PinnedKey)
            } else {
                Err(Refused::OtherKey {
                    hash,
                    pin: (*pin).to_owned(),
                })
            }
        }
        Trust::AnyServer => Err(Refused::Unchecked),
    }
}
