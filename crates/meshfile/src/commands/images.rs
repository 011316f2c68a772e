//! What `apply` does with the Meshfile's `repo` section, and what `template` and `plan` say
//! it would do.

use meshfile_app::Error;
use meshfile_manifest::Code;
use meshfile_plan::ImagePlan;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use meshfile_registry::copy::{BlobTransfer, Progress};

use crate::cli::CompileArgs;
use crate::render;

/// The copies `apply` would make, a line each (for `template` and `plan`).
pub fn would_push(plan: &ImagePlan) -> String {
    let verb = if plan.push {
        "apply copies"
    } else {
        "repo.push is false: apply writes nothing, only prepares"
    };
    let how = match (plan.squash, plan.strip) {
        (true, true) => " (squashed to one layer, /scone removed)",
        (true, false) => " (squashed to one layer)",
        (false, true) => " (/scone removed)",
        (false, false) => " (byte for byte)",
    };
    let signed = match &plan.key_file {
        Some(key) if plan.push => format!(", signed with {key}"),
        _ => String::new(),
    };
    plan.copies
        .iter()
        .map(|c| format!("{verb} {} -> {}{how}{signed}\n", c.source, c.destination))
        .collect()
}

/// Copies the mesh's images (unless `-n` says not to; with `repo.push: false` only makes them,
/// writing nothing), a line per image, pins the chart to the digests they have at the
/// destination, and signs the copies when `repo.key_file` names a cosign key.
pub fn push(mesh: &mut meshfile_app::compile::Mesh, args: &CompileArgs) -> Result<(), Error> {
    let compiled = &mut mesh.compiled;
    let Some(plan) = &compiled.images else {
        return Ok(());
    };
    meshfile_app::images::check(plan)?;
    if let Some(config_id) = &plan.config_id {
        return Err(Error::new(
            Code::ImageCopyFailed,
            format!("repo.config_id `{config_id}` asks for confidential signing: SCONE's cosign running in an enclave, unlocked by a one-time password; meshfile cannot run it, and copies nothing rather than copy unsigned"),
        )
        .hint("sign with your own cosign key (`repo.key_file`, password in COSIGN_PASSWORD), or sign with SCONE's tools after copying"));
    }
    let key = match &plan.key_file {
        Some(file) if !args.no_pull && plan.push => Some(cosign_key(&mesh.dir, file)?),
        _ => None,
    };
    if args.no_pull {
        if !args.quiet {
            for c in &plan.copies {
                render::eprint(&format!(
                    "not copied (-n asks no registry): {} -> {}\n",
                    c.source, c.destination
                ));
            }
        }
        return Ok(());
    }
    let (pushing, signing) = (plan.push, plan.key_file.is_some());
    let bar = Bar::new(plan, args.quiet);
    let progress: Arc<dyn Progress> = Arc::new(bar.clone());
    let pushed = meshfile_app::images::push(plan, &progress, &args.target);
    bar.finish();
    let pushed = pushed?;
    meshfile_app::images::pin(compiled, &pushed, &args.target)?;
    let signed = match &key {
        Some(key) => meshfile_app::images::sign(&pushed, key)?,
        None => Vec::new(),
    };
    if !args.quiet {
        for s in &signed {
            let verb = if s.added {
                "signed"
            } else {
                "signature there already:"
            };
            render::eprint(&format!("{verb} {}\n", s.image));
        }
        if !pushing && signing {
            render::eprint(
                "not signed: repo.push is false, so there is nothing at the destination to sign\n",
            );
        }
        for p in &pushed {
            let c = &p.copied;
            let what = if pushing {
                format!(
                    "{} blob{} sent, {:.1} MB; {} there already; {} mounted",
                    c.sent,
                    render::plural(c.sent),
                    c.bytes_sent as f64 / 1e6,
                    c.present,
                    c.mounted
                )
            } else {
                "repo.push is false: nothing written".to_owned()
            };
            let verb = if pushing { "copied  " } else { "prepared" };
            render::eprint(&format!(
                "{verb}   {} -> {}@{}  ({what})\n",
                p.source, p.destination, c.digest
            ));
            if let Some(now) = &p.tag_moved_to {
                render::eprint(&format!(
                    "note: {}: its tag now serves {now}, another image; the digest the Meshfile pins was copied, and the chart and signatures name it\n",
                    p.source
                ));
            }
        }
    }
    Ok(())
}

/// A bar of the bytes copied (blobs found at the destination or mounted count as done), on a
/// terminal; nothing otherwise (a line per image follows).
#[derive(Clone)]
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    blobs: Arc<AtomicUsize>,
}

impl Bar {
    fn new(plan: &ImagePlan, quiet: bool) -> Bar {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            let template = format!(
                "copying {} image(s) {{wide_bar}} {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} {{msg}}",
                plan.copies.len()
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            bar
        });
        Bar {
            bar,
            blobs: Arc::default(),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn planned(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc_length(bytes);
        }
    }

    fn advanced(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn blob(&self, _image: &str, _digest: &str, _size: u64, _transfer: BlobTransfer) {
        let done = self.blobs.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{done} blob{}", render::plural(done)));
        }
    }
}

