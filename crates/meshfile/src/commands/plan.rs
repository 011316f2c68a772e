//! `plan` (alias `diff`): what `apply` would change in CAS, session by session.

use meshfile_app::deliver::Cas;
use meshfile_app::route::{self, Route};
use meshfile_app::{Exit, Stop};
use meshfile_plan::delivery::{Action, Step};
use serde_json::json;

use crate::cli::{OutputFormat, PlanArgs};
use crate::commands::{self, Purpose, delivery};
use crate::render;

pub fn run(args: &PlanArgs) -> Result<Exit, Stop> {
    let purpose = Purpose {
        writes: false,
        report_variables: false,
        mrenclaves: &[],
        identity: args.cas.trust.identity.as_deref(),
        helm_template: None,
    };
    let compilation = commands::compile(&args.compile, purpose)?;
    let mut changed = 0;
    let mut report = Vec::new();
    for mesh in &compilation.meshes {
        if let Some(plan) = &mesh.compiled.images {
            render::eprint(&commands::images::would_push(plan));
        }
        let route = commands::route(&args.compile, &args.cas, mesh);
        // Without a key of one's own, the plan shows the signatures already there.
        let (target, steps, approvals) = match route {
            Route::Keep => {
                render::eprint(&format!(
                    "plan for {}: mode NoUpload: apply delivers nothing (the sessions stay in {})\n",
                    mesh.file,
                    args.compile.target.join("policies").display()
                ));
                report.push(json!({ "target": null, "steps": [], "signatures": [] }));
                continue;
            }
            Route::Chart {
                form,
                upload: false,
            } => {
                let signing = commands::Signing::load_for_reading(&args.compile)?;
                let steps = meshfile_app::sign::chart_plan(
                    &mesh.compiled,
                    form,
                    &signing.backend(),
                    &args.compile.target,
                )?;
                let target = format!(
                    "the chart's {} resources (SCONE's operator registers them with CAS {} on `helm install`; compared with {})",
                    route::resource_kind(form),
                    mesh.compiled.cas_url,
                    args.compile
                        .target
                        .join(meshfile_app::sign::SESSION_FILES)
                        .display()
                );
                (target, steps, Vec::new())
            }
            Route::Upload | Route::UploadSigned | Route::Chart { upload: true, .. } => {
                let (mut cas, notices) = Cas::connect(
                    &delivery::settings(&args.cas.trust),
                    &mesh.compiled,
                    &args.compile.target,
                    false,
                )?;
                delivery::notices(&notices);
                let observer = delivery::Trace::new(cas.describe(), args.cas.verbose > 0, 0, true);
                let (steps, approvals) = match route.form() {
                    None => (cas.plan(&mesh.compiled, &observer)?, Vec::new()),
                    Some(form) => {
                        let signing = commands::Signing::load_for_reading(&args.compile)?;
                        let plan = delivery::plan_signed(
                            &mut cas,
                            &mesh.compiled,
                            form,
                            &signing,
                            &args.compile.target,
                            &observer,
                            false,
                        )?;
                        (plan.steps, plan.approvals)
                    }
                };
                (cas.describe(), steps, approvals)
            }
        };
        changed += steps
            .iter()
            .filter(|s| !matches!(s.action, Action::Unchanged { .. }))
            .count();
        match args.cas.output {
            OutputFormat::Human => render::eprint(&human(&target, &steps, &approvals)),
            OutputFormat::Json => {
                let approvals: Vec<serde_json::Value> = (approvals.iter())
                    .map(|a| {
                        json!({
                            "session": a.session,
                            "signers": a.signers.iter().map(|s| s.short_name()).collect::<Vec<_>>(),
                            "rule": a.rule,
                            "unmet": a.unmet,
                        })
                    })
                    .collect();
                report.push(json!({ "target": target, "steps": steps, "signatures": approvals }));
            }
        }
    }
    if args.cas.output == OutputFormat::Json {
        commands::print(&(serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"))?;
    }
    Ok(if args.exit_code && changed > 0 {
        Exit::Invalid
    } else {
        Exit::Ok
    })
}

/// A plan for people: its steps, the counts and the signatures still needed.
fn human(target: &str, steps: &[Step], approvals: &[meshfile_app::sign::Approval]) -> String {
    let count = |f: fn(&Action) -> bool| steps.iter().filter(|s| f(&s.action)).count();
    format!(
        "plan for {target}:\n{}{} to create, {} to update, {} unchanged\n{}",
        delivery::steps(steps),
        count(|a| matches!(a, Action::Create)),
        count(|a| matches!(a, Action::Update { .. })),
        count(|a| matches!(a, Action::Unchanged { .. })),
        delivery::approvals(approvals)
    )
}
