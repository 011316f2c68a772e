//! Service descriptors published beside their images: `meshfile publish` attaches a service's
//! descriptor (its manifest and MRENCLAVEs) to its image in the registry as an OCI artifact,
//! signed with the author's cosign key when one is given; a mesh that uses the image finds it
//! there when no descriptor is recorded locally, checks its signature against the keys it
//! trusts, and records it (with the image's digest), so the next run needs no registry.

use std::collections::BTreeMap;

use meshfile_manifest::Code;
use meshfile_plan::Descriptor;
use meshfile_plan::descriptor::{self, Entry};
use meshfile_registry::copy::Copier;
use meshfile_registry::{Reference, RegistryError};
use meshfile_sign::cosign::{CosignKey, CosignPublicKey, payload, payload_names};

use crate::Error;

/// The artifact type of a published descriptor.
pub const ARTIFACT_TYPE: &str = "application/vnd.meshfile.descriptor.v1+json";
/// The annotation naming the key that signed a published descriptor (its fingerprint).
const SIGNER_ANNOTATION: &str = "dev.meshfile.descriptor.signer";

/// A key trusted to sign descriptors, and how it is named.
pub struct TrustedKey {
    pub name: String,
    pub key: CosignPublicKey,
}

/// What publishing did.
pub struct Published {
    pub artifact: String,
    pub image_digest: String,
    pub signed_by: Option<String>,
}

fn reference(image: &str) -> Result<Reference, Error> {
    Reference::parse(image).ok_or_else(|| {
        Error::new(
            Code::ImageCopyFailed,
            format!("`{image}` is no image reference by tag"),
        )
        .hint("a service's `build.to` names its image as registry/repository:tag")
    })
}

fn failed(image: &str, e: &RegistryError) -> Error {
    Error::new(Code::ImageCopyFailed, format!("{image}: {e}"))
        .hint("check that the registry runs and holds the image; `docker login REGISTRY` for one that needs credentials")
}

/// Attaches `descriptor` to its image, signed with `key` when given.
pub fn publish(descriptor: &Descriptor, key: Option<&CosignKey>) -> Result<Published, Error> {
    let image = &descriptor.image;
    let at = reference(image)?;
    let mut entries = BTreeMap::new();
    entries.insert(image.clone(), Entry::new(descriptor));
    let document = descriptor::to_json(&entries);
    let mut annotations = BTreeMap::new();
    if let Some(key) = key {
        annotations.insert(SIGNER_ANNOTATION.to_owned(), key.fingerprint());
    }
    let runtime = crate::runtime()?;
    let copier = Copier::new(crate::credentials()).map_err(|e| failed(image, &e))?;
    let (artifact, image_digest) = runtime
        .block_on(copier.attach_artifact(&at, ARTIFACT_TYPE, &document, &annotations))
        .map_err(|e| failed(image, &e))?;
    let signed_by = match key {
        Some(key) => {
            let repository = format!("{}/{}", at.registry, at.repository);
            let payload = payload(&repository, &artifact);
            let signature = key
                .sign(&payload)
                .map_err(|e| Error::new(Code::SigningKey, e.to_string()))?;
            runtime
                .block_on(copier.attach_signature(&at, &artifact, &payload, &signature))
                .map_err(|e| failed(image, &e))?;
            Some(key.fingerprint())
        }
        None => None,
    };
    Ok(Published {
        artifact,
        image_digest,
        signed_by,
    })
}

/// A descriptor found in a registry, checked, ready to record.
pub struct Fetched {
    pub descriptor: Descriptor,
    /// Where it came from, in a sentence (for the user).
    pub source: String,
}

/// Looks up the published descriptors of `images` (those no descriptor is recorded for).
/// With `trusted` keys, a descriptor must carry a signature by one of them; otherwise its
/// signature is not checked (and the note says so). An image without one is left out: the
/// compiler then says it lacks a descriptor.
pub fn fetch(images: &[&str], trusted: &[TrustedKey]) -> Result<Vec<Fetched>, Error> {
    if images.is_empty() {
        return Ok(Vec::new());
    }
    let runtime = crate::runtime()?;
    let copier = Copier::new(crate::credentials()).map_err(|e| failed("", &e))?;
    let mut found = Vec::new();
    for image in images {
        let Some(at) = Reference::parse(image) else {
            continue;
        };
        let (image_digest, artifacts) = match runtime.block_on(copier.artifacts(&at, ARTIFACT_TYPE))
        {
            Ok(found) => found,
            // No such image, no registry: the compiler says what is missing, with its hint.
            Err(RegistryError::NotFound { .. } | RegistryError::Unreachable { .. }) => continue,
            Err(e) => return Err(failed(image, &e)),
        };
        // The last published wins.
        let Some(last) = artifacts.last() else {
            continue;
        };
        let (artifact, document) = (&last.digest, &last.blob);
        let repository = format!("{}/{}", at.registry, at.repository);
        let signed_by = if trusted.is_empty() {
            None
        } else {
            let signatures = runtime
                .block_on(copier.signatures(&at, artifact))
                .map_err(|e| failed(image, &e))?;
            let by = trusted.iter().find(|t| {
                signatures.iter().any(|(p, s)| {
                    payload_names(p) == Some((repository.clone(), artifact.clone()))
                        && t.key.verifies(p, s)
                })
            });
            match by {
                Some(t) => Some(t.name.clone()),
                None => {
                    let names: Vec<&str> = trusted.iter().map(|t| t.name.as_str()).collect();
                    let signer = match (
                        signatures.is_empty(),
                        last.annotations.get(SIGNER_ANNOTATION),
                    ) {
                        (true, _) => "it carries no signature".to_owned(),
                        (false, Some(key)) => {
                            format!("it is signed by key {key}, which is not trusted")
                        }
                        (false, None) => format!(
                            "its {} signature(s) are by no trusted key",
                            signatures.len()
                        ),
                    };
                    return Err(Error::new(
                        Code::DescriptorRefused,
                        format!("the descriptor published for {image} (artifact {artifact}) is refused: {signer} (trusted: {})", names.join(", ")),
                    )
                    .hint("trust the key its author signs with (`--descriptor-key cosign.pub`), or record the service yourself with `meshfile apply -f service.yaml`"));
                }
            }
        };
        let name = format!("{repository}@{artifact}");
        let entries = descriptor::from_json(&name, document).map_err(|_| {
            Error::new(Code::ImageCopyFailed, format!("the descriptor published for {image} (artifact {artifact}) is not a meshfile descriptor"))
        })?;
        let Some(entry) = entries.into_values().next() else {
            continue;
        };
        let mut descriptor = entry.descriptor(&name).map_err(|_| {
            Error::new(
                Code::ImageCopyFailed,
                format!(
                    "the descriptor published for {image} (artifact {artifact}) does not validate"
                ),
            )
        })?;
        descriptor.image = (*image).to_owned();
        descriptor.digest = Some(image_digest.clone());
        let how = match &signed_by {
            Some(key) => format!("signed by trusted key {key}"),
            None => "signature not checked: no --descriptor-key given".to_owned(),
        };
        found.push(Fetched {
            descriptor,
            source: format!("the descriptor of {image} comes from its registry (artifact {artifact}, {how}); recorded for the next runs"),
        });
    }
    Ok(found)
}
