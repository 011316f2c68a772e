//! Sessions encrypted to a CAS: HPKE (RFC 9180) base mode with DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256 and ChaCha20-Poly1305. The document is `{"encrypted_session": base64(enc ‖
//! ciphertext), "encryption_key": hex(the CAS's public key)}`, the shape of `scone session
//! encrypt`'s output and of an `EncryptedPolicy`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20::ChaCha20Rng;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_core::{SeedableRng, TryCryptoRng, TryRng};
use serde::{Deserialize, Serialize};

use crate::{Error, error};

/// HPKE's `info`: binds a ciphertext to this use.
pub const HPKE_INFO: &[u8] = b"meshfile encrypted session v1";
/// Bytes of an encrypted session at most (what a CAS accepts as an upload anyway).
pub const MAX_ENCRYPTED: usize = 8 * 1024 * 1024;

type Kem = X25519HkdfSha256;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptedSession {
    pub encrypted_session: String,
    pub encryption_key: String,
}

impl EncryptedSession {
    pub fn from_json(text: &str) -> Result<EncryptedSession, Error> {
        serde_json::from_str(text).map_err(|e| {
            error(format!(
                "not an encrypted session (`{{\"encrypted_session\": ..., \"encryption_key\": ...}}`): {e}"
            ))
        })
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// A CAS's session encryption key pair (X25519).
pub struct EncryptionKey {
    private: <Kem as hpke::Kem>::PrivateKey,
    public: <Kem as hpke::Kem>::PublicKey,
}

impl EncryptionKey {
    /// The key pair RFC 9180's `DeriveKeyPair` makes of `ikm` (32 random bytes for a new key).
    pub fn derive(ikm: &[u8; 32]) -> EncryptionKey {
        let (private, public) = Kem::derive_keypair(ikm);
        EncryptionKey { private, public }
    }

    /// The private key from its 32 bytes.
    pub fn from_private(bytes: &[u8]) -> Result<EncryptionKey, Error> {
        let private = <Kem as hpke::Kem>::PrivateKey::from_bytes(bytes)
            .map_err(|_| error("a session encryption key is 32 bytes"))?;
        let public = Kem::sk_to_pk(&private);
        Ok(EncryptionKey { private, public })
    }

    pub fn private_bytes(&self) -> Vec<u8> {
        self.private.to_bytes().to_vec()
    }

    /// The public key in hex, as `cas_encryption_key` and `encryptionKey` write it.
    pub fn public_hex(&self) -> String {
        hex::encode(self.public.to_bytes())
    }
}

/// Encrypts `plaintext` to the CAS key `public_hex`. The ephemeral key is derived from
/// `ephemeral_seed`, which must be secret and never used for another plaintext: meshfile
/// derives it from the signer's private key and the plaintext, so the same inputs give the
/// same bytes and nobody without the key can predict it.
pub fn seal(
    public_hex: &str,
    plaintext: &[u8],
    ephemeral_seed: [u8; 32],
) -> Result<EncryptedSession, Error> {
    let public = parse_public(public_hex)?;
    let mut rng = SeedThenStream::new(ephemeral_seed);
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &public,
        HPKE_INFO,
        plaintext,
        &[],
        &mut rng,
    )
    .map_err(|e| match e {
        hpke::HpkeError::EncapError => error(format!(
            "`{public_hex}` is not a usable X25519 public key (a point of low order): check `cas_encryption_key`"
        )),
        other => error(format!("encryption failed: {other}")),
    })?;
    let mut body = enc.to_bytes().to_vec();
    body.extend_from_slice(&ciphertext);
    Ok(EncryptedSession {
        encrypted_session: STANDARD.encode(body),
        encryption_key: public_hex.trim().to_ascii_lowercase(),
    })
}

/// Decrypts an encrypted session with the CAS's key; one for another key is refused naming both.
pub fn open(key: &EncryptionKey, encrypted: &EncryptedSession) -> Result<Vec<u8>, Error> {
    let ours = key.public_hex();
    if !encrypted.encryption_key.trim().eq_ignore_ascii_case(&ours) {
        return Err(error(format!(
            "the session is encrypted for the CAS key {}, and this CAS's key is {ours}",
            encrypted.encryption_key.trim()
        )));
    }
    if encrypted.encrypted_session.len() > MAX_ENCRYPTED / 3 * 4 + 4 {
        return Err(error(format!(
            "an encrypted session is at most {MAX_ENCRYPTED} bytes"
        )));
    }
    let body = STANDARD
        .decode(encrypted.encrypted_session.trim())
        .map_err(|_| error("`encrypted_session` is not base64"))?;
    let enc_len = 32;
    if body.len() < enc_len + 16 {
        return Err(error(
            "`encrypted_session` is too short to hold a ciphertext",
        ));
    }
    let (enc, ciphertext) = body.split_at(enc_len);
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc)
        .map_err(|_| error("the encapsulated key is malformed"))?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &key.private,
        &enc,
        HPKE_INFO,
        ciphertext,
        &[],
    )
    .map_err(|_| {
        error("the encrypted session does not decrypt: it was changed, or made for another key")
    })
}

