//! Copying an image rewritten (`squash`, `strip`): its layers downloaded to a scratch
//! directory, made anew there, the new blobs sent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::Digest;

use super::*;

/// One image's rewrite, as each of its platforms is rewritten.
struct Image<'a> {
    source: &'a Reference,
    destination: Option<&'a Reference>,
    what: crate::rewrite::Rewrite,
    scratch: &'a Path,
    progress: &'a Arc<dyn Progress>,
}

impl Copier {
    /// Copies `source` to `destination` rewritten (`squash`, `strip`): each platform's image
    /// made anew from the source's blobs, the new blobs sent unless the destination has them.
    /// Without a destination the images are made and only their digests kept (nothing
    /// written). Layers pass through files in `scratch`, never whole in memory.
    pub async fn copy_rewritten(
        &self,
        source: &Reference,
        destination: Option<&Reference>,
        what: crate::rewrite::Rewrite,
        scratch: &Path,
        progress: &Arc<dyn Progress>,
    ) -> Result<Copied, RegistryError> {
        let mut copied = Copied::default();
        let top = self.manifest(source, source.selector()).await?;
        copied.source_digest = digest_of(&top.bytes);
        let image = Image {
            source,
            destination,
            what,
            scratch,
            progress,
        };
        let top = if INDEX_TYPES.contains(&top.media_type.as_str()) {
            let mut index = json(source, &top.bytes)?;
            let children = entries(source, &index, "manifests")?;
            for (i, (digest, _)) in children.into_iter().enumerate() {
                let child = self.manifest(source, &digest).await?;
                let new = self.rewrite_one(&image, &child, &mut copied).await?;
                let new_digest = match destination {
                    Some(destination) => {
                        (self.put_manifest(destination, &digest_of(&new.bytes), &new)).await?
                    }
                    None => digest_of(&new.bytes),
                };
                index["manifests"][i]["digest"] = new_digest.into();
                index["manifests"][i]["size"] = new.bytes.len().into();
            }
            Manifest {
                bytes: serde_json::to_vec(&index).map_err(|e| protocol(source, &e.to_string()))?,
                media_type: top.media_type,
            }
        } else {
            self.rewrite_one(&image, &top, &mut copied).await?
        };
        copied.digest = match destination {
            Some(destination) => (self.put_manifest(destination, &destination.tag, &top)).await?,
            None => digest_of(&top.bytes),
        };
        Ok(copied)
    }

    /// One image rewritten: its layers downloaded to a directory of their own in the
    /// scratch directory, made anew there (on a blocking thread: it is CPU and disk work),
    /// the new blobs sent (with a destination); its new manifest. The directory goes with
    /// the image.
    async fn rewrite_one(
        &self,
        image: &Image<'_>,
        manifest: &Manifest,
        copied: &mut Copied,
    ) -> Result<Manifest, RegistryError> {
        let source = image.source;
        let parsed = json(source, &manifest.bytes)?;
        let (config_digest, config_size) = descriptor(source, &parsed["config"])?;
        if config_size > MAX_MANIFEST {
            return Err(protocol(source, "the image config is larger than 4 MiB"));
        }
        let layers = entries(source, &parsed, "layers")?;
        let total: u64 = layers.iter().map(|(_, size)| size).sum();
        if total > crate::rewrite::MAX_CONTENT {
            return Err(rewrite_failed(
                source,
                &format!(
                    "its layers exceed {} GiB, more than squash and strip rewrite",
                    crate::rewrite::MAX_CONTENT >> 30
                ),
            ));
        }
        let work = tempfile::Builder::new()
            .prefix(crate::rewrite::SCRATCH_PREFIX)
            .tempdir_in(image.scratch)
            .map_err(|e| scratch_failed(source, image.scratch, &e))?;
        let config = self.read_blob(source, &config_digest, config_size).await?;
        let mut files = Vec::with_capacity(layers.len());
        for (digest, size) in &layers {
            files.push(self.download(source, digest, *size, work.path()).await?);
        }
        let (what, dir, manifest_bytes) =
            (image.what, work.path().to_owned(), manifest.bytes.clone());
        let new = tokio::task::spawn_blocking(move || {
            crate::rewrite::rewrite(&manifest_bytes, &config, &files, what, &dir)
        })
        .await
        .map_err(|e| rewrite_failed(source, &e.to_string()))?
        .map_err(|why| rewrite_failed(source, &why.to_string()))?;
        let made = Manifest {
            bytes: new.manifest,
            media_type: manifest.media_type.clone(),
        };
        let Some(destination) = image.destination else {
            return Ok(made);
        };
        let name = source.to_string();
        let config_size = new.config.bytes.len() as u64;
        image
            .progress
            .planned(config_size + new.layers.iter().map(|b| b.size).sum::<u64>());
        let transfer = (self.put_blob(
            destination,
            &new.config.digest,
            Sent::Bytes(&new.config.bytes),
        ))
        .await?;
        image.progress.advanced(config_size);
        image
            .progress
            .blob(&name, &new.config.digest, config_size, transfer);
        copied.count(transfer, config_size);
        for layer in &new.layers {
            let sent = Sent::File(&layer.path, Arc::clone(image.progress));
            let transfer = self.put_blob(destination, &layer.digest, sent).await?;
            if transfer != BlobTransfer::Sent {
                image.progress.advanced(layer.size);
            }
            image
                .progress
                .blob(&name, &layer.digest, layer.size, transfer);
            copied.count(transfer, layer.size);
        }
        Ok(made)
    }

    /// A blob streamed to a new file in `dir`: exactly the `size` bytes its descriptor
    /// gives, checked against its digest as they pass.
    async fn download(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        dir: &Path,
    ) -> Result<PathBuf, RegistryError> {
        let mut response = self.get_blob(reference, digest).await?;
        let (file, path) = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(dir)
            .and_then(|f| f.keep().map_err(|e| e.error))
            .map_err(|e| scratch_failed(reference, dir, &e))?;
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
        let mut hasher = sha2::Sha256::new();
        let mut got = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| RegistryError::Unreachable {
                registry: reference.registry.clone(),
                detail: format!("reading blob {digest}: {}", root_cause(&e)),
            })?
        {
            got += chunk.len() as u64;
            if got > size {
                return Err(protocol(
                    reference,
                    &format!("blob {digest} is larger than the {size} bytes its descriptor gives"),
                ));
            }
            hasher.update(&chunk);
            out.write_all(&chunk)
                .map_err(|e| scratch_failed(reference, dir, &e))?;
        }
        out.flush()
            .map_err(|e| scratch_failed(reference, dir, &e))?;
        if got != size || format!("sha256:{}", hex::encode(hasher.finalize())) != digest {
            return Err(mismatch(reference, digest));
        }
        Ok(path)
    }
}
