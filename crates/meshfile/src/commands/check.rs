//! `validate` and `lint`: read manifests, report diagnostics, decide the exit status.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use meshfile_manifest::{Code, Diagnostic, Manifest, Severity};
use serde::Serialize;

use crate::cli::{CheckArgs, OutputFormat};
use crate::error::{CliError, exit};
use crate::render;

/// One input: its display name and its bytes, or the diagnostic that stopped reading it.
pub struct Input {
    pub name: String,
    pub bytes: Result<Vec<u8>, Diagnostic>,
}

/// Expands directories (their *.yaml and *.yml files, sorted) and reads every input.
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, CliError> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push(Input {
                name: "<stdin>".into(),
                bytes: read_limited(std::io::stdin().lock(), 0).map_err(|source| {
                    CliError::Read {
                        path: path.clone(),
                        source,
                    }
                })?,
            });
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|source| CliError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| CliError::Read {
                    path: path.clone(),
                    source,
                })?
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
            if files.is_empty() {
                return Err(CliError::EmptyDirectory { path: path.clone() });
            }
            for input in meshfile_plan::parallel::map(&files, |file| read_file(file)) {
                let input = input?;
                // Templates and measurement files live beside manifests; only manifests count.
                if input.bytes.as_ref().is_ok_and(|b| !is_manifest(b)) {
                    continue;
                }
                inputs.push(input);
            }
        } else {
            inputs.push(read_file(path)?);
        }
    }
    Ok(inputs)
}

/// A YAML mapping with a top-level `kind`. A file that does not parse counts when a line
/// starts with `kind:`, so a broken manifest is reported while a template is passed over.
/// Such a line is also the quick answer for the usual block-style manifest: it can only be
/// a top-level key, and the file is then parsed once, as a manifest, not twice.
fn is_manifest(bytes: &[u8]) -> bool {
    let kind_line = bytes
        .split(|b| *b == b'\n')
        .any(|line| line.starts_with(b"kind:"));
    if kind_line {
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

fn read_file(path: &Path) -> Result<Input, CliError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| CliError::Read {
        path: path.to_owned(),
        source,
    })?;
    // Its size, when known, sizes the buffer: the file is then read with one call, not a
    // series of growing ones.
    let size = file.metadata().map_or(0, |m| m.len());
    let bytes = read_limited(file, size).map_err(|source| CliError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(Input { name, bytes })
}

/// Reads at most the manifest size limit, so a huge input costs neither time nor memory.
fn read_limited(reader: impl Read, size_hint: u64) -> std::io::Result<Result<Vec<u8>, Diagnostic>> {
    let limit = meshfile_manifest::limits().max_bytes;
    let mut bytes = Vec::with_capacity(size_hint.min(limit + 1) as usize);
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

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    file: &'a str,
    #[serde(flatten)]
    diagnostic: &'a Diagnostic,
}

/// One input after checking: what to print about it.
struct Checked {
    file: String,
    /// The text, for snippets; `None` when it was not readable as UTF-8.
    source: Option<String>,
    diagnostics: Vec<Diagnostic>,
    manifest: Option<Manifest>,
}

impl Checked {
    fn is_valid(&self) -> bool {
        self.diagnostics.iter().all(|d| !d.is_error())
    }
}

fn check(input: Input, lint: bool) -> Checked {
    let bytes = match input.bytes {
        Ok(bytes) => bytes,
        Err(d) => {
            return Checked {
                file: input.name,
                source: None,
                diagnostics: vec![d],
                manifest: None,
            };
        }
    };
    let loaded = meshfile_manifest::load(&bytes);
    let mut diagnostics = loaded.diagnostics;
    if lint && let Some(manifest) = &loaded.manifest {
        diagnostics.extend(meshfile_manifest::lint(manifest));
        meshfile_manifest::diagnostic::sort(&mut diagnostics);
    }
    Checked {
        file: input.name,
        source: String::from_utf8(bytes).ok(),
        diagnostics,
        manifest: loaded.manifest,
    }
}

/// Validates (and with `lint`, lints) every input; returns the exit status.
pub fn run(args: &CheckArgs, lint: bool, deny_warnings: bool) -> Result<u8, CliError> {
    let all: Vec<Checked> = read_inputs(&args.inputs.files)?
        .into_iter()
        .map(|i| check(i, lint))
        .collect();
    let count = |severity: Severity| {
        all.iter()
            .flat_map(|c| &c.diagnostics)
            .filter(|d| d.severity == severity)
            .count()
    };
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let write = |r: std::io::Result<()>| r.map_err(CliError::Output);

    match args.output {
        OutputFormat::Json => {
            let list: Vec<JsonDiagnostic<'_>> = all
                .iter()
                .flat_map(|c| {
                    c.diagnostics.iter().map(|d| JsonDiagnostic {
                        file: &c.file,
                        diagnostic: d,
                    })
                })
                .collect();
            let text = serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".into());
            write(writeln!(std::io::stdout().lock(), "{text}"))?;
        }
        OutputFormat::Human => {
            let mut err = std::io::stderr().lock();
            for c in &all {
                for d in &c.diagnostics {
                    write(writeln!(
                        err,
                        "{}",
                        render::human(&c.file, c.source.as_deref(), d)
                    ))?;
                }
                if !args.quiet && c.is_valid() {
                    let summary = c.manifest.as_ref().map(describe).unwrap_or_default();
                    write(writeln!(err, "{}: valid{summary}", c.file))?;
                }
            }
            if !args.quiet && (errors > 0 || warnings > 0) {
                write(writeln!(
                    err,
                    "{}",
                    summary_line(errors, warnings, all.len())
                ))?;
            }
        }
    }
    if args.dump {
        let mut out = std::io::stdout().lock();
        for c in all.iter().filter(|c| c.is_valid()) {
            if let Some(m) = &c.manifest {
                write(write!(out, "{}", meshfile_manifest::dump(m)))?;
            }
        }
    }
    Ok(if errors > 0 || (deny_warnings && warnings > 0) {
        exit::INVALID
    } else {
        exit::OK
    })
}

fn describe(manifest: &Manifest) -> String {
    match manifest {
        Manifest::Mesh(m) => {
            format!(
                " (mesh, namespace `{}`, {} service{})",
                m.policy.namespace,
                m.services.len(),
                plural(m.services.len())
            )
        }
        Manifest::Service(s) => {
            format!(" (genservice `{}`, image `{}`)", s.build.name, s.build.to)
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn summary_line(errors: usize, warnings: usize, files: usize) -> String {
    format!(
        "{errors} error{}, {warnings} warning{} in {files} file{}",
        plural(errors),
        plural(warnings),
        plural(files)
    )
}

/// Used by `explain`: keeps the code list and its rendering next to the diagnostics.
pub fn code_line(code: Code) -> String {
    let severity = match code.severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    format!("{}  {severity:<7}  {}", code.as_str(), code.title())
}
