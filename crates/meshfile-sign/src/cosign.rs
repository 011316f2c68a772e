//! Image signatures as Sigstore's cosign makes them, so that cosign, skopeo and podman verify
//! them: an ECDSA P-256 key in cosign's key file (`ENCRYPTED SIGSTORE PRIVATE KEY`: a JSON
//! document, the PKCS#8 key sealed with NaCl secretbox under a key scrypt derives from the
//! password), a simple-signing payload naming the image's repository and digest, and the
//! signature of its SHA-256, DER, in base64.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead, KeyInit};
use meshfile_session::signer::{pem, pem_body};
use serde::{Deserialize, Serialize};

use crate::{Error, error};

const LABELS: &[&str] = &[
    "ENCRYPTED SIGSTORE PRIVATE KEY",
    "ENCRYPTED COSIGN PRIVATE KEY",
];
/// scrypt's memory (128 * N * r bytes) a key file may ask for: a hostile one cannot exhaust
/// memory.
const MAX_SCRYPT_MEMORY: u64 = 256 * 1024 * 1024;
/// scrypt's work (its memory, filled `p` times) a key file may ask for: about a second. cosign
/// makes its keys with N = 32768, r = 8, p = 1 (32 MiB, once).
const MAX_SCRYPT_WORK: u64 = 512 * 1024 * 1024;
/// DER of a P-256 SubjectPublicKeyInfo before its 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// The annotation of a signature layer that holds the signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// A cosign signing key (ECDSA P-256).
pub struct CosignKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

fn derive(password: &[u8], salt: &[u8], params: &ScryptParams) -> Result<[u8; 32], Error> {
    let log_n = params.n.checked_ilog2().filter(|l| 1u64 << l == params.n);
    let memory = 128u64
        .saturating_mul(params.n)
        .saturating_mul(u64::from(params.r));
    let work = memory.saturating_mul(u64::from(params.p));
    let bounded = memory <= MAX_SCRYPT_MEMORY && work <= MAX_SCRYPT_WORK;
    let (Some(log_n), true) = (log_n, bounded && params.p >= 1) else {
        return Err(error(format!(
            "the key file's scrypt parameters are out of bounds (N = {}, r = {}, p = {}: at most {} MiB of memory and {} MiB of work; cosign's keys take 32)",
            params.n,
            params.r,
            params.p,
            MAX_SCRYPT_MEMORY >> 20,
            MAX_SCRYPT_WORK >> 20
        )));
    };
    let scrypt = scrypt::Params::new(log_n as u8, params.r, params.p, 32)
        .map_err(|e| error(format!("the key file's scrypt parameters: {e}")))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &scrypt, &mut key).map_err(|e| error(format!("scrypt: {e}")))?;
    Ok(key)
}

impl CosignKey {
    pub fn generate() -> Result<CosignKey, Error> {
        let made =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .map_err(|_| error("the system could not make a key"))?;
        CosignKey::from_pkcs8(made.as_ref())
    }

    fn from_pkcs8(der: &[u8]) -> Result<CosignKey, Error> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
            .map_err(|_| error("the key is no ECDSA P-256 key (cosign's kind)"))?;
        Ok(CosignKey {
            pair,
            pkcs8: der.to_vec(),
        })
    }

    /// Reads a cosign key file with its password.
    pub fn from_pem(text: &str, password: &[u8]) -> Result<CosignKey, Error> {
        let json = LABELS
            .iter()
            .find_map(|label| pem_body(text, label).ok())
            .ok_or_else(|| {
                error("not a cosign key file (`-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----`)")
            })?;
        let sealed: Sealed = serde_json::from_slice(&json)
            .map_err(|e| error(format!("the cosign key file is unreadable: {e}")))?;
        if sealed.kdf.name != "scrypt" || sealed.cipher.name != "nacl/secretbox" {
            return Err(error(format!(
                "the cosign key file uses {} and {}; cosign's are scrypt and nacl/secretbox",
                sealed.kdf.name, sealed.cipher.name
            )));
        }
        let decode = |text: &str| {
            STANDARD
                .decode(text)
                .map_err(|_| error("the cosign key file holds malformed base64"))
        };
        let (salt, nonce, ciphertext) = (
            decode(&sealed.kdf.salt)?,
            decode(&sealed.cipher.nonce)?,
            decode(&sealed.ciphertext)?,
        );
        if nonce.len() != 24 {
            return Err(error("the cosign key file's nonce is not 24 bytes"));
        }
        let key = derive(password, &salt, &sealed.kdf.params)?;
        let der = crypto_secretbox::XSalsa20Poly1305::new((&key).into())
            .decrypt(nonce.as_slice().into(), ciphertext.as_slice())
            .map_err(|_| {
                crate::error_of(
                    crate::ErrorKind::WrongPassword,
                    "the password does not open the cosign key file (COSIGN_PASSWORD)",
                )
            })?;
        CosignKey::from_pkcs8(&der)
    }

    /// The key file, sealed under `password` with a fresh salt and nonce.
    pub fn to_pem(&self, password: &[u8]) -> Result<String, Error> {
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut salt)
            .and_then(|()| getrandom::fill(&mut nonce))
            .map_err(|e| error(e.to_string()))?;
        let params = ScryptParams {
            n: 32768,
            r: 8,
            p: 1,
        };
        let key = derive(password, &salt, &params)?;
        let ciphertext = crypto_secretbox::XSalsa20Poly1305::new((&key).into())
            .encrypt((&nonce).into(), self.pkcs8.as_slice())
            .map_err(|_| error("sealing the key failed"))?;
        let sealed = Sealed {
            kdf: Kdf {
                name: "scrypt".into(),
                params,
                salt: STANDARD.encode(salt),
            },
            cipher: Cipher {
                name: "nacl/secretbox".into(),
                nonce: STANDARD.encode(nonce),
            },
            ciphertext: STANDARD.encode(ciphertext),
        };
        let json = serde_json::to_vec(&sealed).map_err(|e| error(e.to_string()))?;
        Ok(pem(LABELS[0], &json))
    }

    /// The public key, PEM SubjectPublicKeyInfo (`cosign.pub`).
    pub fn public_pem(&self) -> String {
        pem(
            "PUBLIC KEY",
            &[&P256_SPKI_PREFIX[..], self.pair.public_key().as_ref()].concat(),
        )
    }

    /// The signature of `payload` (ECDSA over its SHA-256, DER), base64 as cosign stores it.
    pub fn sign(&self, payload: &[u8]) -> Result<String, Error> {
        let signature = self
            .pair
            .sign(&SystemRandom::new(), payload)
            .map_err(|_| error("signing failed"))?;
        Ok(STANDARD.encode(signature.as_ref()))
    }

    /// How the key is named: the first 16 hex digits of the SHA-256 of its public point.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.pair.public_key().as_ref())
    }

    /// Whether `signature_b64` is this key's signature of `payload`.
    pub fn signed(&self, payload: &[u8], signature_b64: &str) -> bool {
        verify(self.pair.public_key().as_ref(), payload, signature_b64)
    }
}

