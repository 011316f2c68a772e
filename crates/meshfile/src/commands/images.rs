//! The images of a mesh: what `apply` copied and `template` and `plan` say it would copy;
//! `verify-images` and `publish`.

use meshfile_app::Error;
use meshfile_app::usecase::{self, Purpose};
use meshfile_manifest::Code;
use meshfile_plan::ImagePlan;

use crate::commands::terminal::{self, Terminal};
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

/// What copying the images did, a line per image (and per signature).
pub fn copied(
    plan: &ImagePlan,
    pushed: &[meshfile_app::images::Pushed],
    signed: &[meshfile_app::images::Signed],
) -> String {
    let mut out = String::new();
    for s in signed {
        let verb = if s.added {
            "signed"
        } else {
            "signature there already:"
        };
        out.push_str(&format!("{verb} {}\n", s.image));
    }
    if !plan.push && plan.key_file.is_some() {
        out.push_str(
            "not signed: repo.push is false, so there is nothing at the destination to sign\n",
        );
    }
    for p in pushed {
        let c = &p.copied;
        let what = if plan.push {
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
        let verb = if plan.push { "copied  " } else { "prepared" };
        out.push_str(&format!(
            "{verb}   {} -> {}@{}  ({what})\n",
            p.source, p.destination, c.digest
        ));
        if let Some(now) = &p.tag_moved_to {
            out.push_str(&format!(
                "note: {}: its tag now serves {now}, another image; the digest the Meshfile pins was copied, and the chart and signatures name it\n",
                p.source
            ));
        }
    }
    out
}

/// `verify-images`: every chart image's signature by the key, a line each.
pub fn verify(
    args: &crate::cli::VerifyImagesArgs,
) -> Result<meshfile_app::Exit, meshfile_app::Stop> {
    let text = meshfile_app::paths::read_key_file(&args.key)?;
    let key = meshfile_sign::cosign::CosignPublicKey::from_pem(&text)
        .map_err(|e| Error::new(Code::SigningKey, format!("{}: {e}", args.key.display())))?;
    let settings = args.compile.settings()?;
    let ui = Terminal {
        quiet: args.compile.quiet,
        verbose: false,
    };
    let compilation = usecase::prepare(&settings, Purpose::Read, &ui)?;
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
            let password = terminal::password(&file.display().to_string())?;
            Some(
                meshfile_sign::cosign::CosignKey::from_pem(&text, &password)
                    .map_err(|e| Error::from_sign(e, &file.display().to_string()))?,
            )
        }
        None => None,
    };
    let settings = usecase::Settings {
        mrenclaves: args.record.mrenclaves.clone(),
        ..args.compile.settings()?
    };
    let ui = Terminal {
        quiet: args.compile.quiet,
        verbose: false,
    };
    let compilation = usecase::prepare(&settings, Purpose::Write, &ui)?;
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
