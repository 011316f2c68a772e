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
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// `SCONE_CONFIG_ID`: `<namespace>/<service>/<program>`.
    pub config_id: String,
    /// `SCONE_CAS_ADDR`: the CAS serving the `security` role.
    pub cas_addr: String,
    pub image_pull_secrets: Vec<String>,
    pub port: Option<u16>,
    /// `helm_chart`: a chart directory (relative to the Meshfile) used instead of the generated one.
    pub chart_dir: Option<String>,
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
        repository,
        tag,
        digest,
        config_id: format!("{namespace}/{name}/{}", scope.program),
        cas_addr: cas_for_role(mesh, "security")
            .map_or_else(String::new, |c| c.cas_url.as_str().to_owned()),
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
    fn dns_labels() {
        assert_eq!(dns_label("maria_DB"), "maria-db");
        assert_eq!(dns_label("--x--"), "x");
        assert_eq!(dns_label(&"a".repeat(80)).len(), 63);
    }
}
