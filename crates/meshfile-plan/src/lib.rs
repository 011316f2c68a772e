//! From a Meshfile and its services' descriptors to CAS sessions and a chart model.
//!
//! Pure: file contents come in through a reader function, nothing is written, nothing is
//! random. The same inputs always give the same sessions and chart.

pub mod chart;
pub mod delivery;
pub mod descriptor;
pub mod genservice;
mod pasted;
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

/// Environment variables consumed when the enclave is created; they belong to the image's
/// signature, and the session language ignores them in a session.
const ENCLAVE_CREATION_VARIABLES: &[&str] = &[
    "SCONE_HEAP",
    "SCONE_MIN_HEAP",
    "SCONE_STACK",
    "SCONE_ALLOW_DLOPEN",
];

/// Environment variables the SCONE runtime reads in the pod, not the program from its session:
/// set there, they would have no effect. SCONE's own service chart sets them in the pod
/// (`scone_log`, `scone_version`, `SCONE_EDMM_MODE`); none is confidential. `SCONE_CAS_ADDR`
/// is the pod's CAS address ([`chart::ChartService::cas_addr`]).
pub const RUNTIME_VARIABLES: &[&str] = &["SCONE_LOG", "SCONE_VERSION", "SCONE_EDMM_MODE"];

/// The runtime's CAS address: given in an environment, it is the pod's `SCONE_CAS_ADDR`.
const CAS_ADDRESS_VARIABLE: &str = "SCONE_CAS_ADDR";

/// Whether the runtime, not the program, reads `name`: it goes to the pod, not the session.
fn read_by_runtime(name: &str) -> bool {
    RUNTIME_VARIABLES.contains(&name) || name == CAS_ADDRESS_VARIABLE
}

/// A `java` command without a class path gets the one SCONE's genservice builds: the working
/// directory and each JAR the manifest copies (relative to it), right after `java`.
fn with_class_path(
    command: meshfile_session::Command,
    pwd: &str,
    jars: &[&str],
) -> meshfile_session::Command {
    use meshfile_session::Command;
    let has_class_path = |words: &[&str]| {
        words.iter().any(|w| {
            matches!(*w, "-cp" | "-classpath" | "--class-path") || w.starts_with("--class-path=")
        })
    };
    let class_path = || {
        let base = pwd.trim_end_matches('/');
        let mut parts = vec![if base.is_empty() {
            "/".to_owned()
        } else {
            base.to_owned()
        }];
        parts.extend(jars.iter().map(|j| {
            if j.starts_with('/') {
                (*j).to_owned()
            } else {
                format!("{base}/{j}")
            }
        }));
        parts.join(":")
    };
    match command {
        Command::Line(line) => {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first().map(|w| program_name(w)) != Some("java".to_owned())
                || has_class_path(&words)
            {
                return Command::Line(line);
            }
            let rest = line.trim_start()[words[0].len()..].to_owned();
            Command::Line(format!("{} -cp {}{rest}", words[0], class_path()))
        }
        Command::Words(words) => {
            let refs: Vec<&str> = words.iter().map(String::as_str).collect();
            if refs.first().map(|w| program_name(w)) != Some("java".to_owned())
                || has_class_path(&refs)
            {
                return Command::Words(words);
            }
            let mut out = Vec::with_capacity(words.len() + 2);
            out.push(words[0].clone());
            out.push("-cp".to_owned());
            out.push(class_path());
            out.extend(words.into_iter().skip(1));
            Command::Words(out)
        }
    }
}

/// The program name of a command line: `python3 x.py` and `/usr/bin/python3 x.py` give `python3`.
/// The program a command starts, as the container's command: its first word, when that is a
/// plain path or name (no variable, reference or quoting to resolve first).
fn container_program(command: &str) -> Option<String> {
    let first = command.split_whitespace().next()?;
    let plain = first
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'_' | b'-' | b'.' | b'+'));
    plain.then(|| first.to_owned())
}

pub fn program_name(command: &str) -> String {
    let first = command.split_whitespace().next().unwrap_or("service");
    let base = first.rsplit('/').next().unwrap_or(first);
    let clean: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '~'))
        .collect();
    if clean.is_empty() {
        "service".into()
    } else {
        clean
    }
}

