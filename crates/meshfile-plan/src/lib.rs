//! From a Meshfile and its services' descriptors to CAS sessions and a chart model.
//!
//! Pure: file contents come in through a reader function, nothing is written, nothing is
//! random. The same inputs always give the same sessions and chart.

pub mod chart;
pub mod delivery;
pub mod descriptor;
pub mod files;
pub mod genservice;
mod images;
mod order;
mod pasted;
mod program;
pub mod rollout;
mod secrets;
mod templates;
mod unit_session;
mod vars;

use std::collections::{BTreeMap, BTreeSet};

use meshfile_manifest::mesh::{MeshManifest, Service as MeshService};
use meshfile_manifest::refs::{self, Token};
use meshfile_manifest::service::{Environment, Secret as ManifestSecret, SecretKind};
use meshfile_manifest::validate::{CAS_ROLES, split_list};
use meshfile_manifest::{Code, Diagnostic, Text};
use meshfile_session::{
    AccessPolicy, Advisories, Document, Export, Image, Import, InjectionFile, Secret, Security,
    Session, Value,
};
use meshfile_yaml::{Span, Style};
use rayon::prelude::*;

pub use chart::{ChartModel, ChartService, Sgx};
pub use descriptor::Descriptor;
pub use vars::{Origin, Scope};

use images::copy_to_destination;
pub use order::session_names;
use order::*;
use program::*;
pub use program::{RUNTIME_VARIABLES, program_name};
use templates::*;

/// A diagnostic and the file it is about.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    pub file: String,
    pub diagnostic: Diagnostic,
}

