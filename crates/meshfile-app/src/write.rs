//! Stage 6, write `target/` atomically: a reader sees the old files or the new ones, never a
//! mix, a half-written file or a missing directory.
//!
//! A tree (`target/policies`, `target/helm`) is written beside its destination under a fresh,
//! unique name, made durable (one `syncfs` on Linux: a large mesh has thousands of files and
//! one fsync each would dominate the run; elsewhere an fsync per file), then swapped in: on
//! Linux with one atomic exchange of the two directories, elsewhere with two renames (a reader
//! may then find the directory missing for that instant). A tree that already holds exactly
//! the new files is left alone. An interrupted run leaves the old tree and a staging leftover,
//! which the next run removes.

use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::Error;

/// Writing that goes on while the caller computes, on threads only this module starts: a large
/// descriptor store takes ~70 ms to write and make durable at 10,000 services, and making a
/// cold run's 10,000 policy files more, most of it waiting on the disk, which would otherwise
/// hold a core the compiler needs. Joined by [`Background::finish`], or when dropped.
pub struct Background<T> {
    thread: Option<std::thread::JoinHandle<T>>,
}

pub fn background<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Background<T> {
    Background {
        thread: Some(std::thread::spawn(work)),
    }
}

impl<T> Background<T> {
    /// Waits for the work and returns what it returned.
    pub fn finish(mut self) -> T {
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(value)) => value,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => unreachable!("a background write is finished once"),
        }
    }
}

impl<T> Drop for Background<T> {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A directory's complete new contents: `/`-separated relative path and bytes.
pub struct Tree {
    pub dir: PathBuf,
    pub files: Vec<(String, Vec<u8>)>,
}

/// Writes `contents` to `path` through a temporary file in the same directory, fsynced, then
/// renamed; a file that already holds exactly `contents` is left alone. Readable by all.
pub fn file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    replace(path, contents, 0o644)
}

/// [`file`] for an output the user named on the command line: written only where a regular
/// file is, or nothing. A device (`/dev/full`), a FIFO, a directory or a link is refused,
/// naming the path, before anything is opened: renaming over a device as root would replace
/// it, a FIFO would hang the run, a link would write somewhere else.
pub fn user_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::write(path, e)),
        Ok(meta) if meta.file_type().is_file() => {}
        Ok(meta) => {
            let what = if meta.file_type().is_symlink() {
                "a symbolic link"
            } else if meta.is_dir() {
                "a directory"
            } else {
                "a device, FIFO or socket"
            };
            return Err(Error::new(
                meshfile_manifest::Code::BadArguments,
                format!(
                    "{} is {what}, not a regular file: nothing was written",
                    path.display()
                ),
            )
            .hint("name a new file, or a regular file to replace"));
        }
    }
    file(path, contents)
}

/// [`file`] for a private key: readable by its owner only, in a directory only the owner can
/// enter when meshfile makes it.
pub fn private_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    private_dir(path)?;
    replace(path, contents, 0o600)
}

/// The directory `path` goes in, made (only its owner may enter) when missing.
fn private_dir(path: &Path) -> Result<&Path, Error> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = parent(path);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::write(dir, e))?;
    Ok(dir)
}

/// A new private file (mode 0600, in a directory only the owner can enter when made): written
/// whole under a temporary name, then linked under `path`, which fails if `path` exists, so
/// a file is never replaced.
pub fn private_new_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let dir = private_dir(path)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".meshfile-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| Error::write(dir, e))?;
    tmp.write_all(contents)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::write(tmp.path(), e))?;
    std::fs::hard_link(tmp.path(), path).map_err(|e| Error::write(path, e))?;
    sync_dir(dir)
}

/// Replaces `path` (atomically, durably; mode 0644 as [`file`]) with what `write` writes, as
/// it writes it: for a file too large to hold in memory twice.
pub fn streamed_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let dir = parent(path);
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".meshfile-")
        .tempfile_in(dir)
        .map_err(|e| Error::write(dir, e))?;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, tmp);
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| Error::write(path, e))?;
    let tmp = out
        .into_inner()
        .map_err(|e| Error::write(path, e.into_error()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        (tmp.as_file())
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| Error::write(tmp.path(), e))?;
    }
    tmp.persist(path).map_err(|e| Error::write(path, e.error))?;
    sync_dir(dir)
}

