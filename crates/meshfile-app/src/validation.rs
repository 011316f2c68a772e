//! What `validate` and `lint` find: each file checked on its own ([`crate::load::check`]) and,
//! for a mesh's directory, across its files as `template` would ([`crate::compile::mesh_problems`]).

use std::path::Path;

use meshfile_manifest::Manifest;

use crate::compile::Skipped;
use crate::inputs::Input;
use crate::load::{Checked, check};
use crate::paths::Overlay;

/// What `validate` finds: each file's own problems and, when every file is valid and the
/// inputs hold a Meshfile and service manifests (a mesh's directory), what `template` would
/// find across them, each problem in the file it points into.
pub struct Validation {
    pub checked: Vec<Checked>,
    /// Why the checks across files were not made, when they were due: `$VAR`s without a
    /// value in this environment, or a failure (the descriptor store unreadable, ...).
    pub across_files_skipped: Option<Skipped>,
}

/// `overlay`: texts in place of the files a Meshfile names (an editor's unsaved buffers).
pub fn validate(
    inputs: &[Input],
    lint: bool,
    allow_outside: bool,
    target: &Path,
    overlay: Overlay,
) -> Validation {
    let mut checked = check(inputs, lint, allow_outside);
    let has = |wanted: fn(&Manifest) -> bool| {
        (checked.iter()).any(|c| c.manifest.as_ref().is_some_and(wanted))
    };
    let due = checked.iter().all(Checked::is_valid)
        && has(|m| matches!(m, Manifest::Mesh(_)))
        && has(|m| matches!(m, Manifest::Service(_)));
    if !due {
        return Validation {
            checked,
            across_files_skipped: None,
        };
    }
    let report = match crate::compile::mesh_problems(inputs, target, allow_outside, lint, overlay) {
        Ok(report) => report,
        Err(skipped) => {
            return Validation {
                checked,
                across_files_skipped: Some(skipped),
            };
        }
    };
    // What each file's own check found, as written: the same problem found across the files
    // with its `$VAR`s filled in is not another one.
    let own: Vec<usize> = checked.iter().map(|c| c.diagnostics.len()).collect();
    for problem in report.problems {
        match checked.iter().position(|c| c.file == problem.file) {
            Some(i) => {
                let c = &mut checked[i];
                let found = (c.diagnostics[..own.get(i).copied().unwrap_or(0)].iter())
                    .any(|d| same_place(d, &problem.diagnostic));
                if !found {
                    c.diagnostics.push(problem.diagnostic);
                }
            }
            None => checked.push(Checked {
                source: report.sources.get(&problem.file).cloned(),
                file: problem.file,
                diagnostics: vec![problem.diagnostic],
                manifest: None,
            }),
        }
    }
    for c in &mut checked {
        meshfile_manifest::diagnostic::sort(&mut c.diagnostics);
    }
    Validation {
        checked,
        across_files_skipped: None,
    }
}

/// Whether two diagnostics say the same of the same place (their texts may differ in the
/// values of `$VAR`s).
fn same_place(a: &meshfile_manifest::Diagnostic, b: &meshfile_manifest::Diagnostic) -> bool {
    a.code == b.code && a.span == b.span && a.path == b.path
}
