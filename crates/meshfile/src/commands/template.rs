//! `template`: record service descriptors, compile the mesh, write `target/`; nothing uploaded.

use meshfile_app::{Exit, Stop};

use crate::cli::TemplateArgs;
use crate::commands::{self, Purpose};

pub fn run(args: &TemplateArgs) -> Result<Exit, Stop> {
    let purpose = Purpose {
        writes: true,
        report_variables: false,
        mrenclaves: &args.record.mrenclaves,
    };
    let compilation = commands::compile(&args.compile, purpose)?;
    commands::write_target(&args.compile, &compilation)?;
    commands::discard(compilation);
    Ok(Exit::Ok)
}
