//! Stage 2, load: every input parsed and validated on all cores, `$VAR` resolved, its text
//! kept for diagnostics; service manifests and meshes apart.

use std::collections::BTreeMap;

use meshfile_manifest::{Code, Diagnostic, Manifest, MeshManifest, ServiceManifest};
use rayon::prelude::*;

use crate::inputs::Input;
use crate::paths::MeshDir;
use crate::{Error, Report};

/// `$NAME` values: `--set NAME=VALUE` first, then the process environment.
pub struct Variables {
    given: BTreeMap<String, String>,
}

impl Variables {
    /// From `--set` arguments.
    pub fn new(sets: &[String]) -> Result<Variables, Error> {
        let mut given = BTreeMap::new();
        for set in sets {
            let (name, value) = set.split_once('=').ok_or_else(|| {
                Error::new(
                    Code::BadArguments,
                    format!("`--set {set}` is not of the form NAME=VALUE"),
                )
                .hint("write e.g. `--set APP_NAMESPACE=demo`")
            })?;
            given.insert(name.to_owned(), value.to_owned());
        }
        Ok(Variables { given })
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.given
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    }
}

/// A manifest and the input it came from.
pub struct Loaded<'i, M> {
    pub input: &'i Input,
    pub manifest: M,
}

/// The valid manifests of a run: service manifests and meshes, in input order.
pub struct Manifests<'i> {
    pub services: Vec<Loaded<'i, Box<ServiceManifest>>>,
    pub meshes: Vec<Loaded<'i, MeshManifest>>,
}

/// Parses and validates every input, `$VAR` resolved from `variables`. Problems go to
/// `report` (with the file's text); manifests with errors are left out.
pub fn load_manifests<'i>(
    inputs: &'i [Input],
    variables: &Variables,
    report: &mut Report,
) -> Manifests<'i> {
    let lookup = |name: &str| variables.get(name);
    let results: Vec<Option<meshfile_manifest::Loaded>> = inputs
        .par_iter()
        .map(|input| {
            let bytes = input.bytes.as_ref().ok()?;
            Some(meshfile_manifest::load_with_env(bytes, Some(&lookup)))
        })
        .collect();
    let mut manifests = Manifests {
        services: Vec::new(),
        meshes: Vec::new(),
    };
    for (input, result) in inputs.iter().zip(results) {
        let (bytes, result) = match (&input.bytes, result) {
            (Ok(bytes), Some(result)) => (bytes, result),
            (Err(d), _) => {
                report.add(&input.name, [d.clone()]);
                continue;
            }
            (Ok(_), None) => continue,
        };
        // The text is kept for snippets when there is something to show in it (a file named
        // by a later diagnostic is read again then); standard input cannot be read again.
        if !result.diagnostics.is_empty() || input.name == crate::inputs::STDIN {
            report.sources.insert(
                input.name.clone(),
                String::from_utf8_lossy(bytes).into_owned(),
            );
        }
        report.add(&input.name, result.diagnostics);
        match result.manifest {
            Some(Manifest::Service(manifest)) => {
                manifests.services.push(Loaded { input, manifest })
            }
            Some(Manifest::Mesh(mesh)) => manifests.meshes.push(Loaded {
                input,
                manifest: *mesh,
            }),
            None => {}
        }
    }
    manifests
}

/// One input as `validate` and `lint` see it: its diagnostics and, when it parsed, the manifest.
pub struct Checked {
    pub file: String,
    /// The text, for snippets; `None` when it was not readable as UTF-8.
    pub source: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
    pub manifest: Option<Manifest>,
}

impl Checked {
    pub fn is_valid(&self) -> bool {
        self.diagnostics.iter().all(|d| !d.is_error())
    }
}

/// Validates (with `lint`, also lints) each input as written: `$VAR` is checked for syntax
/// only, since `validate` must not depend on the environment it runs in. A Meshfile's paths
/// are checked to stay in its directory, unless `allow_outside`.
pub fn check(inputs: &[Input], lint: bool, allow_outside: bool) -> Vec<Checked> {
    inputs
        .par_iter()
        .map(|input| {
            let bytes = match &input.bytes {
                Ok(bytes) => bytes,
                Err(d) => {
                    return Checked {
                        file: input.name.clone(),
                        source: None,
                        diagnostics: vec![d.clone()],
                        manifest: None,
                    };
                }
            };
            let loaded = meshfile_manifest::load(bytes);
            let mut diagnostics = loaded.diagnostics;
            if let Some(Manifest::Mesh(mesh)) = &loaded.manifest {
                let dir = MeshDir::new(crate::inputs::manifest_dir(&input.name), allow_outside);
                diagnostics.extend(dir.check(mesh));
                diagnostics.extend(meshfile_plan::check(mesh));
            }
            if lint && let Some(manifest) = &loaded.manifest {
                diagnostics.extend(meshfile_manifest::lint(manifest));
            }
            meshfile_manifest::diagnostic::sort(&mut diagnostics);
            Checked {
                file: input.name.clone(),
                source: String::from_utf8(bytes.clone()).ok(),
                diagnostics,
                manifest: loaded.manifest,
            }
        })
        .collect()
}
