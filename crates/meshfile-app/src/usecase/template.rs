//! `template`: record service descriptors, compile, sign in a signing mode (against the
//! previous run's files) and write `target/`; nothing is delivered or copied.

use super::{Event, Purpose, Settings, Signer, Ui};
use crate::Stop;
use crate::compile::Compilation;
use crate::sign::Form;

/// Runs `template`; the compilation, for the caller to let go of.
pub fn template(settings: &Settings, ui: &dyn Ui) -> Result<Compilation, Stop> {
    let mut compilation = super::prepare(settings, Purpose::Write, ui)?;
    let mut prepared = super::made_ahead(&mut compilation)?;
    let mut signer = Signer::new(&settings.signer);
    for mesh in &compilation.meshes {
        let signed = match Form::of(&mesh.compiled, settings.signer.configured()) {
            Some(form) => Some(super::sign_offline(
                settings,
                mesh,
                form,
                signer.get(ui)?,
                ui,
            )?),
            None => None,
        };
        super::write_mesh(settings, mesh, prepared.take(), signed.as_ref(), ui)?;
    }
    for mesh in &compilation.meshes {
        if let Some(images) = &mesh.compiled.images {
            ui.event(Event::ImagesPlanned(images));
        }
    }
    Ok(compilation)
}
