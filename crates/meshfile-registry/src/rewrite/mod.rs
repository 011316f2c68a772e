//! Rewriting an image for the Meshfile's `repo` section: `strip` drops `/scone` from every
//! layer, `squash` merges all layers into one with the whiteouts applied. Layers are read from
//! files and written to files in a scratch directory, streamed: memory does not grow with a
//! layer's size (a squash holds the tree of paths, [`MAX_NAMES`] at most). Same input, same
//! bytes: entries keep their headers (times included), extended records and order (a
//! squashed layer is sorted by path), and layers are gzipped at a fixed level with no
//! timestamp.

mod layer;
mod squash;

use std::path::{Path, PathBuf};

use sha2::Digest;

/// The name a rewrite's scratch directory starts with, in the directory it is given.
pub const SCRATCH_PREFIX: &str = ".meshfile-rewrite-";

/// Bytes of uncompressed layer content an image may have, all layers together: what a
/// squash may spill to disk, and a bound on the work a rewrite does.
pub const MAX_CONTENT: u64 = 16 * 1024 * 1024 * 1024;
/// Entries an image may have, all layers together.
const MAX_ENTRIES: u64 = 2_000_000;
/// Bytes of paths a squash holds in memory (with 48 bytes counted for each entry's place in
/// the tree).
pub const MAX_NAMES: u64 = 256 * 1024 * 1024;

const GZIP_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];
const TAR_TYPES: &[&str] = &["application/vnd.oci.image.layer.v1.tar"];

/// What to do to an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub squash: bool,
    pub strip: bool,
}

/// A blob of the new image held in memory (its config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub digest: String,
    pub bytes: Vec<u8>,
}

/// A blob on disk: a layer, read or made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileBlob {
    pub digest: String,
    pub size: u64,
    pub path: PathBuf,
}

/// The new image: its manifest (same media type as the source's), config and layers.
#[derive(Clone, Debug)]
pub struct Rewritten {
    pub manifest: Vec<u8>,
    pub config: Blob,
    pub layers: Vec<FileBlob>,
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Why an image cannot be rewritten.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("a layer of type `{0}` cannot be rewritten (gzip or plain tar only)")]
    LayerType(String),
    /// A layer's bytes are not the tar (or gzipped tar) they should be.
    #[error("{what}: {source}")]
    Unreadable {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("a layer's entry has an extended record whose name is not UTF-8")]
    RecordName,
    #[error("a layer's entry is shorter than its header says")]
    ShortEntry,
    #[error("the image has more than {MAX_ENTRIES} entries, more than a rewrite reads")]
    TooManyEntries,
    #[error(
        "the image holds more than {} GiB of content, more than a rewrite reads",
        MAX_CONTENT >> 30
    )]
    TooMuchContent,
    #[error(
        "the image's paths exceed {} MiB, more than a squash holds in memory",
        MAX_NAMES >> 20
    )]
    TooManyNames,
    /// Reading or writing the files in the scratch directory.
    #[error("{what}: {source}")]
    Scratch {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the {what} is not JSON: {source}")]
    NotJson {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the manifest and the layers given do not match")]
    Mismatch,
}

/// A closure mapping an I/O error to [`RewriteError::Unreadable`] saying `what`.
fn unreadable(what: &'static str) -> impl Fn(std::io::Error) -> RewriteError {
    move |source| RewriteError::Unreadable { what, source }
}

/// A closure mapping an I/O error to [`RewriteError::Scratch`] saying `what`.
fn scratch(what: &'static str) -> impl Fn(std::io::Error) -> RewriteError {
    move |source| RewriteError::Scratch { what, source }
}

/// What an image's rewrite may still read: bytes of content and entries.
struct Budget {
    content: u64,
    entries: u64,
}

impl Budget {
    /// Counts one entry of `size` bytes, refused beyond the bounds.
    fn take(&mut self, size: u64) -> Result<(), RewriteError> {
        self.entries = (self.entries.checked_sub(1)).ok_or(RewriteError::TooManyEntries)?;
        self.content = (self.content.checked_sub(size)).ok_or(RewriteError::TooMuchContent)?;
        Ok(())
    }
}

fn under(path: &[u8], dir: &[u8]) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.first() == Some(&b'/'))
}