fn replace(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    if holds(path, contents) {
        return Ok(());
    }
    let dir = parent(path);
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".meshfile-")
        .tempfile_in(dir)
        .map_err(|e| Error::write(dir, e))?;
    tmp.write_all(contents)
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
        })
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::write(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| Error::write(path, e.error))?;
    sync_dir(dir)
}

/// A new tree's files made ahead, empty, while their contents are still being computed: on a
/// cold disk creating thousands of files is most of writing them, and a mesh's policy file
/// names are known before it compiles. [`stage`] then fills them in.
pub struct Prepared {
    dir: PathBuf,
    staging: PathBuf,
    made: Vec<String>,
    /// Whether [`stage`] made the tree its own; else (the run failed before it wrote, or wrote
    /// elsewhere) the files made ahead are removed when this is dropped.
    taken: bool,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.taken {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Makes `names` (relative paths) empty in a staging tree for `dir`, on the background thread;
/// nothing when `dir` exists (a tree in place is compared with, not written anew).
pub fn prepare(dir: PathBuf, names: Vec<String>) -> Background<Result<Option<Prepared>, Error>> {
    background(move || {
        if dir.exists() {
            return Ok(None);
        }
        let staging = new_staging(&dir)?;
        make_dirs(&staging, names.iter().map(String::as_str))?;
        for name in &names {
            let path = staging.join(name);
            std::fs::File::create(&path).map_err(|e| Error::write(&path, e))?;
        }
        Ok(Some(Prepared {
            dir,
            staging,
            made: names,
            taken: false,
        }))
    })
}

/// Makes staged trees durable, all at once, then swaps each in for its directory.
pub fn commit(staged: Vec<Staged>) -> Result<(), Error> {
    if staged.is_empty() {
        return Ok(());
    }
    durable(&staged)?;
    staged.iter().try_for_each(Staged::swap)
}

/// [`stage`], then made durable at once: the disk writes a large tree back while the caller
/// makes the rest, and [`commit`] finds little left to wait for (10,000 policies: the
/// `syncfs` after the chart then waits ~50 ms less).
pub fn stage_durable(tree: Tree, prepared: Option<Prepared>) -> Result<Option<Staged>, Error> {
    let staged = stage(tree, prepared)?;
    if let Some(s) = &staged {
        durable(std::slice::from_ref(s))?;
    }
    Ok(staged)
}

/// A tree written in full beside the directory it replaces, not yet in its place.
pub struct Staged {
    dir: PathBuf,
    staging: PathBuf,
    /// Every file and directory written, for systems without `syncfs`.
    #[cfg_attr(target_os = "linux", expect(dead_code, reason = "syncfs covers them"))]
    files: Vec<PathBuf>,
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The prefix of a directory's staging trees: `.policies.staging-`.
fn staging_prefix(dir: &Path) -> String {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    format!(".{name}.staging-")
}

/// A fresh staging directory beside `dir`, leftovers of interrupted runs removed first.
fn new_staging(dir: &Path) -> Result<PathBuf, Error> {
    let parent = parent(dir).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| Error::write(&parent, e))?;
    remove_leftovers(&parent, &staging_prefix(dir))?;
    let staging = tempfile::Builder::new()
        .prefix(&staging_prefix(dir))
        .tempdir_in(&parent)
        .map_err(|e| Error::write(&parent, e))?;
    Ok(staging.keep())
}

/// The directories the files at `relative` paths need under `root`.
fn make_dirs<'a>(
    root: &Path,
    relative: impl Iterator<Item = &'a str>,
) -> Result<Vec<PathBuf>, Error> {
    let mut dirs: Vec<PathBuf> = relative
        .filter_map(|r| Path::new(r).parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        let path = root.join(d);
        std::fs::create_dir_all(&path).map_err(|e| Error::write(&path, e))?;
    }
    Ok(dirs)
}

/// Writes the tree beside its directory (into `prepared` files where they were made ahead),
/// or `None` when the directory holds exactly its files.
pub fn stage(tree: Tree, prepared: Option<Prepared>) -> Result<Option<Staged>, Error> {
    let Tree { dir, mut files } = tree;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let previous = dir.is_dir();
    let unchanged: Vec<bool> = if previous {
        files
            .par_iter()
            .map(|(relative, contents)| holds(&dir.join(relative), contents))
            .collect()
    } else {
        vec![false; files.len()]
    };
    if previous && unchanged.iter().all(|u| *u) && holds_exactly(&dir, &files) {
        return Ok(None);
    }
    let mut prepared = prepared.filter(|p| p.dir == dir && !previous);
    let staging = match &prepared {
        Some(p) => p.staging.clone(),
        None => new_staging(&dir)?,
    };
    let dirs = make_dirs(&staging, files.iter().map(|(r, _)| r.as_str()))?;
    // The files on all cores (the chart is made meanwhile).
    let written: Vec<PathBuf> = files
        .par_iter()
        .zip(unchanged.par_iter())
        .map(|((relative, contents), &same)| {
            let path = staging.join(relative);
            // A file identical to its counterpart in place is linked: a rerun with few
            // changes allocates few new inodes.
            let linked = same && std::fs::hard_link(dir.join(relative), &path).is_ok();
            if !linked {
                std::fs::write(&path, contents).map_err(|e| Error::write(&path, e))?;
            }
            Ok(path)
        })
        .collect::<Result<_, Error>>()?;
    // Files made ahead for sessions the mesh did not produce.
    if let Some(p) = &prepared {
        let wanted: std::collections::HashSet<&str> =
            files.iter().map(|(r, _)| r.as_str()).collect();
        for name in p.made.iter().filter(|n| !wanted.contains(n.as_str())) {
            let path = staging.join(name);
            std::fs::remove_file(&path).map_err(|e| Error::write(&path, e))?;
        }
    }
    let mut all: Vec<PathBuf> = dirs.iter().map(|d| staging.join(d)).collect();
    all.push(staging.clone());
    all.extend(written);
    if let Some(p) = &mut prepared {
        p.taken = true;
    }
    Ok(Some(Staged {
        dir,
        staging,
        files: all,
    }))
}

/// Staging trees an interrupted run left beside `parent`'s directory.
fn remove_leftovers(parent: &Path, prefix: &str) -> Result<(), Error> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(prefix))
        {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(|e| Error::write(&path, e))?;
        }
    }
    Ok(())
}

