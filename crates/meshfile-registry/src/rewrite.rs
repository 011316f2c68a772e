//! Rewriting an image for the Meshfile's `repo` section: `strip` drops `/scone` from every
//! layer, `squash` merges all layers into one with the whiteouts applied. Pure: blobs in,
//! blobs out. Same input, same bytes: entries keep their headers (times included) and their
//! order (a squashed layer is sorted by path), and layers are gzipped at a fixed level with
//! no timestamp.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use sha2::Digest;

/// Bytes of uncompressed layer content an image may have, all layers together: rewriting
/// holds it in memory.
pub const MAX_CONTENT: u64 = 4 * 1024 * 1024 * 1024;
/// Entries of one layer at most.
const MAX_ENTRIES: usize = 1_000_000;

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

/// A blob of the new image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Blob {
        Blob {
            digest: sha256(&bytes),
            bytes,
        }
    }
}

/// The new image: its manifest (same media type as the source's), config and layers.
#[derive(Clone, Debug)]
pub struct Rewritten {
    pub manifest: Vec<u8>,
    pub config: Blob,
    pub layers: Vec<Blob>,
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// One entry of a layer: its header, its link target, its content.
#[derive(Clone)]
struct Entry {
    header: tar::Header,
    link: Option<Vec<u8>>,
    data: Vec<u8>,
}

/// A layer's path as the image sees it: no leading `./` or `/`, no trailing `/`.
fn normal(path: &[u8]) -> Vec<u8> {
    let mut p = path;
    while let Some(rest) = p.strip_prefix(b"./").or_else(|| p.strip_prefix(b"/")) {
        p = rest;
    }
    p.strip_suffix(b"/").unwrap_or(p).to_vec()
}

fn under(path: &[u8], dir: &[u8]) -> bool {
    dir.is_empty()
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.first() == Some(&b'/'))
}

/// Whether a path is `/scone` or below it, or a whiteout of it.
fn in_scone(path: &[u8]) -> bool {
    path == b"scone" || path == b".wh.scone" || under(path, b"scone")
}

/// A layer's entries, in order.
fn read_layer(
    media_type: &str,
    blob: &[u8],
    budget: &mut u64,
) -> Result<Vec<(Vec<u8>, Entry)>, String> {
    let reader: Box<dyn Read> = if GZIP_TYPES.contains(&media_type) {
        Box::new(flate2::read::GzDecoder::new(blob))
    } else if TAR_TYPES.contains(&media_type) {
        Box::new(blob)
    } else {
        return Err(format!(
            "a layer of type `{media_type}` cannot be rewritten (gzip or plain tar only)"
        ));
    };
    let mut archive = tar::Archive::new(reader);
    let mut out = Vec::new();
    for entry in archive
        .entries()
        .map_err(|e| format!("a layer is no tar archive: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("a layer's entry is unreadable: {e}"))?;
        if out.len() >= MAX_ENTRIES {
            return Err(format!("a layer has more than {MAX_ENTRIES} entries"));
        }
        let size = entry.header().size().unwrap_or(0);
        *budget = budget.checked_sub(size).ok_or_else(|| {
            format!(
                "the image holds more than {} GiB of content",
                MAX_CONTENT >> 30
            )
        })?;
        let path = normal(&entry.path_bytes());
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let mut data = Vec::with_capacity(size as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| format!("a layer's entry is unreadable: {e}"))?;
        out.push((
            path,
            Entry {
                header: entry.header().clone(),
                link,
                data,
            },
        ));
    }
    Ok(out)
}

/// Entries as one gzipped tar layer: its blob and its diff id (the digest of the tar).
fn write_layer<'a>(
    entries: impl Iterator<Item = (&'a Vec<u8>, &'a Entry)>,
) -> Result<(Blob, String), String> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Complete);
    for (path, entry) in entries {
        let mut header = entry.header.clone();
        let path = String::from_utf8_lossy(path).into_owned();
        let path = if header.entry_type().is_dir() {
            format!("{path}/")
        } else {
            path
        };
        let written = match &entry.link {
            Some(target)
                if header.entry_type().is_symlink() || header.entry_type().is_hard_link() =>
            {
                let target = String::from_utf8_lossy(target).into_owned();
                builder.append_link(&mut header, &path, &target)
            }
            _ => builder.append_data(&mut header, &path, entry.data.as_slice()),
        };
        written.map_err(|e| format!("writing a layer: {e}"))?;
    }
    let tar = builder
        .into_inner()
        .map_err(|e| format!("writing a layer: {e}"))?;
    let diff_id = sha256(&tar);
    let mut gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&tar)
        .map_err(|e| format!("compressing a layer: {e}"))?;
    let bytes = gz
        .finish()
        .map_err(|e| format!("compressing a layer: {e}"))?;
    Ok((Blob::new(bytes), diff_id))
}