/// The descriptors a mesh compiles against, by image.
pub type Descriptors<'a> = BTreeMap<&'a str, &'a Descriptor>;

/// Reads a file named in the Meshfile (relative to it); the caller does the I/O.
pub type Reader<'a> = &'a (dyn Fn(&str) -> Result<String, String> + Sync);

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
            Diagnostic::new(Code::InvalidCasKey, key.span, format!("cas[{i}].cas_key"), why)
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

/// Each service's image as `repo` copies it: to `<destination>/<last component>:<tag>`, by
/// the digest it has; the chart then pulls it from there. One copy per distinct image.
fn copy_to_destination(
    repo: &meshfile_manifest::mesh::Repo,
    rewritten: &BTreeMap<String, String>,
    services: &mut [ChartService],
) -> ImagePlan {
    let squash = repo.squash.as_ref().is_some_and(|s| s.value);
    let strip = repo.strip.as_ref().is_none_or(|s| s.value);
    let destination = repo.destination.as_str().trim_end_matches('/');
    let mut copies: Vec<ImageCopy> = Vec::new();
    for service in services.iter_mut() {
        let tag = service.tag.clone().unwrap_or_else(|| "latest".into());
        // A digest the Meshfile pins is the image, whatever its tag serves now.
        let source = match (&service.tag, &service.pinned) {
            (Some(tag), Some(pinned)) => format!("{}:{tag}@{pinned}", service.repository),
            (None, Some(pinned)) => format!("{}@{pinned}", service.repository),
            (Some(tag), None) => format!("{}:{tag}", service.repository),
            (None, None) => format!(
                "{}@{}",
                service.repository,
                service.digest.clone().unwrap_or_default()
            ),
        };
        let last = service
            .repository
            .rsplit('/')
            .next()
            .unwrap_or(&service.repository);
        let repository = format!("{destination}/{last}");
        // A rewritten image has a digest of its own, known once it was made.
        let digest = match (squash || strip, &service.digest) {
            (false, digest) => digest.clone(),
            (true, Some(d)) => rewritten.get(&rewrite_key(d, squash, strip)).cloned(),
            (true, None) => None,
        };
        let copy = ImageCopy {
            source,
            destination: format!("{repository}:{tag}"),
            digest: digest.clone(),
        };
        if !copies.iter().any(|c| c.source == copy.source) {
            copies.push(copy);
        }
        service.repository = repository;
        service.tag = Some(tag);
        service.digest = digest;
    }
    ImagePlan {
        copies,
        push: repo.push.as_ref().is_none_or(|p| p.value),
        squash,
        strip,
        key_file: repo.key_file.as_ref().map(|k| k.as_str().to_owned()),
        config_id: repo.config_id.as_ref().map(|c| c.as_str().to_owned()),
    }
}

fn injection_files_contents(files: &[InjectionFile]) -> Vec<String> {
    files.iter().filter_map(|f| f.content.clone()).collect()
}

/// The session a mesh service's policy is: `<namespace>/<service>`.
fn service_session_name(namespace: &str, service: &str) -> String {
    format!("{namespace}/{service}")
}

/// The names of the sessions [`compile`] makes of a mesh, known before it compiles: the
/// namespace, then one per service.
pub fn session_names(mesh: &MeshManifest) -> Vec<String> {
    let namespace = mesh.policy.namespace.as_str();
    std::iter::once(namespace.to_owned())
        .chain((mesh.services.iter()).map(|s| service_session_name(namespace, s.effective_name())))
        .collect()
}

/// The namespace session. Without `policy.access_policy`, as meshfile creates it when CAS has
/// none (an existing one is kept as it is); with it, exactly that policy, applied like any
/// other change.
fn namespace_session(namespace: &str, mesh: &MeshManifest) -> Document {
    let stated = mesh.policy.access_policy.as_ref().map(|a| a.parsed.clone());
    Document {
        create_only: stated.is_none(),
        ..Session {
            name: namespace.to_owned(),
            access_policy: stated.unwrap_or_else(|| AccessPolicy {
                create_sessions: Some(vec![meshfile_session::access::Entry::Creator]),
                ..AccessPolicy::default()
            }),
            ..Session::default()
        }
        .to_document()
    }
}

