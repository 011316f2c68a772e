//! Session signers: the public keys that may sign sessions (session language 0.3.10,
//! "Access Control"). SCONE writes a signer as a PEM SubjectPublicKeyInfo (RFC 5280) of an
//! Ed25519 or P-384 key; older documents write an Ed25519 key as Base58Check (Bitcoin
//! alphabet, version byte 10, the 32 raw key bytes). Both forms of one key are the same signer.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// DER of an Ed25519 SubjectPublicKeyInfo before its 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER of a P-384 (secp384r1) SubjectPublicKeyInfo before its 97-byte uncompressed point.
const P384_SPKI_PREFIX: [u8; 23] = [
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];
/// The Base58Check version byte SCONE uses for an Ed25519 signer key.
const BASE58_SIGNER_VERSION: u8 = 10;
/// A signer key's text is never longer than this (a P-384 PEM is about 215 bytes).
pub const MAX_TEXT: usize = 1024;

/// Why a text or DER is no key of a kind SCONE accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a signer key is at most {MAX_TEXT} characters; this one has {0}")]
    TooLong(usize),
    #[error("a Base58Check signer holds 32 key bytes")]
    Base58Length,
    #[error(
        "a signer is a PEM public key (`-----BEGIN PUBLIC KEY-----`), its base64 body, or an Ed25519 key in Base58Check (version 10)"
    )]
    NoForm,
    #[error("the Ed25519 key is not 32 bytes")]
    Ed25519Length,
    #[error("the P-384 key is not an uncompressed point of 97 bytes")]
    P384Point,
    #[error(
        "the public key is neither Ed25519 nor P-384 (secp384r1), the two kinds SCONE accepts for signers"
    )]
    Kind,
    #[error("expected one PEM block `{begin}` … `{end}`")]
    NoPemBlock { begin: String, end: String },
    #[error("the {0} PEM block is not valid base64")]
    PemBase64(String),
}

/// A signer's public key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PublicKey {
    Ed25519([u8; 32]),
    /// The uncompressed point: `04`, then x and y, 48 bytes each.
    P384(Vec<u8>),
}

impl PublicKey {
    /// Reads a signer as written: PEM SPKI, the SPKI in base64 without the PEM lines (as
    /// SCONE's examples store "lines 2-3 of the PEM"), or Base58Check version 10.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let text = text.trim();
        if text.len() > MAX_TEXT {
            return Err(KeyError::TooLong(text.len()));
        }
        if text.starts_with("-----BEGIN") {
            let body = pem_body(text, "PUBLIC KEY")?;
            return PublicKey::from_spki_der(&body);
        }
        if let Ok(bytes) = bs58::decode(text)
            .with_check(Some(BASE58_SIGNER_VERSION))
            .into_vec()
        {
            return match <[u8; 32]>::try_from(&bytes[1..]) {
                Ok(key) => Ok(PublicKey::Ed25519(key)),
                Err(_) => Err(KeyError::Base58Length),
            };
        }
        let compact: String = text.split_whitespace().collect();
        match STANDARD.decode(compact.as_bytes()) {
            Ok(der) => PublicKey::from_spki_der(&der),
            Err(_) => Err(KeyError::NoForm),
        }
    }

    /// A SubjectPublicKeyInfo in DER, of an Ed25519 or a P-384 key.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        if let Some(key) = der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
            return <[u8; 32]>::try_from(key)
                .map(PublicKey::Ed25519)
                .map_err(|_| KeyError::Ed25519Length);
        }
        if let Some(point) = der.strip_prefix(&P384_SPKI_PREFIX[..]) {
            return if point.len() == 97 && point[0] == 4 {
                Ok(PublicKey::P384(point.to_vec()))
            } else {
                Err(KeyError::P384Point)
            };
        }
        Err(KeyError::Kind)
    }

    pub fn spki_der(&self) -> Vec<u8> {
        let (prefix, key): (&[u8], &[u8]) = match self {
            PublicKey::Ed25519(key) => (&ED25519_SPKI_PREFIX, key),
            PublicKey::P384(point) => (&P384_SPKI_PREFIX, point),
        };
        [prefix, key].concat()
    }

    /// The PEM form, as `scone self show-session-signing-key` prints it.
    pub fn to_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki_der())
    }

    /// The Base58Check form; only Ed25519 keys have one.
    pub fn to_base58(&self) -> Option<String> {
        match self {
            PublicKey::Ed25519(key) => Some(
                bs58::encode(key)
                    .with_check_version(BASE58_SIGNER_VERSION)
                    .into_string(),
            ),
            PublicKey::P384(_) => None,
        }
    }

    /// The key as SCONE writes a signer (in `signatures[].signer` and a `creator:` block):
    /// Base58Check for Ed25519, the PEM for P-384, which has no such form.
    pub fn to_scone(&self) -> String {
        self.to_base58().unwrap_or_else(|| self.to_pem())
    }

    /// One line that names the key for people: the Base58Check form of an Ed25519 key, the
    /// SPKI in base64 of a P-384 key.
    pub fn short_name(&self) -> String {
        self.to_base58()
            .unwrap_or_else(|| STANDARD.encode(self.spki_der()))
    }

    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "Ed25519",
            PublicKey::P384(_) => "ECDSA P-384",
        }
    }
}

/// The DER inside a PEM block labelled `label`.
pub fn pem_body(text: &str, label: &str) -> Result<Vec<u8>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let inner = text
        .trim()
        .strip_prefix(begin.as_str())
        .and_then(|rest| rest.trim_end().strip_suffix(end.as_str()))
        .ok_or_else(|| KeyError::NoPemBlock {
            begin,
            end: end.clone(),
        })?;
    let compact: String = inner.split_whitespace().collect();
    STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| KeyError::PemBase64(label.to_owned()))
}

/// DER as a PEM block, 64 characters a line.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same key in the session language's PEM example and in the governance page's
    /// Base58Check example (research notes, section 1.1).
    const PEM: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAOsufQ7RCOXueVLQBpk7Y44GAaj+LzPbmHfdr/TPdlrE=\n-----END PUBLIC KEY-----\n";
    const BASE58: &str = "LtLcbPVddnCkH36ZcRdgYsw4H8xDbYaFZfuefkDc25uq2qdjmM";

    #[test]
    fn scone_s_two_forms_are_one_signer() {
        let from_pem = PublicKey::parse(PEM).expect("PEM");
        let from_base58 = PublicKey::parse(BASE58).expect("Base58Check");
        assert_eq!(from_pem, from_base58);
        assert_eq!(from_pem.to_pem(), PEM);
        assert_eq!(from_pem.to_base58().as_deref(), Some(BASE58));
        let body = PEM.lines().nth(1).expect("body line");
        assert_eq!(PublicKey::parse(body), Ok(from_pem));
    }

    #[test]
    fn refuses_what_is_no_signer() {
        assert!(PublicKey::parse("hello").is_err());
        assert!(PublicKey::parse(&BASE58.replace('L', "M")).is_err());
        // An RSA key's SPKI: well-formed, but not a kind SCONE accepts.
        let rsa = "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8QuKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==";
        assert_eq!(PublicKey::parse(rsa), Err(KeyError::Kind));
        assert!(PublicKey::parse(&"A".repeat(MAX_TEXT + 1)).is_err());
    }
}
