//! The files a Meshfile names (`image_policy`, `image_secrets`, `env`, `helm_chart`) lie in
//! its directory, so that a Meshfile from elsewhere cannot read `~/.ssh` into a session or a
//! chart. Only regular files are read, each bounded in size; a chart's links stay inside the
//! chart, as `helm package` requires.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use meshfile_manifest::mesh::MeshManifest;
use meshfile_manifest::{Code, Diagnostic, Text};
use meshfile_plan::files::FileError;

/// The flag that lets a Meshfile name files outside its directory.
pub const ALLOW_FLAG: &str = "--allow-outside-mesh-dir";

/// The largest file of a chart (Helm's own default limit, `--max-file-size`).
pub const MAX_CHART_FILE: u64 = 5 << 20;
/// The largest chart, all files together (Helm's default `--max-chart-size`).
pub const MAX_CHART_SIZE: u64 = 100 << 20;
/// The most files and directories a chart may hold.
pub const MAX_CHART_ENTRIES: usize = 10_000;

/// Texts read in place of files, by canonical path: an editor's unsaved buffers, so that a
/// template or `env` file being typed is checked as it is on screen. Cheap to clone.
#[derive(Clone, Default)]
pub struct Overlay(Arc<BTreeMap<PathBuf, String>>);

impl Overlay {
    /// Each text in place of the file at its path (made canonical; a path that does not
    /// exist on disk yet is left out, as the Meshfile could not name it either).
    pub fn new(texts: impl IntoIterator<Item = (PathBuf, String)>) -> Overlay {
        let canonical =
            (texts.into_iter()).filter_map(|(path, text)| Some((path.canonicalize().ok()?, text)));
        Overlay(Arc::new(canonical.collect()))
    }

    fn get(&self, canonical: &Path) -> Option<&str> {
        self.0.get(canonical).map(String::as_str)
    }

    /// The text in place of the file `name` (as a problem names it), if any.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.get(&Path::new(name).canonicalize().ok()?)
    }
}

/// The paths only: the texts may hold secret values.
impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// A Meshfile's directory: where the relative paths it names start, and may lead.
#[derive(Clone, Debug)]
pub struct MeshDir {
    /// As the Meshfile was named (for joining and messages).
    dir: PathBuf,
    /// Its canonical form, what resolved paths must start with; `None` when outside paths
    /// are allowed.
    confine_to: Option<PathBuf>,
    overlay: Overlay,
}

impl MeshDir {
    /// The directory `dir`; with `allow_outside`, paths may lead anywhere.
    pub fn new(dir: PathBuf, allow_outside: bool) -> MeshDir {
        let confine_to = (!allow_outside).then(|| dir.canonicalize().unwrap_or(dir.clone()));
        MeshDir {
            dir,
            confine_to,
            overlay: Overlay::default(),
        }
    }

    /// The same directory, its files read from `overlay` where it holds them.
    pub fn with_overlay(self, overlay: Overlay) -> MeshDir {
        MeshDir { overlay, ..self }
    }

    /// The directory, as named.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Where `rel` leads, links followed; an error saying why it may not be used.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, FileError> {
        let joined = self.dir.join(rel);
        let resolved = joined.canonicalize().map_err(io)?;
        if let Some(root) = &self.confine_to
            && !resolved.starts_with(root)
        {
            return Err(FileError::Outside {
                resolved: resolved.display().to_string(),
                root: root.display().to_string(),
            });
        }
        Ok(resolved)
    }

    /// The text of the file `rel` names: a regular file in the directory, at most the
    /// manifest size limit.
    pub fn read_text(&self, rel: &str) -> Result<String, FileError> {
        let path = self.resolve(rel)?;
        let limit = meshfile_manifest::limits().max_bytes;
        if let Some(text) = self.overlay.get(&path) {
            return match text.len() as u64 {
                size if size > limit => Err(FileError::TooLarge { size, limit }),
                _ => Ok(text.to_owned()),
            };
        }
        let bytes = read_regular(&path, limit)?;
        String::from_utf8(bytes).map_err(|_| FileError::NotText)
    }

    /// A located error for each path of `mesh` that leads outside the directory; paths that
    /// do not exist are left to the stage that reads them.
    pub fn check(&self, mesh: &MeshManifest) -> Vec<Diagnostic> {
        let Some(root) = &self.confine_to else {
            return Vec::new();
        };
        let mut named: Vec<(String, &Text)> = Vec::new();
        for (i, service) in mesh.services.iter().enumerate() {
            let fields = [
                ("image_policy", &service.image_policy),
                ("image_secrets", &service.image_secrets),
                ("env", &service.env),
                ("helm_chart", &service.helm_chart),
            ];
            named.extend(fields.into_iter().filter_map(|(field, value)| {
                value
                    .as_ref()
                    .map(|rel| (format!("services[{i}].{field}"), rel))
            }));
        }
        named.extend(
            (mesh.descriptor_keys.iter().flatten().enumerate())
                .map(|(i, key)| (format!("descriptor_keys[{i}]"), key)),
        );
        named.extend(
            (mesh.repo.as_ref().and_then(|r| r.key_file.as_ref()))
                .map(|key| ("repo.key_file".to_owned(), key)),
        );
        named
            .into_iter()
            .filter_map(|(field, rel)| {
                let resolved = self.dir.join(rel.as_str()).canonicalize().ok()?;
                (!resolved.starts_with(root)).then(|| outside(&field, rel, &resolved, root))
            })
            .collect()
    }
}

