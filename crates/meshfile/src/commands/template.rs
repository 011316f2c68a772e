//! `template`: record service descriptors, compile the mesh, write `target/`; nothing uploaded.

use meshfile_app::{Exit, Stop};

use crate::cli::TemplateArgs;
use crate::commands;

pub fn run(args: &TemplateArgs) -> Result<Exit, Stop> {
    let compilation = commands::compile_and_write(
        &args.compile,
        &args.record.mrenclaves,
        args.identity.as_deref(),
    )?;
    commands::discard(compilation);
    Ok(Exit::Ok)
}
