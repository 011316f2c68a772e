//! Any bytes as every key form meshfile reads: a signer (PEM, base64 SPKI, Base58Check), a
//! signing key (PKCS#8 PEM), a key hash (hex, Base58Check), a cosign public key and a cosign
//! private key file (its scrypt parameters bounded before anything is derived). None panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = meshfile_session::signer::PublicKey::parse(text) {
        assert_eq!(
            meshfile_session::signer::PublicKey::parse(&key.to_pem()).ok(),
            Some(key.clone())
        );
        assert_eq!(
            meshfile_session::signer::PublicKey::parse(&key.to_scone()).ok(),
            Some(key)
        );
    }
    let _ = meshfile_sign::SigningKey::from_pem(text);
    if let Ok(hash) = meshfile_session::key_hash::parse(text) {
        let b58 = meshfile_session::key_hash::base58check(&hash).expect("a parsed hash");
        assert_eq!(meshfile_session::key_hash::parse(&b58).ok(), Some(hash));
    }
    let _ = meshfile_sign::cosign::CosignPublicKey::from_pem(text);
    let _ = meshfile_sign::cosign::CosignKey::from_pem(text, b"password");
});
