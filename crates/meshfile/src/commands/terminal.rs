//! The terminal as the use cases' [`Ui`]: what happens, on standard error (with `-q` only
//! warnings and problems), progress bars on a terminal, passwords asked without echo.

use std::sync::Arc;

use meshfile_app::Error;
use meshfile_app::compile::Compilation;
use meshfile_app::connection::Observer;
use meshfile_app::usecase::{Event, Ui};
use meshfile_manifest::Code;
use meshfile_plan::ImagePlan;
use meshfile_registry::copy::Progress;

use crate::commands::progress::{ImageBar, Trace};
use crate::render;

/// What a command shows: `quiet` (`-q`) leaves problems only; `verbose` (`-v`) traces
/// requests to CAS.
pub struct Terminal {
    pub quiet: bool,
    pub verbose: bool,
}

impl Ui for Terminal {
    fn event(&self, event: Event<'_>) {
        let text = match event {
            Event::Compiled(compilation) => compiled(compilation, self.quiet),
            Event::Notice(notice) => format!("{notice}\n"),
            Event::KeyMade(made) => format!(
                "made your session signing key {} ({}, {}); `meshfile key show` prints it\n",
                made.path.display(),
                made.key.algorithm(),
                made.key.short_name()
            ),
            Event::TargetTakenOver {
                target,
                previous,
                mesh,
            } => format!(
                "warning: {} held the output of {}; it now holds {mesh}'s (a target directory is relative to where meshfile runs: give each mesh its own with --target DIR)\n",
                target.display(),
                previous.display(),
            ),
            _ if self.quiet => return,
            Event::Ran(commands) => commands.iter().map(|c| format!("ran: {c}\n")).collect(),
            Event::Signed {
                sessions,
                signer,
                dir,
            } => format!(
                "signed {sessions} session{} with {signer} into {}\n",
                render::plural(sessions),
                dir.display()
            ),
            Event::Wrote {
                mesh,
                target,
                encrypted_only,
            } => wrote(mesh, target, encrypted_only),
            Event::ImagesPlanned(plan) => crate::commands::images::would_push(plan),
            Event::ImagesNotCopied(plan) => (plan.copies.iter())
                .map(|c| {
                    format!(
                        "not copied (-n asks no registry): {} -> {}\n",
                        c.source, c.destination
                    )
                })
                .collect(),
            Event::ImagesCopied {
                plan,
                pushed,
                signed,
            } => crate::commands::images::copied(plan, pushed, signed),
        };
        render::eprint(&text);
    }

    fn cas_observer(&self, target: &str, writes: Option<usize>) -> Box<dyn Observer + '_> {
        let verbose = self.verbose;
        Box::new(match writes {
            None => Trace::new(target.to_owned(), verbose, 0, true),
            Some(writes) => Trace::new(target.to_owned(), verbose, writes, self.quiet),
        })
    }

    fn image_progress(&self, plan: &ImagePlan) -> Arc<dyn Progress> {
        Arc::new(ImageBar::new(plan, self.quiet))
    }

    fn password(&self, what: &str) -> Result<Vec<u8>, Error> {
        password(what)
    }
}

/// What compiling found: registry warnings, notes, located warnings, what was recorded.
fn compiled(compilation: &Compilation, quiet: bool) -> String {
    let mut out = String::new();
    for warning in &compilation.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    for note in &compilation.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    if !quiet {
        out.push_str(&building_note(&compilation.report));
    }
    out.push_str(&render::problems(&compilation.report, |p| {
        p.diagnostic.code != Code::ImageBuilding
    }));
    if quiet {
        return out;
    }
    for r in &compilation.recorded {
        if r.mrenclaves == 0 {
            out.push_str(&format!(
                "recorded {} (image {}) without an MRENCLAVE: give it with `--mrenclave HEX`, in a measurements.yaml beside it, or publish a descriptor (`meshfile publish`) before the mesh step\n",
                r.file, r.image
            ));
            continue;
        }
        out.push_str(&format!(
            "recorded {} (image {}, {} MRENCLAVE{})\n",
            r.file,
            r.image,
            r.mrenclaves,
            render::plural(r.mrenclaves)
        ));
    }
    out
}

/// Image-building fields (W009) are a fact of every service manifest SCONE's tools build
/// from, not a problem to fix: a run that compiles says so once, for all the manifests, and
/// `validate` and `lint` list them where they are.
fn building_note(report: &meshfile_app::Report) -> String {
    let mut files: Vec<&str> = (report.problems.iter())
        .filter(|p| p.diagnostic.code == Code::ImageBuilding)
        .map(|p| p.file.as_str())
        .collect();
    files.dedup();
    if files.is_empty() {
        return String::new();
    }
    let one = files.len() == 1;
    // A few names say which; a mesh of thousands gets a count, not a line of thousands.
    const NAMED: usize = 3;
    let named = match files.len() {
        n if n <= NAMED + 1 => files.join(", "),
        n => format!("{} and {} more", files[..NAMED].join(", "), n - NAMED),
    };
    format!(
        "note: {named} say{} how to build {} image{}, which meshfile leaves to SCONE's tools: each image is used as built, measured by its MRENCLAVE (`meshfile lint` lists the fields)\n",
        if one { "s" } else { "" },
        if one { "its" } else { "their" },
        render::plural(files.len()),
    )
}

/// What was written for one mesh, and how to install the chart against the embedded store.
fn wrote(
    mesh: &meshfile_app::compile::Mesh,
    target: &std::path::Path,
    encrypted_only: bool,
) -> String {
    let sessions = mesh.compiled.sessions.len();
    let services = mesh.compiled.chart.services.len();
    let (what, dir) = if encrypted_only {
        ("encrypted session", meshfile_app::sign::SESSION_FILES)
    } else {
        ("session polic", "policies")
    };
    let mut out = format!(
        "wrote {sessions} {what}{} to {} and the Helm chart `{}` ({services} service{}) to {}\n",
        match (encrypted_only, sessions == 1) {
            (true, true) => "",
            (true, false) => "s",
            (false, true) => "y",
            (false, false) => "ies",
        },
        target.join(dir).display(),
        mesh.compiled.chart.name,
        render::plural(services),
        target.join("helm").display()
    );
    if mesh.compiled.cas_url.as_str() == meshfile_plan::EMBEDDED_CAS {
        out.push_str(&format!(
            "note: the embedded store is no CAS a pod can reach: install the chart with `--set global.casAddr=HOST` (helm template {} --set global.casAddr=cas.scone-system)\n",
            target.join("helm").display()
        ));
    }
    out
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
