//! Helm chart files for a compiled mesh: an umbrella chart with one sub-chart per service.
//!
//! Every generated service is the same chart ([`service_chart`], packaged once) deployed under
//! the service's name with the service's values; a service with its own `helm_chart` brings
//! its chart. Output is data (sorted maps of relative paths to contents, sub-charts packaged
//! by [`SubChart::archive`]), so writing it is the caller's job and two runs give the same bytes.

use std::collections::BTreeMap;

pub mod helmignore;
pub mod policies;
pub mod targz;

use meshfile_plan::{ChartModel, ChartService};
use serde_json::{Map, Value, json};

const HELPERS: &str = include_str!("templates/_helpers.tpl");
const DEPLOYMENT: &str = include_str!("templates/deployment.yaml");
const SERVICE: &str = include_str!("templates/service.yaml");
const NOTES: &str = include_str!("templates/NOTES.txt");

const SERVICE_VALUES: &str = include_str!("templates/service-values.yaml");

/// The chart's version; the services' images carry their own versions.
pub const CHART_VERSION: &str = "0.1.0";

/// The name of the chart that deploys every generated service ([`service_chart`]).
pub const SERVICE_CHART: &str = "meshfile-service";

fn yaml(value: &Value) -> String {
    meshfile_yaml::emit(&meshfile_manifest::helm_values::from_json(value))
}

fn chart_yaml(name: &str, description: &str, dependencies: &[Dependency]) -> String {
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
            .map(|d| match &d.alias {
                Some(alias) => json!({"name": d.name, "version": d.version, "alias": alias}),
                None => json!({"name": d.name, "version": d.version}),
            })
            .collect();
    }
    yaml(&chart)
}

/// A generated service's values: public facts only, under the keys of SCONE's genservice
/// chart (`image` a string, `scone.api_session`, `scone.cas`, `initContainers`, `jobs`, ...),
/// meshfile's additions beside them (`imagePullPolicy`, `scone.mesh`/`service`/`component`/
/// `env`, `service.enabled`, `waitImage`).
fn values(mesh: &str, s: &ChartService) -> Value {
    let image = match &s.digest {
        Some(digest) => format!("{}@{digest}", s.repository),
        None => format!("{}:{}", s.repository, s.tag.as_deref().unwrap_or("latest")),
    };
    // A digest never moves: pulled once. A tag may: pulled every time, as genservice does.
    let pull_policy = if s.digest.is_some() {
        "IfNotPresent"
    } else {
        "Always"
    };
    let mut env = s.runtime_env.clone();
    let scone_log = env.remove("SCONE_LOG").unwrap_or_else(|| "error".into());
    let scone_version = env.remove("SCONE_VERSION").unwrap_or_else(|| "0".into());
    let init_containers: Map<String, Value> = (s.wait_for.iter().enumerate())
        .map(|(i, (host, port))| {
            (
                format!("container{}", i + 1),
                json!({"enabled": true, "host": host, "port": port}),
            )
        })
        .collect();
    let mut scone = json!({
        "api_session": s.config_id,
        "cas": s.cas_addr.clone().unwrap_or_default(),
        "command": s.program.iter().collect::<Vec<_>>(),
        "scone_log": scone_log,
        "scone_version": scone_version,
        "mesh": mesh,
        "service": s.mesh_service,
        "component": s.component,
    });
    if !env.is_empty() {
        scone["env"] = json!(env);
    }
    json!({
        "replicaCount": 1,
        "image": image,
        "imagePullPolicy": pull_policy,
        "imagePullSecrets": s.image_pull_secrets.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
        "nameOverride": "",
        "fullnameOverride": "",
        "scone": scone,
        "initContainers": init_containers,
        "service": {
            "enabled": s.port.is_some(),
            "type": "ClusterIP",
            "port": s.port.unwrap_or(443),
        },
        "jobs": {"restartPolicy": "Always"},
        "resources": sgx_resources(&s.sgx),
        "nodeSelector": { "las.scontain.com/ok": "true" },
    })
}

/// A generated service's entry in the umbrella's values: its [`values`] less what the service
/// chart's own `values.yaml` holds already, which Helm merges in under each service. Each
/// service's entry stays to what differs (its image, session, port), so that the umbrella's
/// `values.yaml` of a large mesh stays within what Helm loads (5 MiB a file).
fn generated_values(mesh: &str, s: &ChartService) -> Value {
    static DEFAULTS: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let defaults = DEFAULTS.get_or_init(|| {
        meshfile_yaml::parse(SERVICE_VALUES, &meshfile_yaml::Limits::default())
            .map(|node| meshfile_manifest::helm_values::to_json(&node))
            .unwrap_or_default()
    });
    let mut values = values(mesh, s);
    without_defaults(&mut values, defaults);
    values
}