/// Whether the file at `path` holds exactly `contents`. A file of another size is not read:
/// a rerun in which every file changed then reads none of the old ones.
fn holds(path: &Path, contents: &[u8]) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    if !file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() == contents.len() as u64)
    {
        return false;
    }
    let mut old = Vec::with_capacity(contents.len());
    std::io::Read::read_to_end(&mut file, &mut old).is_ok() && old == contents
}

/// Whether `dir` holds no file other than `files` (whose contents were compared already).
fn holds_exactly(dir: &Path, files: &[(String, Vec<u8>)]) -> bool {
    let mut found = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            return false;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(entry.path());
            } else {
                found += 1;
            }
        }
    }
    found == files.len()
}

/// Makes the staged trees durable before anything is swapped.
#[cfg(target_os = "linux")]
fn durable(staged: &[Staged]) -> Result<(), Error> {
    let Some(first) = staged.first() else {
        return Ok(());
    };
    let dir = std::fs::File::open(&first.staging).map_err(|e| Error::write(&first.staging, e))?;
    rustix::fs::syncfs(&dir).map_err(|e| Error::write(&first.staging, e.into()))
}

/// Makes the staged trees durable before anything is swapped.
#[cfg(not(target_os = "linux"))]
fn durable(staged: &[Staged]) -> Result<(), Error> {
    staged
        .par_iter()
        .flat_map(|s| &s.files)
        .try_for_each(|path| {
            std::fs::File::open(path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::write(path, e))
        })
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::write(dir, e))
}

impl Staged {
    /// Puts the staged tree in the directory's place and removes the old one.
    fn swap(&self) -> Result<(), Error> {
        let parent = parent(&self.dir);
        if self.dir.exists() {
            exchange(&self.staging, &self.dir)?;
            // The old tree is now at the staging path.
        } else {
            std::fs::rename(&self.staging, &self.dir).map_err(|e| Error::write(&self.dir, e))?;
        }
        sync_dir(parent)?;
        if self.staging.exists() {
            std::fs::remove_dir_all(&self.staging).map_err(|e| Error::write(&self.staging, e))?;
        }
        Ok(())
    }
}

/// Swaps two directories atomically: no moment in which either path is missing.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<(), Error> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(|e| Error::write(b, e.into()))
}

