//! `apply`: the sconectl verb. Records service manifests, compiles meshes into `target/`.

use crate::cli::ApplyArgs;
use crate::commands::compile::{self, Action};
use crate::error::{CliError, exit};

pub fn run(args: &ApplyArgs) -> Result<u8, CliError> {
    let action = if args.print_defaults {
        Action::PrintVariables
    } else {
        Action::Write
    };
    let (code, compiled) = compile::run(&args.compile, action, args.compile.quiet)?;
    let Some(compiled) = compiled else {
        return Ok(code);
    };
    if args.print_defaults || args.dry_run {
        return Ok(code);
    }
    use meshfile_manifest::mesh::CasMode;
    let modes: Vec<Option<CasMode>> = compiled.iter().map(|c| c.mode).collect();
    if modes.iter().all(|m| *m == Some(CasMode::NoUpload)) {
        return Ok(code);
    }
    if let Some(Some(mode)) = modes
        .iter()
        .find(|m| !matches!(m, None | Some(CasMode::Upload) | Some(CasMode::NoUpload)))
    {
        eprintln!(
            "error: CAS mode `{mode:?}` is not supported yet; the sessions are in {} but were not delivered.\n  = help: use `mode: Upload` (sessions go to CAS directly) or `mode: NoUpload` (only write the target directory)",
            args.compile.target.join("policies").display()
        );
        return Ok(exit::INVALID);
    }
    eprintln!(
        "error: the sessions were written to {} but not uploaded: delivering policies to CAS is not implemented in this version of meshfile.\n  = help: upload them with SCONE's `scone session create`, or run `meshfile apply --dry-run` (or set `mode: NoUpload`) to only write the target directory",
        args.compile.target.join("policies").display()
    );
    Ok(exit::INVALID)
}
