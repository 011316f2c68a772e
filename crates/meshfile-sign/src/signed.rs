//! The signed session document: `{"session": "<YAML>", "signatures": [{"signer",
//! "signature"}]}`, the shape of `scone session sign`'s output and of a `SignedPolicy`.

use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1, ED25519, UnparsedPublicKey};
use meshfile_session::signer::PublicKey;
use serde::{Deserialize, Serialize};

use crate::{Error, SigningKey, error};

/// The bytes before the session text in every signed message: they make a signature of a
/// session useless for anything else.
pub const MESSAGE_PREFIX: &[u8] = b"meshfile signed session v1\n";
/// Signatures one session may carry.
pub const MAX_SIGNATURES: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The signer's public key, PEM SubjectPublicKeyInfo (a Base58Check Ed25519 key is read too).
    pub signer: String,
    /// The signature, hex.
    pub signature: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedSession {
    /// The session as YAML text, exactly the bytes that were signed.
    pub session: String,
    pub signatures: Vec<Signature>,
}

/// The message a signer signs for `session`.
pub fn message(session: &str) -> Vec<u8> {
    [MESSAGE_PREFIX, session.as_bytes()].concat()
}

/// Whether `signature` is `key`'s signature of `message`.
pub fn verify_signature(key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    match key {
        PublicKey::Ed25519(raw) => UnparsedPublicKey::new(&ED25519, raw)
            .verify(message, signature)
            .is_ok(),
        PublicKey::P384(point) => UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, point)
            .verify(message, signature)
            .is_ok(),
    }
}

impl SignedSession {
    pub fn unsigned(session: String) -> SignedSession {
        SignedSession {
            session,
            signatures: Vec::new(),
        }
    }

    /// Reads the JSON document; nothing is verified yet.
    pub fn from_json(text: &str) -> Result<SignedSession, Error> {
        let signed: SignedSession = serde_json::from_str(text).map_err(|e| {
            error(format!(
                "not a signed session (`{{\"session\": ..., \"signatures\": [...]}}`): {e}"
            ))
        })?;
        if signed.signatures.len() > MAX_SIGNATURES {
            return Err(error(format!(
                "a signed session carries at most {MAX_SIGNATURES} signatures; this one has {}",
                signed.signatures.len()
            )));
        }
        Ok(signed)
    }

    /// The JSON document, two-space indented, with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    pub fn message(&self) -> Vec<u8> {
        message(&self.session)
    }

    /// Adds `signature` by `signer` after checking it; a signer who signed already is
    /// replaced, so signing twice changes nothing.
    pub fn add(&mut self, signer: &PublicKey, signature: &[u8]) -> Result<(), Error> {
        if !verify_signature(signer, &self.message(), signature) {
            return Err(crate::error_of(
                crate::ErrorKind::SignatureRejected,
                format!(
                    "the signature by {} does not verify over this session's message",
                    signer.short_name()
                ),
            ));
        }
        self.signatures
            .retain(|s| PublicKey::parse(&s.signer).ok().as_ref() != Some(signer));
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(error(format!(
                "a signed session carries at most {MAX_SIGNATURES} signatures"
            )));
        }
        self.signatures.push(Signature {
            signer: signer.to_scone(),
            signature: hex::encode(signature),
        });
        Ok(())
    }

    /// Signs with `key` and adds the signature.
    pub fn sign(&mut self, key: &SigningKey) -> Result<(), Error> {
        let signature = key.sign(&self.message())?;
        self.add(&key.public_key(), &signature)
    }

    /// The signers whose signatures verify, in order; any signature that does not verify is
    /// an error naming its signer (a tampered session, or one signed for another session).
    pub fn verified_signers(&self) -> Result<Vec<PublicKey>, Error> {
        let message = self.message();
        let mut signers = Vec::with_capacity(self.signatures.len());
        for (i, s) in self.signatures.iter().enumerate() {
            let key = PublicKey::parse(&s.signer)
                .map_err(|why| error(format!("signatures[{i}].signer: {why}")))?;
            let ok = hex::decode(s.signature.trim())
                .is_ok_and(|bytes| verify_signature(&key, &message, &bytes));
            if !ok {
                return Err(crate::error_of(
                    crate::ErrorKind::SignatureRejected,
                    format!(
                        "signatures[{i}] by {} does not verify: the session was changed after it was signed, or the signature is of another session",
                        key.short_name()
                    ),
                ));
            }
            if !signers.contains(&key) {
                signers.push(key);
            }
        }
        Ok(signers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyKind;

    #[test]
    fn signatures_bind_the_session_text() {
        let (alice, bob) = (
            SigningKey::generate(KeyKind::Ed25519).expect("key"),
            SigningKey::generate(KeyKind::P384).expect("key"),
        );
        let mut signed = SignedSession::unsigned("name: ns/a\nversion: \"0.3.10\"\n".into());
        signed.sign(&alice).expect("signs");
        signed.sign(&bob).expect("signs");
        signed.sign(&alice).expect("signing again replaces");
        let round = SignedSession::from_json(&signed.to_json()).expect("round trip");
        assert_eq!(
            round.verified_signers(),
            Ok(vec![bob.public_key(), alice.public_key()])
        );
        let mut tampered = round.clone();
        tampered.session = tampered.session.replace("ns/a", "ns/b");
        assert!(
            tampered
                .verified_signers()
                .is_err_and(|e| e.message.contains("does not verify"))
        );
        let mut forged = round;
        assert!(forged.add(&alice.public_key(), &[0; 64]).is_err());
    }
}
