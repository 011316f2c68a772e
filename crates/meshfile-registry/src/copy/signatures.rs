//! Cosign signatures stored beside images, and OCI artifacts attached to them.

use std::collections::BTreeMap;

use super::*;

/// A signature payload is read up to this size; cosign's are a few hundred bytes.
const MAX_PAYLOAD: u64 = 64 * 1024;

const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// An artifact attached to an image: its manifest's digest, its first blob, its annotations.
pub struct Artifact {
    pub digest: String,
    pub blob: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

/// Where the OCI tag fallback scheme keeps a manifest's referrers: the tag `sha256-<hex>`.
fn referrers_tag(repository: &Reference, digest: &str) -> Reference {
    Reference {
        digest: None,
        registry: repository.registry.clone(),
        repository: repository.repository.clone(),
        tag: digest.replace(':', "-"),
    }
}

/// Where cosign keeps the signatures of a manifest: the tag `sha256-<hex>.sig`.
fn signature_reference(repository: &Reference, digest: &str) -> Reference {
    Reference {
        digest: None,
        registry: repository.registry.clone(),
        repository: repository.repository.clone(),
        tag: format!("{}.sig", digest.replace(':', "-")),
    }
}

impl Copier {
    /// The cosign signatures stored for `digest` in `repository`'s signature tag: each
    /// layer's payload and signature (base64); none when there is no such tag.
    pub async fn signatures(
        &self,
        repository: &Reference,
        digest: &str,
    ) -> Result<Vec<(Vec<u8>, String)>, RegistryError> {
        let at = signature_reference(repository, digest);
        let manifest = match self.manifest(&at, &at.tag).await {
            Ok(m) => m,
            Err(RegistryError::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let parsed = json(&at, &manifest.bytes)?;
        let mut found = Vec::new();
        for layer in parsed["layers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .take(MAX_ENTRIES)
        {
            let Some(signature) = layer["annotations"][SIGNATURE_ANNOTATION].as_str() else {
                continue;
            };
            let (digest, size) = descriptor(&at, layer)?;
            if size > MAX_PAYLOAD {
                continue;
            }
            found.push((
                self.read_blob(&at, &digest, size).await?,
                signature.to_owned(),
            ));
        }
        Ok(found)
    }

    /// Adds a cosign signature of `digest` (its `payload` and base64 `signature`) to what
    /// `repository`'s signature tag holds, where cosign and skopeo look for it.
    pub async fn attach_signature(
        &self,
        repository: &Reference,
        digest: &str,
        payload: &[u8],
        signature: &str,
    ) -> Result<(), RegistryError> {
        let at = signature_reference(repository, digest);
        let mut layers: Vec<serde_json::Value> = match self.manifest(&at, &at.tag).await {
            Ok(m) => json(&at, &m.bytes)?["layers"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            Err(RegistryError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        let payload_digest = digest_of(payload);
        self.put_blob(&at, &payload_digest, Sent::Bytes(payload))
            .await?;
        layers.push(serde_json::json!({
            "mediaType": PAYLOAD_MEDIA_TYPE,
            "size": payload.len(),
            "digest": payload_digest,
            "annotations": {SIGNATURE_ANNOTATION: signature},
        }));
        let diff_ids: Vec<&serde_json::Value> = layers.iter().map(|l| &l["digest"]).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .map_err(|e| protocol(&at, &e.to_string()))?;
        let config_digest = digest_of(&config);
        self.put_blob(&at, &config_digest, Sent::Bytes(&config))
            .await?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest},
            "layers": layers,
        });
        let manifest = Manifest {
            bytes: serde_json::to_vec(&manifest).map_err(|e| protocol(&at, &e.to_string()))?,
            media_type: OCI_MANIFEST.into(),
        };
        self.put_manifest(&at, &at.tag, &manifest).await?;
        Ok(())
    }

    /// Attaches `blob` (of `artifact_type`) to the image `reference` names, as an OCI 1.1
    /// artifact whose `subject` is the image's manifest: registries with the referrers API
    /// index it themselves; for those without, it is also listed in the fallback index under
    /// the tag `sha256-<hex>` of the subject. The artifact's digest.
    pub async fn attach_artifact(
        &self,
        reference: &Reference,
        artifact_type: &str,
        blob: &[u8],
        annotations: &BTreeMap<String, String>,
    ) -> Result<(String, String), RegistryError> {
        let subject = self.manifest(reference, &reference.tag).await?;
        let subject_digest = digest_of(&subject.bytes);
        let blob_digest = digest_of(blob);
        self.put_blob(reference, &blob_digest, Sent::Bytes(blob))
            .await?;
        let empty = b"{}";
        let empty_digest = digest_of(empty);
        self.put_blob(reference, &empty_digest, Sent::Bytes(empty))
            .await?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest, "size": 2},
            "layers": [{"mediaType": artifact_type, "digest": blob_digest, "size": blob.len()}],
            "subject": {"mediaType": subject.media_type, "digest": subject_digest, "size": subject.bytes.len()},
            "annotations": annotations,
        });
        let artifact = Manifest {
            bytes: serde_json::to_vec(&manifest)
                .map_err(|e| protocol(reference, &e.to_string()))?,
            media_type: OCI_MANIFEST.into(),
        };
        let digest = digest_of(&artifact.bytes);
        self.put_manifest(reference, &digest, &artifact).await?;
        // The tag fallback scheme: an index of the subject's referrers.
        let at = referrers_tag(reference, &subject_digest);
        let mut index = match self.manifest(&at, &at.tag).await {
            Ok(m) => json(&at, &m.bytes)?,
            Err(RegistryError::NotFound { .. }) => {
                serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
            }
            Err(e) => return Err(e),
        };
        let listed = index["manifests"]
            .as_array()
            .is_some_and(|m| m.iter().any(|d| d["digest"] == digest.as_str()));
        if !listed {
            let entry = serde_json::json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": artifact.bytes.len(), "artifactType": artifact_type, "annotations": annotations});
            match index["manifests"].as_array_mut() {
                Some(manifests) => manifests.push(entry),
                None => index["manifests"] = serde_json::json!([entry]),
            }
            let index = Manifest {
                bytes: serde_json::to_vec(&index).map_err(|e| protocol(&at, &e.to_string()))?,
                media_type: OCI_INDEX.into(),
            };
            self.put_manifest(&at, &at.tag, &index).await?;
        }
        Ok((digest, subject_digest))
    }

