//! Helm chart files for a compiled mesh: an umbrella chart with one sub-chart per service.
//!
//! Output is a sorted map of relative paths to contents, so writing it is the caller's job
//! and two runs give the same bytes.

use std::collections::BTreeMap;

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
        // Sub-charts ship in charts/; without a repository Helm takes them from there.
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
pub type ChartReader<'a> = &'a dyn Fn(&str) -> Result<BTreeMap<String, String>, String>;

/// The `name` and `version` a chart's Chart.yaml declares.
fn chart_identity(chart_yaml: &str) -> Option<(String, String)> {
    let node = meshfile_yaml::parse(chart_yaml, &meshfile_manifest::limits()).ok()?;
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

/// Every file of the chart, by path relative to the chart's root. A service with `helm_chart`
/// gets that chart, as it is, in place of the generated sub-chart (and no generated values).
pub fn render(
    model: &ChartModel,
    read_chart: ChartReader<'_>,
) -> Result<BTreeMap<String, String>, String> {
    let mut files = BTreeMap::new();
    let mut dependencies: Vec<(String, String)> = Vec::new();
    let mut umbrella = Map::new();
    for s in &model.services {
        let dir = format!("charts/{}", s.chart);
        if let Some(path) = &s.chart_dir {
            let chart = read_chart(path)
                .map_err(|e| format!("helm_chart `{path}` of service `{}`: {e}", s.mesh_service))?;
            let (name, version) = chart
                .get("Chart.yaml")
                .and_then(|c| chart_identity(c))
                .ok_or_else(|| format!("helm_chart `{path}` of service `{}` has no Chart.yaml with `name` and `version`", s.mesh_service))?;
            files.extend(
                chart
                    .into_iter()
                    .map(|(rel, text)| (format!("{dir}/{rel}"), text)),
            );
            dependencies.push((name, version));
            continue;
        }
        let defaults = values(&model.name, s);
        files.insert(
            format!("{dir}/Chart.yaml"),
            chart_yaml(
                &s.chart,
                &format!("SCONE service `{}` of mesh {}", s.mesh_service, model.name),
                &[],
            ),
        );
        files.insert(format!("{dir}/values.yaml"), yaml(&defaults));
        files.insert(
            format!("{dir}/values.schema.json"),
            serde_json::to_string_pretty(&values_schema()).unwrap_or_default() + "\n",
        );
        for (name, template) in [
            ("_helpers.tpl", HELPERS),
            ("deployment.yaml", DEPLOYMENT),
            ("service.yaml", SERVICE),
        ] {
            files.insert(
                format!("{dir}/templates/{name}"),
                template.replace("@CHART@", &s.chart),
            );
        }
        dependencies.push((s.chart.clone(), CHART_VERSION.to_owned()));
        umbrella.insert(s.chart.clone(), defaults);
    }
    files.insert(
        "Chart.yaml".into(),
        chart_yaml(
            &model.name,
            "Confidential service mesh generated by meshfile; policies live in CAS",
            &dependencies,
        ),
    );
    files.insert("templates/NOTES.txt".into(), NOTES.to_owned());
    deep_merge(&mut umbrella, &model.extra_values);
    files.insert("values.yaml".into(), yaml(&Value::Object(umbrella)));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

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
