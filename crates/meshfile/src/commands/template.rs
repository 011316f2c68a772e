//! `template`: record service descriptors, compile the mesh, write `target/`; nothing uploaded.

use meshfile_app::{Exit, Stop};

use crate::cli::TemplateArgs;
use crate::commands::{self, Purpose};

pub fn run(args: &TemplateArgs) -> Result<Exit, Stop> {
    let purpose = Purpose {
        writes: true,
        report_variables: false,
        mrenclaves: &args.record.mrenclaves,
        identity: args.identity.as_deref(),
        helm_template: None,
    };
    let compilation = commands::compile_and_write(&args.compile, purpose, |_| Ok(()))?;
    if !args.compile.quiet {
        for mesh in &compilation.meshes {
            if let Some(plan) = &mesh.compiled.images {
                crate::render::eprint(&commands::images::would_push(plan));
            }
        }
    }
    commands::discard(compilation);
    Ok(Exit::Ok)
}
