//! The Helm chart as data: one sub-chart per mesh service. Only public facts go here (image,
//! config id, CAS address, port, pull secret): environment and secrets travel in the session.

use meshfile_manifest::mesh::{MeshManifest, Service as MeshService};
use serde_json::{Map, Value};

use crate::cas_for_role;
use crate::vars::Scope;

#[derive(Clone, Debug, PartialEq)]
pub struct ChartModel {
    /// The umbrella chart's name (a DNS label).
    pub name: String,
    pub services: Vec<ChartService>,
    /// `helm_extra_values`, deep-merged over the generated values.
    pub extra_values: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChartService {
    /// The sub-chart's name and directory: the mesh service name made a DNS label.
    pub chart: String,
    pub mesh_service: String,
    /// The service manifest's `build.name`: what the image is (`app.kubernetes.io/component`).
    pub component: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// `SCONE_CONFIG_ID`: `<namespace>/<service>/<program>`.
    pub config_id: String,
    /// `SCONE_CAS_ADDR`: the host of the CAS serving the `security` role, as the runtime
    /// takes it (it adds the enclave port, 18765); `None` for meshfile's embedded store,
    /// which no pod can reach: the chart then requires `global.casAddr` at install.
    pub cas_addr: Option<String>,
    /// The SCONE runtime's own variables for the pod ([`crate::RUNTIME_VARIABLES`]).
    pub runtime_env: std::collections::BTreeMap<String, String>,
    pub image_pull_secrets: Vec<String>,
    pub port: Option<u16>,
    /// `helm_chart`: a chart directory (relative to the Meshfile) used instead of the generated one.
    pub chart_dir: Option<String>,
}

/// The address the SCONE runtime in a pod is given for a CAS whose `cas_url` is `url`: its
/// host alone, since the runtime talks to CAS's enclave port and adds it (18765) itself,
/// while `cas_url`'s port, if any, is the client API's (8081) that delivery uses. A scheme
/// and a path are dropped; an IPv6 address keeps its brackets. `None` for `embedded`.
pub fn runtime_cas_address(url: &str) -> Option<String> {
    let url = url.trim();
    if url == crate::EMBEDDED_CAS {
        return None;
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6
            .split_once(']')
            .map_or(authority, |(h, _)| &authority[..h.len() + 2]),
        None => authority.split(':').next().unwrap_or(authority),
    };
    (!host.is_empty()).then(|| host.to_owned())
}

/// A Kubernetes DNS label (RFC 1123): lower case, `[a-z0-9-]`, at most 63 characters.
pub fn dns_label(name: &str) -> String {
    let mut out: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out.truncate(63);
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "service".into()
    } else {
        trimmed.to_owned()
    }
}

pub(crate) fn service(
    mesh: &MeshManifest,
    service: &MeshService,
    name: &str,
    scope: &Scope<'_>,
) -> ChartService {
    let (repository, tag, digest) = meshfile_manifest::mesh::split_image(service.image.as_str());
    let namespace = mesh.policy.namespace.as_str();
    let value = |key: &str| scope.lookup(key).map(|(v, _)| v);
    ChartService {
        chart: dns_label(name),
        mesh_service: name.to_owned(),
        component: String::new(),
        repository,
        tag,
        digest,
        config_id: format!("{namespace}/{name}/{}", scope.program),
        cas_addr: cas_for_role(mesh, "security")
            .and_then(|c| runtime_cas_address(c.cas_url.as_str())),
        runtime_env: std::collections::BTreeMap::new(),
        image_pull_secrets: value("imagePullSecrets")
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect(),
        port: value("APP_SERVICE_PORT").and_then(|p| p.parse().ok()),
        chart_dir: service.helm_chart.as_ref().map(|p| p.as_str().to_owned()),
    }
}

impl ChartModel {
    pub(crate) fn new(
        mesh: &MeshManifest,
        release: Option<&str>,
        services: Vec<ChartService>,
    ) -> ChartModel {
        let name = dns_label(release.unwrap_or(mesh.policy.namespace.as_str()));
        let extra_values = mesh
            .helm_extra_values
            .as_ref()
            .and_then(|v| v.values())
            .unwrap_or_default();
        ChartModel {
            name,
            services,
            extra_values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_the_cas_host_without_the_client_port() {
        for (url, runtime) in [
            ("cas.default", Some("cas.default")),
            ("cas.default:8081", Some("cas.default")),
            ("https://edge.scone-cas.cf:8081/", Some("edge.scone-cas.cf")),
            ("10.0.0.7:9000", Some("10.0.0.7")),
            ("[fd00::7]:8081", Some("[fd00::7]")),
            ("embedded", None),
        ] {
            assert_eq!(runtime_cas_address(url).as_deref(), runtime, "{url}");
        }
    }

    #[test]
    fn dns_labels() {
        assert_eq!(dns_label("maria_DB"), "maria-db");
        assert_eq!(dns_label("--x--"), "x");
        assert_eq!(dns_label(&"a".repeat(80)).len(), 63);
    }
}