impl Located {
    pub fn new(file: &str, diagnostic: Diagnostic) -> Located {
        Located {
            file: file.to_owned(),
            diagnostic,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Production,
    /// Services also run as debug enclaves: sessions tolerate `debug-mode`.
    Debug,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub mode: Mode,
    /// Helm release name; also names the umbrella chart. Defaults to the namespace.
    pub release: Option<String>,
    /// Fill [`Compiled::variables`] (for `apply -p`); left empty otherwise, it costs time.
    pub report_variables: bool,
    /// Digests (`sha256:...`) the registries gave for image references: the chart pins those
    /// images. References that carry a digest themselves need none.
    pub digests: BTreeMap<String, String>,
    /// The digests of images `repo` rewrote (squash, strip) before, by [`rewrite_key`]: the
    /// chart pins those without asking a registry.
    pub rewritten: BTreeMap<String, String>,
}

/// How a rewritten image is known: its source's digest and what was done to it.
pub fn rewrite_key(source_digest: &str, squash: bool, strip: bool) -> String {
    format!("{source_digest} squash={squash} strip={strip}")
}

/// The source digest a [`rewrite_key`] names.
pub fn rewritten_from(key: &str) -> Option<&str> {
    key.split_once(' ').map(|(digest, _)| digest)
}

/// Everything a mesh compiles to.
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    /// The namespace session first, then one per service, exporters before importers.
    pub sessions: Vec<Document>,
    pub chart: ChartModel,
    /// Per service: each variable it uses, its value's origin. For `apply -p`; empty unless
    /// [`Options::report_variables`].
    pub variables: Vec<ServiceVariables>,
    /// How the CAS holding the application's policies wants them delivered (`None`: Upload).
    pub mode: Option<meshfile_manifest::mesh::CasMode>,
    /// Where the Meshfile says so, for diagnostics about the mode.
    pub mode_span: Option<Span>,
    /// Where that CAS is: `embedded`, or `host[:port]`.
    pub cas_url: String,
    /// The key that CAS must present, when the Meshfile says (`cas_key`).
    pub cas_key: Option<String>,
    /// The CAS's public session encryption key (`cas_encryption_key`, hex), for the modes
    /// that encrypt sessions.
    pub cas_encryption_key: Option<String>,
    /// The mesh's images and where its `repo` section copies them; `None` without `repo`.
    pub images: Option<ImagePlan>,
}

/// Where a mesh's images go (`repo`): the chart pulls each from its destination.
#[derive(Clone, Debug, PartialEq)]
pub struct ImagePlan {
    pub copies: Vec<ImageCopy>,
    /// `repo.push` (default true): `false` prepares and reports without pushing.
    pub push: bool,
    /// `repo.squash` (default false): each image made one layer.
    pub squash: bool,
    /// `repo.strip` (default true): `/scone` removed from each image.
    pub strip: bool,
    /// `repo.key_file`: the cosign key that signs each copied image (relative to the Meshfile).
    pub key_file: Option<String>,
    /// `repo.config_id`: confidential signing through SCONE's cosign in an enclave.
    pub config_id: Option<String>,
}

/// One image copied to the `repo` destination, byte for byte (so by the same digest).
#[derive(Clone, Debug, PartialEq)]
pub struct ImageCopy {
    /// The image as the Meshfile names it.
    pub source: String,
    /// `<destination>/<last component of the repository>:<tag>`.
    pub destination: String,
    /// The digest it has at the destination, when known: the source's (resolved, recorded,
    /// or in the reference), or that of the rewritten image made before.
    pub digest: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceVariables {
    pub service: String,
    pub variables: Vec<Variable>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Variable {
    pub name: String,
    /// `None` when nothing defines it.
    pub value: Option<String>,
    pub origin: Origin,
}

/// The descriptors a mesh compiles against, by image.
pub type Descriptors<'a> = BTreeMap<&'a str, &'a Descriptor>;

/// Reads a file named in the Meshfile (relative to it); the caller does the I/O.
pub type Reader<'a> = &'a (dyn Fn(&str) -> Result<String, files::FileError> + Sync);

struct Compiler<'a> {
    mesh: &'a MeshManifest,
    mesh_file: &'a str,
    descriptors: &'a Descriptors<'a>,
    read: Reader<'a>,
    options: &'a Options,
    errors: Vec<Located>,
}

/// What one unit compiles to.
struct UnitOutput {
    session: Option<Document>,
    service: ChartService,
    variables: Option<ServiceVariables>,
    errors: Vec<Located>,
}

/// One mesh service with its descriptor and its resolved environment section.
struct Unit<'a> {
    service: &'a MeshService,
    name: String,
    descriptor: &'a Descriptor,
    environment: Environment,
    env_file: String,
}

/// Checks of a Meshfile that need CAS's vocabulary, made by `validate` and `compile` alike:
/// each `cas_key` is a key hash, in SCONE's Base58Check form or as 64 hex digits, its
/// checksum verified. A value holding a `$VAR` is checked once resolved, by `compile`.
pub fn check(mesh: &MeshManifest) -> Vec<Diagnostic> {
    let keys = mesh.cas.iter().enumerate().filter_map(|(i, cas)| {
        let key = cas.cas_key.as_ref().filter(|k| !k.as_str().contains('$'))?;
        let why = meshfile_session::key_hash::parse(key.as_str()).err()?;
        Some(
            Diagnostic::new(Code::InvalidCasKey, key.span, format!("cas[{i}].cas_key"), why.to_string())
                .with_hint("write it as `scone cas show-identification -c` prints it (Base58Check, 50 characters) or as 64 hex digits; `meshfile cas probe HOST` prints both"),
        )
    });
    keys.collect()
}

/// Compiles a mesh: the namespace session first, then one session per service (exporters
/// before importers), the chart model, and with [`Options::report_variables`] each service's
/// variables. Every problem found is returned, located; nothing is partly compiled.
pub fn compile(
    mesh: &MeshManifest,
    mesh_file: &str,
    descriptors: &Descriptors<'_>,
    read: Reader<'_>,
    options: &Options,
) -> Result<Compiled, Vec<Located>> {
    let mut c = Compiler {
        mesh,
        mesh_file,
        descriptors,
        read,
        options,
        errors: (check(mesh).into_iter())
            .map(|d| Located::new(mesh_file, d))
            .collect(),
    };
    let units = c.units();
    let namespace = mesh.policy.namespace.as_str().to_owned();
    let owners = c.secret_owners(&units);
    // Units are independent: all cores at once; results come back in mesh order.
    let outputs: Vec<UnitOutput> = units
        .par_iter()
        .map(|unit| c.fork().unit(unit, &owners))
        .collect();
    let mut service_sessions = Vec::with_capacity(units.len());
    let mut services = Vec::with_capacity(units.len());
    let mut variables = Vec::new();
    for output in outputs {
        c.errors.extend(output.errors);
        services.push(output.service);
        variables.extend(output.variables);
        service_sessions.extend(output.session);
    }
    if !c.errors.is_empty() {
        c.errors.sort_by(|a, b| {
            (&a.file, a.diagnostic.line, a.diagnostic.column).cmp(&(
                &b.file,
                b.diagnostic.line,
                b.diagnostic.column,
            ))
        });
        // A value of the Meshfile that every service uses is wrong once, not once per service.
        c.errors
            .dedup_by(|a, b| a.file == b.file && a.diagnostic == b.diagnostic);
        return Err(c.errors);
    }
    let images = mesh
        .repo
        .as_ref()
        .map(|repo| copy_to_destination(repo, &options.rewritten, &mut services));
    let mut sessions = Vec::with_capacity(service_sessions.len() + 1);
    sessions.push(namespace_session(&namespace, mesh));
    sessions.extend(order_exporters_first(service_sessions));
    let chart = ChartModel::new(mesh, options.release.as_deref(), services);
    let cas = cas_for_role(mesh, "cas");
    Ok(Compiled {
        sessions,
        chart,
        variables,
        mode: cas.and_then(|c| c.mode.as_ref()).map(|m| m.value),
        mode_span: cas.and_then(|c| c.mode.as_ref()).map(|m| m.span),
        cas_url: cas.map_or_else(String::new, |c| c.cas_url.as_str().to_owned()),
        // Checked above: the hash in hex, whichever form the Meshfile wrote.
        cas_key: cas
            .and_then(|c| c.cas_key.as_ref())
            .and_then(|k| meshfile_session::key_hash::parse(k.as_str()).ok()),
        cas_encryption_key: cas
            .and_then(|c| c.cas_encryption_key.as_ref())
            .map(|k| k.as_str().trim().to_ascii_lowercase()),
        images,
    })
}

fn injection_files_contents(files: &[InjectionFile]) -> Vec<String> {
    files.iter().filter_map(|f| f.content.clone()).collect()
}

impl<'a> Compiler<'a> {
    /// The same compiler with no errors yet: one per unit compiled on another thread.
    fn fork(&self) -> Compiler<'a> {
        Compiler {
            errors: Vec::new(),
            ..*self
        }
    }