fn parse_public(public_hex: &str) -> Result<<Kem as hpke::Kem>::PublicKey, Error> {
    hex::decode(public_hex.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .and_then(|b| <Kem as hpke::Kem>::PublicKey::from_bytes(&b).ok())
        .ok_or_else(|| {
            error(format!(
                "`{public_hex}` is not a CAS session encryption key (64 hex digits)"
            ))
        })
}

/// The randomness HPKE draws when it makes the ephemeral key: first the 32 seed bytes
/// (exactly what RFC 9180's test vectors call `ikmE`), then a ChaCha20 stream of the seed.
struct SeedThenStream {
    seed: [u8; 32],
    used: usize,
    stream: ChaCha20Rng,
}

impl SeedThenStream {
    fn new(seed: [u8; 32]) -> SeedThenStream {
        SeedThenStream {
            seed,
            used: 0,
            stream: ChaCha20Rng::from_seed(seed),
        }
    }
}

impl TryRng for SeedThenStream {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let from_seed = (self.seed.len() - self.used).min(dst.len());
        dst[..from_seed].copy_from_slice(&self.seed[self.used..self.used + from_seed]);
        self.used += from_seed;
        self.stream.try_fill_bytes(&mut dst[from_seed..])
    }
}

impl TryCryptoRng for SeedThenStream {}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        hex::decode(text).expect("hex")
    }

    /// RFC 9180 appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305,
    /// base mode, the first encryption (sequence number 0).
    #[test]
    fn passes_rfc_9180_a_2_1() {
        let info = unhex("4f6465206f6e2061204772656369616e2055726e");
        let ikm_e = unhex("909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b");
        let pk_r = unhex("4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a");
        let sk_r = unhex("8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb");
        let enc = unhex("1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a");
        let pt = unhex("4265617574792069732074727574682c20747275746820626561757479");
        let aad = unhex("436f756e742d30");
        let ct = unhex(
            "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28",
        );
        let recipient = EncryptionKey::from_private(&sk_r).expect("skRm");
        assert_eq!(recipient.public_hex(), hex::encode(&pk_r));
        let public = parse_public(&hex::encode(&pk_r)).expect("pkRm");
        let seed: [u8; 32] = ikm_e.as_slice().try_into().expect("32 bytes");
        let (our_enc, our_ct) =
            hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
                &OpModeS::Base,
                &public,
                &info,
                &pt,
                &aad,
                &mut SeedThenStream::new(seed),
            )
            .expect("seals");
        assert_eq!(our_enc.to_bytes().as_slice(), enc.as_slice());
        assert_eq!(our_ct, ct);
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc).expect("enc");
        let opened = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &recipient.private,
            &enc,
            &info,
            &ct,
            &aad,
        )
        .expect("opens");
        assert_eq!(opened, pt);
    }

    #[test]
    fn round_trips_and_refuses_another_key_or_a_change() {
        let cas = EncryptionKey::derive(&[7; 32]);
        let other = EncryptionKey::derive(&[8; 32]);
        let sealed = seal(&cas.public_hex(), b"{\"session\": \"x\"}", [1; 32]).expect("seals");
        assert_eq!(
            seal(&cas.public_hex(), b"{\"session\": \"x\"}", [1; 32]),
            Ok(sealed.clone())
        );
        assert_eq!(open(&cas, &sealed).expect("opens"), b"{\"session\": \"x\"}");
        assert!(
            open(&other, &sealed).is_err_and(|e| e.message.contains("encrypted for the CAS key"))
        );
        let mut changed = sealed.clone();
        changed.encrypted_session.replace_range(
            60..61,
            if &changed.encrypted_session[60..61] == "A" {
                "B"
            } else {
                "A"
            },
        );
        assert!(open(&cas, &changed).is_err_and(|e| e.message.contains("does not decrypt")));
        assert!(seal("zz", b"x", [1; 32]).is_err());
        assert!(
            seal(&"00".repeat(32), b"x", [1; 32]).is_err_and(|e| e.message.contains("low order"))
        );
    }
}
