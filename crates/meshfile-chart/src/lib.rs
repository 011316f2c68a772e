//! Helm chart files for a compiled mesh: an umbrella chart with one sub-chart per service.
//!
//! Output is data (sorted maps of relative paths to contents, sub-charts packaged by
//! [`SubChart::archive`]), so writing it is the caller's job and two runs give the same bytes.

use std::collections::BTreeMap;

pub mod helmignore;
pub mod targz;

use meshfile_plan::{ChartModel, ChartService};
use serde_json::{Map, Value, json};

const HELPERS: &str = include_str!("templates/_helpers.tpl");
const DEPLOYMENT: &str = include_str!("templates/deployment.yaml");
const SERVICE: &str = include_str!("templates/service.yaml");
const NOTES: &str = include_str!("templates/NOTES.txt");

/// The chart's version; the services' images carry their own versions.
pub const CHART_VERSION: &str = "0.1.0";

fn yaml(value: &Value) -> String {
    meshfile_yaml::emit(&meshfile_manifest::helm_values::from_json(value))
}

fn chart_yaml(name: &str, description: &str, dependencies: &[(String, String)]) -> String {
    let mut chart = json!({
        "apiVersion": "v2",
        "name": name,
        "description": description,
        "type": "application",
        "version": CHART_VERSION,
        "appVersion": CHART_VERSION,
    });
    if !dependencies.is_empty() {
        // Sub-charts ship in charts/ as archives; without a repository Helm takes them from there.
        chart["dependencies"] = dependencies
            .iter()
            .map(|(name, version)| json!({"name": name, "version": version}))
            .collect();
    }
    yaml(&chart)
}

/// A sub-chart's default values: public facts only.
fn values(mesh: &str, s: &ChartService) -> Value {
    json!({
        "replicaCount": 1,
        "image": {
            "repository": s.repository,
            "tag": s.tag.clone().unwrap_or_else(|| "latest".into()),
            "digest": s.digest.clone().unwrap_or_default(),
            "pullPolicy": "IfNotPresent",
        },
        "imagePullSecrets": s.image_pull_secrets.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
        "nameOverride": "",
        "fullnameOverride": "",
        "scone": {
            "mesh": mesh,
            "service": s.mesh_service,
            "configId": s.config_id,
            "casAddr": s.cas_addr,
        },
        "service": {
            "enabled": s.port.is_some(),
            "type": "ClusterIP",
            "port": s.port.unwrap_or(443),
        },
        "resources": { "limits": { "sgx.k8s.io/sgx": 1 } },
        "nodeSelector": { "las.scontain.com/ok": "true" },
    })
}