/// Swaps two directories: `b` moves aside, `a` takes its place, the old `b` ends up at `a`.
/// Between the two renames `b` is missing; file systems elsewhere offer no atomic exchange.
#[cfg(not(target_os = "linux"))]
fn exchange(a: &Path, b: &Path) -> Result<(), Error> {
    let aside = a.with_extension("old");
    std::fs::rename(b, &aside).map_err(|e| Error::write(b, e))?;
    std::fs::rename(a, b).map_err(|e| Error::write(b, e))?;
    std::fs::rename(&aside, a).map_err(|e| Error::write(a, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn write_tree(dir: &Path, files: &[(&str, &str)]) -> Result<(), Error> {
        let tree = Tree {
            dir: dir.to_path_buf(),
            files: files
                .iter()
                .map(|(relative, text)| ((*relative).to_owned(), text.as_bytes().to_vec()))
                .collect(),
        };
        commit(stage(tree, None)?.into_iter().collect())
    }

    #[test]
    fn files_made_ahead_are_filled_in_and_extra_ones_removed() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("out");
        let names = vec![
            "ns.yaml".to_owned(),
            "ns/a.yaml".to_owned(),
            "ns/gone.yaml".to_owned(),
        ];
        let prepared = prepare(dir.clone(), names).finish().expect("prepared");
        assert!(prepared.is_some(), "a new tree is prepared");
        let tree = Tree {
            dir: dir.clone(),
            files: vec![
                ("ns.yaml".into(), b"n".to_vec()),
                ("ns/a.yaml".into(), b"a".to_vec()),
                ("ns/new.yaml".into(), b"x".to_vec()),
            ],
        };
        let staged = stage(tree, prepared).expect("stage");
        commit(staged.into_iter().collect()).expect("commit");
        assert_eq!(listing(&dir.join("ns")), ["a.yaml", "new.yaml"]);
        assert_eq!(
            std::fs::read_to_string(dir.join("ns.yaml")).expect("ns"),
            "n"
        );
        assert_eq!(listing(root.path()), ["out"]);
        // A tree in place is compared with, not prepared.
        assert!(
            prepare(dir, vec!["x".into()])
                .finish()
                .expect("prepare")
                .is_none()
        );
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn inode(path: &Path) -> u64 {
        std::fs::metadata(path).expect("stat").ino()
    }

    #[test]
    fn a_tree_is_written_replaced_and_left_alone_when_unchanged() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("out");
        write_tree(&dir, &[("a.yaml", "a"), ("sub/b.yaml", "b"), ("c", "c")]).expect("write");
        assert_eq!(listing(&dir), ["a.yaml", "c", "sub"]);
        assert_eq!(listing(root.path()), ["out"], "no staging left behind");
        let a = inode(&dir.join("a.yaml"));

        // The same files: nothing is written, not even the directory.
        let before = inode(&dir);
        write_tree(&dir, &[("a.yaml", "a"), ("sub/b.yaml", "b"), ("c", "c")]).expect("rerun");
        assert_eq!(inode(&dir), before);

        // One file changed, one gone: unchanged files keep their inode (linked, not copied).
        write_tree(&dir, &[("a.yaml", "a"), ("sub/b.yaml", "B")]).expect("change");
        assert_eq!(listing(&dir), ["a.yaml", "sub"]);
        assert_eq!(inode(&dir.join("a.yaml")), a);
        assert_eq!(
            std::fs::read_to_string(dir.join("sub/b.yaml")).expect("b"),
            "B"
        );
        assert_eq!(listing(root.path()), ["out"]);

        // A subset of the files in place is a change too.
        write_tree(&dir, &[("a.yaml", "a")]).expect("subset");
        assert_eq!(listing(&dir), ["a.yaml"]);
        write_tree(&dir, &[]).expect("empty");
        assert!(listing(&dir).is_empty());
    }

    #[test]
    fn leftovers_of_an_interrupted_run_are_cleared() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("out");
        write_tree(&dir, &[("a", "1")]).expect("write");
        std::fs::create_dir_all(root.path().join(".out.staging-x1/x")).expect("leftover");
        write_tree(&dir, &[("a", "2")]).expect("write");
        assert_eq!(listing(root.path()), ["out"]);
        assert_eq!(std::fs::read_to_string(dir.join("a")).expect("a"), "2");
    }

    #[test]
    fn a_file_is_replaced_whole_and_left_alone_when_unchanged() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().join("sub/store.json");
        file(&path, b"one").expect("write");
        let before = inode(&path);
        file(&path, b"one").expect("same");
        assert_eq!(inode(&path), before);
        file(&path, b"two").expect("change");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert_eq!(listing(&root.path().join("sub")), ["store.json"]);
    }
}
