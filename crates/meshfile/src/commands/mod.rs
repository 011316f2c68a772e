//! One file per command; what several share (compiling, printing) is here.

pub mod apply;
pub mod cas;
pub mod delivery;
pub mod explain;
pub mod images;
pub mod key;
pub mod plan;
pub mod schema;
pub mod sconectl;
pub mod sign;
pub mod template;
pub mod validate;

use std::io::Write;

use meshfile_app::compile::{Compilation, Request};
use meshfile_app::{Error, Stop};
use meshfile_manifest::Code;

use crate::cli::{CompileArgs, Mode};
use crate::render;

/// What a command needs of the compile pipeline.
pub struct Purpose<'a> {
    /// The output is written (`template`, `apply`): registries are asked for digests.
    pub writes: bool,
    /// `apply -p`: each service's variables.
    pub report_variables: bool,
    pub mrenclaves: &'a [String],
    /// The client identity (`--identity`; default the user's): the reader of signed sessions.
    pub identity: Option<&'a std::path::Path>,
    /// `--helm-template DIR` (apply): the service manifests' genservice template directory.
    pub helm_template: Option<&'a std::path::Path>,
}

/// Runs the compile pipeline; prints its notes, warnings and what it recorded.
pub fn compile(args: &CompileArgs, purpose: Purpose<'_>) -> Result<Compilation, Stop> {
    let request = Request {
        inputs: args.inputs.files()?,
        target: args.target.clone(),
        options: meshfile_plan::Options {
            mode: match args.mode {
                Mode::Production => meshfile_plan::Mode::Production,
                Mode::Debug => meshfile_plan::Mode::Debug,
            },
            release: args.release.clone(),
            report_variables: purpose.report_variables,
            digests: Default::default(),
            rewritten: Default::default(),
        },
        sets: args.set.clone(),
        mrenclaves: purpose.mrenclaves.to_vec(),
        pull: purpose.writes && !args.no_pull,
        writes: purpose.writes,
        allow_outside: args.inputs.allow_outside,
        overrides: meshfile_app::compile::Overrides {
            namespace: args.policy_namespace.clone(),
            maa: args.maa.clone(),
        },
        descriptor_keys: args.descriptor_keys.clone(),
        helm_template: purpose.helm_template.map(std::path::Path::to_path_buf),
    };
    let mut compilation = meshfile_app::compile::compile(&request)?;
    let mut reader: Option<String> = None;
    for mesh in &mut compilation.meshes {
        if signing_form(args, &mesh.compiled).is_none() {
            continue;
        }
        let reader = match &reader {
            Some(hash) => hash,
            None => {
                let (hash, notices) = meshfile_app::identity::client_key_hash(purpose.identity)?;
                for n in notices {
                    render::eprint(&format!("{n}\n"));
                }
                reader.insert(hash)
            }
        };
        meshfile_app::sign::readable_by(&mut mesh.compiled, reader);
    }
    for warning in &compilation.warnings {
        render::eprint(&format!("warning: {warning}\n"));
    }
    for note in &compilation.notes {
        render::eprint(&format!("note: {note}\n"));
    }
    building_note(&mut compilation.report);
    render::eprint(&render::report(&compilation.report));
    if !args.quiet {
        for r in &compilation.recorded {
            let plural = if r.mrenclaves == 1 { "" } else { "s" };
            if r.mrenclaves == 0 {
                render::eprint(&format!(
                    "recorded {} (image {}) without an MRENCLAVE: give it with `--mrenclave HEX`, in a measurements.yaml beside it, or publish a descriptor (`meshfile publish`) before the mesh step\n",
                    r.file, r.image
                ));
                continue;
            }
            render::eprint(&format!(
                "recorded {} (image {}, {} MRENCLAVE{plural})\n",
                r.file, r.image, r.mrenclaves
            ));
        }
    }
    Ok(compilation)
}

/// What `template` does and `apply` does first: compile, asking registries for digests, and
/// write `target/`.
pub fn compile_and_write(
    args: &CompileArgs,
    purpose: Purpose<'_>,
    before_writing: impl FnOnce(&mut Compilation) -> Result<(), Error>,
) -> Result<Compilation, Stop> {
    let purpose = Purpose {
        writes: true,
        ..purpose
    };
    let mut compilation = compile(args, purpose)?;
    let prepared = compilation
        .prepared
        .take()
        .map(|p| p.finish())
        .transpose()?;
    before_writing(&mut compilation)?;
    write_target(args, &compilation, prepared.flatten())?;
    Ok(compilation)
}

