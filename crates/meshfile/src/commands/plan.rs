//! `plan` (alias `diff`): what `apply` would change in CAS, session by session
//! (`meshfile_app::usecase::plan`).

use meshfile_app::usecase::{Settings, plan};
use meshfile_app::{Exit, Stop};

use crate::cli::{PlanArgs, PlanOutput};
use crate::commands::{self, review, steps, terminal::Terminal};
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
    match args.output {
        PlanOutput::Human => plans.iter().for_each(|p| render::eprint(&steps::plan(p))),
        PlanOutput::Json => commands::print_json(&review::report(&plans))?,
        PlanOutput::Markdown => commands::print(&review::markdown(&plans))?,
    }
    let changed: usize = plans.iter().map(|p| p.changes()).sum();
    // `--detailed-exitcode` turns this 1 into 2 where the run ends (main.rs).
    Ok(
        if (args.exit_code || args.detailed_exitcode) && changed > 0 {
            Exit::Invalid
        } else {
            Exit::Ok
        },
    )
}
