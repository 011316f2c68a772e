//! Stage 1, read the inputs: `-f` files, directories of manifests, standard input.

use std::io::Read;
use std::path::{Path, PathBuf};

use meshfile_manifest::{Code, Diagnostic};
use rayon::prelude::*;

use crate::Error;

/// The name standard input goes by in diagnostics.
pub const STDIN: &str = "<stdin>";

/// One input: its display name and its bytes, or the diagnostic that stopped reading it.
pub struct Input {
    pub name: String,
    pub bytes: Result<Vec<u8>, Diagnostic>,
}

impl Input {
    /// The directory that relative paths in this manifest start from.
    pub fn dir(&self) -> PathBuf {
        manifest_dir(&self.name)
    }
}

/// The directory a manifest's relative paths start from (the working directory for stdin).
pub fn manifest_dir(name: &str) -> PathBuf {
    if name == STDIN {
        return PathBuf::from(".");
    }
    Path::new(name)
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Expands directories (their *.yaml and *.yml manifests, sorted) and reads every input.
/// Files beside manifests that are not manifests (templates, measurements) are passed over.
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, Error> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let bytes =
                read_limited(std::io::stdin().lock(), 0).map_err(|e| Error::read(path, e))?;
            inputs.push(Input {
                name: STDIN.into(),
                bytes,
            });
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|e| Error::read(path, e))?;
        if !meta.is_dir() {
            inputs.push(read_file(path)?);
            continue;
        }
        let files = manifest_files(path)?;
        let read: Vec<Input> = files
            .par_iter()
            .map(|file| read_file(file))
            .collect::<Result<_, _>>()?;
        let manifests: Vec<Input> = (read.into_iter())
            .filter(|input| !matches!(&input.bytes, Ok(b) if !is_manifest(b)))
            .collect();
        if manifests.is_empty() {
            return Err(no_manifests(path, files.len()));
        }
        inputs.extend(manifests);
    }
    Ok(inputs)
}

/// `dir` holds no manifest among its `yaml` files (`yaml_files` of them); the hint names the
/// templates a script fills (`mesh.yaml.template`), which can be checked as written.
fn no_manifests(dir: &Path, yaml_files: usize) -> Error {
    let what = match yaml_files {
        0 => "no *.yaml or *.yml file".to_owned(),
        1 => "its one YAML file is not a manifest".to_owned(),
        n => format!("its {n} YAML files are not manifests"),
    };
    let mut templates: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml.template") || name.ends_with(".yml.template"))
        .collect();
    templates.sort();
    let error = Error::new(
        Code::NoManifests,
        format!("`{}` holds no manifest ({what})", dir.display()),
    );
    match templates.first() {
        Some(first) => error.hint(format!(
            "{} {} filled by a script (`envsubst`); name one to check it as written, e.g. `-f {}`",
            templates.join(", "),
            if templates.len() == 1 {
                "is a template"
            } else {
                "are templates"
            },
            dir.join(first).display()
        )),
        None => error.hint("name a manifest file, or a directory that holds some"),
    }
}

/// The `*.yaml` and `*.yml` files of a directory, sorted.
fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::read(dir, e))?
        .filter_map(Result::ok)
        .filter(|e| {
            let path = e.path();
            // The entry's type comes with the listing; only links need a stat.
            let is_file = match e.file_type() {
                Ok(t) if t.is_symlink() => path.is_file(),
                Ok(t) => t.is_file(),
                Err(_) => false,
            };
            is_file
                && matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                )
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    Ok(files)
}

/// A YAML mapping with a top-level `kind`. A file that does not parse counts when a line
/// starts with `kind:`, so a broken manifest is reported while a template is passed over.
/// Such a line is also the quick answer for the usual block-style manifest: it can only be
/// a top-level key, and the file is then parsed once, as a manifest, not twice. Another
/// tool's file beside the manifests (a Kubernetes resource, `apiVersion: v1` with `kind:
/// PersistentVolumeClaim`, as in a public tutorial) is passed over too.
pub fn is_manifest(bytes: &[u8]) -> bool {
    let top_level = |key: &[u8]| {
        bytes
            .split(|b| *b == b'\n')
            .find_map(|line| line.strip_prefix(key))
            .map(|value| {
                let value = String::from_utf8_lossy(value);
                let value = value.split(" #").next().unwrap_or_default();
                value.trim().trim_matches(['"', '\'']).to_owned()
            })
    };
    let kind = top_level(b"kind:");
    let another_tools = top_level(b"apiVersion:").is_some_and(|api| !api.starts_with("scone"))
        && kind
            .as_deref()
            .is_some_and(|k| !matches!(k, "mesh" | "genservice"));
    if another_tools {
        return false;
    }
    if kind.is_some() {
        return true;
    }
    match meshfile_yaml::parse_bytes(bytes, &meshfile_manifest::limits()) {
        Ok(node) => match &node.value {
            meshfile_yaml::Value::Mapping(entries) => {
                entries.iter().any(|e| e.key_text() == "kind")
            }
            _ => false,
        },
        Err(_) => false,
    }
}

fn read_file(path: &Path) -> Result<Input, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
    // Its size, when known, sizes the buffer: the file is then read with one call.
    let size = file.metadata().map_or(0, |m| m.len());
    let bytes = read_limited(file, size).map_err(|e| Error::read(path, e))?;
    Ok(Input {
        name: path.display().to_string(),
        bytes,
    })
}

/// Reads at most the manifest size limit, so a huge input costs neither time nor memory.
fn read_limited(reader: impl Read, size_hint: u64) -> std::io::Result<Result<Vec<u8>, Diagnostic>> {
    let limit = meshfile_manifest::limits().max_bytes;
    let capacity = usize::try_from(size_hint.min(limit + 1)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    // Thousands of manifests stay in memory for error snippets; no growth slack for each.
    bytes.shrink_to_fit();
    if bytes.len() as u64 > limit {
        let e = meshfile_yaml::Error {
            kind: meshfile_yaml::ErrorKind::TooLarge {
                size: bytes.len() as u64,
                limit,
            },
            pos: meshfile_yaml::Pos { line: 1, column: 1 },
        };
        let mut d = meshfile_manifest::parse_diagnostic(&e);
        d.message = format!(
            "the input is larger than the limit of {limit} bytes; a manifest is a few kilobytes"
        );
        return Ok(Err(d));
    }
    Ok(Ok(bytes))
}
