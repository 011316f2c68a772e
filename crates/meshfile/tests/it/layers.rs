//! A registry serving a layer far larger than memory should hold: squash and strip rewrite it
//! streamed, through files in `target/`, with the process's memory flat.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use sha2::Digest;

use crate::oci::example_with_image;

/// Uncompressed bytes of the big layer's one file: three times the memory bound below, zeros
/// so that its gzip is small to serve.
const BIG: u64 = 640 * 1024 * 1024;
/// The most resident memory a rewrite may take, in MiB.
const BOUND_MIB: u64 = 200;

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A gzipped layer: `/scone/runtime.conf`, then `app/big` of [`BIG`] zeros.
fn big_layer() -> Vec<u8> {
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gzip);
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(3);
    tar.append_data(&mut header, "scone/runtime.conf", b"x=1".as_slice())
        .expect("tar");
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(BIG);
    tar.append_data(&mut header, "app/big", std::io::repeat(0).take(BIG))
        .expect("tar");
    tar.into_inner().expect("tar").finish().expect("gzip")
}

/// A registry on 127.0.0.1 serving one image, `src/app:1.0`, made of `layer`: exactly what a
/// registry answers for a manifest, a blob and the API check, nothing else.
fn serve(layer: Vec<u8>) -> String {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:00"]},
        "history": [{"created_by": "big"}],
    }))
    .expect("json");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(&layer), "size": layer.len()}],
    }))
    .expect("json");
    let mut blobs = BTreeMap::new();
    blobs.insert(digest(&config), config);
    blobs.insert(digest(&layer), layer);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(256) {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let mut words = request.split(' ');
            let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let (kind, body): (&str, &[u8]) = if path == "/v2/" {
                ("application/json", b"{}")
            } else if path.starts_with("/v2/src/app/manifests/") {
                ("application/vnd.oci.image.manifest.v1+json", &manifest)
            } else if let Some(blob) = path
                .strip_prefix("/v2/src/app/blobs/")
                .and_then(|d| blobs.get(d))
            {
                ("application/octet-stream", blob)
            } else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nDocker-Content-Digest: {}\r\nConnection: close\r\n\r\n",
                body.len(),
                digest(body)
            );
            let _ = stream.write_all(head.as_bytes());
            if method != "HEAD" {
                let _ = stream.write_all(body);
            }
        }
    });
    address
}

#[test]
fn a_layer_larger_than_memory_should_hold_is_rewritten_streamed() {
    let source = serve(big_layer());
    for rewrite in [
        "squash: false\n  strip: true",
        "squash: true\n  strip: true",
    ] {
        let mut t = example_with_image(&format!("{source}/src/app:1.0"));
        let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
        // push: false makes the image for its digest (every layer read and written anew)
        // and sends nothing.
        t = t.file(
            "mesh.yaml",
            format!("{mesh}repo:\n  destination: 127.0.0.1:9/dest\n  {rewrite}\n  push: false\n"),
        );
        // What an interrupted run left behind goes too.
        let stale = t.dir().join("target/.meshfile-rewrite-interrupted");
        std::fs::create_dir_all(&stale).expect("stale dir");
        std::fs::write(stale.join("blob-1"), b"half a layer").expect("stale blob");
        let crate::Measured {
            status,
            stderr,
            peak_mib: peak,
            ..
        } = crate::measured(
            crate::meshfile(t.dir()).args(["apply", "-f", "."]),
            Duration::from_secs(300),
        );
        assert_eq!(status, Some(0), "{rewrite}: {stderr}");
        assert!(
            stderr.contains("prepared   ") && stderr.contains("/dest/app:1.0@sha256:"),
            "{rewrite}: {stderr}"
        );
        assert!(
            peak < BOUND_MIB,
            "{rewrite}: a {} MiB layer took {peak} MiB of memory",
            BIG >> 20
        );
        let left: Vec<_> = std::fs::read_dir(t.dir().join("target"))
            .expect("target")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".meshfile-rewrite-"))
            .collect();
        assert!(left.is_empty(), "scratch files left behind: {left:?}");
    }
}
