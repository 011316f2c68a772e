//! `cas serve`: the development CAS, and what it says on start.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use meshfile_app::{Error, Exit, Stop};
use meshfile_cas::server::{Bounds, Listening};

use crate::cli::CasCommand;

pub fn run(command: CasCommand) -> Result<Exit, Stop> {
    let CasCommand::Serve {
        listen,
        public_listen,
        state,
        names,
        max_connections,
        max_connections_per_identity,
        idle_timeout,
        quota_mib,
    } = command
    else {
        unreachable!("dispatched on Serve");
    };
    let bounds = Bounds {
        max_connections: max_connections as usize,
        max_connections_per_identity: max_connections_per_identity as usize,
        idle_timeout: Duration::from_secs(idle_timeout),
        quota: meshfile_cas::store::Quota {
            bytes_per_identity: quota_mib * 1024 * 1024,
        },
    };
    meshfile_cas::server::serve(listen, public_listen, &state, &names, bounds, |listening| {
        banner(&state, &listening)
    })
    .map_err(|e| {
        let error = Error::cas("the development CAS", &e);
        match e {
            // Refused before the state directory was touched.
            meshfile_cas::Error::Listen { .. } => error,
            _ => error.hint(format!("the state directory is {}", state.display())),
        }
    })?;
    Ok(Exit::Ok)
}

/// Where the server listens, how to trust it, and who owns it: the first line is the address
/// (scripts read it).
fn banner(state: &Path, listening: &Listening<'_>) {
    let Listening {
        addr,
        public,
        files,
        created,
        bounds,
        checked,
        session_encryption_key,
    } = listening;
    let key_hash_of = |path: &Path| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|pem| meshfile_cas::pki::key_hash_of_pem(&pem).ok())
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "meshfile development CAS listening on https://{addr}");
    let _ = writeln!(
        out,
        "  NOT SCONE CAS: no SGX and no attestation; for development and CI only."
    );
    let _ = writeln!(
        out,
        "  {} state in {} ({} sessions, {} versions, verified)",
        if *created { "created" } else { "using" },
        state.display(),
        checked.sessions,
        checked.versions
    );
    let _ = writeln!(
        out,
        "  trust the server with:  {} (its certificate is for the name `cas`)",
        files.ca.display()
    );
    if let Some(hash) = key_hash_of(&files.server_cert) {
        let b58 = meshfile_cas::pki::base58check(&hash).unwrap_or_default();
        let _ = writeln!(
            out,
            "  server key hash:        {hash} (Base58Check {b58}; SHA-256 of the certificate's SubjectPublicKeyInfo)"
        );
    }
    let _ = writeln!(
        out,
        "  session encryption key: {session_encryption_key} (cas_encryption_key; HPKE X25519)"
    );
    let owner = key_hash_of(&files.owner).map_or_else(
        || "missing or unreadable: the owner's own copy of the key still works".to_owned(),
        |hash| format!("key hash {hash}"),
    );
    let _ = writeln!(
        out,
        "  owner identity:         {} ({owner})",
        files.owner.display()
    );
    let _ = writeln!(
        out,
        "  bounds: {} connections ({} per identity), idle {} s, {} MiB per identity",
        bounds.max_connections,
        bounds.max_connections_per_identity,
        bounds.idle_timeout.as_secs(),
        bounds.quota.bytes_per_identity / (1024 * 1024)
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
}
