//! Certificates for the served store: a CA, the server's certificate, client identities, and
//! the key hash by which CAS knows a client.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};

use crate::Error;

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// A client's identity as access policies name it: hex SHA-256 of its SubjectPublicKeyInfo.
pub fn key_hash_of_der(cert_der: &[u8]) -> Result<String, Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| Error::Invalid(format!("not an X.509 certificate: {e}")))?;
    Ok(hex::encode(Sha256::digest(cert.public_key().raw)))
}

/// A key hash (hex SHA-256) in SCONE's Base58Check form.
pub fn base58check(key_hash_hex: &str) -> Result<String, Error> {
    meshfile_session::key_hash::base58check(key_hash_hex)
        .ok_or_else(|| Error::Invalid(format!("`{key_hash_hex}` is not a 64-digit key hash")))
}

pub use meshfile_session::key_hash::parse as parse_key_hash;

/// What a certificate says it is: its subject's common name and its alternative names.
#[derive(Clone, Debug, PartialEq)]
pub struct Names {
    pub subject: String,
    pub issuer: String,
    pub alternative: Vec<String>,
}

impl std::fmt::Display for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.subject)?;
        if self.alternative.is_empty() {
            write!(f, " (no alternative names)")
        } else {
            write!(f, " (alternative names: {})", self.alternative.join(", "))
        }
    }
}

/// The names in a DER certificate.
pub fn names_of_der(cert_der: &[u8]) -> Result<Names, Error> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| Error::Invalid(format!("not an X.509 certificate: {e}")))?;
    let alternative = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some((*d).to_owned()),
                    GeneralName::IPAddress(ip) => match ip.len() {
                        4 => <[u8; 4]>::try_from(*ip)
                            .ok()
                            .map(|b| std::net::IpAddr::from(b).to_string()),
                        16 => <[u8; 16]>::try_from(*ip)
                            .ok()
                            .map(|b| std::net::IpAddr::from(b).to_string()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Names {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        alternative,
    })
}

/// The key hash of the first certificate in a PEM text.
pub fn key_hash_of_pem(pem: &str) -> Result<String, Error> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| Error::Invalid(format!("no PEM certificate: {e}")))?;
    key_hash_of_der(&parsed.contents)
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// A client identity (certificate and key, one PEM text) signed by `issuer`, or self-signed.
pub fn client_identity(common_name: &str, issuer: Option<(&str, &str)>) -> Result<String, Error> {
    let key = KeyPair::generate().map_err(internal)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(internal)?;
    params.distinguished_name = name(common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = match issuer {
        Some((ca_pem, ca_key_pem)) => {
            let ca_key = KeyPair::from_pem(ca_key_pem).map_err(internal)?;
            let ca = Issuer::from_ca_cert_pem(ca_pem, ca_key).map_err(internal)?;
            params.signed_by(&key, &ca).map_err(internal)?
        }
        None => params.self_signed(&key).map_err(internal)?,
    };
    Ok(format!("{}{}", cert.pem(), key.serialize_pem()))
}

/// The files of a served store's state directory.
pub struct StateFiles {
    pub ca: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub owner: PathBuf,
    pub store: PathBuf,
    /// The private session encryption key (X25519, hex): encrypted sessions are made for it.
    pub session_encryption_key: PathBuf,
}

impl StateFiles {
    pub fn in_dir(dir: &Path) -> StateFiles {
        StateFiles {
            ca: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            owner: dir.join("owner.pem"),
            store: dir.join("store"),
            session_encryption_key: dir.join("session-encryption-key"),
        }
    }

    /// The files that make the server's and the owner's identity.
    pub fn identity(&self) -> [&PathBuf; 5] {
        [
            &self.ca,
            &self.ca_key,
            &self.server_cert,
            &self.server_key,
            &self.owner,
        ]
    }
}

/// Writes a new file, readable by its owner only when `private`; never replaces one: the
/// contents go to a temporary file that is then linked under the final name, which fails if
/// the name exists.
fn write_new(path: &Path, contents: &str, private: bool) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".new-")
        .permissions(std::fs::Permissions::from_mode(if private {
            0o600
        } else {
            0o644
        }))
        .tempfile_in(dir)
        .map_err(internal)?;
    tmp.write_all(contents.as_bytes()).map_err(internal)?;
    tmp.as_file().sync_all().map_err(internal)?;
    std::fs::hard_link(tmp.path(), path).map_err(|e| {
        Error::Setup(format!(
            "cannot create {}: {e}; meshfile never replaces an identity or CA file",
            path.display()
        ))
    })
}

/// The name SCONE CAS's certificate carries, and clients check, by default.
pub const CAS_NAME: &str = "cas";

