//! Stage 5, render: a compiled mesh as the files of `target/policies` and `target/helm`.

use std::collections::BTreeMap;
use std::path::Path;

use meshfile_manifest::Code;
use meshfile_plan::Compiled;
use rayon::prelude::*;

use crate::Error;
use crate::paths::{self, MeshDir};
use crate::write::Tree;

/// `policies/<session name>.yaml`: each session's canonical YAML, as uploaded.
pub fn policies(compiled: &Compiled, target: &Path) -> Tree {
    Tree {
        dir: target.join("policies"),
        files: compiled
            .sessions
            .par_iter()
            .map(|session| {
                (
                    format!("{}.yaml", session.name),
                    session.to_yaml().into_bytes(),
                )
            })
            .collect(),
    }
}

/// `helm/`: the umbrella chart, the shared service chart, and each service's own
/// `helm_chart` (a directory in `mesh_dir`), packaged as `helm package` would; each generated
/// service's pods annotated with its session's rollout hash (`hashes`, by session name).
pub fn chart(
    compiled: &Compiled,
    mesh_dir: &MeshDir,
    target: &Path,
    hashes: &BTreeMap<String, String>,
) -> Result<Tree, Error> {
    let model = &compiled.chart;
    let read_chart = |rel: &str| paths::read_chart(&mesh_dir.resolve(rel)?);
    let services: Vec<meshfile_chart::ServiceChart> = model
        .services
        .par_iter()
        .map(|s| {
            let hash = hashes.get(meshfile_plan::rollout::session_of(s));
            meshfile_chart::service(model, s, &read_chart, hash.map(String::as_str))
        })
        .collect::<Result<_, _>>()
        .map_err(chart_error)?;
    let mut files = Vec::new();
    let mut dependencies = Vec::with_capacity(services.len());
    let mut entries = Vec::with_capacity(services.len());
    for service in services {
        if let Some(own) = &service.own_chart {
            files.push((own.archive_path(), own.archive()));
        }
        dependencies.push(service.dependency);
        entries.push(service.values_entry);
    }
    let values = meshfile_chart::umbrella_values_from(model, entries);
    let umbrella = meshfile_chart::umbrella(model, &dependencies, values).map_err(chart_error)?;
    files.extend(umbrella);
    Ok(Tree {
        dir: target.join("helm"),
        files,
    })
}

fn chart_error(e: meshfile_chart::ChartError) -> Error {
    Error::new(Code::ChartFailed, e.to_string())
        .hint("helm_chart names a chart directory (with Chart.yaml), relative to the Meshfile")
}
