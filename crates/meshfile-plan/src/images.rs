//! Image planning: where each image of a mesh goes at `repo.destination`.

use super::*;

/// Each service's image as `repo` copies it: to `<destination>/<last component>:<tag>`, by
/// the digest it has; the chart then pulls it from there. One copy per distinct image.
pub(super) fn copy_to_destination(
    repo: &meshfile_manifest::mesh::Repo,
    rewritten: &BTreeMap<String, String>,
    services: &mut [ChartService],
) -> ImagePlan {
    let squash = repo.squash.as_ref().is_some_and(|s| s.value);
    let strip = repo.strip.as_ref().is_none_or(|s| s.value);
    let destination = repo.destination.as_str().trim_end_matches('/');
    let mut copies: Vec<ImageCopy> = Vec::new();
    for service in services.iter_mut() {
        let tag = service.tag.clone().unwrap_or_else(|| "latest".into());
        // A digest the Meshfile pins is the image, whatever its tag serves now.
        let source = match (&service.tag, &service.pinned) {
            (Some(tag), Some(pinned)) => format!("{}:{tag}@{pinned}", service.repository),
            (None, Some(pinned)) => format!("{}@{pinned}", service.repository),
            (Some(tag), None) => format!("{}:{tag}", service.repository),
            (None, None) => format!(
                "{}@{}",
                service.repository,
                service.digest.clone().unwrap_or_default()
            ),
        };
        let last = service
            .repository
            .rsplit('/')
            .next()
            .unwrap_or(&service.repository);
        let repository = format!("{destination}/{last}");
        // A rewritten image has a digest of its own, known once it was made.
        let digest = match (squash || strip, &service.digest) {
            (false, digest) => digest.clone(),
            (true, Some(d)) => rewritten.get(&rewrite_key(d, squash, strip)).cloned(),
            (true, None) => None,
        };
        let copy = ImageCopy {
            source,
            destination: format!("{repository}:{tag}"),
            digest: digest.clone(),
        };
        if !copies.iter().any(|c| c.source == copy.source) {
            copies.push(copy);
        }
        service.repository = repository;
        service.tag = Some(tag);
        service.digest = digest;
    }
    ImagePlan {
        copies,
        push: repo.push.as_ref().is_none_or(|p| p.value),
        squash,
        strip,
        key_file: repo.key_file.as_ref().map(|k| k.as_str().to_owned()),
        config_id: repo.config_id.as_ref().map(|c| c.as_str().to_owned()),
    }
}
