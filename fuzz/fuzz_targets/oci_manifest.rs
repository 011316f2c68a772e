//! Any bytes as an OCI or Docker manifest or index a registry serves: what the copier reads of
//! it never panics, and every reference it finds is a valid digest.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    let media_type = if kind % 2 == 0 {
        "application/vnd.oci.image.index.v1+json"
    } else {
        "application/vnd.oci.image.manifest.v1+json"
    };
    let reference =
        meshfile_registry::Reference::parse("127.0.0.1:5000/fuzz:1").expect("reference");
    if let Ok(found) = meshfile_registry::copy::references(&reference, bytes, media_type) {
        for (digest, _) in found {
            assert!(meshfile_manifest::mesh::is_digest(&digest), "{digest}");
        }
    }
});
