//! Stage 9, images: the mesh's images copied to its `repo.destination`, byte for byte, so the
//! chart (which names the destination) pulls them by the digests it pins.

use meshfile_manifest::Code;
use meshfile_plan::{ImageCopy, ImagePlan};
use meshfile_registry::copy::{Copied, Copier, Progress};
use meshfile_registry::{Reference, RegistryError};

use crate::Error;

/// One image at its destination.
pub struct Pushed {
    pub source: String,
    pub destination: String,
    pub copied: Copied,
    /// For a reference that pins a digest and names a tag: what the tag serves now, when that
    /// is another image (the tag moved; the pinned digest was copied all the same).
    pub tag_moved_to: Option<String>,
}

/// Refuses a plan in which two different images would take one name at the destination.
pub fn check(plan: &ImagePlan) -> Result<(), Error> {
    for (i, a) in plan.copies.iter().enumerate() {
        if let Some(b) = plan.copies[i + 1..]
            .iter()
            .find(|b| b.destination == a.destination)
        {
            return Err(Error::new(
                Code::ImageDestination,
                format!(
                    "`{}` and `{}` would both be copied to `{}`",
                    a.source, b.source, a.destination
                ),
            )
            .hint("the destination keeps each repository's last component and its tag: give one image another tag, or another repo"));
        }
    }
    Ok(())
}

fn reference(image: &str, copy: &ImageCopy) -> Result<Reference, Error> {
    Reference::parse_pinned(image).ok_or_else(|| {
        Error::new(
            Code::ImageCopyFailed,
            format!(
                "`{image}` is no image reference by tag that can be copied ({} -> {})",
                copy.source, copy.destination
            ),
        )
        .hint("name images as registry/repository:tag in the Meshfile")
    })
}

/// Copies every image of `plan`, one after another (each one's blobs several at a time);
/// stops at the first that fails, naming it. With `repo.push: false` nothing is written: each
/// image is made as it would be copied (rewritten, with `squash` or `strip`), for its digest.
/// A rewrite's layers pass through a scratch directory under `target`, removed after each
/// image.
pub fn push(
    plan: &ImagePlan,
    progress: &std::sync::Arc<dyn Progress>,
    target: &std::path::Path,
) -> Result<Vec<Pushed>, Error> {
    check(plan)?;
    if plan.squash || plan.strip {
        std::fs::create_dir_all(target).map_err(|e| {
            Error::new(
                Code::WriteFailed,
                format!(
                    "cannot make {} for the images' scratch files",
                    target.display()
                ),
            )
            .caused_by(e)
        })?;
        remove_stale_scratch(target);
    }
    let runtime = crate::runtime()?;
    let copier = Copier::new(crate::credentials()).map_err(|e| failed("", &e))?;
    let what = meshfile_registry::rewrite::Rewrite {
        squash: plan.squash,
        strip: plan.strip,
    };
    let mut pushed = Vec::with_capacity(plan.copies.len());
    for copy in &plan.copies {
        let source = reference(&copy.source, copy)?;
        let destination = reference(&copy.destination, copy)?;
        let to = plan.push.then_some(&destination);
        let copied = match (plan.squash || plan.strip, to) {
            (true, to) => {
                runtime.block_on(copier.copy_rewritten(&source, to, what, target, progress))
            }
            (false, Some(to)) => runtime.block_on(copier.copy(&source, to, progress)),
            (false, None) => runtime.block_on(copier.prepare(&source)),
        }
        .map_err(|e| failed(&copy.source, &e))?;
        let tag_moved_to = match &source.digest {
            Some(pinned) if copy.source.contains(&format!(":{}@", source.tag)) => {
                let by_tag = Reference {
                    digest: None,
                    ..source.clone()
                };
                runtime
                    .block_on(copier.prepare(&by_tag))
                    .ok()
                    .map(|now| now.source_digest)
                    .filter(|now| now != pinned)
            }
            _ => None,
        };
        pushed.push(Pushed {
            source: copy.source.clone(),
            destination: copy.destination.clone(),
            copied,
            tag_moved_to,
        });
    }
    Ok(pushed)
}

/// Removes what an interrupted rewrite left in `target`'s scratch directories (layers can be
/// gigabytes): a run that is not interrupted removes its own.
fn remove_stale_scratch(target: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(target) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(meshfile_registry::rewrite::SCRATCH_PREFIX));
        if stale && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn failed(image: &str, e: &RegistryError) -> Error {
    let message = if image.is_empty() {
        e.to_string()
    } else {
        format!("copying {image}: {e}")
    };
    Error::new(Code::ImageCopyFailed, message).hint(
        "blobs already copied stay; apply again once the registry answers (`docker login REGISTRY` for one that needs credentials)",
    )
}

