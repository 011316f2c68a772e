//! Signing keys: Ed25519 (the default, as SCONE's CLI makes) or ECDSA P-384, stored as
//! PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the form `openssl genpkey` writes too.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use meshfile_session::signer::{PublicKey, pem, pem_body};

use crate::{Error, error};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    P384,
}

/// A private signing key.
pub struct SigningKey {
    pair: Pair,
    /// The PKCS#8 DER the key was read from or made as.
    pkcs8: Vec<u8>,
}

enum Pair {
    Ed25519(Ed25519KeyPair),
    P384(EcdsaKeyPair),
}

impl SigningKey {
    pub fn kind(&self) -> KeyKind {
        match self.pair {
            Pair::Ed25519(_) => KeyKind::Ed25519,
            Pair::P384(_) => KeyKind::P384,
        }
    }

    /// A new key from the system's random source.
    pub fn generate(kind: KeyKind) -> Result<SigningKey, Error> {
        let rng = SystemRandom::new();
        let made = match kind {
            KeyKind::Ed25519 => Ed25519KeyPair::generate_pkcs8v1(&rng),
            KeyKind::P384 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &rng),
        }
        .map_err(|_| error("the system could not make a key"))?;
        SigningKey::from_pkcs8_der(made.as_ref())
    }

    /// Reads a PKCS#8 PEM private key (Ed25519 or P-384).
    pub fn from_pem(text: &str) -> Result<SigningKey, Error> {
        let der = pem_body(text, "PRIVATE KEY").map_err(|why| {
            error(format!(
                "{why}: a signing key is a PKCS#8 PEM private key, as `meshfile key generate` or `openssl genpkey -algorithm ed25519` writes"
            ))
        })?;
        SigningKey::from_pkcs8_der(&der)
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, Error> {
        let pair = if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            Pair::Ed25519(pair)
        } else if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, der) {
            Pair::P384(pair)
        } else {
            return Err(error(
                "the private key is neither Ed25519 nor ECDSA P-384, the two kinds of session signing key",
            ));
        };
        Ok(SigningKey {
            pair,
            pkcs8: der.to_vec(),
        })
    }

    /// The key as PKCS#8 PEM, for its file (which must be private).
    pub fn to_pem(&self) -> String {
        pem("PRIVATE KEY", &self.pkcs8)
    }

    pub fn public_key(&self) -> PublicKey {
        match &self.pair {
            Pair::Ed25519(pair) => {
                let mut key = [0u8; 32];
                key.copy_from_slice(pair.public_key().as_ref());
                PublicKey::Ed25519(key)
            }
            Pair::P384(pair) => PublicKey::P384(pair.public_key().as_ref().to_vec()),
        }
    }

    /// A signature of `message`: Ed25519's 64 bytes, or a DER ECDSA signature of its SHA-384
    /// (as `openssl dgst -sha384 -sign` makes).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.pair {
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Pair::P384(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| error("signing failed")),
        }
    }

    /// Secret bytes only this key's holder knows, to derive what must be unpredictable to
    /// others and yet the same on every run (the ephemeral key of an encryption).
    pub(crate) fn secret_seed(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(b"meshfile signing key seed v1\0");
        hasher.update(&self.pkcs8);
        hasher.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify_signature;

    #[test]
    fn both_kinds_sign_and_read_back() {
        for kind in [KeyKind::Ed25519, KeyKind::P384] {
            let key = SigningKey::generate(kind).expect("key");
            let again = SigningKey::from_pem(&key.to_pem()).expect("reads back");
            assert_eq!(again.public_key(), key.public_key());
            let signature = key.sign(b"message").expect("signs");
            assert!(verify_signature(&key.public_key(), b"message", &signature));
            assert!(!verify_signature(&key.public_key(), b"messagE", &signature));
        }
    }

    #[test]
    fn refuses_what_is_no_key() {
        assert!(SigningKey::from_pem("hello").is_err());
        let certificate = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(SigningKey::from_pem(certificate).is_err_and(|e| e.message.contains("neither")));
    }
}
