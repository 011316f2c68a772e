//! Any bytes: loading never panics, and a valid manifest survives dump and reload unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loaded = meshfile_manifest::load(data);
    if let Some(manifest) = loaded.manifest.as_ref().filter(|_| !loaded.has_errors()) {
        let dumped = meshfile_manifest::dump(manifest);
        let again = meshfile_manifest::load(dumped.as_bytes());
        assert_eq!(
            again.manifest.as_ref(),
            Some(manifest),
            "dump changed the model:\n{dumped}"
        );
        let _ = meshfile_manifest::lint(manifest);
    }
});