/// Applies one layer's entries over the merged tree: its whiteouts remove what lower layers
/// had, then its entries replace theirs (a non-directory replaces a whole directory).
fn apply(tree: &mut BTreeMap<Vec<u8>, Entry>, layer: Vec<(Vec<u8>, Entry)>) {
    let (whiteouts, entries): (Vec<_>, Vec<_>) = layer.into_iter().partition(|(path, _)| {
        let name = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
        name.starts_with(b".wh.")
    });
    for (path, _) in whiteouts {
        let (dir, name) = match path.iter().rposition(|b| *b == b'/') {
            Some(i) => (path[..i].to_vec(), path[i + 1..].to_vec()),
            None => (Vec::new(), path.clone()),
        };
        if name == b".wh..wh..opq" {
            tree.retain(|p, _| !under(p, &dir));
        } else {
            let gone = [
                dir.as_slice(),
                if dir.is_empty() { b"" } else { b"/" },
                &name[4..],
            ]
            .concat();
            tree.retain(|p, _| *p != gone && !under(p, &gone));
        }
    }
    for (path, entry) in entries {
        if !entry.header.entry_type().is_dir() {
            tree.retain(|p, _| !under(p, &path));
        }
        tree.insert(path, entry);
    }
}

/// Rewrites an image given its manifest, its config and its layer blobs (in manifest order).
pub fn rewrite(
    manifest: &[u8],
    config: &[u8],
    layers: &[Vec<u8>],
    what: Rewrite,
) -> Result<Rewritten, String> {
    let mut manifest: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let mut config: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| format!("the config is not JSON: {e}"))?;
    let descriptors = manifest["layers"].as_array().cloned().unwrap_or_default();
    if descriptors.len() != layers.len() {
        return Err("the manifest and the layers given do not match".into());
    }
    let mut budget = MAX_CONTENT;
    let mut read = Vec::with_capacity(layers.len());
    for (descriptor, blob) in descriptors.iter().zip(layers) {
        let media_type = descriptor["mediaType"].as_str().unwrap_or_default();
        let mut entries = read_layer(media_type, blob, &mut budget)?;
        if what.strip {
            entries.retain(|(path, _)| !in_scone(path));
        }
        read.push(entries);
    }
    let written: Vec<(Blob, String)> = if what.squash {
        let mut tree = BTreeMap::new();
        for entries in read {
            apply(&mut tree, entries);
        }
        vec![write_layer(tree.iter())?]
    } else {
        read.iter()
            .map(|entries| write_layer(entries.iter().map(|(p, e)| (p, e))))
            .collect::<Result<_, _>>()?
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
    let config = Blob::new(serde_json::to_vec(&config).map_err(|e| e.to_string())?);
    manifest["config"]["digest"] = config.digest.clone().into();
    manifest["config"]["size"] = config.bytes.len().into();
    manifest["layers"] = written
        .iter()
        .map(|(blob, _)| serde_json::json!({"mediaType": layer_type, "digest": blob.digest, "size": blob.bytes.len()}))
        .collect();
    Ok(Rewritten {
        manifest: serde_json::to_vec(&manifest).map_err(|e| e.to_string())?,
        config,
        layers: written.into_iter().map(|(blob, _)| blob).collect(),
    })
}

#[cfg(test)]
mod tests {
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
        let tar = builder.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).expect("gz");
        gz.finish().expect("gz")
    }

    fn files(blob: &[u8]) -> Vec<(String, String)> {
        let mut budget = MAX_CONTENT;
        read_layer(GZIP_TYPES[0], blob, &mut budget)
            .expect("layer")
            .into_iter()
            .map(|(p, e)| {
                (
                    String::from_utf8_lossy(&p).into_owned(),
                    String::from_utf8_lossy(&e.data).into_owned(),
                )
            })
            .collect()
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

    #[test]
    fn squash_applies_whiteouts_and_strip_drops_scone() {
        let layers = vec![
            layer(&[
                ("app/", ""),
                ("app/main.py", "v1"),
                ("app/old.txt", "old"),
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
        let (manifest, config) = image(&layers);
        let both = Rewrite {
            squash: true,
            strip: true,
        };
        let out = rewrite(&manifest, &config, &layers, both).expect("rewrites");
        assert_eq!(out.layers.len(), 1);
        assert_eq!(
            files(&out.layers[0].bytes),
            [
                ("app", ""),
                ("app/main.py", "v2"),
                ("etc", ""),
                ("etc/y", "y")
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        let again = rewrite(&manifest, &config, &layers, both).expect("rewrites");
        assert_eq!(again.manifest, out.manifest, "same input, same bytes");
        let config: serde_json::Value = serde_json::from_slice(&out.config.bytes).expect("config");
        let diff_id = config["rootfs"]["diff_ids"][0].as_str().expect("diff id");
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(out.layers[0].bytes.as_slice())
            .read_to_end(&mut tar)
            .expect("gunzip");
        assert_eq!(diff_id, sha256(&tar));
        assert_eq!(config["history"].as_array().map(Vec::len), Some(1));

        let strip = rewrite(
            &manifest,
            &config_bytes(&config),
            &layers,
            Rewrite {
                squash: false,
                strip: true,
            },
        )
        .expect("strips");
        assert_eq!(strip.layers.len(), 3);
        assert_eq!(
            files(&strip.layers[1].bytes),
            [("app/main.py".to_owned(), "v2".to_owned())]
        );
        assert_eq!(files(&strip.layers[0].bytes), files(&layers[0]));
    }

    fn config_bytes(config: &serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(config).expect("json")
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let (manifest, config) = image(&[b"not gzip".to_vec()]);
        assert!(
            rewrite(
                &manifest,
                &config,
                &[b"not gzip".to_vec()],
                Rewrite {
                    squash: true,
                    strip: false
                }
            )
            .is_err()
        );
        assert!(
            rewrite(
                &manifest,
                &config,
                &[],
                Rewrite {
                    squash: true,
                    strip: false
                }
            )
            .is_err()
        );
    }
}
