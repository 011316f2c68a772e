//! A mesh directory as the editor sees it: its files on disk, the open buffers in their place,
//! checked as `meshfile lint` checks it (each file, then across files), and compiled for
//! what hover and definition tell.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use meshfile_app::compile::Skipped;
use meshfile_app::inputs::{Input, is_manifest};
use meshfile_app::load::Checked;
use meshfile_app::paths::Overlay;
use meshfile_graph::Graph;
use meshfile_manifest::{Diagnostic, Manifest};
use meshfile_plan::{Located, ServiceVariables};

/// The open buffers: path to text.
pub type Buffers = BTreeMap<PathBuf, String>;

/// What the last check of a directory found.
#[derive(Default)]
pub struct Analysis {
    pub checked: Vec<Checked>,
    /// The files diagnostics were published for, to clear those that have none now.
    pub published: Vec<PathBuf>,
    /// The compiled mesh, from the last compile that succeeded (kept while the files are
    /// being edited into shape again).
    pub model: Option<Model>,
    /// Whether the files changed since `model` was made.
    pub model_stale: bool,
    /// The buffers of the last check that found no error: what the model is made of when
    /// the buffers as they are (being typed) do not compile.
    pub last_valid: Option<Buffers>,
}

/// What hover and definition read: the mesh's graph and each service's variables.
pub struct Model {
    pub graph: Graph,
    pub variables: Vec<ServiceVariables>,
}

impl Analysis {
    /// The checked manifest of `path`, if it was read.
    pub fn manifest(&self, path: &Path) -> Option<&Manifest> {
        (self.checked.iter())
            .find(|c| Path::new(&c.file) == path)
            .and_then(|c| c.manifest.as_ref())
    }

    /// The Meshfile of the directory and its file.
    pub fn mesh(&self) -> Option<(&str, &meshfile_manifest::mesh::MeshManifest)> {
        self.checked.iter().find_map(|c| match &c.manifest {
            Some(Manifest::Mesh(mesh)) => Some((c.file.as_str(), mesh.as_ref())),
            _ => None,
        })
    }
}

/// The directory's manifests, each open buffer in place of its file (a buffer that is a
/// manifest and not on disk yet, added).
pub fn inputs(dir: &Path, buffers: &Buffers) -> Vec<Input> {
    let mut inputs = meshfile_app::inputs::read_inputs(&[dir.to_path_buf()]).unwrap_or_default();
    for (path, text) in buffers.iter().filter(|(p, _)| p.parent() == Some(dir)) {
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if !yaml {
            continue;
        }
        match inputs.iter_mut().find(|i| Path::new(&i.name) == path) {
            Some(input) => input.bytes = Ok(text.as_bytes().to_vec()),
            None if is_manifest(text.as_bytes()) => inputs.push(Input {
                name: path.display().to_string(),
                bytes: Ok(text.as_bytes().to_vec()),
            }),
            None => {}
        }
    }
    // A buffer that stopped being a manifest while typed is still checked: its file was one.
    inputs.sort_by(|a, b| a.name.cmp(&b.name));
    inputs
}

/// Where the descriptor store of a mesh directory is, as `meshfile template` run in it uses it.
fn target(dir: &Path) -> PathBuf {
    dir.join("target")
}

/// The open buffers as texts in place of the files a Meshfile names (templates, `env`).
fn overlay(buffers: &Buffers) -> Overlay {
    Overlay::new(buffers.iter().map(|(p, t)| (p.clone(), t.clone())))
}

/// A check of a directory: each file's diagnostics, and notes on what could not be checked.
pub struct Check {
    pub checked: Vec<Checked>,
    /// Information, each in the file it concerns: the checks across files were not made.
    pub notes: Vec<Located>,
}

/// Whether `path` is a manifest template that a script fills with `envsubst` (the public
/// tutorials' `mesh.yaml.template`): checked as written, on its own.
fn is_envsubst_template(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.ends_with(".yaml.template") || name.ends_with(".yml.template")
}

/// Checks the directory as `meshfile lint -f DIR` does; each open `envsubst` template of it
/// on its own (with the files it becomes beside it, it is not part of the mesh).
pub fn check(dir: &Path, buffers: &Buffers) -> Check {
    let inputs = inputs(dir, buffers);
    let validation =
        meshfile_app::validation::validate(&inputs, true, false, &target(dir), overlay(buffers));
    let mut checked = validation.checked;
    let notes = match validation.across_files_skipped {
        None => Vec::new(),
        Some(skipped) => notes(&checked, skipped),
    };
    let templates: Vec<Input> = (buffers.iter())
        .filter(|(p, text)| {
            p.parent() == Some(dir) && is_envsubst_template(p) && is_manifest(text.as_bytes())
        })
        .map(|(p, text)| Input {
            name: p.display().to_string(),
            bytes: Ok(text.as_bytes().to_vec()),
        })
        .collect();
    checked.extend(meshfile_app::load::check(&templates, true, false));
    Check { checked, notes }
}

const ACROSS_FILES: &str = "what `meshfile template` checks across the files (descriptors, secrets between services, templates) is not checked";

/// Where the editor learns why the checks across files were not made: at each `$VAR` without
/// a value, or at the Meshfile's start for a failure.
fn notes(checked: &[Checked], skipped: Skipped) -> Vec<Located> {
    if let Some(code) = skipped.failed {
        let mesh = checked
            .iter()
            .find(|c| matches!(c.manifest, Some(Manifest::Mesh(_))));
        let Some(mesh) = mesh else {
            return Vec::new();
        };
        let failed = Diagnostic::new(
            code,
            Default::default(),
            "",
            format!("{ACROSS_FILES}: {}", skipped.why.join("; ")),
        );
        return vec![Located::new(&mesh.file, failed)];
    }
    (skipped.unset.into_iter())
        .map(|mut unset| {
            unset.diagnostic.message = format!(
                "{} in the environment the editor started `meshfile lsp` in: {ACROSS_FILES}",
                unset.diagnostic.message
            );
            unset.diagnostic.hint = Some(
                "start the editor with it set (exported, as `meshfile template` needs it), or write the value in place".into(),
            );
            unset
        })
        .collect()
}

/// Compiles the directory's mesh for its graph and variables; `None` while it does not compile.
pub fn model(dir: &Path, buffers: &Buffers) -> Option<Model> {
    let request = meshfile_app::compile::Request {
        inputs: Vec::new(),
        target: target(dir),
        options: meshfile_plan::Options {
            report_variables: true,
            ..Default::default()
        },
        sets: Vec::new(),
        mrenclaves: Vec::new(),
        pull: false,
        writes: false,
        allow_outside: false,
        overrides: Default::default(),
        descriptor_keys: Vec::new(),
        helm_template: None,
        graph: true,
        overlay: overlay(buffers),
    };
    let compilation = meshfile_app::compile::run_on(&request, inputs(dir, buffers)).ok()?;
    let mesh = compilation.meshes.into_iter().next()?;
    Some(Model {
        graph: mesh.graph?,
        variables: mesh.compiled.variables,
    })
}
