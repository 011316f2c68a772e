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
    };
    let compilation = commands::compile(&args.compile, purpose)?;
    let mut changed = 0;
    let mut report = Vec::new();
    for mesh in &compilation.meshes {
        let (cas, notices) = Cas::connect(
            &delivery::settings(&args.cas.trust),
            &mesh.compiled,
            &args.compile.target,
        )?;
        delivery::notices(&notices);
        let observer = delivery::Trace::new(cas.describe(), args.cas.verbose > 0, 0, true);
        let steps = cas.plan(&mesh.compiled, &observer)?;
        changed += steps
            .iter()
            .filter(|s| !matches!(s.action, Action::Unchanged { .. }))
            .count();
        match args.cas.output {
            OutputFormat::Human => {
                let count = |f: fn(&Action) -> bool| steps.iter().filter(|s| f(&s.action)).count();
                render::eprint(&format!(
                    "plan for {}:\n{}{} to create, {} to update, {} unchanged\n",
                    cas.describe(),
                    delivery::steps(&steps),
                    count(|a| matches!(a, Action::Create)),
                    count(|a| matches!(a, Action::Update { .. })),
                    count(|a| matches!(a, Action::Unchanged { .. }))
                ));
            }
            OutputFormat::Json => report.push(json!({ "target": cas.describe(), "steps": steps })),
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
