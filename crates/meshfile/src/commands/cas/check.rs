//! `cas check`: verify a development CAS's store while it is stopped.

use std::path::Path;

use meshfile_app::{Error, Exit, Stop};
use meshfile_manifest::Code;

pub fn run(state: &Path) -> Result<Exit, Stop> {
    let files = meshfile_cas::pki::StateFiles::in_dir(state);
    let store_file = files.store.join("sessions.redb");
    let what_to_pass = "pass the --state directory that `meshfile cas serve` uses";
    if !state.is_dir() {
        return Err(Error::new(
            Code::InputNotFound,
            format!("there is no directory {}", state.display()),
        )
        .hint(what_to_pass)
        .into());
    }
    // A directory with none of a state's files is the wrong one, not a damaged store.
    let known = [
        &files.ca,
        &files.ca_key,
        &files.server_cert,
        &files.server_key,
        &files.owner,
        &files.store,
        &files.session_encryption_key,
    ];
    if !known.iter().any(|f| f.exists()) {
        return Err(Error::new(
            Code::BadArguments,
            format!(
                "{} holds no development CAS state (no store/, server.pem or ca.pem)",
                state.display()
            ),
        )
        .hint(what_to_pass)
        .into());
    }
    let checked = meshfile_cas::server::check_state(state).map_err(|e| {
        Error::cas(&store_file.display().to_string(), &e)
            .hint(format!("{what_to_pass}; nothing in it was changed"))
    })?;
    let mut out = String::new();
    for problem in &checked.problems {
        out.push_str(&format!("damaged: {problem}\n"));
    }
    out.push_str(&format!(
        "{}: {} sessions, {} versions, {}\n",
        store_file.display(),
        checked.sessions,
        checked.versions,
        match checked.problems.len() {
            0 => "every version matches its hash and every history is whole".to_owned(),
            n => format!("{n} problem(s)"),
        }
    ));
    crate::commands::print(&out)?;
    Ok(if checked.problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Invalid
    })
}
