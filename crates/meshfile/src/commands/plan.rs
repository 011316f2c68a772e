//! `plan` (alias `diff`): what `apply` would change in CAS, session by session.

use meshfile_app::deliver::Cas;
use meshfile_app::{Exit, Stop};
use meshfile_plan::delivery::Action;
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
    };
    let compilation = commands::compile(&args.compile, purpose)?;
    let mut changed = 0;
    let mut report = Vec::new();
    for mesh in &compilation.meshes {
        if let Some(plan) = &mesh.compiled.images {
            render::eprint(&commands::images::would_push(plan));
        }
        let (cas, notices) = Cas::connect(
            &delivery::settings(&args.cas.trust),
            &mesh.compiled,
            &args.compile.target,
        )?;
        delivery::notices(&notices);
        let mut cas = cas;
        let observer = delivery::Trace::new(cas.describe(), args.cas.verbose > 0, 0, true);
        let (steps, approvals) = match commands::signing_form(&args.compile, &mesh.compiled) {
            None => (cas.plan(&mesh.compiled, &observer)?, Vec::new()),
            Some(form) => {
                // Without a key of one's own, the plan shows the signatures already there.
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
        changed += steps
            .iter()
            .filter(|s| !matches!(s.action, Action::Unchanged { .. }))
            .count();
        match args.cas.output {
            OutputFormat::Human => {
                let count = |f: fn(&Action) -> bool| steps.iter().filter(|s| f(&s.action)).count();
                render::eprint(&format!(
                    "plan for {}:\n{}{} to create, {} to update, {} unchanged\n{}",
                    cas.describe(),
                    delivery::steps(&steps),
                    count(|a| matches!(a, Action::Create)),
                    count(|a| matches!(a, Action::Update { .. })),
                    count(|a| matches!(a, Action::Unchanged { .. })),
                    delivery::approvals(&approvals)
                ));
            }
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
                report.push(
                    json!({ "target": cas.describe(), "steps": steps, "signatures": approvals }),
                );
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
