//! Atomic writes: a reader sees the old files or the new ones, never a mix or a half file.
//!
//! A generated tree is written beside its destination, made durable with one `syncfs` (a
//! large mesh has thousands of files; one fsync each would dominate the run), then swapped
//! in by rename. An interrupted run leaves the old tree and a staging leftover that the next
//! run removes. Trees are written by a thread of their own as their files are made, so the
//! file system's work overlaps with making the rest.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

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
    write_parts(path, &[contents])
}

/// [`write_file`] of the concatenation of `parts`, without joining them in memory first.
pub fn write_parts(path: &Path, parts: &[impl AsRef<[u8]>]) -> Result<(), CliError> {
    if file_holds(path, parts) {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut file =
        std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(&tmp).map_err(io(&tmp))?);
    for part in parts {
        file.write_all(part.as_ref()).map_err(io(&tmp))?;
    }
    let file = file.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(dir)
}

/// Whether the file at `path` holds exactly the concatenation of `parts`. A file of another size
/// is not read: a rerun in which every file changed then reads none of the old ones.
fn file_holds(path: &Path, parts: &[impl AsRef<[u8]>]) -> bool {
    let size: usize = parts.iter().map(|p| p.as_ref().len()).sum();
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    if !file.metadata().is_ok_and(|m| m.len() == size as u64) {
        return false;
    }
    let mut old = Vec::with_capacity(size);
    std::io::Read::read_to_end(&mut file, &mut old).is_ok() && holds(&old, parts)
}

/// Whether `bytes` is the concatenation of `parts`.
fn holds(mut bytes: &[u8], parts: &[impl AsRef<[u8]>]) -> bool {
    for part in parts {
        let Some(rest) = bytes.strip_prefix(part.as_ref()) else {
            return false;
        };
        bytes = rest;
    }
    bytes.is_empty()
}

/// A thread whose result is waited for: by `finish`, or, if dropped first (the run failed
/// anyway), quietly, so that no work is cut off half done.
struct Background<T>(Option<std::thread::JoinHandle<T>>);

impl<T: Send + 'static> Background<T> {
    fn start(work: impl FnOnce() -> T + Send + 'static) -> Self {
        Background(Some(std::thread::spawn(work)))
    }

    /// The thread's result; `None` once taken.
    fn join(&mut self) -> Option<T> {
        let thread = self.0.take()?;
        Some(
            thread
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        )
    }
}

impl<T> Drop for Background<T> {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

/// Writing back to disk what is written so far on a file system, on a thread of its own:
/// started once a run's files are all made, the disk works while the writers finish the last
/// ones, and the `syncfs` of [`commit`] has less left to wait for (10,000 services: ~50 ms).
/// Its errors are [`commit`]'s to report; waited for when dropped.
pub struct Writeback {
    _thread: Background<()>,
}

impl Writeback {
    pub fn start(path: &Path) -> Self {
        let path = path.to_owned();
        Writeback {
            _thread: Background::start(move || {
                let _ = sync_filesystem(&path);
            }),
        }
    }
}

/// [`write_parts`] on a thread of its own, while other work goes on.
pub struct PendingWrite(Background<Result<(), CliError>>);

impl PendingWrite {
    pub fn start(path: PathBuf, parts: Vec<String>) -> Self {
        PendingWrite(Background::start(move || write_parts(&path, &parts)))
    }

    /// Waits for the write; its error, if it failed.
    pub fn finish(mut self) -> Result<(), CliError> {
        self.0.join().unwrap_or(Ok(()))
    }
}

/// A directory's new contents, written beside it by a thread of its own as files arrive.
/// Dropped without [`TreeWriter::finish`], it removes what it wrote.
pub struct TreeWriter {
    // Declared first, so dropped first: the thread sees the abandonment and cleans up, then
    // `thread` waits for it.
    files: Option<mpsc::Sender<Message>>,
    thread: Background<Result<Option<Staged>, CliError>>,
}

enum Message {
    File(String, Vec<u8>),
    Done,
}

/// A tree written in full beside the directory it replaces.
pub struct Staged {
    dir: PathBuf,
    staging: PathBuf,
    old: PathBuf,
}

impl TreeWriter {
    /// Starts replacing `dir` with exactly the files that will be [`send`](Self::send).
    pub fn start(dir: PathBuf) -> Self {
        let (files, received) = mpsc::channel();
        TreeWriter {
            files: Some(files),
            thread: Background::start(move || stage(dir, &received)),
        }
    }

