//! `apply`: record service manifests, compile meshes, write `target/`, then make CAS hold
//! exactly each mesh's sessions.

use meshfile_app::deliver::Cas;
use meshfile_app::{Exit, Report, Stop};
use meshfile_manifest::mesh::CasMode;
use meshfile_manifest::{Code, Diagnostic};
use meshfile_plan::Compiled;
use meshfile_plan::delivery::Action;
use serde_json::json;

use crate::cli::{ApplyArgs, OutputFormat};
use crate::commands::{self, Purpose, delivery};
use crate::render;

pub fn run(args: &ApplyArgs) -> Result<Exit, Stop> {
    commands::sconectl::check(&args.sconectl, &args.compile)?;
    if args.print_defaults {
        let purpose = Purpose {
            writes: false,
            report_variables: true,
            mrenclaves: &args.record.mrenclaves,
        };
        let compilation = commands::compile(&args.compile, purpose)?;
        let text: String = (compilation.meshes.iter())
            .map(|m| variables(&m.file, &m.compiled))
            .collect();
        commands::print(&text)?;
        return Ok(Exit::Ok);
    }
    let compilation = commands::compile_and_write(&args.compile, &args.record.mrenclaves)?;
    let mut status = Exit::Ok;
    let mut report = Vec::new();
    for mesh in &compilation.meshes {
        if !delivers(&mesh.file, &mesh.compiled, &compilation.report)? {
            continue;
        }
        let settings = delivery::settings(&args.cas.trust);
        let (cas, notices) = Cas::connect(&settings, &mesh.compiled, &args.compile.target)?;
        delivery::notices(&notices);
        let reading = delivery::Trace::new(cas.describe(), args.cas.verbose > 0, 0, true);
        let steps = cas.plan(&mesh.compiled, &reading)?;
        if args.dry_run {
            render::eprint(&format!(
                "plan for {} (dry run: nothing changed):\n{}",
                cas.describe(),
                delivery::steps(&steps)
            ));
            continue;
        }
        let writes = steps
            .iter()
            .filter(|s| !matches!(s.action, Action::Unchanged { .. }))
            .count();
        let trace = delivery::Trace::new(
            cas.describe(),
            args.cas.verbose > 0,
            writes,
            args.compile.quiet,
        );
        let outcomes = cas.deliver(&steps, &trace);
        trace.finish();
        let (text, results, exit) = delivery::outcomes(&cas.describe(), &steps, &outcomes);
        render::eprint(&text);
        status = status.max(exit);
        report.push(json!({ "target": cas.describe(), "results": results }));
    }
    if args.cas.output == OutputFormat::Json {
        commands::print(&(serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"))?;
    }
    Ok(status)
}

/// Whether the mesh's CAS mode delivers sessions (`Upload`); `NoUpload` writes `target/`
/// only; a mode this tool does not implement is an error located in the Meshfile.
fn delivers(file: &str, compiled: &Compiled, sources: &Report) -> Result<bool, Stop> {
    match compiled.mode {
        None | Some(CasMode::Upload) => Ok(true),
        Some(CasMode::NoUpload) => Ok(false),
        Some(mode) => {
            let mut report = Report::default();
            if let Some(text) = sources.sources.get(file) {
                report.sources.insert(file.to_owned(), text.clone());
            }
            let d = Diagnostic::new(
                Code::UnsupportedMode,
                compiled.mode_span.unwrap_or_default(),
                "cas.mode",
                format!("CAS mode `{mode:?}` is not supported yet; nothing was delivered"),
            )
            .with_hint("use `mode: Upload` (sessions go to CAS directly) or `mode: NoUpload` (only write the target directory)");
            report.add(file, [d]);
            Err(Stop::Invalid(report))
        }
    }
}

/// `apply -p`: each service's variables as a ready-to-paste `env:` block.
fn variables(file: &str, compiled: &Compiled) -> String {
    let mut out = format!(
        "# Variables of the services of {file}: value and where it comes from.\n# Paste into the Meshfile's `env:` and adjust.\nenv:\n"
    );
    for s in &compiled.variables {
        out.push_str(&format!("  - service: {}\n    env:", s.service));
        if s.variables.is_empty() {
            out.push_str(" []");
        }
        out.push('\n');
        for v in &s.variables {
            let value = quoted(v.value.as_deref().unwrap_or_default());
            out.push_str(&format!(
                "      - name: {}\n        value: {value}    # {}\n",
                v.name, v.origin
            ));
        }
    }
    out
}

fn quoted(text: &str) -> String {
    let node = meshfile_yaml::Node::scalar(text, meshfile_yaml::Style::DoubleQuoted);
    meshfile_yaml::emit(&node).trim_end().to_owned()
}
