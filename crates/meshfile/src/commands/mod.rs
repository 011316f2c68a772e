//! One file per command; what several share (compiling, printing) is here.

pub mod apply;
pub mod cas;
pub mod delivery;
pub mod explain;
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
    };
    let mut compilation = meshfile_app::compile::compile(&request)?;
    let mut reader: Option<String> = None;
    for mesh in &mut compilation.meshes {
        if meshfile_app::sign::Form::of(&mesh.compiled, args.signing_key.is_some()).is_none() {
            continue;
        }
        let reader = match &reader {
            Some(hash) => hash,
            None => {
                let (hash, notices) = meshfile_app::deliver::client_key_hash(purpose.identity)?;
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
    render::eprint(&render::report(&compilation.report));
    if !args.quiet {
        for r in &compilation.recorded {
            let plural = if r.mrenclaves == 1 { "" } else { "s" };
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
    mrenclaves: &[String],
    identity: Option<&std::path::Path>,
) -> Result<Compilation, Stop> {
    let purpose = Purpose {
        writes: true,
        report_variables: false,
        mrenclaves,
        identity,
    };
    let mut compilation = compile(args, purpose)?;
    let prepared = compilation
        .prepared
        .take()
        .map(|p| p.finish())
        .transpose()?;
    write_target(args, &compilation, prepared.flatten())?;
    Ok(compilation)
}

/// Writes a compiled run's `target/` and says what was written.
fn write_target(
    args: &CompileArgs,
    compilation: &Compilation,
    mut prepared: Option<meshfile_app::write::Prepared>,
) -> Result<(), Error> {
    let mut key = None;
    for mesh in &compilation.meshes {
        let signed = match meshfile_app::sign::Form::of(&mesh.compiled, args.signing_key.is_some())
        {
            None => None,
            Some(form) => {
                let (key, path) = match &key {
                    Some(loaded) => loaded,
                    None => key.insert(meshfile_app::sign::load_key(args.signing_key.as_deref())?),
                };
                let base = meshfile_app::sign::Base::PreviousRun;
                let artifacts =
                    meshfile_app::sign::sign(&mesh.compiled, form, Some(key), &args.target, &base)?;
                if !args.quiet {
                    render::eprint(&format!(
                        "signed {} session{} with {} ({} {}) into {}\n",
                        artifacts.len(),
                        if artifacts.len() == 1 { "" } else { "s" },
                        path.display(),
                        key.public_key().algorithm(),
                        key.public_key().short_name(),
                        args.target
                            .join(meshfile_app::sign::SESSION_FILES)
                            .display()
                    ));
                }
                Some(meshfile_app::Signed { form, artifacts })
            }
        };
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
        }
    }
    Ok(())
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
