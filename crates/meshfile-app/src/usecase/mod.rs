//! The commands that compile, as use cases: [`template`], [`plan`] and [`apply`]. Each one
//! [`prepare`]s (compiles the inputs and says what it found), does its work in order and
//! returns a typed outcome for the binary to render; meanwhile a [`Ui`] is told what happens
//! and asked what only a person can answer (a key's password).
//!
//! A run writes `target/` once: in a mode that signs against what CAS holds, after CAS was
//! read; otherwise before anything is delivered.

pub mod apply;
pub mod graph;
mod images;
pub mod plan;
pub mod template;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use meshfile_plan::ImagePlan;
use meshfile_registry::copy::Progress;

use crate::access::CasAccess;
use crate::compile::{Compilation, Mesh, Overrides, Request};
use crate::connection::{CasConnection, Observer, SignedPlan};
use crate::sign::{Base, Form, KeyMade, SessionSigner, SignerChoice};
use crate::{Error, Signed, Stop, write};

/// How a run compiles, as the command line says: resolved once, then only read.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub inputs: Vec<PathBuf>,
    /// The files a Meshfile names may lie outside its directory.
    pub allow_outside: bool,
    pub target: PathBuf,
    pub mode: meshfile_plan::Mode,
    pub release: Option<String>,
    /// `--set NAME=VALUE`.
    pub sets: Vec<String>,
    pub overrides: Overrides,
    /// `-n`: no registry is asked, no image copied.
    pub no_pull: bool,
    /// Cosign public keys a descriptor published in a registry must be signed by.
    pub descriptor_keys: Vec<PathBuf>,
    pub signer: SignerChoice,
    /// `--mrenclave`: the measurements of the one service manifest given.
    pub mrenclaves: Vec<String>,
    /// The client identity whose key hash may read signed sessions (default: the user's).
    pub identity: Option<PathBuf>,
    /// `--helm-template DIR`: the service manifests' genservice template directory.
    pub helm_template: Option<PathBuf>,
}

/// What a run does with the compiled meshes, which decides what the pipeline needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Nothing is written and no registry asked (`plan`, `verify-images`).
    Read,
    /// `target/` and the descriptor store are written; registries are asked for digests.
    Write,
    /// `apply -p`: each service's variables; nothing written.
    Variables,
}