/// Removes from `values` every entry `defaults` holds with the same value (mappings entry by
/// entry; a mapping left empty goes too).
fn without_defaults(values: &mut Value, defaults: &Value) {
    let (Value::Object(values), Value::Object(defaults)) = (values, defaults) else {
        return;
    };
    values.retain(|key, value| match defaults.get(key) {
        None => true,
        Some(default) if default == value => false,
        Some(default) => {
            without_defaults(value, default);
            !matches!(value, Value::Object(m) if m.is_empty()) || !default.is_object()
        }
    });
}

/// The resources a pod asks for from the cluster's SGX device plugin, as SCONE's charts do.
fn sgx_resources(sgx: &meshfile_plan::Sgx) -> Value {
    use meshfile_plan::Sgx;
    match sgx {
        Sgx::Scone => json!({"limits": {"sgx.k8s.io/sgx": 1}}),
        Sgx::Azure { epc_mib } => {
            json!({"limits": {"kubernetes.azure.com/sgx_epc_mem_in_MiB": epc_mib}})
        }
        Sgx::Intel { epc_mib } => json!({"limits": {"sgx.intel.com/epc": format!("{epc_mib}Mi")}}),
        Sgx::Disabled => json!({}),
    }
}

/// JSON Schema of a service's values: Helm checks it at lint, install and upgrade, and it
/// refuses keys the chart does not know, so that a mistyped `--set` fails instead of being
/// dropped. The chart's own defaults name no service (nothing renders from them); once values
/// name a session, they must also name an image and a CAS.
fn values_schema() -> Value {
    let string = json!({"type": "string"});
    let object = json!({"type": "object"});
    let port = json!({"type": "integer", "minimum": 1, "maximum": 65535});
    let closed = |properties: Value, required: &[&str]| {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": required,
            "properties": properties,
        })
    };
    json!({
        "$schema": "https://json-schema.org/draft-07/schema#",
        "title": "values of a service of a meshfile mesh (SCONE genservice's keys)",
        "type": "object",
        "additionalProperties": false,
        "required": ["image", "scone", "service", "replicaCount"],
        "properties": {
            // Helm hands every sub-chart the umbrella's `global` values.
            "global": object,
            "replicaCount": {"type": "integer", "minimum": 0},
            "image": string,
            "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            "imagePullSecrets": {
                "type": "array",
                "items": closed(json!({"name": string}), &["name"]),
            },
            "nameOverride": string,
            "fullnameOverride": string,
            "podSecurityContext": object,
            "securityContext": object,
            "scone": closed(json!({
                "api_session": {"type": "string", "pattern": "^([^/]+(/[^/]+)+)?$"},
                "cas": string,
                "command": {"type": "array", "items": string},
                "scone_log": {"type": ["string", "integer"]},
                "scone_version": {"type": ["string", "integer"]},
                "mesh": string,
                "service": string,
                "component": string,
                "env": {"type": "object", "additionalProperties": string},
            }), &["api_session", "cas"]),
            "initContainers": {
                "type": "object",
                "additionalProperties": false,
                "patternProperties": {
                    "^container[1-9][0-9]*$": closed(json!({
                        "enabled": {"type": "boolean"},
                        "host": string,
                        "port": {"anyOf": [port, {"type": "string", "pattern": "^[0-9]*$"}]},
                    }), &["enabled"]),
                },
            },
            "waitImage": string,
            "service": closed(json!({
                "enabled": {"type": "boolean"},
                "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                "port": port,
            }), &["type", "port"]),
            // Deployments run their pods with `Always` only; Kubernetes refuses another.
            "jobs": closed(json!({"restartPolicy": {"enum": ["Always"]}}), &[]),
            "resources": object,
            "tolerations": {"type": "array"},
            "affinity": object,
            "nodeSelector": {"type": "object", "additionalProperties": string},
        },
        "if": {"properties": {"scone": {"properties": {"api_session": {"minLength": 1}}}}},
        "then": {"properties": {"image": {"minLength": 1}}},
    })
}

