//! `meshfile cas ...`: the development CAS.

use std::io::Write;

use meshfile_app::{Error, Exit, Stop};

use crate::cli::CasCommand;

pub fn run(command: CasCommand) -> Result<Exit, Stop> {
    match command {
        CasCommand::Serve {
            listen,
            public_listen,
            state,
            names,
        } => {
            meshfile_cas::server::serve(
                listen,
                public_listen,
                &state,
                &names,
                |meshfile_cas::server::Listening {
                     addr,
                     public,
                     files,
                     created,
                 }| {
                    let owner = std::fs::read_to_string(&files.owner)
                        .ok()
                        .and_then(|pem| meshfile_cas::pki::key_hash_of_pem(&pem).ok())
                        .unwrap_or_default();
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "meshfile development CAS listening on https://{addr}");
                    let _ = writeln!(
                        out,
                        "  NOT SCONE CAS: no SGX and no attestation; for development and CI only."
                    );
                    let _ = writeln!(
                        out,
                        "  {} state in {}",
                        if created { "created" } else { "using" },
                        state.display()
                    );
                    let _ = writeln!(out, "  trust the server with:  {}", files.ca.display());
                    let _ = writeln!(
                        out,
                        "  owner identity:         {} (key hash {owner})",
                        files.owner.display()
                    );
                    let _ = writeln!(
                        out,
                        "  try: curl --cacert {} --cert {} https://{addr}/v1/version",
                        files.ca.display(),
                        files.owner.display()
                    );
                    if let Some(public) = public {
                        let _ = writeln!(
                            out,
                            "  public values, no client certificate: https://{public}/v1/values/session=<name>"
                        );
                    }
                    let _ = out.flush();
                },
            )
            .map_err(|e| Error::cas("the development CAS", &e))?;
            Ok(Exit::Ok)
        }
        CasCommand::KeyHash { file } => {
            let pem = std::fs::read_to_string(&file).map_err(|e| Error::read(&file, e))?;
            let hash = meshfile_cas::pki::key_hash_of_pem(&pem)
                .map_err(|e| Error::cas(&file.display().to_string(), &e))?;
            crate::commands::print(&format!("{hash}\n"))?;
            Ok(Exit::Ok)
        }
    }
}