/// The cosign key `repo.key_file` names (a file in the Meshfile's directory), opened with its
/// password.
fn cosign_key(
    dir: &meshfile_app::paths::MeshDir,
    file: &str,
) -> Result<meshfile_sign::cosign::CosignKey, Error> {
    let text = dir.read_text(file).map_err(|why| {
        Error::new(Code::OverrideFile, format!("repo.key_file `{file}`: {why}"))
            .hint("name the cosign key file (cosign.key) relative to the Meshfile")
    })?;
    let password = password(file)?;
    meshfile_sign::cosign::CosignKey::from_pem(&text, &password)
        .map_err(|e| Error::from_sign(e, &format!("repo.key_file `{file}`")))
}

/// The password of a cosign key: `COSIGN_PASSWORD`, else asked on the terminal (not echoed).
pub fn password(what: &str) -> Result<Vec<u8>, Error> {
    use std::io::{BufRead, IsTerminal, Write};
    if let Some(password) = std::env::var_os("COSIGN_PASSWORD") {
        return Ok(password.into_encoded_bytes());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::new(
            Code::CosignPassword,
            format!("the password of {what} is needed"),
        )
        .hint("set COSIGN_PASSWORD (as cosign reads it), or run on a terminal to be asked"));
    }
    let before = rustix::termios::tcgetattr(&stdin).ok();
    if let Some(attrs) = &before {
        let mut quiet = attrs.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    eprint!("password for {what}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(attrs) = &before {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, attrs);
    }
    eprintln!();
    read.map_err(|e| Error::new(Code::SigningKey, "cannot read the password").caused_by(e))?;
    Ok(line.trim_end_matches(['\n', '\r']).as_bytes().to_vec())
}

/// `verify-images`: every chart image's signature by the key, a line each.
pub fn verify(
    args: &crate::cli::VerifyImagesArgs,
) -> Result<meshfile_app::Exit, meshfile_app::Stop> {
    let text = meshfile_app::paths::read_key_file(&args.key)?;
    let key = meshfile_sign::cosign::CosignPublicKey::from_pem(&text)
        .map_err(|e| Error::new(Code::SigningKey, format!("{}: {e}", args.key.display())))?;
    let purpose = crate::commands::Purpose {
        writes: false,
        report_variables: false,
        mrenclaves: &[],
        identity: None,
        helm_template: None,
    };
    let compilation = crate::commands::compile(&args.compile, purpose)?;
    let mut all_signed = true;
    for mesh in &compilation.meshes {
        let images: Vec<(String, Option<String>)> = (mesh.compiled.chart.services.iter())
            .map(|s| (s.repository.clone(), s.digest.clone()))
            .collect();
        for v in meshfile_app::images::verify(&images, &key)? {
            let line = match &v.outcome {
                Ok(n) => format!("signed      {}  ({n} signature(s) by the key)\n", v.image),
                Err(why) => {
                    all_signed = false;
                    format!("NOT SIGNED  {}: {why}\n", v.image)
                }
            };
            render::eprint(&line);
        }
    }
    Ok(if all_signed {
        meshfile_app::Exit::Ok
    } else {
        meshfile_app::Exit::Invalid
    })
}

/// `publish`: each service manifest given, recorded (with its MRENCLAVEs), then attached to
/// its image in the registry, signed when a key is given.
pub fn publish(args: &crate::cli::PublishArgs) -> Result<meshfile_app::Exit, meshfile_app::Stop> {
    let key = match &args.key {
        Some(file) => {
            let text = meshfile_app::paths::read_key_file(file)?;
            let password = password(&file.display().to_string())?;
            Some(
                meshfile_sign::cosign::CosignKey::from_pem(&text, &password)
                    .map_err(|e| Error::from_sign(e, &file.display().to_string()))?,
            )
        }
        None => None,
    };
    let purpose = crate::commands::Purpose {
        writes: true,
        report_variables: false,
        mrenclaves: &args.record.mrenclaves,
        identity: None,
        helm_template: None,
    };
    let compilation = crate::commands::compile(&args.compile, purpose)?;
    if compilation.recorded.is_empty() {
        return Err(Error::new(Code::BadArguments, "no service manifest was given to publish")
            .hint("name the service manifest with -f service.yaml (and its MRENCLAVE with --mrenclave HEX)")
            .into());
    }
    let mut report = meshfile_app::Report::default();
    let store = meshfile_app::descriptors::Store::open(&args.compile.target, &mut report)?;
    let images = compilation
        .recorded
        .iter()
        .map(|r| r.image.as_str())
        .collect();
    let descriptors = store.lookup(&images, &mut report);
    for descriptor in descriptors.values() {
        let published = meshfile_app::published::publish(descriptor, key.as_ref())?;
        render::eprint(&format!(
            "published the descriptor of {}@{} as artifact {}{}\n",
            descriptor.image,
            published.image_digest,
            published.artifact,
            published
                .signed_by
                .map_or_else(|| ", unsigned".to_owned(), |k| format!(", signed by {k}"))
        ));
    }
    Ok(meshfile_app::Exit::Ok)
}