/// What the user is told while a use case runs, and asked.
pub trait Ui: Sync {
    fn event(&self, event: Event<'_>);
    /// Observes the requests to CAS `target`: reading (`writes` is `None`), or writing that
    /// many sessions.
    fn cas_observer(&self, target: &str, writes: Option<usize>) -> Box<dyn Observer + '_>;
    /// Shows the copying of `plan`'s images.
    fn image_progress(&self, plan: &ImagePlan) -> Arc<dyn Progress>;
    /// The password of the cosign key `what`.
    fn password(&self, what: &str) -> Result<Vec<u8>, Error>;
}

/// Something a use case did or found, in the order it happened.
pub enum Event<'a> {
    /// The inputs compiled: what was recorded, the warnings and notes.
    Compiled(&'a Compilation),
    /// A sentence about the connection or the client identity.
    Notice(&'a str),
    /// The user's session signing key was made on first use.
    KeyMade(&'a KeyMade),
    /// Commands SCONE's CLI ran.
    Ran(&'a [String]),
    /// A mesh's sessions were signed (and encrypted) into `dir`.
    Signed {
        sessions: usize,
        signer: &'a str,
        dir: &'a Path,
    },
    /// `target` held another Meshfile's output, `previous`; it now holds `mesh`'s.
    TargetTakenOver {
        target: &'a Path,
        previous: &'a Path,
        mesh: &'a str,
    },
    /// A mesh's files were written to `target`.
    Wrote {
        mesh: &'a Mesh,
        target: &'a Path,
        encrypted_only: bool,
    },
    /// What copying the images would do (`template`, `plan`).
    ImagesPlanned(&'a ImagePlan),
    /// `-n`: the images were not copied.
    ImagesNotCopied(&'a ImagePlan),
    /// The images were copied (with `repo.push: false`, only made) and signed.
    ImagesCopied {
        plan: &'a ImagePlan,
        pushed: &'a [crate::images::Pushed],
        signed: &'a [crate::images::Signed],
    },
}

/// The first step of every use case: the inputs compiled, what was found told; in a signing
/// mode each session `read` by its creator alone made readable by the uploading identity.
pub fn prepare(settings: &Settings, purpose: Purpose, ui: &dyn Ui) -> Result<Compilation, Stop> {
    let mut compilation = crate::compile::run(&request(settings, purpose))?;
    let mut reader: Option<String> = None;
    for mesh in &mut compilation.meshes {
        if Form::of(&mesh.compiled, settings.signer.configured()).is_none() {
            continue;
        }
        let reader = match &reader {
            Some(hash) => hash,
            None => {
                let identity = settings.identity.as_deref();
                let (hash, notices) = crate::identity::client_key_hash(identity)?;
                for n in &notices {
                    ui.event(Event::Notice(n));
                }
                reader.insert(hash)
            }
        };
        crate::sign::readable_by(&mut mesh.compiled, reader);
    }
    ui.event(Event::Compiled(&compilation));
    Ok(compilation)
}

/// The compile request a use case makes of its settings.
fn request(settings: &Settings, purpose: Purpose) -> Request {
    let writes = purpose == Purpose::Write;
    Request {
        inputs: settings.inputs.clone(),
        target: settings.target.clone(),
        options: meshfile_plan::Options {
            mode: settings.mode,
            release: settings.release.clone(),
            report_variables: purpose == Purpose::Variables,
            ..Default::default()
        },
        sets: settings.sets.clone(),
        mrenclaves: settings.mrenclaves.clone(),
        pull: writes && !settings.no_pull,
        writes,
        allow_outside: settings.allow_outside,
        overrides: settings.overrides.clone(),
        descriptor_keys: settings.descriptor_keys.clone(),
        helm_template: settings.helm_template.clone(),
        overlay: Default::default(),
        graph: false,
    }
}

/// The run's session signer, loaded when a mode first signs.
struct Signer<'s> {
    choice: &'s SignerChoice,
    loaded: Option<SessionSigner>,
}

impl<'s> Signer<'s> {
    fn new(choice: &'s SignerChoice) -> Signer<'s> {
        Signer {
            choice,
            loaded: None,
        }
    }

    /// The signer that makes signatures (the user's key made if there is none).
    fn get(&mut self, ui: &dyn Ui) -> Result<&SessionSigner, Error> {
        let signer = match self.loaded.take() {
            Some(signer) => signer,
            None => {
                let (signer, made) = SessionSigner::load(self.choice)?;
                if let Some(made) = &made {
                    ui.event(Event::KeyMade(made));
                }
                signer
            }
        };
        Ok(self.loaded.insert(signer))
    }

    /// The signer that reads what is signed, making nothing.
    fn for_reading(&mut self) -> Result<&SessionSigner, Error> {
        let signer = match self.loaded.take() {
            Some(signer) => signer,
            None => SessionSigner::load_for_reading(self.choice)?,
        };
        Ok(self.loaded.insert(signer))
    }
}

/// A mesh's sessions signed against the previous run's files: no CAS asked.
fn sign_offline(
    settings: &Settings,
    mesh: &Mesh,
    form: Form,
    signer: &SessionSigner,
    ui: &dyn Ui,
) -> Result<Signed, Error> {
    let artifacts = crate::sign::sign(
        &mesh.compiled,
        form,
        &signer.backend(),
        &settings.target,
        &Base::PreviousRun,
    )?;
    signed(settings, signer, artifacts.len(), ui);
    Ok(Signed { form, artifacts })
}

/// Tells what signing did.
fn signed(settings: &Settings, signer: &SessionSigner, sessions: usize, ui: &dyn Ui) {
    ui.event(Event::Ran(&signer.commands_ran()));
    ui.event(Event::Signed {
        sessions,
        signer: &signer.describe(),
        dir: &settings.target.join(crate::sign::SESSION_FILES),
    });
}

/// Writes one mesh's `target/` (the one write of a run), recording which Meshfile it holds.
fn write_mesh(
    settings: &Settings,
    mesh: &Mesh,
    prepared: Option<write::Prepared>,
    signed: Option<&Signed>,
    ui: &dyn Ui,
) -> Result<(), Error> {
    if let Some(previous) = crate::owner::claim(&settings.target, &mesh.file)? {
        ui.event(Event::TargetTakenOver {
            target: &settings.target,
            previous: &previous,
            mesh: &mesh.file,
        });
    }
    crate::write_target(mesh, &settings.target, prepared, signed)?;
    ui.event(Event::Wrote {
        mesh,
        target: &settings.target,
        encrypted_only: signed.is_some_and(|s| s.form == Form::EncryptedOnly),
    });
    Ok(())
}

/// The policy files made ahead while the one mesh compiled, if any.
fn made_ahead(compilation: &mut Compilation) -> Result<Option<write::Prepared>, Error> {
    Ok(compilation
        .prepared
        .take()
        .map(|p| p.finish())
        .transpose()?
        .flatten())
}

/// Connects to the CAS of `mesh`; the embedded store is made when `writes`.
fn connect(
    access: &CasAccess,
    mesh: &Mesh,
    target: &Path,
    writes: bool,
    ui: &dyn Ui,
) -> Result<CasConnection, Error> {
    let (cas, notices) = CasConnection::connect(access, &mesh.compiled, target, writes)?;
    for n in &notices {
        ui.event(Event::Notice(n));
    }
    Ok(cas)
}

/// A delivery in a signing mode: the sessions signed for what CAS holds; the signer's key,
/// if any, counts as this user's when a namespace's creator is checked.
fn plan_signed(
    cas: &mut CasConnection,
    mesh: &Mesh,
    form: Form,
    signer: &SessionSigner,
    target: &Path,
    ui: &dyn Ui,
) -> Result<SignedPlan, Error> {
    if let Some(key) = signer.public_key() {
        cas.signing_as(&key);
    }
    let observer = ui.cas_observer(&cas.describe(), None);
    let plan = cas.plan_signed(&mesh.compiled, form, &signer.backend(), target, &*observer)?;
    ui.event(Event::Ran(&signer.commands_ran()));
    Ok(plan)
}