/// A service's entry in the umbrella's values: its key (the sub-chart's name) and text.
#[derive(Clone, Debug, PartialEq)]
pub struct ValuesEntry {
    pub key: String,
    pub text: String,
}

/// A service's entry in the umbrella's values, under `key`: `values`, with `helm_extra_values`
/// for it merged over them.
fn entry(model: &ChartModel, key: &str, mut values: Value) -> ValuesEntry {
    match (&mut values, model.extra_values.get(key)) {
        (Value::Object(base), Some(Value::Object(more))) => deep_merge(base, more),
        (_, Some(replacement)) => values = replacement.clone(),
        (_, None) => {}
    }
    ValuesEntry {
        key: key.to_owned(),
        text: meshfile_yaml::emit_entries([(
            key.to_owned(),
            meshfile_manifest::helm_values::from_json(&values),
        )]),
    }
}

/// What a user's chart (`helm_chart`) is given, as a generated service is: the `scone` values
/// (`api_session`, `cas`, `env`, ...) and the `image`, for its templates to use.
fn own_chart_values(mesh: &str, s: &ChartService) -> Value {
    let generated = values(mesh, s);
    json!({"scone": generated["scone"], "image": generated["image"]})
}

/// The umbrella's `values.yaml` from the generated services' entries (in the model's order):
/// the text of merging into one mapping, without holding every service's values at once.
pub fn umbrella_values_from(
    model: &ChartModel,
    entries: impl IntoIterator<Item = ValuesEntry>,
) -> String {
    let mut out = String::new();
    let mut generated = std::collections::BTreeSet::new();
    for entry in entries {
        out.push_str(&entry.text);
        generated.insert(entry.key);
    }
    // A mapping under `global` stands where the user put it, with the generated one merged in;
    // without one, the generated `global` comes last.
    let mut global = global_values(model);
    let mut others: Vec<(String, Value)> = model
        .extra_values
        .iter()
        .filter(|(key, _)| !generated.contains(key.as_str()))
        .map(|(key, value)| match (key.as_str(), value) {
            (GLOBAL, Value::Object(_)) => (key.clone(), global.take().unwrap_or(value.clone())),
            _ => (key.clone(), value.clone()),
        })
        .collect();
    others.extend(global.map(|global| (GLOBAL.to_owned(), global)));
    let others: Vec<(String, meshfile_yaml::Node)> = others
        .into_iter()
        .map(|(key, value)| (key, meshfile_manifest::helm_values::from_json(&value)))
        .collect();
    if !others.is_empty() {
        out.push_str(&meshfile_yaml::emit_entries(others));
    }
    if out.is_empty() {
        out.push_str("{}\n");
    }
    out
}

/// The umbrella values every sub-chart sees as `.Values.global`.
const GLOBAL: &str = "global";

/// The umbrella's `global` values: `casAddr`, empty, for the install to set when a generated
/// service has no CAS address of its own (a mesh on the embedded store), and what
/// `helm_extra_values` gives under `global` when that is a mapping (anything else is left
/// as written).
fn global_values(model: &ChartModel) -> Option<Value> {
    let mut global = Map::new();
    if model.services.iter().any(|s| s.cas_addr.is_none()) {
        global.insert("casAddr".into(), Value::String(String::new()));
    }
    if let Some(Value::Object(extra)) = model.extra_values.get(GLOBAL) {
        deep_merge(&mut global, extra);
    }
    (!global.is_empty()).then_some(Value::Object(global))
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

/// Why a service's chart, or the umbrella chart, cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    #[error("helm_chart `{path}` of service `{service}`: {why}")]
    Unreadable {
        path: String,
        service: String,
        why: meshfile_plan::files::FileError,
    },
    #[error(
        "the chart `{path}` of service `{service}` has no Chart.yaml with `name` and `version`"
    )]
    NoIdentity { path: String, service: String },
    #[error("the chart `{path}` of service `{service}`: `{file}` cannot be packaged")]
    NotArchivable {
        path: String,
        service: String,
        file: String,
    },
    #[error(
        "services `{first}` and `{second}` are both deployed as sub-chart `{key}`; Helm tells sub-charts apart by name: rename one service, or give its `helm_chart` another name"
    )]
    SameSubChart {
        first: String,
        second: String,
        key: String,
    },
    #[error(
        "the `helm_chart` of service `{0}` is named `{SERVICE_CHART}`, the name of the chart meshfile generates for the other services: give it another name in its Chart.yaml"
    )]
    GeneratedName(String),
}

