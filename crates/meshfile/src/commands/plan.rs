//! `plan` (alias `diff`): what `apply` would change in CAS, session by session
//! (`meshfile_app::usecase::plan`).

use meshfile_app::usecase::{Settings, plan};
use meshfile_app::{Exit, Stop};

use crate::cli::{OutputFormat, PlanArgs};
use crate::commands::{self, steps, terminal::Terminal};
use crate::render;

pub fn run(args: &PlanArgs) -> Result<Exit, Stop> {
    let settings = Settings {
        identity: args.cas.trust.identity.clone(),
        ..args.compile.settings()?
    };
    let ui = Terminal {
        quiet: args.compile.quiet,
        verbose: args.cas.verbose > 0,
    };
    let access = args.cas.trust.access();
    let plans = plan::plan(&settings, &access, args.cas.upload, &ui)?;
    match args.cas.output {
        OutputFormat::Human => plans.iter().for_each(|p| render::eprint(&steps::plan(p))),
        OutputFormat::Json => {
            let report: Vec<serde_json::Value> = plans.iter().map(steps::plan_json).collect();
            commands::print_json(&report)?;
        }
    }
    let changed: usize = plans.iter().map(|p| p.changes()).sum();
    Ok(if args.exit_code && changed > 0 {
        Exit::Invalid
    } else {
        Exit::Ok
    })
}