    /// The artifacts of `artifact_type` attached to the image `reference` names: through the
    /// referrers API, else the tag fallback index. Each artifact's digest, first blob and
    /// annotations.
    pub async fn artifacts(
        &self,
        reference: &Reference,
        artifact_type: &str,
    ) -> Result<(String, Vec<Artifact>), RegistryError> {
        let subject = self.manifest(reference, &reference.tag).await?;
        let subject_digest = digest_of(&subject.bytes);
        let url = format!(
            "{}/referrers/{subject_digest}?artifactType={artifact_type}",
            repository_url(reference)
        );
        let response = self.send(reference, || self.http.get(&url)).await?;
        let index = if response.status().is_success() {
            let bytes =
                crate::body(response, MAX_MANIFEST, reference, "the referrers index").await?;
            json(reference, &bytes)?
        } else {
            let at = referrers_tag(reference, &subject_digest);
            match self.manifest(&at, &at.tag).await {
                Ok(m) => json(&at, &m.bytes)?,
                Err(RegistryError::NotFound { .. }) => return Ok((subject_digest, Vec::new())),
                Err(e) => return Err(e),
            }
        };
        let mut found = Vec::new();
        for entry in index["manifests"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .take(MAX_ENTRIES)
        {
            if entry["artifactType"].as_str() != Some(artifact_type) {
                continue;
            }
            let (digest, _) = descriptor(reference, entry)?;
            let artifact = self.manifest(reference, &digest).await?;
            let parsed = json(reference, &artifact.bytes)?;
            if parsed["subject"]["digest"].as_str() != Some(subject_digest.as_str()) {
                continue;
            }
            let Some(layer) = parsed["layers"].as_array().and_then(|l| l.first()) else {
                continue;
            };
            let (blob_digest, size) = descriptor(reference, layer)?;
            if size > MAX_MANIFEST {
                return Err(protocol(
                    reference,
                    "an attached artifact is larger than 4 MiB",
                ));
            }
            let annotations = (parsed["annotations"].as_object().into_iter().flatten())
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect();
            found.push(Artifact {
                digest,
                blob: self.read_blob(reference, &blob_digest, size).await?,
                annotations,
            });
        }
        Ok((subject_digest, found))
    }
}