/// JSON Schema of a sub-chart's values: Helm checks it at lint, install and upgrade.
fn values_schema() -> Value {
    let string = json!({"type": "string"});
    json!({
        "$schema": "https://json-schema.org/draft-07/schema#",
        "title": "values of a meshfile service sub-chart",
        "type": "object",
        "required": ["image", "scone", "service", "replicaCount"],
        "properties": {
            "replicaCount": {"type": "integer", "minimum": 0},
            "image": {
                "type": "object",
                "required": ["repository", "pullPolicy"],
                "properties": {
                    "repository": {"type": "string", "minLength": 1},
                    "tag": string,
                    "digest": {"type": "string", "pattern": "^(|[a-z0-9]+:[a-f0-9]{32,})$"},
                    "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                },
            },
            "imagePullSecrets": {
                "type": "array",
                "items": {"type": "object", "required": ["name"], "properties": {"name": string}},
            },
            "nameOverride": string,
            "fullnameOverride": string,
            "scone": {
                "type": "object",
                "required": ["configId", "casAddr"],
                "properties": {
                    "mesh": string,
                    "service": string,
                    "configId": {"type": "string", "pattern": "^[^/]+(/[^/]+)+$"},
                    "casAddr": {"type": "string", "minLength": 1},
                },
            },
            "service": {
                "type": "object",
                "required": ["enabled", "type", "port"],
                "properties": {
                    "enabled": {"type": "boolean"},
                    "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                },
            },
            "resources": {"type": "object"},
            "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    })
}

/// Service `s`'s entry in the umbrella's values (for [`umbrella_values_from`]), from the
/// sub-chart [`subchart`] made for it: `None` for a user's own chart, which has none.
pub fn umbrella_entry(model: &ChartModel, s: &ChartService, chart: &SubChart) -> Option<String> {
    if s.chart_dir.is_some() {
        return None;
    }
    let values = chart.files.get("values.yaml")?;
    Some(entry(model, s, &String::from_utf8_lossy(values.bytes())))
}

/// A generated service's entry in the umbrella's values, from its sub-chart's `values.yaml`
/// text (which is the entry's value as it is, unless `helm_extra_values` changes it): made
/// while the sub-charts are packaged, without building the values again.
fn entry(model: &ChartModel, s: &ChartService, values_yaml: &str) -> String {
    let node = meshfile_manifest::helm_values::from_json;
    match model.extra_values.get(&s.chart) {
        None => meshfile_yaml::emit_mapping_entry(&s.chart, values_yaml),
        Some(extra) => {
            let mut values = values(&model.name, s);
            match (&mut values, extra) {
                (Value::Object(base), Value::Object(more)) => deep_merge(base, more),
                (_, replacement) => values = replacement.clone(),
            }
            meshfile_yaml::emit_entries([(s.chart.clone(), node(&values))])
        }
    }
}

/// The umbrella's `values.yaml` from the generated services' entries (in the model's order):
/// the text of merging into one mapping, without holding every service's values at once.
pub fn umbrella_values_from(
    model: &ChartModel,
    entries: impl IntoIterator<Item = String>,
) -> String {
    let mut out: String = entries.into_iter().collect();
    let generated: std::collections::BTreeSet<&str> = model
        .services
        .iter()
        .filter(|s| s.chart_dir.is_none())
        .map(|s| s.chart.as_str())
        .collect();
    let others: Vec<(String, meshfile_yaml::Node)> = model
        .extra_values
        .iter()
        .filter(|(key, _)| !generated.contains(key.as_str()))
        .map(|(key, value)| {
            (
                key.clone(),
                meshfile_manifest::helm_values::from_json(value),
            )
        })
        .collect();
    if !others.is_empty() {
        out.push_str(&meshfile_yaml::emit_entries(others));
    }
    if out.is_empty() {
        out.push_str("{}\n");
    }
    out
}

/// A generated sub-chart's `values.yaml`.
fn values_yaml(model: &ChartModel, s: &ChartService) -> String {
    yaml(&values(&model.name, s))
}

/// Merges `extra` into `base`: mappings key by key, anything else replaced.
pub fn deep_merge(base: &mut Map<String, Value>, extra: &Map<String, Value>) {
    for (key, value) in extra {
        match (base.get_mut(key), value) {
            (Some(Value::Object(b)), Value::Object(e)) => deep_merge(b, e),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Reads a user's chart directory (`helm_chart`): its text files by relative path.
pub type ChartReader<'a> = &'a dyn Fn(&str) -> Result<BTreeMap<String, Vec<u8>>, String>;

/// The `name` and `version` a chart's Chart.yaml declares.
fn chart_identity(chart_yaml: &[u8]) -> Option<(String, String)> {
    let node = meshfile_yaml::parse_bytes(chart_yaml, &meshfile_manifest::limits()).ok()?;
    let meshfile_yaml::Value::Mapping(entries) = &node.value else {
        return None;
    };
    let get = |k: &str| {
        entries
            .iter()
            .find(|e| e.key_text() == k)
            .and_then(|e| e.value.as_scalar())
            .map(str::to_owned)
    };
    Some((get("name")?, get("version")?))
}

/// Which chart deploys a service: what the umbrella's `dependencies` list.
#[derive(Clone, Debug, PartialEq)]
pub struct Dependency {
    /// The mesh service it deploys.
    pub service: String,
    pub name: String,
    pub version: String,
}

/// A chart a service deploys with: packaged into the umbrella's `charts/` as one archive,
/// the form `helm dependency build` leaves there. One file per service instead of a
/// directory tree keeps a large mesh's output small and fast to write.
#[derive(Clone, Debug, PartialEq)]
pub struct SubChart {
    pub dependency: Dependency,
    /// Its files, by path relative to the sub-chart's root.
    pub files: BTreeMap<String, ChartFile>,
}

/// A file of a sub-chart: its own bytes, or a file every generated sub-chart has (its
/// compression is made once and shared).
#[derive(Clone, Debug)]
pub enum ChartFile {
    Own(Vec<u8>),
    Common(&'static targz::Segment),
}

impl ChartFile {
    pub fn bytes(&self) -> &[u8] {
        match self {
            ChartFile::Own(bytes) => bytes,
            ChartFile::Common(segment) => segment.data(),
        }
    }
}

impl PartialEq for ChartFile {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl SubChart {
    /// Where the archive goes in the umbrella chart: `charts/<name>-<version>.tgz`.
    pub fn archive_path(&self) -> String {
        format!(
            "charts/{}-{}.tgz",
            self.dependency.name, self.dependency.version
        )
    }

    /// The sub-chart as a gzip-compressed tar, files under `<name>/` as Helm packages them.
    /// Owner, mode and time are fixed: the same files give the same bytes.
    pub fn archive(&self) -> Vec<u8> {
        targz::tar_gz(self.files.iter().map(|(path, file)| {
            let contents = match file {
                ChartFile::Own(bytes) => targz::Contents::Bytes(bytes),
                ChartFile::Common(segment) => targz::Contents::Shared(segment),
            };
            (format!("{}/{path}", self.dependency.name), contents)
        }))
    }
}

/// A path that a tar archive can hold and Helm loads: relative, `/`-separated, no `..`.
fn is_archivable(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// The files every generated sub-chart has, the same text in each (their named templates
/// too: Helm's template names are global, and identical definitions under one name are
/// harmless, as with library charts), each compressed once.
static COMMON_FILES: std::sync::LazyLock<[(&str, targz::Segment); 4]> =
    std::sync::LazyLock::new(|| {
        let schema = serde_json::to_string_pretty(&values_schema()).unwrap_or_default() + "\n";
        [
            ("templates/_helpers.tpl", HELPERS.as_bytes().to_vec()),
            ("templates/deployment.yaml", DEPLOYMENT.as_bytes().to_vec()),
            ("templates/service.yaml", SERVICE.as_bytes().to_vec()),
            ("values.schema.json", schema.into_bytes()),
        ]
        .map(|(path, data)| (path, targz::Segment::new(data)))
    });

/// The chart that deploys service `s`: generated, or the user's `helm_chart` as it is.
pub fn subchart(
    model: &ChartModel,
    s: &ChartService,
    read_chart: ChartReader<'_>,
) -> Result<SubChart, String> {
    if let Some(path) = &s.chart_dir {
        let files = read_chart(path)
            .map_err(|e| format!("helm_chart `{path}` of service `{}`: {e}", s.mesh_service))?;
        let (name, version) = files
            .get("Chart.yaml")
            .and_then(|c| chart_identity(c))
            .ok_or_else(|| format!("helm_chart `{path}` of service `{}` has no Chart.yaml with `name` and `version`", s.mesh_service))?;
        if let Some(bad) = files.keys().find(|rel| !is_archivable(rel)) {
            return Err(format!(
                "helm_chart `{path}` of service `{}`: `{bad}` cannot be packaged",
                s.mesh_service
            ));
        }
        let dependency = Dependency {
            service: s.mesh_service.clone(),
            name,
            version,
        };
        let files = files
            .into_iter()
            .map(|(path, bytes)| (path, ChartFile::Own(bytes)))
            .collect();
        return Ok(SubChart { dependency, files });
    }
    let description = format!("SCONE service `{}` of mesh {}", s.mesh_service, model.name);
    let mut files: BTreeMap<String, ChartFile> = COMMON_FILES
        .iter()
        .map(|(path, segment)| ((*path).to_owned(), ChartFile::Common(segment)))
        .collect();
    files.insert(
        "Chart.yaml".to_owned(),
        ChartFile::Own(chart_yaml(&s.chart, &description, &[]).into_bytes()),
    );
    files.insert(
        "values.yaml".to_owned(),
        ChartFile::Own(values_yaml(model, s).into_bytes()),
    );
    let dependency = Dependency {
        service: s.mesh_service.clone(),
        name: s.chart.clone(),
        version: CHART_VERSION.to_owned(),
    };
    Ok(SubChart { dependency, files })
}

/// The umbrella chart's own files, given the sub-charts (from [`subchart`], one per service
/// in the model's order) and its `values.yaml` (from [`umbrella_values_from`]; the two can be made
/// at the same time).
pub fn umbrella(
    model: &ChartModel,
    dependencies: &[Dependency],
    values: String,
) -> Result<BTreeMap<String, String>, String> {
    let mut by_name: BTreeMap<&str, &str> = BTreeMap::new();
    for d in dependencies {
        if let Some(first) = by_name.insert(&d.name, &d.service) {
            return Err(format!(
                "services `{first}` and `{}` both deploy a chart named `{}`; Helm tells sub-charts apart by name: give their charts distinct names",
                d.service, d.name
            ));
        }
    }
    let listed: Vec<(String, String)> = dependencies
        .iter()
        .map(|d| (d.name.clone(), d.version.clone()))
        .collect();
    let mut files = BTreeMap::new();
    files.insert(
        "Chart.yaml".into(),
        chart_yaml(
            &model.name,
            "Confidential service mesh generated by meshfile; policies live in CAS",
            &listed,
        ),
    );
    files.insert("templates/NOTES.txt".into(), NOTES.to_owned());
    files.insert("values.yaml".into(), values);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(chart: &str, chart_dir: Option<&str>) -> ChartService {
        ChartService {
            chart: chart.into(),
            mesh_service: chart.into(),
            repository: format!("registry.example.com/{chart}"),
            tag: Some("1".into()),
            digest: None,
            config_id: format!("ns/{chart}/python3"),
            cas_addr: "cas".into(),
            image_pull_secrets: vec!["pull".into()],
            port: Some(443),
            chart_dir: chart_dir.map(str::to_owned),
        }
    }

    /// The umbrella's values as `template` makes them: each service's entry from its sub-chart.
    fn umbrella_values(model: &ChartModel) -> String {
        let no_user_charts = |_: &str| Err("not read here".to_owned());
        umbrella_values_from(
            model,
            model.services.iter().filter_map(|s| {
                let chart = subchart(model, s, &no_user_charts).ok()?;
                umbrella_entry(model, s, &chart)
            }),
        )
    }

    #[test]
    fn umbrella_values_are_the_merged_mapping() {
        let extra = json!({
            "svc-b": {"replicaCount": 3, "image": {"pullPolicy": "Always"}, "podLabels": {"a": "b"}},
            "global": {"team": "x"},
            "custom": {"greeting": "hi"},
            "svc-c": "replaced",
        });
        let model = ChartModel {
            name: "mesh".into(),
            services: vec![
                service("svc-a", None),
                service("svc-b", None),
                service("custom", Some("charts/custom")),
                service("svc-c", None),
            ],
            extra_values: extra.as_object().cloned().unwrap_or_default(),
        };
        // The definition: every generated service's values in one mapping, extras merged over it.
        let mut whole = Map::new();
        for s in model.services.iter().filter(|s| s.chart_dir.is_none()) {
            whole.insert(s.chart.clone(), values(&model.name, s));
        }
        deep_merge(&mut whole, &model.extra_values);
        assert_eq!(umbrella_values(&model), yaml(&Value::Object(whole)));
        let text = umbrella_values(&model);
        assert!(text.contains("svc-b:\n  replicaCount: 3\n"), "{text}");
        assert!(text.contains("    pullPolicy: Always\n"), "{text}");
        assert!(text.contains("svc-c: replaced\n"), "{text}");
        assert!(!text.contains("custom:\n  replicaCount"), "{text}");
    }

    #[test]
    fn deep_merge_keeps_siblings() {
        let mut base = json!({"a": {"x": 1, "y": {"z": 2}}, "b": 1})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let extra = json!({"a": {"y": {"w": 3}}, "c": [1]})
            .as_object()
            .cloned()
            .unwrap_or_default();
        deep_merge(&mut base, &extra);
        assert_eq!(
            Value::Object(base),
            json!({"a": {"x": 1, "y": {"z": 2, "w": 3}}, "b": 1, "c": [1]})
        );
    }
}