/// Whether a path is `/scone` or below it, or a whiteout of it.
fn in_scone(path: &[u8]) -> bool {
    path == b"scone" || path == b".wh.scone" || under(path, b"scone")
}

/// Rewrites an image given its manifest, its config and its layer blobs on disk (in manifest
/// order); the new layers are written to `scratch`.
pub fn rewrite(
    manifest: &[u8],
    config: &[u8],
    layers: &[PathBuf],
    what: Rewrite,
    scratch: &Path,
) -> Result<Rewritten, RewriteError> {
    let json = |what: &'static str| move |source| RewriteError::NotJson { what, source };
    let mut manifest: serde_json::Value =
        serde_json::from_slice(manifest).map_err(json("manifest"))?;
    let mut config: serde_json::Value = serde_json::from_slice(config).map_err(json("config"))?;
    let descriptors = manifest["layers"].as_array().cloned().unwrap_or_default();
    if descriptors.len() != layers.len() {
        return Err(RewriteError::Mismatch);
    }
    let sources: Vec<(&str, &Path)> = descriptors
        .iter()
        .zip(layers)
        .map(|(d, path)| (d["mediaType"].as_str().unwrap_or_default(), path.as_path()))
        .collect();
    let keep = |path: &[u8]| !(what.strip && in_scone(path));
    let mut budget = Budget {
        content: MAX_CONTENT,
        entries: MAX_ENTRIES,
    };
    let written: Vec<(FileBlob, String)> = if what.squash {
        vec![squash::squash(&sources, keep, scratch, &mut budget)?]
    } else {
        let mut written = Vec::with_capacity(sources.len());
        for (media_type, blob) in &sources {
            let mut writer = layer::Writer::create(scratch)?;
            layer::read(media_type, blob, &mut budget, |meta, data| {
                if keep(&meta.path) {
                    writer.append(&meta, data)?;
                }
                Ok(())
            })?;
            written.push(writer.finish()?);
        }
        written
    };
    let layer_type = if manifest["mediaType"].as_str()
        == Some("application/vnd.docker.distribution.manifest.v2+json")
    {
        GZIP_TYPES[1]
    } else {
        GZIP_TYPES[0]
    };
    config["rootfs"] = serde_json::json!({
        "type": "layers",
        "diff_ids": written.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(),
    });
    if what.squash {
        let created = config["created"].clone();
        let mut step = serde_json::json!({
            "created_by": format!("meshfile: squashed {} layers{}", layers.len(), if what.strip { ", /scone removed" } else { "" }),
        });
        if !created.is_null() {
            step["created"] = created;
        }
        config["history"] = serde_json::json!([step]);
    } else if let Some(history) = config["history"].as_array_mut()
        && let Some(last) = history
            .iter_mut()
            .rev()
            .find(|h| h["empty_layer"].as_bool() != Some(true))
    {
        last["comment"] = "meshfile: /scone removed from every layer".into();
    }
    let config = serde_json::to_vec(&config).map_err(json("config"))?;
    let config = Blob {
        digest: sha256(&config),
        bytes: config,
    };
    manifest["config"]["digest"] = config.digest.clone().into();
    manifest["config"]["size"] = config.bytes.len().into();
    manifest["layers"] = written
        .iter()
        .map(|(blob, _)| serde_json::json!({"mediaType": layer_type, "digest": blob.digest, "size": blob.size}))
        .collect();
    Ok(Rewritten {
        manifest: serde_json::to_vec(&manifest).map_err(json("manifest"))?,
        config,
        layers: written.into_iter().map(|(blob, _)| blob).collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn layer(files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_mtime(1_700_000_000);
            if path.ends_with('/') {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder
                    .append_data(&mut header, path, std::io::empty())
                    .expect("dir");
            } else {
                header.set_size(data.len() as u64);
                builder
                    .append_data(&mut header, path, data.as_bytes())
                    .expect("file");
            }
        }
        gzip(&builder.into_inner().expect("tar"))
    }

    fn gzip(tar: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(tar).expect("gz");
        gz.finish().expect("gz")
    }

    fn gunzip(blob: &[u8]) -> Vec<u8> {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(blob)
            .read_to_end(&mut tar)
            .expect("gunzip");
        tar
    }

    /// A layer's paths and contents, with each entry's PAX records other than the path.
    fn files(blob: &[u8]) -> Vec<(String, String)> {
        let tar = gunzip(blob);
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut out = Vec::new();
        for entry in archive.entries().expect("tar") {
            let mut entry = entry.expect("entry");
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let mut data = String::new();
            entry.read_to_string(&mut data).expect("data");
            out.push((path.trim_end_matches('/').to_owned(), data));
        }
        out
    }

    /// Writes blobs as files in `dir`, as the copier leaves them.
    fn on_disk(dir: &Path, blobs: &[Vec<u8>]) -> Vec<PathBuf> {
        blobs
            .iter()
            .enumerate()
            .map(|(i, blob)| {
                let path = dir.join(format!("source-{i}"));
                std::fs::write(&path, blob).expect("write");
                path
            })
            .collect()
    }

    fn read(blob: &FileBlob) -> Vec<u8> {
        let bytes = std::fs::read(&blob.path).expect("read");
        assert_eq!(sha256(&bytes), blob.digest);
        assert_eq!(bytes.len() as u64, blob.size);
        bytes
    }

    fn image(layers: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:00", "size": 2},
            "layers": layers.iter().map(|l| serde_json::json!({"mediaType": GZIP_TYPES[0], "digest": sha256(l), "size": l.len()})).collect::<Vec<_>>(),
        });
        let config = serde_json::json!({"created": "2024-01-01T00:00:00Z", "rootfs": {"type": "layers", "diff_ids": []}, "history": [{"created_by": "a"}, {"created_by": "b"}, {"created_by": "c"}]});
        (
            serde_json::to_vec(&manifest).expect("json"),
            serde_json::to_vec(&config).expect("json"),
        )
    }

    const BOTH: Rewrite = Rewrite {
        squash: true,
        strip: true,
    };
    const STRIP: Rewrite = Rewrite {
        squash: false,
        strip: true,
    };

    #[test]
    fn squash_applies_whiteouts_and_strip_drops_scone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layers = vec![
            layer(&[
                ("app/", ""),
                ("app/main.py", "v1"),
                ("app/old.txt", "old"),
                ("apps/kept", "k"),
                ("etc/", ""),
                ("etc/x", "x"),
            ]),
            layer(&[
                ("scone/", ""),
                ("scone/runtime.conf", "s"),
                ("app/main.py", "v2"),
            ]),
            layer(&[
                ("app/.wh.old.txt", ""),
                ("etc/.wh..wh..opq", ""),
                ("etc/y", "y"),
            ]),
        ];
        let sources = on_disk(dir.path(), &layers);
        let (manifest, config) = image(&layers);
        let out = rewrite(&manifest, &config, &sources, BOTH, dir.path()).expect("rewrites");
        assert_eq!(out.layers.len(), 1);
        let squashed = read(&out.layers[0]);
        assert_eq!(
            files(&squashed),
            [
                ("app", ""),
                ("app/main.py", "v2"),
                ("apps/kept", "k"),
                ("etc", ""),
                ("etc/y", "y")
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        let again = rewrite(&manifest, &config, &sources, BOTH, dir.path()).expect("rewrites");
        assert_eq!(again.manifest, out.manifest, "same input, same bytes");
        let config: serde_json::Value = serde_json::from_slice(&out.config.bytes).expect("config");
        let diff_id = config["rootfs"]["diff_ids"][0].as_str().expect("diff id");
        assert_eq!(diff_id, sha256(&gunzip(&squashed)));
        assert_eq!(config["history"].as_array().map(Vec::len), Some(1));

        let config = serde_json::to_vec(&config).expect("json");
        let strip = rewrite(&manifest, &config, &sources, STRIP, dir.path()).expect("strips");
        assert_eq!(strip.layers.len(), 3);
        assert_eq!(
            files(&read(&strip.layers[1])),
            [("app/main.py".to_owned(), "v2".to_owned())]
        );
        assert_eq!(files(&read(&strip.layers[0])), files(&layers[0]));
    }

    #[test]
    fn long_names_links_and_extended_records_survive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let long = format!("opt/{}/bin/tool", "d".repeat(150));
        let mut builder = tar::Builder::new(Vec::new());
        // A PAX header carrying a file capability, as `setcap` leaves it, for the next entry.
        let record = b"42 SCHILY.xattr.security.capability=\x01\x00\x00\x02 \n";
        let mut pax = tar::Header::new_ustar();
        pax.set_entry_type(tar::EntryType::XHeader);
        pax.set_size(record.len() as u64);
        builder
            .append_data(&mut pax, "PaxHeaders/ping", record.as_slice())
            .expect("pax");
        let mut file = tar::Header::new_gnu();
        file.set_mode(0o755);
        file.set_size(4);
        builder
            .append_data(&mut file, &long, b"ping".as_slice())
            .expect("file");
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link, "usr/bin/tool", &long)
            .expect("link");
        let blob = gzip(&builder.into_inner().expect("tar"));
        let sources = on_disk(dir.path(), std::slice::from_ref(&blob));
        let (manifest, config) = image(std::slice::from_ref(&blob));
        for what in [BOTH, STRIP] {
            let out = rewrite(&manifest, &config, &sources, what, dir.path()).expect("rewrites");
            let tar = gunzip(&read(&out.layers[0]));
            let mut archive = tar::Archive::new(tar.as_slice());
            let mut seen = Vec::new();
            for entry in archive.entries().expect("tar") {
                let mut entry = entry.expect("entry");
                let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let target = entry.link_name_bytes().map(|l| l.into_owned());
                let xattr = entry
                    .pax_extensions()
                    .expect("pax")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .find(|r| r.key() == Ok("SCHILY.xattr.security.capability"))
                    .map(|r| r.value_bytes().to_vec());
                seen.push((path, target, xattr));
            }
            seen.sort();
            assert_eq!(
                seen,
                [
                    (long.clone(), None, Some(b"\x01\x00\x00\x02 ".to_vec())),
                    ("usr/bin/tool".into(), Some(long.clone().into_bytes()), None),
                ]
            );
        }
    }

    /// A GNU long name entry asking for more than a path can be is refused before the tar
    /// reader would take it into memory.
    #[test]
    fn an_outsized_long_name_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_size(8 * 1024 * 1024);
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        tar.resize(tar.len() + 8 * 1024 * 1024 + 1024, b'a');
        let blob = gzip(&tar);
        let sources = on_disk(dir.path(), std::slice::from_ref(&blob));
        let (manifest, config) = image(std::slice::from_ref(&blob));
        let refused = rewrite(&manifest, &config, &sources, STRIP, dir.path())
            .expect_err("refused")
            .to_string();
        assert!(refused.contains("exceed 1024 KiB"), "{refused}");
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = vec![b"not gzip".to_vec()];
        let sources = on_disk(dir.path(), &junk);
        let (manifest, config) = image(&junk);
        for what in [BOTH, STRIP] {
            assert!(rewrite(&manifest, &config, &sources, what, dir.path()).is_err());
            assert!(rewrite(&manifest, &config, &[], what, dir.path()).is_err());
        }
    }
}
