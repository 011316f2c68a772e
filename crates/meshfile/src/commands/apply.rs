//! `apply`: record service manifests, compile meshes, copy images, write `target/`, then make
//! CAS hold exactly each mesh's sessions (`meshfile_app::usecase::apply`).

use meshfile_app::usecase::Settings;
use meshfile_app::usecase::apply::{self, Delivery};
use meshfile_app::{Exit, Stop};

use crate::cli::{ApplyArgs, OutputFormat};
use crate::commands::{self, steps, terminal::Terminal};
use crate::render;

pub fn run(args: &ApplyArgs) -> Result<Exit, Stop> {
    commands::sconectl::check(&args.sconectl, &args.compile)?;
    let settings = Settings {
        mrenclaves: args.record.mrenclaves.clone(),
        identity: args.cas.trust.identity.clone(),
        helm_template: args.sconectl.helm_template.clone(),
        ..args.compile.settings()?
    };
    let ui = Terminal {
        quiet: args.compile.quiet,
        verbose: args.cas.verbose > 0,
    };
    if args.print_defaults {
        let compilation = apply::variables(&settings, &ui)?;
        let text: String = (compilation.meshes.iter())
            .map(|m| steps::variables(&m.file, &m.compiled))
            .collect();
        commands::print(&text)?;
        return Ok(Exit::Ok);
    }
    let delivery = Delivery {
        access: args.cas.trust.access(),
        upload: args.cas.upload,
        dry_run: args.dry_run,
    };
    let mut status = Exit::Ok;
    let mut report = Vec::new();
    for applied in apply::apply(&settings, &delivery, &ui)? {
        let (text, results, exit) = steps::applied(&applied, args.compile.quiet);
        render::eprint(&text);
        status = status.max(exit);
        report.extend(results);
    }
    if args.output == OutputFormat::Json {
        commands::print_json(&report)?;
    }
    Ok(status)
}
