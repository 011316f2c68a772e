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
                    let _ = writeln!(out, "  trust the server with:  {} (its certificate is for the name `cas`)", files.ca.display());
                    if let Some(hash) = std::fs::read_to_string(&files.server_cert)
                        .ok()
                        .and_then(|pem| meshfile_cas::pki::key_hash_of_pem(&pem).ok())
                    {
                        let b58 = meshfile_cas::pki::base58check(&hash).unwrap_or_default();
                        let _ = writeln!(
                            out,
                            "  server key hash:        {hash} (Base58Check {b58}; SHA-256 of the certificate's SubjectPublicKeyInfo)"
                        );
                    }
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
        CasCommand::Probe { address, trust } => probe(&address, &trust),
        CasCommand::KeyHash { file } => {
            let pem = std::fs::read_to_string(&file).map_err(|e| Error::read(&file, e))?;
            let hash = meshfile_cas::pki::key_hash_of_pem(&pem)
                .map_err(|e| Error::cas(&file.display().to_string(), &e))?;
            crate::commands::print(&format!("{hash}\n"))?;
            Ok(Exit::Ok)
        }
    }
}

/// `cas probe`: who the CAS at `address` is, and whether the given trust accepts it.
fn probe(address: &str, trust: &crate::cli::TrustArgs) -> Result<Exit, Stop> {
    let settings = crate::commands::delivery::settings(trust);
    let (probe, notices) = meshfile_app::deliver::probe(address, &settings)?;
    crate::commands::delivery::notices(&notices);
    let mut out = format!(
        "CAS {}\n  certificate chain (as presented):\n",
        probe.address
    );
    for (i, names) in probe.chain.iter().enumerate() {
        out.push_str(&format!(
            "    {i}: {names}\n       issued by {}\n",
            names.issuer
        ));
    }
    if let Some((hex, b58)) = &probe.key_hash {
        out.push_str(&format!(
            "  key hash: {hex}\n            {b58} (Base58Check, as SCONE writes cas_key)\n"
        ));
    }
    match &probe.version {
        Ok(version) => out.push_str(&format!("  version: {version}\n")),
        Err(e) => out.push_str(&format!("  version: not answered: {e}\n")),
    }
    let exit = match &probe.trust {
        Some(Ok(checked)) => {
            out.push_str(&format!("  trust: accepted: {checked}\n"));
            Exit::Ok
        }
        Some(Err(why)) => {
            out.push_str(&format!("  trust: REFUSED: {why}\n"));
            Exit::Invalid
        }
        None => {
            let pin = probe
                .key_hash
                .as_ref()
                .map_or("HASH", |(hex, _)| hex.as_str());
            out.push_str(&format!(
                "  trust: none given; pass --cas-ca FILE (with --cas-server-name if its certificate is not for `cas`), or --cas-pin {pin} once you know this is your CAS\n"
            ));
            Exit::Ok
        }
    };
    crate::commands::print(&out)?;
    Ok(exit)
}
