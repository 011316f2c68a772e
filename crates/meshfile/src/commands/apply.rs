//! `apply`: record service manifests, compile meshes, write `target/`, then make CAS hold
//! exactly each mesh's sessions.

use meshfile_app::deliver::Cas;
use meshfile_app::route::{self, Route};
use meshfile_app::sign::Form;
use meshfile_app::{Exit, Stop};
use meshfile_manifest::Code;
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
            identity: args.cas.trust.identity.as_deref(),
            helm_template: None,
        };
        let compilation = commands::compile(&args.compile, purpose)?;
        let text: String = (compilation.meshes.iter())
            .map(|m| variables(&m.file, &m.compiled))
            .collect();
        commands::print(&text)?;
        return Ok(Exit::Ok);
    }
    // The images go first: the chart then pins the digests the destination serves.
    let purpose = Purpose {
        writes: true,
        report_variables: false,
        mrenclaves: &args.record.mrenclaves,
        identity: args.cas.trust.identity.as_deref(),
        helm_template: args.sconectl.helm_template.as_deref(),
    };
    let compilation = commands::compile_and_write(&args.compile, purpose, |compilation| {
        for mesh in &mut compilation.meshes {
            commands::images::push(mesh, &args.compile)?;
        }
        Ok(())
    })?;
    let mut status = Exit::Ok;
    let mut report = Vec::new();
    for mesh in &compilation.meshes {
        let route = commands::route(&args.compile, &args.cas, mesh);
        if let Route::Chart {
            form,
            upload: false,
        } = route
        {
            chart_delivers(mesh, form, args.compile.quiet);
            continue;
        }
        if !route.connects() {
            if !args.compile.quiet {
                render::eprint(&format!(
                    "{}: mode NoUpload: nothing delivered; the sessions are in {}\n",
                    mesh.file,
                    args.compile.target.join("policies").display()
                ));
            }
            continue;
        }
        let settings = delivery::settings(&args.cas.trust);
        let (mut cas, notices) =
            Cas::connect(&settings, &mesh.compiled, &args.compile.target, true)?;
        delivery::notices(&notices);
        let reading = delivery::Trace::new(cas.describe(), args.cas.verbose > 0, 0, true);
        let steps = match route.form() {
            None => cas.plan(&mesh.compiled, &reading)?,
            Some(form) => {
                let signing = commands::Signing::load(&args.compile)?;
                let plan = delivery::plan_signed(
                    &mut cas,
                    &mesh.compiled,
                    form,
                    &signing,
                    &args.compile.target,
                    &reading,
                    args.compile.quiet,
                )?;
                // The files now name CAS's active versions as predecessors.
                let signed = meshfile_app::Signed {
                    form,
                    artifacts: plan.artifacts,
                };
                meshfile_app::write_target(mesh, &args.compile.target, None, Some(&signed))?;
                let unmet: Vec<&meshfile_app::sign::Approval> = plan
                    .approvals
                    .iter()
                    .filter(|a| a.unmet.is_some())
                    .collect();
                if !unmet.is_empty() && !args.dry_run {
                    return Err(unapproved(&cas.describe(), &unmet, &args.compile.target).into());
                }
                plan.steps
            }
        };
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

/// The chart-delivered modes without `--upload`: what was written is the delivery.
fn chart_delivers(mesh: &meshfile_app::compile::Mesh, form: Form, quiet: bool) {
    if quiet {
        return;
    }
    let sessions = mesh.compiled.sessions.len();
    render::eprint(&format!(
        "{sessions} {} resource{} in the chart deliver the sessions: SCONE's operator registers them with CAS {} on `helm install`; no connection to CAS was made (`--upload` also writes them to CAS directly)\n",
        route::resource_kind(form),
        if sessions == 1 { "" } else { "s" },
        mesh.compiled.cas_url,
    ));
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

/// Sessions whose signatures do not yet meet their rules: nothing is written (E218).
fn unapproved(
    target: &str,
    unmet: &[&meshfile_app::sign::Approval],
    target_dir: &std::path::Path,
) -> meshfile_app::Error {
    let mut message = format!(
        "{target}: {} session{} {} signatures; nothing was written",
        unmet.len(),
        render::plural(unmet.len()),
        if unmet.len() == 1 { "lacks" } else { "lack" }
    );
    for a in unmet {
        let signed: Vec<String> = a.signers.iter().map(|s| s.short_name()).collect();
        message.push_str(&format!(
            "\n  {}: {} needs {} (signed by: {})",
            a.session,
            a.rule.as_deref().unwrap_or("its rule"),
            a.unmet.as_deref().unwrap_or_default(),
            if signed.is_empty() {
                "nobody".to_owned()
            } else {
                signed.join(", ")
            }
        ));
    }
    meshfile_app::Error::new(Code::SignaturesMissing, message).hint(format!(
        "each missing signer runs `meshfile sign -t {}` (or adds an external signature with `meshfile sign --signer PUB --signature FILE`), then apply again",
        target_dir.display()
    ))
}
