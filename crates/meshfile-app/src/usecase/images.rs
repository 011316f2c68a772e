//! The images step of `apply`: the Meshfile's `repo` section carried out.

use meshfile_manifest::Code;

use super::{Event, Settings, Ui};
use crate::Error;
use crate::compile::Mesh;
use crate::paths::MeshDir;

/// Copies the mesh's images (not with `-n`; with `repo.push: false` only makes them, writing
/// nothing), pins the chart to the digests they have at the destination, and signs the
/// copies when `repo.key_file` names a cosign key.
pub(super) fn copy(mesh: &mut Mesh, settings: &Settings, ui: &dyn Ui) -> Result<(), Error> {
    let Some(plan) = &mesh.compiled.images else {
        return Ok(());
    };
    crate::images::check(plan)?;
    if let Some(config_id) = &plan.config_id {
        return Err(Error::new(
            Code::ImageCopyFailed,
            format!("repo.config_id `{config_id}` asks for confidential signing: SCONE's cosign running in an enclave, unlocked by a one-time password; meshfile cannot run it, and copies nothing rather than copy unsigned"),
        )
        .hint("sign with your own cosign key (`repo.key_file`, password in COSIGN_PASSWORD), or sign with SCONE's tools after copying"));
    }
    if settings.no_pull {
        ui.event(Event::ImagesNotCopied(plan));
        return Ok(());
    }
    let key = match &plan.key_file {
        Some(file) if plan.push => Some(cosign_key(&mesh.dir, file, ui)?),
        _ => None,
    };
    let progress = ui.image_progress(plan);
    let pushed = crate::images::push(plan, &progress, &settings.target);
    progress.finished();
    let pushed = pushed?;
    let plan = plan.clone();
    crate::images::pin(&mut mesh.compiled, &pushed, &settings.target)?;
    let signed = match &key {
        Some(key) => crate::images::sign(&pushed, key)?,
        None => Vec::new(),
    };
    ui.event(Event::ImagesCopied {
        plan: &plan,
        pushed: &pushed,
        signed: &signed,
    });
    Ok(())
}

/// The cosign key `repo.key_file` names (a file in the Meshfile's directory), opened with its
/// password.
fn cosign_key(
    dir: &MeshDir,
    file: &str,
    ui: &dyn Ui,
) -> Result<meshfile_sign::cosign::CosignKey, Error> {
    let text = dir.read_text(file).map_err(|why| {
        Error::new(Code::OverrideFile, format!("repo.key_file `{file}`: {why}"))
            .hint("name the cosign key file (cosign.key) relative to the Meshfile")
    })?;
    let password = ui.password(file)?;
    meshfile_sign::cosign::CosignKey::from_pem(&text, &password)
        .map_err(|e| Error::from_sign(e, &format!("repo.key_file `{file}`")))
}
