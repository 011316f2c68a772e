//! Stage 9, images: the mesh's images copied to its `repo.destination`, byte for byte, so the
//! chart (which names the destination) pulls them by the digests it pins.

use meshfile_manifest::Code;
use meshfile_plan::{ImageCopy, ImagePlan};
use meshfile_registry::copy::{Copied, Copier, Progress};
use meshfile_registry::{Credentials, Reference, RegistryError};

use crate::Error;

/// One image at its destination.
pub struct Pushed {
    pub source: String,
    pub destination: String,
    pub copied: Copied,
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
    Reference::parse(image).ok_or_else(|| {
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
/// stops at the first that fails, naming it.
pub fn push(plan: &ImagePlan, progress: &dyn Progress) -> Result<Vec<Pushed>, Error> {
    check(plan)?;
    let runtime = crate::runtime()?;
    let copier = Copier::new(Credentials::from_docker_config()).map_err(|e| failed("", &e))?;
    let mut pushed = Vec::with_capacity(plan.copies.len());
    for copy in &plan.copies {
        let source = reference(&copy.source, copy)?;
        let destination = reference(&copy.destination, copy)?;
        let copied = runtime
            .block_on(copier.copy(&source, &destination, progress))
            .map_err(|e| failed(&copy.source, &e))?;
        pushed.push(Pushed {
            source: copy.source.clone(),
            destination: copy.destination.clone(),
            copied,
        });
    }
    Ok(pushed)
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
