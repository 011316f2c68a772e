//! Any bytes as an image layer (plain tar, or gzip when the first byte's low bit is set),
//! squashed or stripped as the first byte's second bit says: the rewrite never panics and
//! bounds what it holds, and what it makes is a fixed point, rewritten again to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshfile_registry::rewrite::{Rewrite, rewrite};

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn manifest(media_type: &str) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":2}},"layers":[{{"mediaType":"{media_type}","digest":"sha256:00","size":1}}]}}"#
    )
    .into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    let what = Rewrite {
        squash: kind & 2 != 0,
        strip: true,
    };
    let media_type = if kind & 1 != 0 { GZIP } else { TAR };
    let dir = tempfile::tempdir().expect("scratch");
    let source = dir.path().join("source");
    std::fs::write(&source, bytes).expect("source");
    let Ok(first) = rewrite(&manifest(media_type), b"{}", &[source], what, dir.path()) else {
        return;
    };
    let made = first.layers[0].path.clone();
    let again = rewrite(&manifest(GZIP), b"{}", &[made], what, dir.path())
        .expect("a layer the rewrite made is read again");
    assert_eq!(again.layers[0].digest, first.layers[0].digest, "not a fixed point");
});
