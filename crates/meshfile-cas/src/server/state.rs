//! The state directory of `cas serve`: its identity files and store, opened only when they
//! add up, and checked while the server is stopped.

use super::*;

/// Opens the state directory's store, refusing a state that does not add up: a store with
/// sessions but no identity files (a new owner would hold none of them), identity files but
/// no store or an empty file (the sessions are gone: never start empty in their place), or
/// a store whose check finds damage. Identity files are made only in an empty directory.
pub fn open_state(
    state: &Path,
    names: &[String],
    quota: Quota,
) -> Result<(Store, bool, crate::store::Checked), Error> {
    let (files, has_identity) = state_in_place(state)?;
    let store_file = files.store.join("sessions.redb");
    // The store first: a start interrupted before the identity is made leaves a store
    // without sessions, which the next start accepts.
    let store = Store::open_with(&files.store, quota)?;
    let checked = store.check()?;
    if let Some(first) = checked.problems.first() {
        return Err(Error::Damaged(format!(
            "{} problem(s) in {}, the first: {first}; `meshfile cas check --state {}` lists them all. Nothing is served from a damaged store",
            checked.problems.len(),
            store_file.display(),
            state.display()
        )));
    }
    if !has_identity && checked.sessions > 0 {
        return Err(Error::Damaged(format!(
            "{} holds {} session(s) but the state directory has no CA or identity files: a new owner would hold none of them. Restore the files from a backup",
            store_file.display(),
            checked.sessions
        )));
    }
    let created = pki::init_state(state, names)?;
    Ok((store, created, checked))
}

/// The state directory's files, and whether it holds identity files, unless it holds them
/// with a missing or empty store: then its sessions are gone, and neither a start nor a check
/// may take an empty store in their place.
pub(super) fn state_in_place(state: &Path) -> Result<(StateFiles, bool), Error> {
    let files = StateFiles::in_dir(state);
    let store_file = files.store.join("sessions.redb");
    let has_identity = files.identity().iter().any(|p| p.exists());
    let store_size = std::fs::metadata(&store_file).map(|m| m.len()).ok();
    if has_identity && store_size.is_none_or(|n| n == 0) {
        return Err(Error::Damaged(format!(
            "{} is {} although the state directory holds its CA and identities: its sessions are gone, and an empty store does not stand in for them. Restore the file from a backup, or start with an empty --state directory",
            store_file.display(),
            if store_size.is_none() {
                "missing"
            } else {
                "empty"
            }
        )));
    }
    Ok((files, has_identity))
}

/// `cas check`: the store of a stopped server's state directory, verified, changing nothing.
pub fn check_state(state: &Path) -> Result<crate::store::Checked, Error> {
    let (files, _) = state_in_place(state)?;
    let mut checked = Store::open_existing(&files.store)?.check()?;
    if checked.sessions > 0 && !files.session_encryption_key.exists() {
        checked.problems.push(crate::pki::missing_encryption_key(
            &files.session_encryption_key,
            checked.sessions,
        ));
    }
    Ok(checked)
}
