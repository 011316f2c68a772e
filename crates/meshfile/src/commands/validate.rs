//! `validate` and `lint`: read manifests, report diagnostics, decide the exit status.

use std::fmt::Write as _;

use meshfile_app::load::Checked;
use meshfile_app::{Exit, Stop};
use meshfile_manifest::{Diagnostic, Manifest, Severity};
use serde::Serialize;

use crate::cli::{CheckArgs, OutputFormat};
use crate::commands::print;
use crate::render;

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    file: &'a str,
    #[serde(flatten)]
    diagnostic: &'a Diagnostic,
}

/// Validates (and with `lint`, lints) every input; returns the exit status.
pub fn run(args: &CheckArgs, lint: bool, deny_warnings: bool) -> Result<Exit, Stop> {
    let inputs = meshfile_app::inputs::read_inputs(&args.inputs.files()?)?;
    let validation = meshfile_app::validation::validate(
        &inputs,
        lint,
        args.inputs.allow_outside,
        std::path::Path::new(crate::cli::DEFAULT_TARGET),
        Default::default(),
    );
    let all = validation.checked;
    let count = |severity: Severity| {
        all.iter()
            .flat_map(|c| &c.diagnostics)
            .filter(|d| d.severity == severity)
            .count()
    };
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    match args.output {
        OutputFormat::Json => {
            let list: Vec<JsonDiagnostic<'_>> = all
                .iter()
                .flat_map(|c| {
                    c.diagnostics.iter().map(|d| JsonDiagnostic {
                        file: &c.file,
                        diagnostic: d,
                    })
                })
                .collect();
            let text = serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".into());
            print(&(text + "\n"))?;
        }
        OutputFormat::Human => render::eprint(&human(&all, args.quiet, errors, warnings)),
    }
    if let Some(skipped) = &validation.across_files_skipped {
        render::eprint(&format!(
            "note: what `template` checks across the files (descriptors, secrets between services, templates) was not checked: {}; `meshfile template -n --set NAME=VALUE` checks it\n",
            skipped.why.join("; ")
        ));
    }
    if args.dump {
        let dumps: String = (all.iter().filter(|c| c.is_valid()))
            .filter_map(|c| c.manifest.as_ref())
            .map(meshfile_manifest::dump)
            .collect();
        print(&dumps)?;
    }
    Ok(if errors > 0 || (deny_warnings && warnings > 0) {
        Exit::Invalid
    } else {
        Exit::Ok
    })
}

fn human(all: &[Checked], quiet: bool, errors: usize, warnings: usize) -> String {
    let mut out = String::new();
    let mut shown = render::Shown::default();
    for c in all {
        let source = c.source.as_deref().map(render::Source::new);
        for d in c.diagnostics.iter().filter(|_| shown.admit()) {
            out.push_str(&render::diagnostic(&c.file, source.as_ref(), d));
            out.push('\n');
        }
        if !quiet && c.is_valid() {
            let summary = c.manifest.as_ref().map(describe).unwrap_or_default();
            let _ = writeln!(out, "{}: valid{summary}", c.file);
        }
    }
    out.extend(shown.remainder());
    if !quiet && (errors > 0 || warnings > 0) {
        let _ = writeln!(
            out,
            "{errors} error{}, {warnings} warning{} in {} file{}",
            render::plural(errors),
            render::plural(warnings),
            all.len(),
            render::plural(all.len())
        );
    }
    out
}

fn describe(manifest: &Manifest) -> String {
    match manifest {
        Manifest::Mesh(m) => format!(
            " (mesh, namespace `{}`, {} service{})",
            m.policy.namespace,
            m.services.len(),
            render::plural(m.services.len())
        ),
        Manifest::Service(s) => {
            format!(" (genservice `{}`, image `{}`)", s.build.name, s.build.to)
        }
    }
}
