//! Any bytes as a session upload to the development CAS (plain YAML or a signed session's
//! JSON): parsing and the access-policy and secret-cost checks never panic, and what parses
//! has a name the store accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = if text.trim_start().starts_with('{') {
        meshfile_cas::store::Upload::parse_signed(text)
    } else {
        meshfile_cas::store::Upload::parse(text)
    };
    if let Ok(upload) = parsed {
        assert!(meshfile_cas::session::check_name(upload.name()).is_ok());
    }
    // What the store reckons of the secrets, before generating any, on any tree.
    if let Ok(node) = meshfile_yaml::parse(text, &meshfile_yaml::Limits::default()) {
        let cost = meshfile_cas::secrets::cost(&node);
        let _ = meshfile_cas::secrets::check_cost("fuzz", cost);
    }
});