/// Writes a compiled run's `target/` and says what was written.
fn write_target(
    args: &CompileArgs,
    compilation: &Compilation,
    mut prepared: Option<meshfile_app::write::Prepared>,
) -> Result<(), Error> {
    let mut signing = None;
    for mesh in &compilation.meshes {
        let signed = match signing_form(args, &mesh.compiled) {
            None => None,
            Some(form) => {
                let signing = match &signing {
                    Some(loaded) => loaded,
                    None => signing.insert(Signing::load(args)?),
                };
                let base = meshfile_app::sign::Base::PreviousRun;
                let artifacts = meshfile_app::sign::sign(
                    &mesh.compiled,
                    form,
                    &signing.backend(),
                    &args.target,
                    &base,
                )?;
                if !args.quiet {
                    signing.show_commands();
                    render::eprint(&format!(
                        "signed {} session{} with {} into {}\n",
                        artifacts.len(),
                        if artifacts.len() == 1 { "" } else { "s" },
                        signing.describe(),
                        args.target
                            .join(meshfile_app::sign::SESSION_FILES)
                            .display()
                    ));
                }
                Some(meshfile_app::Signed { form, artifacts })
            }
        };
        if let Some(other) = meshfile_app::owner::claim(&args.target, &mesh.file)? {
            render::eprint(&format!(
                "warning: {} held the output of {}; it now holds {}'s (a target directory is relative to where meshfile runs: give each mesh its own with --target DIR)\n",
                args.target.display(),
                other.display(),
                mesh.file
            ));
        }
        meshfile_app::write_target(mesh, &args.target, prepared.take(), signed.as_ref())?;
        if !args.quiet {
            let sessions = mesh.compiled.sessions.len();
            let services = mesh.compiled.chart.services.len();
            let encrypted_only =
                signed.is_some_and(|s| s.form == meshfile_app::sign::Form::EncryptedOnly);
            let (what, dir) = if encrypted_only {
                ("encrypted session", meshfile_app::sign::SESSION_FILES)
            } else {
                ("session polic", "policies")
            };
            render::eprint(&format!(
                "wrote {sessions} {what}{} to {} and the Helm chart `{}` ({services} service{}) to {}\n",
                match (encrypted_only, sessions == 1) {
                    (true, true) => "",
                    (true, false) => "s",
                    (false, true) => "y",
                    (false, false) => "ies",
                },
                args.target.join(dir).display(),
                mesh.compiled.chart.name,
                if services == 1 { "" } else { "s" },
                args.target.join("helm").display()
            ));
            if mesh.compiled.cas_url.as_str() == meshfile_plan::EMBEDDED_CAS {
                render::eprint(&format!(
                    "note: the embedded store is no CAS a pod can reach: install the chart with `--set global.casAddr=HOST` (helm template {} --set global.casAddr=cas.scone-system)\n",
                    args.target.join("helm").display()
                ));
            }
        }
    }
    Ok(())
}

/// How a compiled mesh's sessions are signed, if they are (`--scone-cli` or `--signing-key`
/// given count as signing configured).
pub fn signing_form(
    args: &CompileArgs,
    compiled: &meshfile_plan::Compiled,
) -> Option<meshfile_app::sign::Form> {
    let configured = args.signing_key.is_some() || args.scone_cli.is_some();
    meshfile_app::sign::Form::of(compiled, configured)
}

/// Image-building fields (W009) are a fact of every service manifest SCONE's tools build
/// from, not a problem to fix: a run that compiles says so once, for all the manifests, and
/// `validate` and `lint` list them where they are.
fn building_note(report: &mut meshfile_app::Report) {
    let (building, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut report.problems)
        .into_iter()
        .partition(|p| p.diagnostic.code == Code::ImageBuilding);
    report.problems = rest;
    if building.is_empty() {
        return;
    }
    let mut files: Vec<&str> = building.iter().map(|p| p.file.as_str()).collect();
    files.dedup();
    render::eprint(&format!(
        "note: {} say{} how to build {} image{}, which meshfile leaves to SCONE's tools: each image is used as built, measured by its MRENCLAVE (`meshfile lint` lists the fields)\n",
        files.join(", "),
        if files.len() == 1 { "s" } else { "" },
        if files.len() == 1 { "its" } else { "their" },
        render::plural(files.len()),
    ));
}