fn fingerprint(point: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", &hex::encode(sha2::Sha256::digest(point))[..16])
}

/// Whether `signature_b64` is a signature of `payload` by the P-256 public key `point`.
fn verify(point: &[u8], payload: &[u8], signature_b64: &str) -> bool {
    STANDARD.decode(signature_b64).is_ok_and(|signature| {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .verify(payload, &signature)
            .is_ok()
    })
}

/// A cosign public key (`cosign.pub`), to verify signatures with.
pub struct CosignPublicKey {
    point: Vec<u8>,
}

impl CosignPublicKey {
    pub fn from_pem(text: &str) -> Result<CosignPublicKey, Error> {
        let der = pem_body(text, "PUBLIC KEY").map_err(|e| error(e.to_string()))?;
        der.strip_prefix(&P256_SPKI_PREFIX[..])
            .filter(|p| p.len() == 65)
            .map(|p| CosignPublicKey { point: p.to_vec() })
            .ok_or_else(|| error("the public key is no ECDSA P-256 key (cosign's kind)"))
    }

    pub fn verifies(&self, payload: &[u8], signature_b64: &str) -> bool {
        verify(&self.point, payload, signature_b64)
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.point)
    }
}

/// The simple-signing payload cosign signs: the image's repository and manifest digest.
pub fn payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    }))
    .unwrap_or_default()
}

/// What a payload says it signs: its repository and digest; `None` for anything else.
pub fn payload_names(payload: &[u8]) -> Option<(String, String)> {
    let json: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let critical = &json["critical"];
    (critical["type"].as_str()? == "cosign container image signature").then_some(())?;
    Some((
        critical["identity"]["docker-reference"]
            .as_str()?
            .to_owned(),
        critical["image"]["docker-manifest-digest"]
            .as_str()?
            .to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_round_trips_and_signs() {
        let key = CosignKey::generate().expect("key");
        let file = key.to_pem(b"hunter2").expect("sealed");
        assert!(file.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        assert!(
            CosignKey::from_pem(&file, b"wrong")
                .is_err_and(|e| e.kind == crate::ErrorKind::WrongPassword)
        );
        let again = CosignKey::from_pem(&file, b"hunter2").expect("opens");
        let public = CosignPublicKey::from_pem(&key.public_pem()).expect("public");
        let payload = payload("127.0.0.1:5000/prod/app", "sha256:00");
        let signature = again.sign(&payload).expect("signs");
        assert!(public.verifies(&payload, &signature));
        assert!(!public.verifies(&payload[1..], &signature));
        assert_eq!(
            payload_names(&payload),
            Some(("127.0.0.1:5000/prod/app".into(), "sha256:00".into()))
        );
    }

    #[test]
    fn a_hostile_key_file_cannot_ask_for_much_memory() {
        let sealed = serde_json::json!({
            "kdf": {"name": "scrypt", "params": {"N": 1u64 << 30, "r": 8, "p": 1}, "salt": "AAAA"},
            "cipher": {"name": "nacl/secretbox", "nonce": STANDARD.encode([0u8; 24])},
            "ciphertext": "AAAA",
        });
        let file = pem(LABELS[0], sealed.to_string().as_bytes());
        assert!(
            CosignKey::from_pem(&file, b"x").is_err_and(|e| e.message.contains("out of bounds"))
        );
    }
}