fn outside(field: &str, rel: &Text, resolved: &Path, root: &Path) -> Diagnostic {
    let message = format!(
        "`{rel}` leads to {}, outside the Meshfile's directory {}",
        resolved.display(),
        root.display()
    );
    Diagnostic::new(Code::OverrideFile, rel.span, field, message).with_hint(format!(
        "keep the files a Meshfile names beside it, or pass {ALLOW_FLAG} if this Meshfile is yours"
    ))
}

/// The bytes of `path`, which must be a regular file of at most `limit` bytes (a device or a
/// FIFO is refused before it is opened for reading).
fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular);
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::Grew(limit));
    }
    Ok(bytes)
}

/// What the operating system said.
fn io(e: std::io::Error) -> FileError {
    FileError::Io(e.to_string())
}

/// `path` could not be read, for the operating system's reason `e`.
fn unreadable(path: &Path, e: std::io::Error) -> FileError {
    FileError::Unreadable {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

/// A key, certificate or CA bundle named on the command line is at most this large: the
/// largest is a CA bundle of a few certificates; a device or a huge file is refused before
/// it is read into memory.
pub const MAX_KEY_FILE: u64 = 256 * 1024;

/// The text of a key or certificate file named on the command line, read no further than
/// [`MAX_KEY_FILE`]; `/dev/zero` or a FIFO that never ends is an error, not a memory leak.
pub fn read_key_file(path: &Path) -> Result<String, crate::Error> {
    let file = std::fs::File::open(path).map_err(|e| crate::Error::read(path, e))?;
    let mut text = String::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| crate::Error::read(path, e))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(crate::Error::new(
            Code::Limit,
            format!(
                "{} is larger than {} KiB: a key or certificate file is a few hundred bytes",
                path.display(),
                MAX_KEY_FILE / 1024
            ),
        )
        .hint("name the PEM file of the key or certificate itself"));
    }
    Ok(text)
}

/// A user's chart directory (`helm_chart`, resolved): every file `helm package` would take,
/// by relative path (`/`-separated), leaving out what its `.helmignore` says. A link must
/// lead inside the chart; only regular files and directories are taken; sizes and the
/// number of entries are bounded.
pub fn read_chart(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, FileError> {
    let root = root.canonicalize().map_err(|e| unreadable(root, e))?;
    if !root.is_dir() {
        return Err(FileError::NotADirectory(root.display().to_string()));
    }
    let ignore = match root.join(".helmignore").symlink_metadata() {
        Ok(_) => {
            let bytes = read_member(&root, &root.join(".helmignore"), ".helmignore")?;
            String::from_utf8(bytes)
                .map_err(|_| FileError::NotTextFile(".helmignore".to_owned()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(unreadable(&root.join(".helmignore"), e)),
    };
    let rules = meshfile_chart::helmignore::Rules::parse(&ignore)?;
    let mut out = BTreeMap::new();
    let mut total = 0u64;
    let mut entries = 0usize;
    // Directories entered, by canonical path: a link back up is not followed twice.
    let mut entered = BTreeSet::from([root.clone()]);
    let mut todo = vec![(root.clone(), String::new())];
    while let Some((dir, prefix)) = todo.pop() {
        let listing = std::fs::read_dir(&dir).map_err(|e| unreadable(&dir, e))?;
        for entry in listing {
            let path = entry.map_err(io)?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| FileError::FileName(path.display().to_string()))?;
            let rel = format!("{prefix}{name}");
            entries += 1;
            if entries > MAX_CHART_ENTRIES {
                return Err(FileError::TooManyEntries(MAX_CHART_ENTRIES));
            }
            let target = inside(&root, &path, &rel)?;
            let is_dir = target.is_dir();
            if rules.ignores(&rel, is_dir) {
                continue;
            }
            if is_dir {
                if !entered.insert(target.clone()) {
                    return Err(FileError::LinkBack(rel));
                }
                todo.push((target, format!("{rel}/")));
                continue;
            }
            let bytes = read_member(&root, &target, &rel)?;
            total += bytes.len() as u64;
            if total > MAX_CHART_SIZE {
                return Err(FileError::ChartTooLarge(MAX_CHART_SIZE));
            }
            out.insert(rel, bytes);
        }
    }
    Ok(out)
}

/// Where the chart entry `path` leads, which must be inside the chart `root`.
fn inside(root: &Path, path: &Path, rel: &str) -> Result<PathBuf, FileError> {
    let target = path.canonicalize().map_err(|e| FileError::Unreadable {
        path: format!("`{rel}`"),
        why: e.to_string(),
    })?;
    if !target.starts_with(root) {
        return Err(FileError::LinkOutside {
            rel: rel.to_owned(),
            target: target.display().to_string(),
        });
    }
    Ok(target)
}

fn read_member(root: &Path, target: &Path, rel: &str) -> Result<Vec<u8>, FileError> {
    let target = inside(root, target, rel)?;
    read_regular(&target, MAX_CHART_FILE).map_err(|why| FileError::Member {
        rel: rel.to_owned(),
        why: Box::new(why),
    })
}
