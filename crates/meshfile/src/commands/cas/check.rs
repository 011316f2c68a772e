//! `cas check`: verify a development CAS's store while it is stopped.

use std::path::Path;

use meshfile_app::{Error, Exit, Stop};

pub fn run(state: &Path) -> Result<Exit, Stop> {
    let store_file = meshfile_cas::pki::StateFiles::in_dir(state)
        .store
        .join("sessions.redb");
    let checked = meshfile_cas::server::check_state(state).map_err(|e| {
        Error::cas(&store_file.display().to_string(), &e).hint(
            "pass the --state directory that `meshfile cas serve` uses; nothing in it was changed",
        )
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
