//! `template`: record service descriptors, compile the mesh, write `target/`; nothing uploaded
//! (`meshfile_app::usecase::template`).

use meshfile_app::usecase::{Settings, template};
use meshfile_app::{Exit, Stop};

use crate::cli::TemplateArgs;
use crate::commands::{self, terminal::Terminal};

pub fn run(args: &TemplateArgs) -> Result<Exit, Stop> {
    let settings = Settings {
        mrenclaves: args.record.mrenclaves.clone(),
        identity: args.identity.clone(),
        ..args.compile.settings()?
    };
    let ui = Terminal {
        quiet: args.compile.quiet,
        verbose: false,
    };
    let compilation = template::template(&settings, &ui)?;
    commands::discard(compilation);
    Ok(Exit::Ok)
}
