//! The meshfile application: the pipeline from Meshfile to written files and delivered
//! sessions, as named stages a reader follows in order.
//!
//! 1. [`inputs::read_inputs`]: the `-f` files and directories, bounded in size.
//! 2. [`load::load_manifests`]: parsed and validated on all cores, `$VAR` resolved.
//! 3. [`descriptors::Store`]: service manifests recorded with their MRENCLAVEs, looked up by image.
//! 4. [`digests::resolve`]: the digest each image's registry serves (not with `-n`).
//! 5. [`compile::run`] runs 1-4 and then `meshfile_plan::compile` (pure) per mesh.
//! 6. [`render::policies`] and [`render::chart`]: sessions and chart as files; in the signing
//!    modes [`sign::sign`] signs (and encrypts) them and adds their operator resources.
//! 7. [`write::stage`] and [`write::commit`]: `target/` replaced atomically.
//! 8. [`connection::CasConnection`]: read what CAS holds, plan, write what changed.
//! 9. [`images::push`]: the images copied to the Meshfile's `repo.destination`.
//!
//! [`usecase`] composes the stages into the commands that compile (`template`, `plan`,
//! `apply`): the binary resolves its flags into [`usecase::Settings`] once, calls one use
//! case and renders the typed outcome it returns.

pub mod access;
pub mod compile;
pub mod connection;
pub mod descriptors;
pub mod digests;
mod error;
pub mod identity;
pub mod images;
pub mod inputs;
pub mod load;
pub mod owner;
pub mod paths;
pub mod probe;
pub mod published;
pub mod render;
pub mod route;
pub mod sign;
pub mod usecase;
pub mod validation;
pub mod write;

pub use error::{Error, Exit, Report, Stop};

use meshfile_manifest::Code;

/// The async runtime network stages run on: one thread, many requests in flight.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(Code::CasFailed, "cannot start the async runtime").caused_by(e))
}

/// The Docker credentials of this run, read once and shared by every registry client, so that
/// a credential helper is asked once per registry.
pub fn credentials() -> std::sync::Arc<meshfile_registry::Credentials> {
    static SHARED: std::sync::OnceLock<std::sync::Arc<meshfile_registry::Credentials>> =
        std::sync::OnceLock::new();
    SHARED
        .get_or_init(|| std::sync::Arc::new(meshfile_registry::Credentials::from_docker_config()))
        .clone()
}

/// A mesh's sessions as its signing mode delivers them.
pub struct Signed {
    pub form: sign::Form,
    pub artifacts: Vec<sign::Artifact>,
}

/// Renders and writes a compiled mesh's `target/policies` (into the files `prepared` made
/// ahead, if any) and `target/helm`; in a signing mode also `target/session_files` and the
/// chart's policy resources. `EncryptedOnly` leaves `target/policies` empty: no plaintext
/// session stays under the target directory.
pub fn write_target(
    mesh: &compile::Mesh,
    target: &std::path::Path,
    prepared: Option<write::Prepared>,
    signed: Option<&Signed>,
) -> Result<(), Error> {
    let plain_policies = signed.is_none_or(|s| s.form != sign::Form::EncryptedOnly);
    // The sessions' texts first: the chart's pods carry their rollout hashes.
    let mut policies = render::policies(&mesh.compiled, target);
    let texts: Vec<&[u8]> = policies.files.iter().map(|(_, t)| t.as_slice()).collect();
    let hashes = meshfile_plan::rollout::hashes(&mesh.compiled.sessions, &texts);
    if !plain_policies {
        policies.files.clear();
    }
    // The policies are written while the chart is made; all become durable together.
    let (policies, chart) = rayon::join(
        || write::stage_durable(policies, prepared.filter(|_| plain_policies)),
        || {
            let mut tree = render::chart(&mesh.compiled, &mesh.dir, target, &hashes)?;
            if let Some(signed) = signed.filter(|s| s.form.has_resources()) {
                tree.files.extend(sign::chart_files(
                    &signed.artifacts,
                    signed.form,
                    &mesh.compiled.cas_url,
                )?);
            }
            write::stage(tree, None)
        },
    );
    let mut staged: Vec<write::Staged> = [policies?, chart?].into_iter().flatten().collect();
    if let Some(signed) = signed {
        staged.extend(write::stage(
            sign::files(
                &signed.artifacts,
                signed.form,
                target,
                &mesh.compiled.cas_url,
            ),
            None,
        )?);
    }
    write::commit(staged)
}
