//! Any bytes as a signed session (`{"session", "signatures"}`): reading and verifying never
//! panic, and what reads writes back to the same session.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(signed) = meshfile_sign::SignedSession::from_json(text) {
        let _ = signed.verified_signers();
        let again = meshfile_sign::SignedSession::from_json(&signed.to_json()).expect("round trip");
        assert_eq!(again, signed);
    }
});
