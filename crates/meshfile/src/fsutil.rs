//! Atomic writes: a reader sees the old files or the new ones, never a mix or a half file.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::CliError;

fn io(path: &Path) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |source| CliError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Writes `contents` to `path` through a temporary file in the same directory, fsynced, then renamed.
pub fn write_file(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(contents).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Replaces directory `dir` with exactly `files` (relative path to contents): the new tree is
/// written beside it, then swapped in by rename. Leftovers of an interrupted run are removed.
pub fn replace_dir(
    dir: &Path,
    files: &std::collections::BTreeMap<String, String>,
) -> Result<(), CliError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let staging: PathBuf = parent.join(format!(".{name}.new"));
    let old: PathBuf = parent.join(format!(".{name}.old"));
    for leftover in [&staging, &old] {
        if leftover.exists() {
            std::fs::remove_dir_all(leftover).map_err(io(leftover))?;
        }
    }
    for (rel, contents) in files {
        let path = staging.join(rel);
        let file_dir = path.parent().unwrap_or(&staging);
        std::fs::create_dir_all(file_dir).map_err(io(file_dir))?;
        let mut file = std::fs::File::create(&path).map_err(io(&path))?;
        file.write_all(contents.as_bytes()).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
    }
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(io(dir))?;
    }
    std::fs::rename(&staging, dir).map_err(io(dir))?;
    sync_dir(parent);
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}