    /// A unit's session, chart service and (if asked for) variables, with its errors.
    fn unit(mut self, unit: &Unit<'_>, owners: &BTreeMap<String, Vec<String>>) -> UnitOutput {
        let program = program_name(unit.descriptor.manifest.build.command.program_text());
        let scope = Scope::new(self.mesh, &unit.name, &unit.environment, &program);
        let session = self.session(unit, &scope, owners);
        let mut service = chart::service(self.mesh, unit.service, &unit.name, &scope);
        service.component = chart::dns_label(unit.descriptor.manifest.build.name.as_str());
        service.program = container_program(unit.descriptor.manifest.build.command.program_text());
        // What the runtime reads goes to the pod: the manifest's own value, else the mesh's.
        for name in RUNTIME_VARIABLES.iter().chain([&CAS_ADDRESS_VARIABLE]) {
            let local = (unit.environment.local.iter().flatten())
                .find(|kv| kv.name.as_str() == *name)
                .map(|kv| self.substitute(&scope, &unit.env_file, &kv.value));
            let Some(value) = local.or_else(|| scope.lookup(name).map(|(v, _)| v)) else {
                continue;
            };
            if *name == CAS_ADDRESS_VARIABLE {
                service.cas_addr = Some(value);
            } else {
                service.runtime_env.insert((*name).to_owned(), value);
            }
        }
        // The SGX resource from the mesh's values.
        let value = |key: &str| scope.lookup(key).map(|(v, _)| v);
        match chart::Sgx::from_values(
            value("useSGXDevPlugin").as_deref(),
            value("sgxEpcMem").as_deref(),
        ) {
            Ok(sgx) => service.sgx = sgx,
            Err(why) => self.chart_value_error(&why, &["useSGXDevPlugin", "sgxEpcMem"]),
        }
        // The port and the services to wait for: the service manifest's values first, then
        // the Meshfile's, as genservice reads them.
        let local = |key: &str| {
            (unit.environment.local.iter().flatten())
                .find(|kv| kv.name.as_str() == key)
                .and_then(|kv| scope.substitute(kv.value.as_str()).ok())
        };
        let genservice = |key: &str| local(key).or_else(|| value(key));
        let port = ["PYTHON_SERVICE_PORT", "APP_SERVICE_PORT"]
            .iter()
            .find_map(|key| local(key))
            .or_else(|| value("APP_SERVICE_PORT"));
        service.port = port.and_then(|p| p.trim().parse().ok());
        match chart::wait_for(&genservice) {
            Ok(wait_for) => service.wait_for = wait_for,
            Err(why) => self.chart_value_error(&why, &["INIT_CONTAINER"]),
        }
        // Pods name the service of the session actually written: a template's own.
        if unit.service.image_policy.is_some()
            && let Some(doc) = &session
            && let Some(program) = template_program(&doc.node())
        {
            service.config_id = format!("{}/{program}", doc.name);
        }
        // A digest in the reference itself, else what the registry serves now, else what it
        // served when the service was recorded.
        if service.digest.is_none() {
            service.digest = self
                .options
                .digests
                .get(unit.service.image.as_str())
                .or(unit.descriptor.digest.as_ref())
                .cloned();
        }
        if let Some(templates) = &unit.descriptor.chart {
            let image = match &service.digest {
                Some(digest) => format!("{}@{digest}", service.repository),
                None => unit.service.image.as_str().to_owned(),
            };
            let extra = [
                ("image_name", image),
                (
                    "service_name",
                    format!("{}-{}", self.release_name(), service.chart),
                ),
                ("command", service.program.clone().unwrap_or_default()),
                (
                    "chartname",
                    unit.descriptor.manifest.build.name.as_str().to_owned(),
                ),
            ];
            let lookup = |name: &str| {
                (extra.iter().find(|(n, _)| *n == name))
                    .map(|(_, v)| v.clone())
                    .or_else(|| value(name))
            };
            match genservice::render_values(templates, &lookup) {
                Ok(files) => service.chart_files = Some(files),
                Err(why) => {
                    let hint = match why {
                        genservice::TemplateError::Pasted(_) => {
                            "give the value in the Meshfile's env without the line break, `---`, tag, comment or quote that would make it YAML of its own"
                        }
                        _ => {
                            "give the variable a value in the Meshfile's env, or take it out of the template directory's values.template and record the service again"
                        }
                    };
                    self.error(
                        self.mesh_file,
                        Code::InvalidChartValue,
                        unit.service.image.span,
                        format!(
                            "service `{}`: the chart of its --helm-template directory (recorded from {}): {why}",
                            unit.name, unit.descriptor.file
                        ),
                        hint,
                    )
                }
            }
        }
        let variables = self.options.report_variables.then(|| ServiceVariables {
            service: unit.name.clone(),
            variables: scope.report(&unit.environment, &unit.descriptor.manifest),
        });
        UnitOutput {
            session,
            service,
            variables,
            errors: self.errors,
        }
    }