/// Reads a user's chart directory (`helm_chart`): its text files by relative path.
pub type ChartReader<'a> =
    &'a dyn Fn(&str) -> Result<BTreeMap<String, Vec<u8>>, meshfile_plan::files::FileError>;

/// The `name` and `version` a chart's Chart.yaml declares.
fn chart_identity(chart_yaml: &[u8]) -> Option<(String, String)> {
    let node = meshfile_yaml::parse_bytes(chart_yaml, &meshfile_manifest::limits()).ok()?;
    Some((
        node.scalar_at("name")?.to_owned(),
        node.scalar_at("version")?.to_owned(),
    ))
}

/// Which chart deploys a service: an entry of the umbrella's `dependencies`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dependency {
    /// The mesh service it deploys.
    pub service: String,
    pub name: String,
    pub version: String,
    /// The name Helm deploys the chart under, when it is not the chart's own: a generated
    /// service's name, as every generated service deploys with the one [`SERVICE_CHART`].
    pub alias: Option<String>,
}

impl Dependency {
    /// The sub-chart's name in Helm: its key in the umbrella's values, its resources' name.
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// A chart packaged into the umbrella's `charts/` as one archive, the form `helm dependency
/// build` leaves there.
#[derive(Clone, Debug, PartialEq)]
pub struct SubChart {
    pub name: String,
    pub version: String,
    /// Its files, by path relative to the sub-chart's root.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl SubChart {
    /// Where the archive goes in the umbrella chart: `charts/<name>-<version>.tgz`.
    pub fn archive_path(&self) -> String {
        format!("charts/{}-{}.tgz", self.name, self.version)
    }

