//! Signed and encrypted CAS sessions, as meshfile and its development CAS make and check them.
//!
//! SCONE publishes the shape of a signed session (`{session, signatures: [{signer,
//! signature}]}`) and of an encrypted one (`{encrypted_session, encryption_key}`), but not the
//! bytes `scone session sign` signs nor the cipher of `scone session encrypt`. meshfile's own
//! scheme fills both gaps with documented choices (`docs/src/guide/signing.md`):
//!
//! - the signed message is [`MESSAGE_PREFIX`] followed by the `session` text's UTF-8 bytes;
//!   Ed25519 signs it as is, ECDSA P-384 over its SHA-384 (DER signature); signatures are hex;
//! - encryption is HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//!   ChaCha20-Poly1305, to the CAS's session encryption key, `info` = [`HPKE_INFO`], empty
//!   AAD; the plaintext is the signed session's JSON; `encrypted_session` is base64 of the
//!   encapsulated key followed by the ciphertext.

pub mod cosign;
mod key;
mod seal;
mod signed;

pub use key::{KeyKind, SigningKey};
pub use seal::{EncryptedSession, EncryptionKey, HPKE_INFO, MAX_ENCRYPTED, open, seal};
pub use signed::{MESSAGE_PREFIX, Signature, SignedSession, message, verify_signature};

/// What went wrong, in a sentence a user can act on, and of which kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

/// The kinds of failure a caller tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A key, a signature, a session or a ciphertext that is not what it must be.
    Invalid,
    /// A cosign key file that its password does not open.
    WrongPassword,
    /// A signature that does not verify against the key it is said to be by.
    SignatureRejected,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

fn error(message: impl Into<String>) -> Error {
    Error {
        kind: ErrorKind::Invalid,
        message: message.into(),
    }
}

fn error_of(kind: ErrorKind, message: impl Into<String>) -> Error {
    Error {
        kind,
        message: message.into(),
    }
}

/// Encrypts a signed session to the CAS key `cas_key_hex`, its ephemeral key derived from
/// `signer`'s private key, the CAS key and the plaintext: same inputs, same bytes.
pub fn encrypt_signed(
    signer: &SigningKey,
    cas_key_hex: &str,
    signed: &SignedSession,
) -> Result<EncryptedSession, Error> {
    use sha2::{Digest, Sha256};
    let plaintext = signed.to_json();
    let mut hasher = Sha256::new();
    hasher.update(signer.secret_seed());
    hasher.update(cas_key_hex.trim().to_ascii_lowercase().as_bytes());
    hasher.update(plaintext.as_bytes());
    seal(cas_key_hex, plaintext.as_bytes(), hasher.finalize().into())
}
