//! `cas probe`: who a CAS is, before anything is sent to it.

use meshfile_app::{Exit, Stop};

/// `cas probe`: who the CAS at `address` is, and whether the given trust accepts it.
pub fn run(address: &str, trust: &crate::cli::TrustArgs) -> Result<Exit, Stop> {
    let settings = trust.access();
    let (probe, notices) = meshfile_app::probe::probe(address, &settings)?;
    notices
        .iter()
        .for_each(|n| crate::render::eprint(&format!("{n}\n")));
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
    if let Some(key) = &probe.session_encryption_key {
        out.push_str(&format!(
            "  session encryption key: {key} (cas_encryption_key)\n"
        ));
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