    /// One file of the tree, by `/`-separated path relative to it.
    pub fn send(&self, relative: String, contents: Vec<u8>) {
        if let Some(files) = &self.files {
            // A writer that stopped early reports why in `finish`.
            let _ = files.send(Message::File(relative, contents));
        }
    }

    /// Waits until every file is written: the staged tree to [`commit`], or `None` when the
    /// directory already holds exactly these files.
    pub fn finish(mut self) -> Result<Option<Staged>, CliError> {
        if let Some(files) = self.files.take() {
            let _ = files.send(Message::Done);
        }
        self.thread.join().unwrap_or(Ok(None))
    }
}

/// The writer thread: compares arriving files with the tree in place while they are the same
/// (an unchanged tree is then left alone, not rewritten), otherwise writes them under the
/// staging directory; a file identical to its counterpart in place is hard-linked, so a
/// rerun with few changes allocates few new inodes.
fn stage(dir: PathBuf, received: &mpsc::Receiver<Message>) -> Result<Option<Staged>, CliError> {
    let parent = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let staged = Staged {
        staging: parent.join(format!(".{name}.new")),
        old: parent.join(format!(".{name}.old")),
        dir,
    };
    for leftover in [&staged.staging, &staged.old] {
        if leftover.exists() {
            std::fs::remove_dir_all(leftover).map_err(io(leftover))?;
        }
    }
    let mut tree = Staging {
        staged: &staged,
        made_dirs: HashSet::new(),
        last_dir: PathBuf::new(),
        previous: staged.dir.is_dir(),
        unchanged: Vec::new(),
        writing: false,
    };
    tree.writing = !tree.previous;
    let mut names = HashSet::new();
    let result = loop {
        match received.recv() {
            Ok(Message::File(relative, contents)) => {
                if let Err(e) = tree.add(&relative, &contents) {
                    break Err(Some(e));
                }
                // Names matter only to tell an unchanged tree, while nothing was written.
                if !tree.writing {
                    names.insert(relative);
                }
            }
            Ok(Message::Done) => break Ok(()),
            // The sender gave up (an error elsewhere): leave no staging tree behind.
            Err(mpsc::RecvError) => break Err(None),
        }
    };
    match result {
        Ok(()) if !tree.writing && holds_exactly(&staged.dir, &names) => Ok(None),
        Ok(()) => {
            tree.write_unchanged()?;
            // An empty tree is still a directory.
            tree.make_dir(&staged.staging)?;
            // Durable now, while other work goes on: the `syncfs` before the swap then has
            // less left to wait for.
            sync_filesystem(&staged.staging)?;
            Ok(Some(staged))
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staged.staging);
            e.map_or(Ok(None), Err)
        }
    }
}

/// The state of the writer thread's tree.
struct Staging<'a> {
    staged: &'a Staged,
    made_dirs: HashSet<PathBuf>,
    last_dir: PathBuf,
    /// Whether a tree is in place to compare with.
    previous: bool,
    /// Files seen so far that equal the tree in place, while nothing needed writing.
    unchanged: Vec<String>,
    /// Whether the staging tree is being written (something differs, or nothing is in place).
    writing: bool,
}