    /// The Helm release the chart is meant for (`--release`, else the namespace), as a name.
    fn release_name(&self) -> String {
        chart::dns_label(
            (self.options.release.as_deref()).unwrap_or(self.mesh.policy.namespace.as_str()),
        )
    }

    fn error(
        &mut self,
        file: &str,
        code: Code,
        span: Span,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.errors.push(Located::new(
            file,
            Diagnostic::new(code, span, "", message).with_hint(hint),
        ));
    }

    /// A chart value of the Meshfile's env sections that cannot be used, located at the
    /// first entry whose name starts with one of `names`.
    fn chart_value_error(&mut self, why: &chart::ValueError, names: &[&str]) {
        let span = (self.mesh.env.iter())
            .flat_map(|e| e.env.iter().flatten())
            .find(|kv| names.iter().any(|n| kv.name.as_str().starts_with(n)))
            .map_or(Span::default(), |kv| kv.value.span);
        self.error(
            self.mesh_file,
            Code::InvalidChartValue,
            span,
            why.to_string(),
            "see the chart guide for the values SCONE's charts take",
        );
    }

    fn units(&mut self) -> Vec<Unit<'a>> {
        let mut units = Vec::new();
        for service in &self.mesh.services {
            let name = service.effective_name().to_owned();
            let Some(descriptor) = self.descriptors.get(service.image.as_str()) else {
                self.error(
                    self.mesh_file,
                    Code::MissingDescriptor,
                    service.image.span,
                    format!("service `{name}`: no service descriptor for image `{}`", service.image),
                    "record one with `meshfile apply -f <its service manifest> --mrenclave HEX`, or apply a directory that holds both; or, without -n, meshfile finds one its author published beside the image (`meshfile publish`)",
                );
                continue;
            };
            if descriptor.mrenclaves.is_empty() {
                self.error(
                    self.mesh_file,
                    Code::MissingMeasurement,
                    service.image.span,
                    format!(
                        "service `{name}`: no MRENCLAVE is known for image `{}` (its service manifest {} was recorded without one)",
                        service.image, descriptor.file
                    ),
                    "give it one of three ways, then run this again: `meshfile apply -f <its service manifest> --mrenclave HEX`; `IMAGE: [HEX]` in a measurements.yaml beside the service manifest, applied again; or, without -n, a descriptor its author published beside the image (`meshfile publish`)",
                );
                continue;
            }
            let (environment, env_file) = match &service.env {
                Some(path) => match self.override_text(path).and_then(|(text, file)| {
                    meshfile_manifest::load_environment(text.as_bytes())
                        .map(|env| (env, file.clone()))
                        .map_err(|ds| ds.into_iter().map(|d| Located::new(&file, d)).collect())
                }) {
                    Ok(found) => found,
                    Err(errors) => {
                        self.errors.extend(errors);
                        continue;
                    }
                },
                None => (
                    descriptor.manifest.environment.clone(),
                    descriptor.file.clone(),
                ),
            };
            units.push(Unit {
                service,
                name,
                descriptor,
                environment,
                env_file,
            });
        }
        units
    }

    /// The text of a file the Meshfile names (`env`, a template) and the file's name as
    /// diagnostics give it: beside the Meshfile, as the Meshfile was named.
    fn override_text(&self, path: &Text) -> Result<(String, String), Vec<Located>> {
        let beside = std::path::Path::new(self.mesh_file)
            .parent()
            .map_or_else(|| path.as_str().into(), |dir| dir.join(path.as_str()));
        (self.read)(path.as_str())
            .map(|text| (text, beside.display().to_string()))
            .map_err(|e| {
                vec![Located::new(
                    self.mesh_file,
                    Diagnostic::new(
                        Code::OverrideFile,
                        path.span,
                        "",
                        format!("cannot read `{path}`: {e}"),
                    )
                    .with_hint("paths are relative to the Meshfile's directory"),
                )]
            })
    }

    fn substitute(&mut self, scope: &Scope<'_>, file: &str, text: &Text) -> String {
        match scope.substitute(text.as_str()) {
            Ok(value) => value,
            Err((name, _)) => {
                self.errors
                    .push(Located::new(file, scope.undefined(&name, text.span)));
                String::new()
            }
        }
    }
}

/// The working directory a session names when the service manifest gives none.
pub const DEFAULT_PWD: &str = "/";

/// The `cas_url` of meshfile's embedded development store: delivered in-process, reachable by
/// no pod.
pub const EMBEDDED_CAS: &str = "embedded";

/// The CAS entry serving `role` (validation guarantees exactly one).
pub fn cas_for_role<'m>(
    mesh: &'m MeshManifest,
    role: &str,
) -> Option<&'m meshfile_manifest::mesh::Cas> {
    debug_assert!(CAS_ROLES.contains(&role));
    mesh.cas
        .iter()
        .find(|c| c.roles().any(|r| r.as_str() == role))
}
