//! Atomic writes: a reader sees the old files or the new ones, never a mix or a half file.
//!
//! A generated tree is written beside its destination, made durable with one `syncfs` (a
//! large mesh has thousands of files; one fsync each would dominate the run), then swapped
//! in by rename. An interrupted run leaves the old tree and a staging leftover that the next
//! run removes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::CliError;

fn io(path: &Path) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |source| CliError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Flushes everything written to the file system that holds `path`.
fn sync_filesystem(path: &Path) -> Result<(), CliError> {
    let dir = std::fs::File::open(path).map_err(io(path))?;
    rustix::fs::syncfs(&dir).map_err(|e| CliError::Write {
        path: path.to_owned(),
        source: e.into(),
    })
}

fn sync_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Writes `contents` to `path` through a temporary file in the same directory, fsynced, then
/// renamed; a file that already holds exactly `contents` is left alone.
pub fn write_file(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
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
    sync_dir(dir)
}

/// One directory to replace: where it goes, what it holds instead, and the tree being built.
struct Replacement<'a, C> {
    dir: &'a Path,
    files: &'a BTreeMap<String, C>,
    staging: PathBuf,
    old: PathBuf,
}

/// Writes every replacement's files under its staging directory: each directory created once,
/// files spread over a few threads (trees in order, so threads mostly work in different
/// directories). A file identical to its counterpart in the tree it replaces is hard-linked
/// instead of written: rerunning on a mesh with few changes then allocates few new inodes.
fn write_trees<C: AsRef<[u8]> + Sync>(trees: &[Replacement<'_, C>]) -> Result<(), CliError> {
    let mut entries: Vec<(PathBuf, Option<PathBuf>, &C)> = Vec::new();
    for tree in trees {
        let dirs: BTreeSet<PathBuf> = tree
            .files
            .keys()
            .filter_map(|rel| tree.staging.join(rel).parent().map(Path::to_path_buf))
            .collect();
        std::fs::create_dir_all(&tree.staging).map_err(io(&tree.staging))?;
        for dir in &dirs {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let previous = tree.dir.is_dir();
        entries.extend(tree.files.iter().map(|(rel, contents)| {
            let old = previous.then(|| tree.dir.join(rel));
            (tree.staging.join(rel), old, contents)
        }));
    }
    meshfile_plan::parallel::map(&entries, |(path, old, contents)| {
        let contents = contents.as_ref();
        if let Some(old) = old
            && std::fs::read(old).is_ok_and(|bytes| bytes == contents)
            && std::fs::hard_link(old, path).is_ok()
        {
            return Ok(());
        }
        std::fs::write(path, contents).map_err(io(path))
    })
    .into_iter()
    .collect()
}

/// Whether `dir` holds exactly `files`, byte for byte (then there is nothing to write).
/// Names are compared first; contents are read on a few threads.
fn holds_exactly<C: AsRef<[u8]> + Sync>(dir: &Path, files: &BTreeMap<String, C>) -> bool {
    let mut found = Vec::with_capacity(files.len());
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            return false;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(path);
                continue;
            }
            let Some(contents) = path
                .strip_prefix(dir)
                .ok()
                .and_then(|r| r.to_str())
                .and_then(|rel| files.get(rel))
            else {
                return false;
            };
            found.push((path, contents));
        }
    }
    found.len() == files.len()
        && meshfile_plan::parallel::map(&found, |(path, contents)| {
            std::fs::read(path).is_ok_and(|b| b == contents.as_ref())
        })
        .into_iter()
        .all(|same| same)
}

/// Replaces each directory with exactly its files (relative path to contents), leaving alone
/// those that already hold exactly them. All new trees are made durable with one `syncfs`
/// before the first is swapped in.
pub fn replace_dirs<C: AsRef<[u8]> + Sync>(
    trees: &[(&Path, &BTreeMap<String, C>)],
) -> Result<(), CliError> {
    let mut changed = Vec::new();
    for &(dir, files) in trees {
        if holds_exactly(dir, files) {
            continue;
        }
        let parent = dir.parent().unwrap_or(Path::new("."));
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let staging = parent.join(format!(".{name}.new"));
        let old = parent.join(format!(".{name}.old"));
        for leftover in [&staging, &old] {
            if leftover.exists() {
                std::fs::remove_dir_all(leftover).map_err(io(leftover))?;
            }
        }
        changed.push(Replacement {
            dir,
            files,
            staging,
            old,
        });
    }
    let Some(first) = changed.first() else {
        return Ok(());
    };
    write_trees(&changed)?;
    sync_filesystem(&first.staging)?;
    for tree in &changed {
        let parent = tree.dir.parent().unwrap_or(Path::new("."));
        if tree.dir.exists() {
            std::fs::rename(tree.dir, &tree.old).map_err(io(tree.dir))?;
        }
        std::fs::rename(&tree.staging, tree.dir).map_err(io(tree.dir))?;
        sync_dir(parent)?;
        if tree.old.exists() {
            std::fs::remove_dir_all(&tree.old).map_err(io(&tree.old))?;
        }
    }
    Ok(())
}