/// Records the digests of what `pushed` rewrote with the source images' descriptors (in the
/// store under `target`), and pins the chart of `compiled` to every digest the destination
/// serves; whether the chart changed.
pub fn pin(
    compiled: &mut meshfile_plan::Compiled,
    pushed: &[Pushed],
    target: &std::path::Path,
) -> Result<bool, Error> {
    let Some(plan) = &compiled.images else {
        return Ok(false);
    };
    let (squash, strip) = (plan.squash, plan.strip);
    if squash || strip {
        let mut report = crate::Report::default();
        let mut store = crate::descriptors::Store::open(target, &mut report)?;
        if !report.problems.is_empty() {
            return Err(Error::new(
                Code::MissingDescriptor,
                format!(
                    "the descriptor store {} cannot be read to record the rewritten images' digests",
                    store.path().display()
                ),
            )
            .hint("run `meshfile template -f <Meshfile>` to see what is wrong with it"));
        }
        for p in pushed {
            store.record_rewritten(
                &p.source,
                meshfile_plan::rewrite_key(&p.copied.source_digest, squash, strip),
                p.copied.digest.clone(),
            );
        }
        store.save()?;
    }
    let mut changed = false;
    for p in pushed {
        let (repository, _, _) = meshfile_manifest::mesh::split_image(&p.destination);
        for service in &mut compiled.chart.services {
            if service.repository == repository
                && service.digest.as_deref() != Some(&p.copied.digest)
            {
                service.digest = Some(p.copied.digest.clone());
                changed = true;
            }
        }
    }
    Ok(changed)
}

/// What signing one copied image did.
pub struct Signed {
    pub image: String,
    /// Whether a signature was added (`false`: one by this key was there already).
    pub added: bool,
}

/// Signs each copied image with the cosign `key` (unless a signature by it is there), as
/// cosign does: a simple-signing payload naming the destination repository and digest, kept
/// under the signature tag beside the image.
pub fn sign(
    pushed: &[Pushed],
    key: &meshfile_sign::cosign::CosignKey,
) -> Result<Vec<Signed>, Error> {
    let runtime = crate::runtime()?;
    let copier = Copier::new(crate::credentials()).map_err(|e| failed("", &e))?;
    let mut done = Vec::with_capacity(pushed.len());
    for p in pushed {
        let (repository, _, _) = meshfile_manifest::mesh::split_image(&p.destination);
        let reference = Reference::parse(&p.destination).ok_or_else(|| {
            Error::new(
                Code::ImageCopyFailed,
                format!("`{}` is no image reference", p.destination),
            )
        })?;
        let digest = &p.copied.digest;
        let payload = meshfile_sign::cosign::payload(&repository, digest);
        let existing = runtime
            .block_on(copier.signatures(&reference, digest))
            .map_err(|e| failed(&p.destination, &e))?;
        let there = existing.iter().any(|(found, signature)| {
            meshfile_sign::cosign::payload_names(found)
                == Some((repository.clone(), digest.clone()))
                && key.signed(found, signature)
        });
        if !there {
            let signature = key
                .sign(&payload)
                .map_err(|e| Error::new(Code::SigningKey, e.to_string()))?;
            runtime
                .block_on(copier.attach_signature(&reference, digest, &payload, &signature))
                .map_err(|e| failed(&p.destination, &e))?;
        }
        done.push(Signed {
            image: format!("{repository}@{digest}"),
            added: !there,
        });
    }
    Ok(done)
}

/// What checking one image's signatures found.
pub struct Verified {
    pub image: String,
    /// `Ok` with how many signatures by the key name this image; `Err` why none does.
    pub outcome: Result<usize, Unsigned>,
}

/// Why no signature by the key names an image.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unsigned {
    #[error(
        "not pinned by a digest: apply first (it copies and pins), or let meshfile ask the registry (no -n)"
    )]
    NotPinned,
    #[error("no signature")]
    None,
    #[error("{0} signature(s), none by this key for this repository and digest")]
    OthersOnly(usize),
}

/// Checks that each chart image (`repository@digest`) carries a cosign signature by `key`
/// that names exactly that repository and digest.
pub fn verify(
    images: &[(String, Option<String>)],
    key: &meshfile_sign::cosign::CosignPublicKey,
) -> Result<Vec<Verified>, Error> {
    let runtime = crate::runtime()?;
    let copier = Copier::new(crate::credentials()).map_err(|e| failed("", &e))?;
    let mut out = Vec::with_capacity(images.len());
    for (repository, digest) in images {
        let Some(digest) = digest else {
            out.push(Verified {
                image: repository.clone(),
                outcome: Err(Unsigned::NotPinned),
            });
            continue;
        };
        let reference = Reference::parse(&format!("{repository}:latest")).ok_or_else(|| {
            Error::new(
                Code::ImageCopyFailed,
                format!("`{repository}` is no image repository"),
            )
        })?;
        let found = runtime
            .block_on(copier.signatures(&reference, digest))
            .map_err(|e| failed(repository, &e))?;
        let good = found
            .iter()
            .filter(|(payload, signature)| {
                meshfile_sign::cosign::payload_names(payload)
                    == Some((repository.clone(), digest.clone()))
                    && key.verifies(payload, signature)
            })
            .count();
        out.push(Verified {
            image: format!("{repository}@{digest}"),
            outcome: if good > 0 {
                Ok(good)
            } else if found.is_empty() {
                Err(Unsigned::None)
            } else {
                Err(Unsigned::OthersOnly(found.len()))
            },
        });
    }
    Ok(out)
}
