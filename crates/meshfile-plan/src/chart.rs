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
    /// The digest the Meshfile's image reference pins (`@sha256:...`): the image is that one,
    /// whatever its tag serves.
    pub pinned: Option<String>,
    /// `SCONE_CONFIG_ID`: `<namespace>/<service>/<program>`.
    pub config_id: String,
    /// `SCONE_CAS_ADDR`: the host of the CAS serving the `security` role, as the runtime
    /// takes it (it adds the enclave port, 18765); `None` for meshfile's embedded store,
    /// which no pod can reach: the chart then requires `global.casAddr` at install.
    pub cas_addr: Option<String>,
    /// The SCONE runtime's own variables for the pod ([`crate::RUNTIME_VARIABLES`]).
    pub runtime_env: std::collections::BTreeMap<String, String>,
    pub image_pull_secrets: Vec<String>,
    /// The port the program listens on: the service manifest's `PYTHON_SERVICE_PORT` or
    /// `APP_SERVICE_PORT`, else the Meshfile's `APP_SERVICE_PORT`, as genservice reads them.
    pub port: Option<u16>,
    /// `helm_chart`: a chart directory (relative to the Meshfile) used instead of the generated one.
    pub chart_dir: Option<String>,
    /// The chart of a genservice template directory (`--helm-template`), rendered for this
    /// mesh: used instead of the generated one.
    pub chart_files: Option<std::collections::BTreeMap<String, Vec<u8>>>,
    /// The SGX resource its pods ask for (`useSGXDevPlugin`, `sgxEpcMem`).
    pub sgx: Sgx,
    /// `INIT_CONTAINER<N>` (host) and `INIT_CONTAINER<N>_PORT`: services to wait for before
    /// starting, in N's order; `INIT_CONTAINER<N>_ENABLE: "false"` leaves one out.
    pub wait_for: Vec<(String, u16)>,
    /// The program of the manifest's `build.command`, as the container's command (SCONE's
    /// service chart starts it so); its arguments come from the CAS session, never the pod.
    /// `None` when the command names its program through a variable or a reference.
    pub program: Option<String>,
}

/// Which SGX device plugin serves the cluster, as SCONE's charts name it (`useSGXDevPlugin`).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Sgx {
    /// SCONE's SGX plugin: `sgx.k8s.io/sgx: 1`.
    #[default]
    Scone,
    /// Azure's: `kubernetes.azure.com/sgx_epc_mem_in_MiB: <sgxEpcMem>`.
    Azure { epc_mib: u32 },
    /// Intel's: `sgx.intel.com/epc: <sgxEpcMem>Mi`.
    Intel { epc_mib: u32 },
    /// `disabled`: no SGX resource (simulation, or a cluster that injects it itself).
    Disabled,
}

/// The EPC memory a pod asks for when `sgxEpcMem` is not given (MiB), as SCONE's charts do.
pub const DEFAULT_EPC_MIB: u32 = 128;

/// A value of a service's genservice variables that the chart cannot take.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("sgxEpcMem `{0}` is not a number of MiB")]
    EpcMem(String),
    #[error("useSGXDevPlugin `{0}` is none of scone, azure, intel, disabled")]
    DevPlugin(String),
    #[error("{0} names no port: give {0}_PORT")]
    NoPort(String),
    #[error("{key}_PORT `{port}` is not a port")]
    Port { key: String, port: String },
}

impl Sgx {
    /// `useSGXDevPlugin` and `sgxEpcMem` as given; an error says which value is wrong.
    pub fn from_values(plugin: Option<&str>, epc: Option<&str>) -> Result<Sgx, ValueError> {
        let epc_mib = match epc {
            None => DEFAULT_EPC_MIB,
            Some(text) => match text.trim().parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => return Err(ValueError::EpcMem(text.to_owned())),
            },
        };
        match plugin.map(str::trim) {
            None | Some("scone") => Ok(Sgx::Scone),
            Some("azure") => Ok(Sgx::Azure { epc_mib }),
            Some("intel") => Ok(Sgx::Intel { epc_mib }),
            Some("disabled") => Ok(Sgx::Disabled),
            Some(other) => Err(ValueError::DevPlugin(other.to_owned())),
        }
    }
}

/// The services a pod waits for: `INIT_CONTAINER<N>` hosts with their `_PORT`, N from 1 up.
pub fn wait_for(value: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(String, u16)>, ValueError> {
    let mut out = Vec::new();
    for n in 1.. {
        let key = format!("INIT_CONTAINER{n}");
        let Some(host) = value(&key) else { break };
        if value(&format!("{key}_ENABLE")).is_some_and(|e| e.trim() == "false") {
            continue;
        }
        let port = value(&format!("{key}_PORT")).ok_or_else(|| ValueError::NoPort(key.clone()))?;
        let port = (port.trim().parse::<u16>().ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| ValueError::Port {
                key: key.clone(),
                port: port.clone(),
            })?;
        out.push((host, port));
    }
    Ok(out)
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

pub use meshfile_manifest::mesh::dns_label;

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
        pinned: digest.clone(),
        digest,
        config_id: format!("{namespace}/{name}/{}", scope.program),
        cas_addr: cas_for_role(mesh, "security")
            .and_then(|c| runtime_cas_address(c.cas_url.as_str())),
        runtime_env: std::collections::BTreeMap::new(),
        image_pull_secrets: value("imagePullSecrets")
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect(),
        port: None,
        chart_dir: service.helm_chart.as_ref().map(|p| p.as_str().to_owned()),
        chart_files: None,
        sgx: Sgx::default(),
        wait_for: Vec::new(),
        program: None,
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
}
