//! Which Meshfile's output a target directory holds. `target/` is relative to the working
//! directory, not to the Meshfile: two meshes applied from one directory share it, and the
//! second replaces the first's policies and chart. Each write records the Meshfile it came
//! from, so that the next one from another Meshfile can say so.

use std::path::{Path, PathBuf};

use crate::Error;

/// The file in the target directory naming the Meshfile whose output it holds.
pub const OWNER_FILE: &str = ".meshfile-source";

/// A Meshfile as the owner file names it: its path made absolute (standard input as `-`).
fn identity(meshfile: &str) -> PathBuf {
    let path = Path::new(meshfile);
    if meshfile == "-" {
        return path.to_owned();
    }
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_owned())
    })
}

/// Records that `target` now holds `meshfile`'s output; the Meshfile whose output it held
/// before, when that was another.
pub fn claim(target: &Path, meshfile: &str) -> Result<Option<PathBuf>, Error> {
    let owner_file = target.join(OWNER_FILE);
    let this = identity(meshfile);
    let before = std::fs::read(&owner_file)
        .ok()
        .filter(|bytes| bytes.len() <= 64 * 1024)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(|text| PathBuf::from(text.trim_end_matches('\n')));
    if before.as_ref() == Some(&this) {
        return Ok(None);
    }
    std::fs::create_dir_all(target).map_err(|e| Error::write(target, e))?;
    let mut text = this.to_string_lossy().into_owned();
    text.push('\n');
    crate::write::file(&owner_file, text.as_bytes())?;
    Ok(before)
}
