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
mod values;

pub use values::{SESSION_ANNOTATION, ValuesEntry, deep_merge, umbrella_values_from};
use values::{entry, generated_values, own_chart_values, values_schema};

use meshfile_plan::{ChartModel, ChartService};
use serde_json::{Value, json};

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
    session_hash: Option<&str>,
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
        (None, None) => return Ok(generated(model, s, session_hash)),
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
fn generated(model: &ChartModel, s: &ChartService, session_hash: Option<&str>) -> ServiceChart {
    ServiceChart {
        dependency: Dependency {
            service: s.mesh_service.clone(),
            name: SERVICE_CHART.to_owned(),
            version: CHART_VERSION.to_owned(),
            alias: Some(s.chart.clone()),
        },
        values_entry: entry(
            model,
            &s.chart,
            generated_values(&model.name, s, session_hash),
        ),
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
    use serde_json::Map;

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
                .filter_map(|s| Some(service(model, s, &no_user_charts, None).ok()?.values_entry)),
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
                service(&model, s, &no_user_charts, None)
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
        let generated = service(&model, &model.services[0], &no_user_charts, None)
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
            whole.insert(s.chart.clone(), generated_values(&model.name, s, None));
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