/// How a compiled mesh's sessions are delivered (`meshfile_app::route`), as the command line
/// configures signing and asks for `--upload`.
pub fn route(
    args: &CompileArgs,
    cas: &crate::cli::CasArgs,
    mesh: &meshfile_app::compile::Mesh,
) -> meshfile_app::route::Route {
    let configured = args.signing_key.is_some() || args.scone_cli.is_some();
    meshfile_app::route::route(&mesh.compiled, configured, cas.upload)
}

/// Who signs, as the command line says: SCONE's CLI (`--scone-cli`), or meshfile's own
/// scheme with the user's key (`--signing-key`, default the user's).
pub enum Signing {
    Own(meshfile_sign::SigningKey, std::path::PathBuf),
    /// meshfile's scheme without a key of one's own (`plan`): signatures already made count.
    Keyless,
    Scone(meshfile_app::sign::SconeCli),
}

impl Signing {
    pub fn load(args: &CompileArgs) -> Result<Signing, Error> {
        if let Some(program) = &args.scone_cli {
            return Ok(Signing::Scone(meshfile_app::sign::SconeCli::new(
                program.clone(),
            )));
        }
        if args.signing_key.is_some() {
            let (key, path) = meshfile_app::sign::load_key(args.signing_key.as_deref())?;
            return Ok(Signing::Own(key, path));
        }
        let (key, path, made) = meshfile_app::sign::load_or_make_default_key()?;
        if made {
            render::eprint(&format!(
                "made your session signing key {} ({}, {}); `meshfile key show` prints it\n",
                path.display(),
                key.public_key().algorithm(),
                key.public_key().short_name()
            ));
        }
        Ok(Signing::Own(key, path))
    }

    /// The key named on the command line or the user's, never made here: a missing default
    /// key is no error (nothing is signed anew).
    fn load_existing(args: &CompileArgs) -> Result<Signing, Error> {
        let (key, path) = meshfile_app::sign::load_key(args.signing_key.as_deref())?;
        Ok(Signing::Own(key, path))
    }

    /// As [`Signing::load`], but a missing default key is no error: nothing is signed anew.
    pub fn load_for_reading(args: &CompileArgs) -> Result<Signing, Error> {
        if let Some(program) = &args.scone_cli {
            return Ok(Signing::Scone(meshfile_app::sign::SconeCli::new(
                program.clone(),
            )));
        }
        match Signing::load_existing(args) {
            Err(_) if args.signing_key.is_none() => Ok(Signing::Keyless),
            other => other,
        }
    }

    pub fn backend(&self) -> meshfile_app::sign::Backend<'_> {
        use meshfile_app::sign::Backend;
        match self {
            Signing::Own(key, _) => Backend::Own(Some(key)),
            Signing::Keyless => Backend::Own(None),
            Signing::Scone(cli) => Backend::Scone(cli),
        }
    }

    /// The public key sessions are signed with, when meshfile signs.
    pub fn public_key(&self) -> Option<meshfile_session::signer::PublicKey> {
        match self {
            Signing::Own(key, _) => Some(key.public_key()),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Signing::Own(key, path) => format!(
                "{} ({} {})",
                path.display(),
                key.public_key().algorithm(),
                key.public_key().short_name()
            ),
            Signing::Keyless => "no key of this user's".to_owned(),
            Signing::Scone(cli) => format!(
                "SCONE's CLI {} (untested against SCONE CAS by meshfile)",
                cli.program.display()
            ),
        }
    }

    /// Shows the commands SCONE's CLI ran since last shown.
    pub fn show_commands(&self) {
        if let Signing::Scone(cli) = self
            && let Ok(mut ran) = cli.ran.lock()
        {
            for command in ran.drain(..) {
                render::eprint(&format!("ran: {command}\n"));
            }
        }
    }
}

/// Lets the process end without freeing a compiled mesh piece by piece: its millions of
/// small allocations take ~25 ms to free at 10,000 services, and the process is about to
/// exit, which returns the memory at once.
pub fn discard(compilation: Compilation) {
    std::mem::forget(compilation);
}

/// Writes `text` to standard output.
pub fn print(text: &str) -> Result<(), Error> {
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Error::new(Code::WriteFailed, "cannot write to standard output").caused_by(e))
}
