//! Any bytes as an encrypted session (`{"encrypted_session", "encryption_key"}`): reading and
//! opening with a key never panic, and nothing forged opens.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(encrypted) = meshfile_sign::EncryptedSession::from_json(text) {
        let key = meshfile_sign::EncryptionKey::derive(&[7u8; 32]);
        assert!(
            meshfile_sign::open(&key, &encrypted).is_err(),
            "a fuzzed ciphertext opened"
        );
    }
});
