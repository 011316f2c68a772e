//! The values of the umbrella chart: each generated service's (what differs from the service
//! chart's own defaults), a user's chart's, and `global`, merged as Helm merges them.

use meshfile_plan::{ChartModel, ChartService};
use serde_json::{Map, Value, json};

use crate::SERVICE_VALUES;

/// The pod template's annotation that holds the hash of what the pods run with (their
/// session and the sessions it imports from): a changed session restarts them on `helm
/// upgrade`.
pub const SESSION_ANNOTATION: &str = "meshfile/session";

/// A generated service's values: public facts only, under the keys of SCONE's genservice
/// chart (`image` a string, `scone.api_session`, `scone.cas`, `initContainers`, `jobs`, ...),
/// meshfile's additions beside them (`imagePullPolicy`, `scone.mesh`/`service`/`component`/
/// `env`, `service.enabled`, `waitImage`).
pub(crate) fn values(mesh: &str, s: &ChartService) -> Value {
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
pub(crate) fn generated_values(mesh: &str, s: &ChartService, session_hash: Option<&str>) -> Value {
    static DEFAULTS: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let defaults = DEFAULTS.get_or_init(|| {
        meshfile_yaml::parse(SERVICE_VALUES, &meshfile_yaml::Limits::default())
            .map(|node| meshfile_manifest::helm_values::to_json(&node))
            .unwrap_or_default()
    });
    let mut values = values(mesh, s);
    without_defaults(&mut values, defaults);
    if let (Some(hash), Value::Object(map)) = (session_hash, &mut values) {
        map.insert(
            "podAnnotations".to_owned(),
            json!({ SESSION_ANNOTATION: hash }),
        );
    }
    values
}

/// Removes from `values` every entry `defaults` holds with the same value (mappings entry by
/// entry; a mapping left empty goes too).
pub(crate) fn without_defaults(values: &mut Value, defaults: &Value) {
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
pub(crate) fn sgx_resources(sgx: &meshfile_plan::Sgx) -> Value {
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
pub(crate) fn values_schema() -> Value {
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
            "podAnnotations": {"type": "object", "additionalProperties": string},
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
pub(crate) fn entry(model: &ChartModel, key: &str, mut values: Value) -> ValuesEntry {
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
pub(crate) fn own_chart_values(mesh: &str, s: &ChartService) -> Value {
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
pub(crate) const GLOBAL: &str = "global";

/// The umbrella's `global` values: `casAddr`, empty, for the install to set when a generated
/// service has no CAS address of its own (a mesh on the embedded store), and what
/// `helm_extra_values` gives under `global` when that is a mapping (anything else is left
/// as written).
pub(crate) fn global_values(model: &ChartModel) -> Option<Value> {
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
