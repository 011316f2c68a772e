//! Stage 4, image digests: the digest each image's registry serves for its tag, so charts pin
//! images and descriptors record them for later offline compiles.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use meshfile_registry::{Reference, RegistryError, Resolver};

/// Registry lookups in flight at once.
const IN_FLIGHT: usize = 16;

/// What the lookups found, and what went wrong (warnings: nothing fails for a digest).
#[derive(Default)]
pub struct Digests {
    pub found: BTreeMap<String, String>,
    pub warnings: Vec<String>,
}

/// Asks each image's registry for its digest, [`IN_FLIGHT`] at a time. A registry that
/// cannot be reached is asked once (its first image), its other images are passed over.
pub fn resolve<'a>(images: impl IntoIterator<Item = &'a str>) -> Digests {
    let mut by_registry: BTreeMap<String, BTreeMap<String, Reference>> = BTreeMap::new();
    for image in images {
        if let Some(reference) = Reference::parse(image) {
            by_registry
                .entry(reference.registry.clone())
                .or_default()
                .insert(image.to_owned(), reference);
        }
    }
    let mut digests = Digests::default();
    if by_registry.is_empty() {
        return digests;
    }
    let resolver = match Resolver::new(crate::credentials()) {
        Ok(resolver) => resolver,
        Err(e) => {
            digests.warnings.push(format!(
                "no registry lookups ({e}); images keep recorded digests or tags"
            ));
            return digests;
        }
    };
    let runtime = match crate::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            digests.warnings.push(e.to_string());
            return digests;
        }
    };
    runtime.block_on(async {
        for (registry, images) in by_registry {
            let images: Vec<(String, Reference)> = images.into_iter().collect();
            lookup_registry(&resolver, &registry, &images, &mut digests).await;
        }
    });
    digests
}

async fn lookup_registry(
    resolver: &Resolver,
    registry: &str,
    images: &[(String, Reference)],
    digests: &mut Digests,
) {
    // The first answer tells whether the registry is there at all; then the rest at once.
    let Some(((first, reference), rest)) = images.split_first() else {
        return;
    };
    let first_answer = resolver.digest(reference).await;
    if let Err(RegistryError::Unreachable { detail, .. }) = &first_answer {
        let what = if images.len() == 1 {
            "its image keeps the digest recorded with its service, if any, else its tag".to_owned()
        } else {
            format!(
                "its {} images keep the digest recorded with their service, if any, else their tag",
                images.len()
            )
        };
        digests.warnings.push(format!(
            "cannot reach registry {registry} ({detail}): {what} (`-n` skips this lookup)"
        ));
        return;
    }
    let others: Vec<Result<String, RegistryError>> = futures_util::stream::iter(rest)
        .map(|(_, reference)| resolver.digest(reference))
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let answers =
        std::iter::once((first, first_answer)).chain(rest.iter().map(|(i, _)| i).zip(others));
    for (image, answer) in answers {
        match answer {
            Ok(digest) => {
                digests.found.insert(image.clone(), digest);
            }
            Err(e) => digests
                .warnings
                .push(format!("{e}; no digest from the registry for it")),
        }
    }
}
