//! What `apply` does with the Meshfile's `repo` section, and what `template` and `plan` say
//! it would do.

use meshfile_app::Error;
use meshfile_plan::ImagePlan;
use meshfile_registry::copy::{BlobTransfer, Progress};

use crate::cli::CompileArgs;
use crate::render;

/// The copies `apply` would make, a line each (for `template` and `plan`).
pub fn would_push(plan: &ImagePlan) -> String {
    let verb = if plan.push {
        "apply copies"
    } else {
        "repo.push is false: apply copies nothing of"
    };
    let how = match (plan.squash, plan.strip) {
        (true, true) => " (squashed to one layer, /scone removed)",
        (true, false) => " (squashed to one layer)",
        (false, true) => " (/scone removed)",
        (false, false) => " (byte for byte)",
    };
    plan.copies
        .iter()
        .map(|c| format!("{verb} {} -> {}{how}\n", c.source, c.destination))
        .collect()
}

/// Copies the mesh's images (unless `-n` or `repo.push: false` say not to), a line per
/// image, and pins the chart to the digests the destination serves.
pub fn push(compiled: &mut meshfile_plan::Compiled, args: &CompileArgs) -> Result<(), Error> {
    let Some(plan) = &compiled.images else {
        return Ok(());
    };
    meshfile_app::images::check(plan)?;
    if args.no_pull || !plan.push {
        let why = if args.no_pull {
            "-n asks no registry"
        } else {
            "repo.push is false"
        };
        if !args.quiet {
            for c in &plan.copies {
                render::eprint(&format!(
                    "not copied ({why}): {} -> {}\n",
                    c.source, c.destination
                ));
            }
        }
        return Ok(());
    }
    let progress = Blobs::new(plan, args.quiet);
    let pushed = meshfile_app::images::push(plan, &progress)?;
    progress.finish();
    meshfile_app::images::pin(compiled, &pushed, &args.target)?;
    if !args.quiet {
        for p in pushed {
            let c = &p.copied;
            render::eprint(&format!(
                "copied     {} -> {}@{}  ({} blobs sent, {:.1} MB; {} there already; {} mounted)\n",
                p.source,
                p.destination,
                c.digest,
                c.sent,
                c.bytes_sent as f64 / 1e6,
                c.present,
                c.mounted
            ));
        }
    }
    Ok(())
}

/// A bar of the blobs done, on a terminal; nothing otherwise (a line per image follows).
struct Blobs {
    bar: Option<indicatif::ProgressBar>,
}

impl Blobs {
    fn new(plan: &ImagePlan, quiet: bool) -> Blobs {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            let template = format!(
                "copying {} image(s): {{pos}} blobs {{msg}} {{elapsed}}",
                plan.copies.len()
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            bar
        });
        Blobs { bar }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Blobs {
    fn blob(&self, _image: &str, _digest: &str, size: u64, transfer: BlobTransfer) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            if transfer == BlobTransfer::Sent {
                bar.set_message(format!("last sent {:.1} MB", size as f64 / 1e6));
            }
        }
    }
}