/// A service session's access policy: `read` and `update` of `policy.access_policy` when the
/// Meshfile states one (`create_sessions` governs a namespace's children only), else only
/// the creator's.
fn service_access_policy(mesh: &MeshManifest) -> AccessPolicy {
    match &mesh.policy.access_policy {
        Some(stated) => AccessPolicy {
            create_sessions: None,
            ..stated.parsed.clone()
        },
        None => AccessPolicy::default(),
    }
}

/// Sessions that import from another session come after it, so a fresh CAS accepts them.
/// Otherwise mesh order is kept: of the sessions ready to go, the earliest goes first.
fn order_exporters_first(sessions: Vec<Document>) -> Vec<Document> {
    use std::cmp::Reverse;
    let index: BTreeMap<&str, usize> = sessions
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name.as_str(), i))
        .collect();
    let mut waiting_for = vec![0usize; sessions.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); sessions.len()];
    for (i, d) in sessions.iter().enumerate() {
        for exporter in &d.imports {
            if let Some(&j) = index.get(exporter.as_str()) {
                waiting_for[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: std::collections::BinaryHeap<Reverse<usize>> = (0..sessions.len())
        .filter(|&i| waiting_for[i] == 0)
        .map(Reverse)
        .collect();
    let mut placed = vec![false; sessions.len()];
    let mut order = Vec::with_capacity(sessions.len());
    let mut earliest_unplaced = 0;
    while order.len() < sessions.len() {
        // A cycle cannot be ordered; keep mesh order for the rest (CAS then reports it).
        let i = match ready.pop() {
            Some(Reverse(i)) => i,
            None => {
                while placed[earliest_unplaced] {
                    earliest_unplaced += 1;
                }
                earliest_unplaced
            }
        };
        if std::mem::replace(&mut placed[i], true) {
            continue;
        }
        order.push(i);
        for &d in &dependents[i] {
            waiting_for[d] -= 1;
            if waiting_for[d] == 0 && !placed[d] {
                ready.push(Reverse(d));
            }
        }
    }
    let mut slots: Vec<Option<Document>> = sessions.into_iter().map(Some).collect();
    order.iter().filter_map(|&i| slots[i].take()).collect()
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
            && let Some(program) = template_program(&doc.node)
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
                        genservice::TemplateError::NotOneValue { .. }
                        | genservice::TemplateError::ValuesTogether { .. } => {
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
    fn chart_value_error(&mut self, why: &str, names: &[&str]) {
        let span = (self.mesh.env.iter())
            .flat_map(|e| e.env.iter().flatten())
            .find(|kv| names.iter().any(|n| kv.name.as_str().starts_with(n)))
            .map_or(Span::default(), |kv| kv.value.span);
        self.error(
            self.mesh_file,
            Code::InvalidChartValue,
            span,
            why.to_owned(),
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

    fn override_text(&self, path: &Text) -> Result<(String, String), Vec<Located>> {
        (self.read)(path.as_str())
            .map(|text| (text, path.as_str().to_owned()))
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

    /// Which service defines each secret name, after mesh-time substitution of the names.
    /// Which services define each secret. Several may (each session defines its own, as two
    /// services of one image do); an import is ambiguous only when it has several to choose from.
    fn secret_owners(&mut self, units: &[Unit<'_>]) -> BTreeMap<String, Vec<String>> {
        let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for unit in units {
            let scope = Scope::new(self.mesh, &unit.name, &unit.environment, "");
            for secret in unit.descriptor.manifest.secrets_defined() {
                if let Ok(name) = scope.substitute(secret.name.as_str()) {
                    owners.entry(name).or_default().push(unit.name.clone());
                }
            }
        }
        owners
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

    fn session(
        &mut self,
        unit: &Unit<'_>,
        scope: &Scope<'_>,
        owners: &BTreeMap<String, Vec<String>>,
    ) -> Option<Document> {
        let manifest = &unit.descriptor.manifest;
        let file = unit.descriptor.file.as_str();
        let namespace = self.mesh.policy.namespace.as_str();
        let session_name = service_session_name(namespace, &unit.name);
        if let Some(path) = &unit.service.image_policy {
            return self.policy_template(path, scope, &session_name);
        }
        let image_name = format!("{}_image", unit.name);

        let mut environment = BTreeMap::new();
        for kv in unit.environment.local.iter().flatten() {
            let name = kv.name.as_str();
            if ENCLAVE_CREATION_VARIABLES.contains(&name) || read_by_runtime(name) {
                continue;
            }
            let value = self.substitute(scope, &unit.env_file, &kv.value);
            environment.insert(kv.name.as_str().to_owned(), value);
        }
        for g in
            (unit.environment.global.iter().flatten()).filter(|g| !read_by_runtime(g.name.as_str()))
        {
            match scope.lookup(g.name.as_str()) {
                Some((value, _)) => {
                    environment.insert(g.name.as_str().to_owned(), value);
                }
                None => self.error(
                    &unit.env_file,
                    Code::MissingGlobalValue,
                    g.name.span,
                    format!("service `{}` needs `{}`, and the Meshfile gives it no value", unit.name, g.name),
                    format!("add `- name: {}` with a value to the `global` env section, or to a `service: {}` section of {}", g.name, unit.name, self.mesh_file),
                ),
            }
        }
        let command = match &manifest.build.command {
            meshfile_manifest::service::Command::Line(line) => {
                meshfile_session::Command::Line(self.substitute(scope, file, line))
            }
            meshfile_manifest::service::Command::Words(words) => meshfile_session::Command::Words(
                words
                    .iter()
                    .map(|w| self.substitute(scope, file, w))
                    .collect(),
            ),
        };
        // SCONE requires a working directory; `/` is in every image (lint says so, W107).
        let pwd = Some(manifest.build.pwd.as_ref().map_or_else(
            || DEFAULT_PWD.to_owned(),
            |p| self.substitute(scope, file, p),
        ));
        let jars: Vec<&str> = (manifest.build.copy.iter().flatten())
            .map(|c| c.as_str())
            .filter(|c| c.ends_with(".jar"))
            .collect();
        let command = with_class_path(command, pwd.as_deref().unwrap_or(DEFAULT_PWD), &jars);
        let injection_files: Vec<InjectionFile> = manifest
            .injection_files
            .iter()
            .flatten()
            .map(|f| InjectionFile {
                path: self.substitute(scope, file, &f.path),
                content: f.content.as_ref().map(|c| self.substitute(scope, file, c)),
                permission: f.permission.as_ref().map(|p| p.as_str().to_owned()),
            })
            .collect();

        let mut secrets = match &unit.service.image_secrets {
            Some(path) => self.secrets_template(path, scope)?,
            None => manifest
                .secrets_defined()
                .map(|s| self.secret(s, scope, file, namespace))
                .collect(),
        };
        let mut known: BTreeMap<String, Option<SecretKind>> = manifest
            .secrets_defined()
            .filter_map(|s| {
                scope
                    .substitute(s.name.as_str())
                    .ok()
                    .map(|n| (n, Some(s.kind.value)))
            })
            .collect();
        known.extend(secrets.iter().map(|s| (s.name.clone(), None)));
        for import in manifest.secrets_imported() {
            let name = self.substitute(scope, file, import);
            // An `image_secrets` template that gives this secret says where it comes from.
            if secrets.iter().any(|s| s.name == name) {
                continue;
            }
            match owners.get(&name).map(Vec::as_slice) {
                Some([owner]) => secrets.push(Secret {
                    name: name.clone(),
                    kind: None,
                    fields: Vec::new(),
                    export: Vec::new(),
                    import: Some(Import { session: format!("{namespace}/{owner}"), secret: name.clone() }),
                }),
                Some(several) => self.error(
                    file,
                    Code::AmbiguousSecret,
                    import.span,
                    format!(
                        "service `{}` imports secret `{name}`, which {} define: which one it gets is not said",
                        unit.name,
                        listed(several)
                    ),
                    format!(
                        "rename the secret in all but one of their service manifests, or give `{}` an `image_secrets` file in the Meshfile that imports `{name}` from one session by name (`import: {{session: {namespace}/{}, secret: {name}}}`)",
                        unit.name, several[0]
                    ),
                ),
                None => self.error(
                    file,
                    Code::UnexportedImport,
                    import.span,
                    format!("service `{}` imports secret `{name}`, which no service of the mesh defines", unit.name),
                    "define it under `secrets.global` of the service that should own it, or remove the import",
                ),
            }
            known.insert(name, None);
        }
        let contents: Vec<String> = injection_files_contents(&injection_files);
        self.check_secret_references(
            environment.values().chain(command.texts()).chain(&contents),
            &known,
            unit,
        );

        let (volumes, mounts) = self.volumes(manifest, scope, file);
        let session = Session {
            name: session_name,
            services: vec![meshfile_session::Service {
                name: scope.program.to_owned(),
                image_name: Some(image_name.clone()),
                mrenclaves: unit.descriptor.mrenclaves.clone(),
                command: Some(command),
                pwd,
                environment,
            }],
            images: vec![Image {
                name: image_name,
                injection_files,
                volumes: mounts,
            }],
            volumes,
            secrets,
            access_policy: service_access_policy(self.mesh),
            security: self.security(),
        };
        Some(session.to_document())
    }

    /// The service manifest's `build.volumes` in the session language's shape: each volume of
    /// the session (defined, perhaps exported; or imported), and where the image mounts it.
    /// Validation has checked that each has a name and a path, and is not both imported and
    /// exported.
    fn volumes(
        &mut self,
        manifest: &meshfile_manifest::service::ServiceManifest,
        scope: &Scope<'_>,
        file: &str,
    ) -> (Vec<meshfile_session::Volume>, Vec<meshfile_session::Mount>) {
        let mut volumes = Vec::new();
        let mut mounts = Vec::new();
        let mut sub = |t: &Text| self.substitute(scope, file, t);
        for v in manifest.build.volumes.iter().flatten() {
            let (Some(name), Some(path)) = (&v.name, &v.path) else {
                continue;
            };
            let name = sub(name);
            let import = v.import.as_ref().and_then(|i| {
                Some(meshfile_session::VolumeImport {
                    session: sub(i.session.as_ref()?),
                    volume: sub(i.volume.as_ref()?),
                })
            });
            let mut export = Vec::new();
            for e in v.export.iter().flatten() {
                let Some(session) = &e.session else { continue };
                export.push(meshfile_session::VolumeExport {
                    session: sub(session),
                    session_hash: e.session_hash.as_ref().map(&mut sub),
                    update_policy: e.update_policy.as_ref().map(&mut sub),
                    volume_alias: e.volume_alias.as_ref().map(&mut sub),
                });
            }
            mounts.push(meshfile_session::Mount {
                name: name.clone(),
                path: sub(path),
            });
            volumes.push(meshfile_session::Volume {
                name,
                import,
                export,
            });
        }
        (volumes, mounts)
    }

    /// `$$SCONE::name$$` names that were built from mesh-time variables are checked here.
    fn check_secret_references<'t>(
        &mut self,
        texts: impl Iterator<Item = &'t String>,
        known: &BTreeMap<String, Option<SecretKind>>,
        unit: &Unit<'_>,
    ) {
        let mut unknown = BTreeSet::new();
        for text in texts {
            for token in refs::scan(text).unwrap_or_default() {
                if let Token::Scone(r) = token
                    && !known.contains_key(r.name)
                    && !known.contains_key(
                        text[r.range.start + "$$SCONE::".len()..]
                            .split(['$', ':', '|'])
                            .next()
                            .unwrap_or_default(),
                    )
                {
                    unknown.insert(r.name.to_owned());
                }
            }
        }
        for name in unknown {
            self.error(
                &unit.descriptor.file,
                Code::UnknownSecretRef,
                Span::default(),
                format!("service `{}` refers to `$$SCONE::{name}$$`, which it neither defines nor imports once mesh variables are filled in", unit.name),
                "define the secret, or add its name to `secrets.import`",
            );
        }
    }

    fn secret(
        &mut self,
        s: &ManifestSecret,
        scope: &Scope<'_>,
        file: &str,
        namespace: &str,
    ) -> Secret {
        let mut fields: Vec<(String, Value)> = Vec::new();
        if let Some(size) = &s.size {
            let size = self.substitute(scope, file, size);
            fields.push((
                "size".into(),
                size.parse::<u64>().map_or(Value::Text(size), Value::Int),
            ));
        }
        let texts = [
            ("value", &s.value),
            ("key_type", &s.key_type),
            ("private_key", &s.private_key),
            ("issuer", &s.issuer),
            ("common_name", &s.common_name),
            ("endpoint", &s.endpoint),
            ("valid_for", &s.valid_for),
            ("tenant_id", &s.tenant_id),
            ("client_id", &s.client_id),
            ("application_secret", &s.application_secret),
        ];
        for (key, v) in texts {
            if let Some(v) = v {
                fields.push((key.to_owned(), Value::Text(self.substitute(scope, file, v))));
            }
        }
        for (key, list) in [("dns", &s.dns), ("san", &s.san)] {
            if let Some(list) = list {
                let names = list
                    .iter()
                    .map(|d| self.substitute(scope, file, d))
                    .collect();
                fields.push((key.into(), Value::List(names)));
            }
        }
        for (key, v) in [("export_public", &s.export_public), ("migrate", &s.migrate)] {
            if let Some(v) = v {
                fields.push((key.to_owned(), Value::Bool(v.as_str() == "true")));
            }
        }
        Secret {
            name: self.substitute(scope, file, &s.name),
            kind: Some(s.kind.value.as_str().to_owned()),
            fields,
            export: vec![Export::Namespace(namespace.to_owned())],
            import: None,
        }
    }

    /// An `image_secrets` template: a YAML list of session secrets, after substitution.
    fn secrets_template(&mut self, path: &Text, scope: &Scope<'_>) -> Option<Vec<Secret>> {
        let (node, _) = self.template(path, scope)?;
        let meshfile_yaml::Value::Sequence(items) = node.value else {
            self.error(
                self.mesh_file,
                Code::OverrideFile,
                path.span,
                format!("`{path}` must hold a YAML list of secrets"),
                "write one `- name: ...` entry per secret",
            );
            return None;
        };
        let mut secrets = Vec::new();
        for item in items {
            let meshfile_yaml::Value::Mapping(entries) = &item.value else {
                self.error(
                    self.mesh_file,
                    Code::OverrideFile,
                    path.span,
                    format!("`{path}`: each secret is a mapping"),
                    "write `- name: ...` entries",
                );
                return None;
            };
            let Some(name) = entries
                .iter()
                .find(|e| e.key_text() == "name")
                .and_then(|e| e.value.as_scalar())
            else {
                self.error(
                    self.mesh_file,
                    Code::OverrideFile,
                    path.span,
                    format!("`{path}`: a secret without `name`"),
                    "every secret needs a name",
                );
                return None;
            };
            let kind = entries
                .iter()
                .find(|e| e.key_text() == "kind")
                .and_then(|e| e.value.as_scalar())
                .map(str::to_owned);
            // `import: {session, secret}` is an import, so that delivery orders the sessions.
            let import = entries
                .iter()
                .find(|e| e.key_text() == "import")
                .and_then(|e| template_import(&e.value));
            let fields = entries
                .iter()
                .filter(|e| !matches!(e.key_text(), "name" | "kind"))
                .filter(|e| import.is_none() || e.key_text() != "import")
                .map(|e| (e.key_text().to_owned(), Value::Yaml(e.value.clone())))
                .collect();
            secrets.push(Secret {
                name: name.to_owned(),
                kind,
                fields,
                export: Vec::new(),
                import,
            });
        }
        Some(secrets)
    }

    /// A session from an `image_policy` template is checked as a generated one is: each
    /// `$$SCONE::name$$` it holds names a secret it defines or imports, and it declares the
    /// service its pods run (their `SCONE_CONFIG_ID` names it). Problems are located in the
    /// template file.
    fn check_policy_template(&mut self, node: &meshfile_yaml::Node, file: &str, path: &Text) {
        let known: BTreeSet<&str> = match node.get("secrets").map(|e| &e.value.value) {
            Some(meshfile_yaml::Value::Sequence(items)) => items
                .iter()
                .filter_map(|item| item.scalar_at("name"))
                .collect(),
            _ => BTreeSet::new(),
        };
        let mut scalars = vec![node];
        let mut unknown: Vec<(String, Span)> = Vec::new();
        while let Some(n) = scalars.pop() {
            match &n.value {
                meshfile_yaml::Value::Scalar { text, .. } => {
                    for token in refs::scan(text).unwrap_or_default() {
                        if let Token::Scone(r) = token
                            && !known.contains(r.name)
                            && !unknown.iter().any(|(name, _)| name == r.name)
                        {
                            unknown.push((r.name.to_owned(), n.span));
                        }
                    }
                }
                meshfile_yaml::Value::Sequence(items) => scalars.extend(items.iter().rev()),
                meshfile_yaml::Value::Mapping(entries) => {
                    scalars.extend(entries.iter().rev().map(|e| &e.value))
                }
            }
        }
        for (name, span) in unknown {
            self.error(
                file,
                Code::UnknownSecretRef,
                span,
                format!("the session in `{path}` refers to `$$SCONE::{name}$$`, which its `secrets` neither define nor import"),
                "add the secret to the template's `secrets` (with `import:` for another session's), or correct the name",
            );
        }
        if template_program(node).is_none() {
            self.error(
                file,
                Code::OverrideFile,
                node.span,
                format!("the session in `{path}` declares no service: pods find their configuration by `SCONE_CONFIG_ID`, which names one"),
                "add `services: [{name: <program>, image_name: ..., mrenclaves: [...], command: ...}]`",
            );
        }
    }

    /// An `image_policy` template: a whole session, after substitution; its name is ours.
    fn policy_template(
        &mut self,
        path: &Text,
        scope: &Scope<'_>,
        session_name: &str,
    ) -> Option<Document> {
        let (mut node, file) = self.template(path, scope)?;
        self.check_policy_template(&node, &file, path);
        let meshfile_yaml::Value::Mapping(entries) = &mut node.value else {
            self.error(
                self.mesh_file,
                Code::OverrideFile,
                path.span,
                format!("`{path}` must hold a session (a mapping)"),
                "start it with `name:` and `version:`",
            );
            return None;
        };
        entries.retain(|e| e.key_text() != "name");
        entries.insert(
            0,
            meshfile_yaml::Entry {
                key: meshfile_yaml::Node::scalar("name", Style::Plain),
                value: meshfile_yaml::Node::scalar(session_name, Style::DoubleQuoted),
            },
        );
        Some(Document::from_tree(session_name.to_owned(), node))
    }

    /// Reads a text template named in the Meshfile, substitutes `{{name}}`, then parses it.
    /// A template file named by the Meshfile, substituted and parsed; with the file's name
    /// as diagnostics give it.
    fn template(
        &mut self,
        path: &Text,
        scope: &Scope<'_>,
    ) -> Option<(meshfile_yaml::Node, String)> {
        let (text, file) = match self.override_text(path) {
            Ok(found) => found,
            Err(errors) => {
                self.errors.extend(errors);
                return None;
            }
        };
        let text = match scope.substitute_block(&text) {
            Ok(text) => text,
            Err((name, offset)) => {
                let line = text[..offset].matches('\n').count() as u32 + 1;
                let pos = meshfile_yaml::Pos { line, column: 1 };
                self.errors
                    .push(Located::new(&file, scope.undefined(&name, Span::at(pos))));
                return None;
            }
        };
        match meshfile_yaml::parse(&text, &meshfile_manifest::limits()) {
            Ok(node) => Some((node, file)),
            Err(e) => {
                self.errors
                    .push(Located::new(&file, meshfile_manifest::parse_diagnostic(&e)));
                None
            }
        }
    }

    fn security(&self) -> Option<Security> {
        let policy = &self.mesh.policy;
        let mut tolerate: Vec<String> = policy
            .tolerate
            .iter()
            .flat_map(|t| split_list(t.as_str()))
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        if self.options.mode == Mode::Debug && !tolerate.iter().any(|t| t == "debug-mode") {
            tolerate.push("debug-mode".into());
        }
        let ignore_advisories = match &policy.ignore_advisories {
            None => Advisories::None,
            Some(a) if a.as_str().trim() == "*" => Advisories::All,
            Some(a) => Advisories::List(
                split_list(a.as_str())
                    .into_iter()
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
        };
        let security = Security {
            mode: policy.maa.as_ref().map(|_| "maa".to_owned()),
            url: policy.maa.as_ref().map(|m| m.as_str().to_owned()),
            tolerate,
            ignore_advisories,
        };
        (security != Security::default()).then_some(security)
    }
}

/// The service a session template declares first: the program its pods run, which their
/// `SCONE_CONFIG_ID` names.
fn template_program(node: &meshfile_yaml::Node) -> Option<String> {
    let meshfile_yaml::Value::Sequence(services) = &node.get("services")?.value.value else {
        return None;
    };
    Some(services.first()?.scalar_at("name")?.to_owned())
}

/// Names as a sentence lists them: "`a` and `b`", "`a`, `b` and `c`".
fn listed(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A template secret's `import: {session, secret}`, when it is one.
fn template_import(node: &meshfile_yaml::Node) -> Option<Import> {
    let meshfile_yaml::Value::Mapping(entries) = &node.value else {
        return None;
    };
    (entries.len() == 2).then_some(())?;
    Some(Import {
        session: node.scalar_at("session")?.to_owned(),
        secret: node.scalar_at("secret")?.to_owned(),
    })
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

#[cfg(test)]
mod ordering_tests {
    use super::*;

    fn session(name: &str, imports_from: &[&str]) -> Document {
        let secrets: String = imports_from
            .iter()
            .map(|s| format!("  - name: k\n    import:\n      session: {s}\n      secret: k\n"))
            .collect();
        let text = format!("name: {name}\nsecrets:\n{secrets}");
        let text = if imports_from.is_empty() {
            format!("name: {name}\n")
        } else {
            text
        };
        Document::from_tree(
            name.into(),
            meshfile_yaml::parse(&text, &meshfile_manifest::limits()).expect("yaml"),
        )
    }

    fn order(sessions: Vec<Document>) -> Vec<String> {
        order_exporters_first(sessions)
            .into_iter()
            .map(|d| d.name)
            .collect()
    }

    #[test]
    fn exporters_come_first_otherwise_mesh_order() {
        let got = order(vec![
            session("a", &["c"]),
            session("b", &[]),
            session("c", &[]),
            session("d", &["a", "elsewhere"]),
        ]);
        assert_eq!(got, ["b", "c", "a", "d"]);
    }

    #[test]
    fn a_cycle_keeps_mesh_order_for_its_members() {
        let got = order(vec![
            session("x", &["y"]),
            session("y", &["x"]),
            session("z", &[]),
            session("self", &["self"]),
        ]);
        assert_eq!(got, ["z", "x", "y", "self"]);
    }
}

#[cfg(test)]
mod class_path_tests {
    use super::*;
    use meshfile_session::Command;

    #[test]
    fn java_gets_genservices_class_path_unless_it_has_one() {
        let line = |s: &str| Command::Line(s.to_owned());
        assert_eq!(
            with_class_path(line("java PrintEnv"), "/java", &["lib/a.jar"]),
            line("java -cp /java:/java/lib/a.jar PrintEnv")
        );
        assert_eq!(
            with_class_path(line("java -cp x PrintEnv"), "/java", &[]),
            line("java -cp x PrintEnv")
        );
        assert_eq!(
            with_class_path(line("python3 x.py"), "/java", &[]),
            line("python3 x.py")
        );
        let words = |w: &[&str]| Command::Words(w.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(
            with_class_path(words(&["/usr/bin/java", "Main"]), "/app/", &[]),
            words(&["/usr/bin/java", "-cp", "/app", "Main"])
        );
    }
}
