//! Stage 5, render: a compiled mesh as the files of `target/policies` and `target/helm`.

use std::collections::BTreeMap;
use std::path::Path;

use meshfile_manifest::Code;
use meshfile_plan::Compiled;
use rayon::prelude::*;

use crate::Error;
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
/// `helm_chart` (a directory relative to `mesh_dir`), packaged as `helm package` would.
pub fn chart(compiled: &Compiled, mesh_dir: &Path, target: &Path) -> Result<Tree, Error> {
    let model = &compiled.chart;
    let read_chart = |rel: &str| read_chart_dir(&mesh_dir.join(rel));
    let services: Vec<meshfile_chart::ServiceChart> = model
        .services
        .par_iter()
        .map(|s| meshfile_chart::service(model, s, &read_chart))
        .collect::<Result<_, String>>()
        .map_err(chart_error)?;
    let mut files = Vec::new();
    let mut dependencies = Vec::with_capacity(services.len());
    let mut entries = Vec::with_capacity(services.len());
    for service in services {
        if let Some(own) = &service.own_chart {
            files.push((own.archive_path(), own.archive()));
        }
        dependencies.push(service.dependency);
        entries.extend(service.values_entry);
    }
    let values = meshfile_chart::umbrella_values_from(model, entries);
    let umbrella = meshfile_chart::umbrella(model, &dependencies, values).map_err(chart_error)?;
    files.extend(umbrella);
    Ok(Tree {
        dir: target.join("helm"),
        files,
    })
}

fn chart_error(message: String) -> Error {
    Error::new(Code::ChartFailed, message)
        .hint("helm_chart names a chart directory (with Chart.yaml), relative to the Meshfile")
}

/// A user's chart directory (`helm_chart`): every file `helm package` would take, by relative
/// path (`/`-separated), leaving out what its `.helmignore` says, as Helm does.
fn read_chart_dir(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let ignore = match std::fs::read_to_string(root.join(".helmignore")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}/.helmignore: {e}", root.display())),
    };
    let rules = meshfile_chart::helmignore::Rules::parse(&ignore)?;
    let mut out = BTreeMap::new();
    let mut todo = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = todo.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("{}: a chart's file names are UTF-8", path.display()))?;
            let rel = format!("{prefix}{name}");
            let is_dir = path.is_dir();
            if rules.ignores(&rel, is_dir) {
                continue;
            }
            if is_dir {
                todo.push((path, format!("{rel}/")));
                continue;
            }
            let bytes =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            out.insert(rel, bytes);
        }
    }
    Ok(out)
}