impl Staging<'_> {
    fn add(&mut self, relative: &str, contents: &[u8]) -> Result<(), CliError> {
        let in_place = self.staged.dir.join(relative);
        if self.previous && file_holds(&in_place, &[contents]) {
            if self.writing {
                return self.link(relative);
            }
            self.unchanged.push(relative.to_owned());
            return Ok(());
        }
        self.write_unchanged()?;
        let path = self.staged.staging.join(relative);
        self.make_parent(&path)?;
        std::fs::write(&path, contents).map_err(io(&path))
    }

    /// From now on the staging tree is written: files found unchanged so far are linked.
    fn write_unchanged(&mut self) -> Result<(), CliError> {
        self.writing = true;
        for relative in std::mem::take(&mut self.unchanged) {
            self.link(&relative)?;
        }
        Ok(())
    }

    fn link(&mut self, relative: &str) -> Result<(), CliError> {
        let path = self.staged.staging.join(relative);
        self.make_parent(&path)?;
        std::fs::hard_link(self.staged.dir.join(relative), &path)
            .or_else(|_| std::fs::copy(self.staged.dir.join(relative), &path).map(|_| ()))
            .map_err(io(&path))
    }

    fn make_parent(&mut self, path: &Path) -> Result<(), CliError> {
        match path.parent() {
            Some(dir) => self.make_dir(dir),
            None => Ok(()),
        }
    }

    fn make_dir(&mut self, dir: &Path) -> Result<(), CliError> {
        // Files mostly come one directory at a time: compare with the last one first.
        if self.last_dir.as_os_str() == dir.as_os_str() {
            return Ok(());
        }
        if !self.made_dirs.contains(dir) {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            self.made_dirs.insert(dir.to_path_buf());
        }
        dir.clone_into(&mut self.last_dir);
        Ok(())
    }
}

/// Whether `dir` holds exactly the files `names` (their contents were compared as they came).
fn holds_exactly(dir: &Path, names: &HashSet<String>) -> bool {
    let mut found = 0;
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
            let known = path
                .strip_prefix(dir)
                .ok()
                .and_then(|r| r.to_str())
                .is_some_and(|rel| names.contains(rel));
            if !known {
                return false;
            }
            found += 1;
        }
    }
    found == names.len()
}

/// Makes every staged tree durable with one `syncfs`, then swaps each in for its directory.
pub fn commit(trees: &[Staged]) -> Result<(), CliError> {
    let Some(first) = trees.first() else {
        return Ok(());
    };
    sync_filesystem(&first.staging)?;
    for tree in trees {
        let parent = tree.dir.parent().unwrap_or(Path::new("."));
        if tree.dir.exists() {
            std::fs::rename(&tree.dir, &tree.old).map_err(io(&tree.dir))?;
        }
        std::fs::rename(&tree.staging, &tree.dir).map_err(io(&tree.dir))?;
        sync_dir(parent)?;
        if tree.old.exists() {
            std::fs::remove_dir_all(&tree.old).map_err(io(&tree.old))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn write_tree(dir: &Path, files: &[(&str, &str)]) -> Result<(), CliError> {
        let writer = TreeWriter::start(dir.to_path_buf());
        for (relative, text) in files {
            writer.send((*relative).to_owned(), text.as_bytes().to_vec());
        }
        let staged: Vec<Staged> = writer.finish()?.into_iter().collect();
        commit(&staged)
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

        // A file of another size is a change, found without reading it.
        write_tree(&dir, &[("a.yaml", "a"), ("sub/b.yaml", "Bigger")]).expect("grow");
        assert_eq!(inode(&dir.join("a.yaml")), a);
        assert_eq!(
            std::fs::read_to_string(dir.join("sub/b.yaml")).expect("b"),
            "Bigger"
        );

        // A subset of the files in place is a change too.
        write_tree(&dir, &[("a.yaml", "a")]).expect("subset");
        assert_eq!(listing(&dir), ["a.yaml"]);
        write_tree(&dir, &[]).expect("empty");
        assert!(listing(&dir).is_empty());
    }

    #[test]
    fn an_abandoned_tree_leaves_nothing_and_leftovers_are_cleared() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("out");
        write_tree(&dir, &[("a", "1")]).expect("write");
        // As an interrupted run leaves them.
        std::fs::create_dir_all(root.path().join(".out.new/x")).expect("leftover");
        std::fs::create_dir_all(root.path().join(".out.old")).expect("leftover");

        let writer = TreeWriter::start(dir.clone());
        writer.send("a".into(), b"2".to_vec());
        writer.send("b".into(), b"3".to_vec());
        drop(writer);
        assert_eq!(listing(root.path()), ["out"]);
        assert_eq!(std::fs::read_to_string(dir.join("a")).expect("a"), "1");
    }
}