    /// The sub-chart as a gzip-compressed tar, files under `<name>/` as Helm packages them.
    /// Owner, mode and time are fixed: the same files give the same bytes.
    pub fn archive(&self) -> Vec<u8> {
        targz::tar_gz(
            self.files
                .iter()
                .map(|(path, bytes)| (format!("{}/{path}", self.name), bytes.as_slice())),
        )
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

/// The chart of every generated service. The umbrella lists it once per service, under the
/// service's name (a dependency `alias`), and gives each its values: Helm renders one
/// sub-chart per service from one archive, so a mesh of thousands of services is not
/// thousands of copies of the same templates.
pub fn service_chart() -> SubChart {
    let schema = serde_json::to_string_pretty(&values_schema()).unwrap_or_default() + "\n";
    let files = [
        (
            "Chart.yaml",
            chart_yaml(
                SERVICE_CHART,
                "A SCONE service of a mesh generated by meshfile, deployed once per service under the service's name",
                &[],
            ),
        ),
        ("values.yaml", SERVICE_VALUES.to_owned()),
        ("values.schema.json", schema),
        ("templates/_helpers.tpl", HELPERS.to_owned()),
        ("templates/deployment.yaml", DEPLOYMENT.to_owned()),
        ("templates/service.yaml", SERVICE.to_owned()),
    ];
    SubChart {
        name: SERVICE_CHART.to_owned(),
        version: CHART_VERSION.to_owned(),
        files: files
            .into_iter()
            .map(|(path, text)| (path.to_owned(), text.into_bytes()))
            .collect(),
    }
}

/// How a service is deployed, for the umbrella chart.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceChart {
    pub dependency: Dependency,
    /// Its entry in the umbrella's values (for [`umbrella_values_from`]).
    pub values_entry: ValuesEntry,
    /// A user's own chart (`helm_chart`), to package into `charts/`.
    pub own_chart: Option<SubChart>,
}

/// How service `s` is deployed: by [`service_chart`] with its values, by the chart of its
/// genservice template directory, or by the user's `helm_chart` as it is.
pub fn service(
    model: &ChartModel,
    s: &ChartService,
    read_chart: ChartReader<'_>,
) -> Result<ServiceChart, ChartError> {
    let (path, files) = match (&s.chart_files, &s.chart_dir) {
        (Some(files), _) => ("--helm-template", files.clone()),
        (None, Some(path)) => (
            path.as_str(),
            read_chart(path).map_err(|why| ChartError::Unreadable {
                path: path.clone(),
                service: s.mesh_service.clone(),
                why,
            })?,
        ),
        (None, None) => return Ok(generated(model, s)),
    };
    let (name, version) = files
        .get("Chart.yaml")
        .and_then(|c| chart_identity(c))
        .ok_or_else(|| ChartError::NoIdentity {
            path: path.to_owned(),
            service: s.mesh_service.clone(),
        })?;
    if let Some(bad) = files.keys().find(|rel| !is_archivable(rel)) {
        return Err(ChartError::NotArchivable {
            path: path.to_owned(),
            service: s.mesh_service.clone(),
            file: bad.clone(),
        });
    }
    Ok(ServiceChart {
        dependency: Dependency {
            service: s.mesh_service.clone(),
            name: name.clone(),
            version: version.clone(),
            alias: None,
        },
        values_entry: entry(model, &name, own_chart_values(&model.name, s)),
        own_chart: Some(SubChart {
            name,
            version,
            files,
        }),
    })
}

/// A service deployed by [`service_chart`] with its values.
fn generated(model: &ChartModel, s: &ChartService) -> ServiceChart {
    ServiceChart {
        dependency: Dependency {
            service: s.mesh_service.clone(),
            name: SERVICE_CHART.to_owned(),
            version: CHART_VERSION.to_owned(),
            alias: Some(s.chart.clone()),
        },
        values_entry: entry(model, &s.chart, generated_values(&model.name, s)),
        own_chart: None,
    }
}

/// The umbrella chart's own files and [`service_chart`]'s archive if a service uses it, given
/// the services' dependencies (from [`service`], in the model's order) and its `values.yaml`
/// (from [`umbrella_values_from`]).
pub fn umbrella(
    model: &ChartModel,
    dependencies: &[Dependency],
    values: String,
) -> Result<BTreeMap<String, Vec<u8>>, ChartError> {
    let mut by_key: BTreeMap<&str, &str> = BTreeMap::new();
    for d in dependencies {
        if let Some(first) = by_key.insert(d.key(), &d.service) {
            return Err(ChartError::SameSubChart {
                first: first.to_owned(),
                second: d.service.clone(),
                key: d.key().to_owned(),
            });
        }
    }
    let generated = dependencies.iter().any(|d| d.alias.is_some());
    if generated
        && let Some(own) = dependencies
            .iter()
            .find(|d| d.alias.is_none() && d.name == SERVICE_CHART)
    {
        return Err(ChartError::GeneratedName(own.service.clone()));
    }
    let mut files = BTreeMap::new();
    files.insert(
        "Chart.yaml".into(),
        chart_yaml(
            &model.name,
            "Confidential service mesh generated by meshfile; policies live in CAS",
            dependencies,
        )
        .into_bytes(),
    );
    files.insert("templates/NOTES.txt".into(), NOTES.as_bytes().to_vec());
    files.insert("values.yaml".into(), values.into_bytes());
    if generated {
        let chart = service_chart();
        files.insert(chart.archive_path(), chart.archive());
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshfile_plan::files::FileError;

    fn chart_service(chart: &str, chart_dir: Option<&str>) -> ChartService {
        ChartService {
            chart: chart.into(),
            mesh_service: chart.into(),
            component: "app".into(),
            repository: format!("registry.example.com/{chart}"),
            tag: Some("1".into()),
            digest: None,
            pinned: None,
            config_id: format!("ns/{chart}/python3"),
            cas_addr: Some("cas".into()),
            runtime_env: BTreeMap::new(),
            image_pull_secrets: vec!["pull".into()],
            port: Some(443),
            chart_dir: chart_dir.map(str::to_owned),
            chart_files: None,
            sgx: meshfile_plan::Sgx::Scone,
            wait_for: Vec::new(),
            program: Some("python3".into()),
        }
    }

    fn no_user_charts(_: &str) -> Result<BTreeMap<String, Vec<u8>>, FileError> {
        Err(FileError::NotRegular)
    }

    /// The umbrella's values as `template` makes them: each generated service's entry.
    fn umbrella_values(model: &ChartModel) -> String {
        umbrella_values_from(
            model,
            model
                .services
                .iter()
                .filter(|s| s.chart_dir.is_none())
                .filter_map(|s| Some(service(model, s, &no_user_charts).ok()?.values_entry)),
        )
    }

    fn model(services: Vec<ChartService>) -> ChartModel {
        ChartModel {
            name: "mesh".into(),
            services,
            extra_values: Map::new(),
        }
    }

    #[test]
    fn generated_services_share_one_chart_under_their_names() {
        let model = model(vec![
            chart_service("svc-a", None),
            chart_service("svc-b", None),
        ]);
        let dependencies: Vec<Dependency> = (model.services.iter())
            .map(|s| {
                service(&model, s, &no_user_charts)
                    .expect("generated")
                    .dependency
            })
            .collect();
        let files = umbrella(&model, &dependencies, umbrella_values(&model)).expect("umbrella");
        let archives: Vec<&String> = files.keys().filter(|k| k.starts_with("charts/")).collect();
        assert_eq!(archives, ["charts/meshfile-service-0.1.0.tgz"]);
        let chart = String::from_utf8_lossy(&files["Chart.yaml"]).into_owned();
        assert!(
            chart.contains("- name: meshfile-service\n  version: \"0.1.0\"\n  alias: svc-a\n- name: meshfile-service\n  version: \"0.1.0\"\n  alias: svc-b\n"),
            "{chart}"
        );
        assert_eq!(files[archives[0]], service_chart().archive());
    }

    #[test]
    fn a_service_without_a_cas_address_leaves_global_cas_addr_to_the_install() {
        let mut embedded = chart_service("svc-a", None);
        embedded.cas_addr = None;
        let mut model = model(vec![embedded, chart_service("svc-b", None)]);
        let values = umbrella_values(&model);
        assert!(values.contains("  casAddr: \"\"\n"), "{values}");
        assert!(values.ends_with("global:\n  casAddr: \"\"\n"), "{values}");
        // helm_extra_values' own `global` mapping is merged into it, once.
        model.extra_values = json!({"global": {"team": "blue"}})
            .as_object()
            .cloned()
            .expect("mapping");
        let values = umbrella_values(&model);
        assert!(
            values.ends_with("global:\n  casAddr: \"\"\n  team: blue\n")
                && values.matches("global:").count() == 1,
            "{values}"
        );
        // With an address everywhere, no `global` is made.
        model.extra_values = Map::new();
        model.services[0].cas_addr = Some("cas".into());
        assert!(!umbrella_values(&model).contains("global:"));
    }

    #[test]
    fn sub_chart_names_must_differ() {
        let model = model(vec![chart_service("svc-a", None)]);
        let generated = service(&model, &model.services[0], &no_user_charts)
            .expect("generated")
            .dependency;
        let own = |service: &str, name: &str| Dependency {
            service: service.into(),
            name: name.into(),
            version: "1.0.0".into(),
            alias: None,
        };
        let clash = umbrella(
            &model,
            &[generated.clone(), own("b", "svc-a")],
            String::new(),
        );
        assert_eq!(
            clash,
            Err(ChartError::SameSubChart {
                first: "svc-a".into(),
                second: "b".into(),
                key: "svc-a".into(),
            })
        );
        let taken = umbrella(&model, &[generated, own("b", SERVICE_CHART)], String::new());
        assert_eq!(taken, Err(ChartError::GeneratedName("b".into())));
        // Without generated services, a user's chart may have that name.
        assert!(umbrella(&model, &[own("b", SERVICE_CHART)], String::new()).is_ok());
    }

    #[test]
    fn umbrella_values_are_the_merged_mapping() {
        let extra = json!({
            "svc-b": {"replicaCount": 3, "scone": {"scone_log": "debug"}, "podLabels": {"a": "b"}},
            "global": {"team": "x"},
            "custom": {"greeting": "hi"},
            "svc-c": "replaced",
        });
        let model = ChartModel {
            name: "mesh".into(),
            services: vec![
                chart_service("svc-a", None),
                chart_service("svc-b", None),
                chart_service("custom", Some("charts/custom")),
                chart_service("svc-c", None),
            ],
            extra_values: extra.as_object().cloned().unwrap_or_default(),
        };
        // The definition: every generated service's values in one mapping, extras merged over it.
        let mut whole = Map::new();
        for s in model.services.iter().filter(|s| s.chart_dir.is_none()) {
            whole.insert(s.chart.clone(), generated_values(&model.name, s));
        }
        deep_merge(&mut whole, &model.extra_values);
        assert_eq!(umbrella_values(&model), yaml(&Value::Object(whole)));
        let text = umbrella_values(&model);
        assert!(text.contains("  replicaCount: 3\n"), "{text}");
        // What the service chart's defaults hold is left to them.
        assert!(!text.contains("nodeSelector"), "{text}");
        assert!(
            text.contains("svc-a:\n  image: registry.example.com/svc-a:1\n"),
            "{text}"
        );
        assert!(text.contains("  scone_log: debug\n"), "{text}");
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
