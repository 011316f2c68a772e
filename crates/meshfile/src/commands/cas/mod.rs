//! `meshfile cas ...`: the development CAS, and what to ask of any CAS.

mod check;
mod probe;
mod serve;

use meshfile_app::{Error, Exit, Stop};

use crate::cli::CasCommand;

pub fn run(command: CasCommand) -> Result<Exit, Stop> {
    match command {
        serve @ CasCommand::Serve { .. } => serve::run(serve),
        CasCommand::Check { state } => check::run(&state),
        CasCommand::Probe { address, trust } => probe::run(&address, &trust),
        CasCommand::KeyHash { file } => {
            let pem = meshfile_app::paths::read_key_file(&file)?;
            let hash = meshfile_cas::pki::key_hash_of_pem(&pem)
                .map_err(|e| Error::cas(&file.display().to_string(), &e))?;
            crate::commands::print(&format!("{hash}\n"))?;
            Ok(Exit::Ok)
        }
    }
}