/// Creates the CA, the server certificate and an owner identity on first start; returns
/// whether it did. The server certificate is named the way SCONE names its CAS's: common
/// name `cas`, alternative names `cas` and `localhost`, and `names` (addresses it listens on).
pub fn init_state(dir: &Path, names: &[String]) -> Result<bool, Error> {
    let files = StateFiles::in_dir(dir);
    let identity = files.identity();
    let present: Vec<&PathBuf> = identity.into_iter().filter(|p| p.exists()).collect();
    let needed = [&files.server_cert, &files.server_key];
    if needed.iter().all(|p| p.exists()) {
        if !files.ca.exists() {
            recreate_ca(&files)?;
        }
        return Ok(false);
    }
    if !present.is_empty() {
        let listed = |paths: Vec<&PathBuf>| {
            paths
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let missing = needed.into_iter().filter(|p| !p.exists()).collect();
        return Err(Error::Setup(format!(
            "the state directory {} is incomplete: {} missing, but {} exist. A new CA and owner would lock the owner out of every session, so none is made: restore the missing files from a backup, or start with an empty --state directory",
            dir.display(),
            listed(missing),
            listed(present)
        )));
    }
    std::fs::create_dir_all(dir).map_err(internal)?;
    let ca_key = KeyPair::generate().map_err(internal)?;
    let ca_cert = ca_params()?.self_signed(&ca_key).map_err(internal)?;
    let (ca_pem, ca_key_pem) = (ca_cert.pem(), ca_key.serialize_pem());

    let server_key = KeyPair::generate().map_err(internal)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(internal)?;
    params.distinguished_name = name(CAS_NAME);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let mut all: Vec<&str> = vec![CAS_NAME, "localhost"];
    for n in names {
        if !all.contains(&n.as_str()) {
            all.push(n);
        }
    }
    for n in all {
        params
            .subject_alt_names
            .push(match n.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    n.to_owned()
                        .try_into()
                        .map_err(|_| Error::Invalid(format!("`{n}` is not a host name")))?,
                ),
            });
    }
    let issuer =
        Issuer::from_ca_cert_pem(&ca_pem, KeyPair::from_pem(&ca_key_pem).map_err(internal)?)
            .map_err(internal)?;
    let server_cert = params.signed_by(&server_key, &issuer).map_err(internal)?;
    let owner = client_identity(
        "meshfile development CAS owner",
        Some((&ca_pem, &ca_key_pem)),
    )?;

    // The server's certificate last: its presence is what says the identity is made.
    write_new(&files.ca_key, &ca_key_pem, true)?;
    write_new(&files.owner, &owner, true)?;
    write_new(&files.ca, &ca_pem, false)?;
    write_new(&files.server_key, &server_key.serialize_pem(), true)?;
    write_new(&files.server_cert, &server_cert.pem(), false)?;
    Ok(true)
}

/// Why a state directory whose store holds sessions cannot do without its encryption key.
pub fn missing_encryption_key(path: &Path, sessions: usize) -> String {
    format!(
        "{} is missing, but the store holds {sessions} session(s): every EncryptedPolicy and encrypted session made for its key could no longer be decrypted, and a new key is not made in its place. Restore the file from a backup",
        path.display()
    )
}

/// The development CA's certificate parameters: the same for a CA made anew from its key.
fn ca_params() -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(internal)?;
    params.distinguished_name = name("meshfile development CAS root");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

/// `ca.pem` made again from the CA's key the state directory holds: the same name and key,
/// so it is the issuer of the server's and the owner's certificates, and clients trust the
/// server through it as before. Without the key it cannot be, and the start refuses.
fn recreate_ca(files: &StateFiles) -> Result<(), Error> {
    let key_pem = std::fs::read_to_string(&files.ca_key).map_err(|e| {
        Error::Setup(format!(
            "{} is missing, and so is the CA's key {} ({e}): clients trust the server through the CA certificate, and no other CA signed {}. Restore ca.pem from a backup, or start with an empty --state directory",
            files.ca.display(),
            files.ca_key.display(),
            files.server_cert.display()
        ))
    })?;
    let key = KeyPair::from_pem(&key_pem).map_err(internal)?;
    let cert = ca_params()?.self_signed(&key).map_err(internal)?;
    write_new(&files.ca, &cert.pem(), false)
}

/// The session encryption key kept in `path`, made on first use (readable by its owner
/// only). Encrypted sessions are made for its public half, which `cas serve` prints. A store
/// that holds `sessions` already was given sessions encrypted for the key it had: a missing
/// key is then damage, never replaced by a new one that could decrypt none of them.
pub fn session_encryption_key(
    path: &Path,
    sessions: usize,
) -> Result<meshfile_sign::EncryptionKey, Error> {
    let read = |text: &str| {
        hex::decode(text.trim())
            .ok()
            .and_then(|bytes| meshfile_sign::EncryptionKey::from_private(&bytes).ok())
            .ok_or_else(|| {
                Error::Damaged(format!(
                    "{} does not hold a session encryption key (64 hex digits)",
                    path.display()
                ))
            })
    };
    match std::fs::read_to_string(path) {
        Ok(text) => read(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && sessions > 0 => {
            Err(Error::Damaged(missing_encryption_key(path, sessions)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut ikm = [0u8; 32];
            getrandom::fill(&mut ikm).map_err(|e| Error::Internal(e.to_string()))?;
            let key = meshfile_sign::EncryptionKey::derive(&ikm);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(internal)?;
            }
            match write_new(
                path,
                &format!("{}\n", hex::encode(key.private_bytes())),
                true,
            ) {
                Ok(()) => Ok(key),
                // Made meanwhile by another process: that one is the key.
                Err(_) if path.exists() => read(&std::fs::read_to_string(path).map_err(internal)?),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(Error::Storage(format!("{}: {e}", path.display()))),
    }
}
