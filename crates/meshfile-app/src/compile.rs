//! The compile pipeline: read inputs, load manifests, record service descriptors, resolve
//! image digests, compile each mesh (pure, `meshfile-plan`). Rendering and writing follow in
//! [`crate::render`] and [`crate::write`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use meshfile_manifest::{Code, MeshManifest, ServiceManifest};
use meshfile_plan::{Compiled, Descriptor, Descriptors, Options};

use crate::descriptors::{self, Measured, Measurements, Store};
use crate::inputs::{self, Input};
use crate::load::{self, Loaded, Manifests, Variables};
use crate::paths::{MeshDir, Overlay};
use crate::{Error, Report, Stop, digests, write};

/// What to compile and how.
pub struct Request {
    pub inputs: Vec<PathBuf>,
    pub target: PathBuf,
    pub options: Options,
    /// `--set NAME=VALUE`.
    pub sets: Vec<String>,
    /// `--mrenclave`: the measurements of the one service manifest given.
    pub mrenclaves: Vec<String>,
    /// Ask registries for image digests (not with `-n`, `plan` or `-p`).
    pub pull: bool,
    /// The output will be written: one mesh at most per target directory.
    pub writes: bool,
    /// The files a Meshfile names may lie outside its directory.
    pub allow_outside: bool,
    /// Values given on the command line in place of the Meshfile's.
    pub overrides: Overrides,
    /// `--descriptor-key`: cosign public keys a descriptor published in a registry must be
    /// signed by (none: its signature is not checked).
    pub descriptor_keys: Vec<PathBuf>,
    /// `--helm-template DIR`: the service manifests' chart, from a genservice template directory.
    pub helm_template: Option<PathBuf>,
    /// Also make each mesh's graph ([`Mesh::graph`]), findings included.
    pub graph: bool,
    /// Texts in place of the files a Meshfile names (an editor's unsaved buffers).
    pub overlay: Overlay,
}

/// What the command line says in place of each Meshfile (sconectl's `--policy-namespace` and
/// `--maa`); the field keeps its place in the file for diagnostics.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub namespace: Option<String>,
    pub maa: Option<String>,
}

impl Overrides {
    fn apply(&self, mesh: &mut MeshManifest) {
        if let Some(namespace) = &self.namespace {
            mesh.policy.namespace.value = namespace.clone();
        }
        if let Some(maa) = &self.maa {
            let span = mesh.policy.maa.as_ref().map(|m| m.span).unwrap_or_default();
            mesh.policy.maa = Some(meshfile_manifest::Text {
                value: maa.clone(),
                span,
            });
        }
    }
}

/// A service manifest recorded in the descriptor store.
pub struct Recorded {
    pub file: String,
    pub image: String,
    pub mrenclaves: usize,
}

/// One compiled mesh and where it came from.
pub struct Mesh {
    pub file: String,
    /// The directory its relative paths (`helm_chart`, templates) start from and stay in.
    pub dir: MeshDir,
    pub compiled: Compiled,
    /// The mesh as a graph, when the request asked for it.
    pub graph: Option<meshfile_graph::Graph>,
}

/// Everything a compile run produced, and its warnings.
pub struct Compilation {
    pub recorded: Vec<Recorded>,
    pub meshes: Vec<Mesh>,
    /// Warnings located in the inputs.
    pub report: Report,
    /// Warnings about registries.
    pub warnings: Vec<String>,
    /// What was done besides (a store migrated).
    pub notes: Vec<String>,
    /// The policy files being made ahead, for [`crate::write_target`].
    pub prepared: Option<write::Background<Result<Option<write::Prepared>, Error>>>,
}

/// Runs the pipeline up to compiled meshes. Every problem in the inputs is reported at once.
pub fn run(request: &Request) -> Result<Compilation, Stop> {
    run_on(request, inputs::read_inputs(&request.inputs)?)
}

/// [`run`] on inputs read already (an editor's buffers among them); `request.inputs` unread.
pub fn run_on(request: &Request, inputs: Vec<Input>) -> Result<Compilation, Stop> {
    let variables = Variables::new(&request.sets)?;
    let mut report = Report::default();
    let (mut manifests, mut store, measurements) = load(request, &inputs, &variables, &mut report)?;
    for mesh in &mut manifests.meshes {
        request.overrides.apply(&mut mesh.manifest);
    }
    check_request(request, &manifests)?;
    // The one mesh's policy files are made, empty, while it compiles.
    let prepared = match (request.writes, manifests.meshes.as_slice()) {
        (true, [mesh]) => {
            let names = meshfile_plan::session_names(&mesh.manifest);
            let files = names.into_iter().map(|n| format!("{n}.yaml")).collect();
            Some(write::prepare(request.target.join("policies"), files))
        }
        _ => None,
    };
    let digests = if request.pull {
        let meshes = descriptors::images_of(manifests.meshes.iter().map(|m| &m.manifest));
        let services = (manifests.services.iter()).map(|s| s.manifest.build.to.as_str());
        digests::resolve(meshes.into_iter().chain(services))
    } else {
        digests::Digests::default()
    };
    let measured = match measurements {
        Some(m) => Measured::Beside(m),
        None => Measured::Given(&request.mrenclaves),
    };
    let mut described =
        describe_services(manifests.services, &measured, &digests, &store, &mut report)?;
    if let Some(dir) = &request.helm_template {
        with_chart_templates(dir, &mut described)?;
    }
    let recorded = described.iter().map(Recorded::of).collect();

    let mut stored = stored_for(&manifests.meshes, &described, &store, &mut report);
    let trusted = trusted_keys(request, &manifests.meshes, &mut report)?;
    check_image_keys(request, &manifests.meshes, &mut report);
    refuse_sign_online(&manifests.meshes, &mut report);
    report.check()?;
    // Images without a descriptor here: one published beside the image, if any (not with -n).
    let mut notes: Vec<String> = store.migrated.clone().into_iter().collect();
    if request.pull {
        let images = descriptors::images_of(manifests.meshes.iter().map(|m| &m.manifest));
        let missing: Vec<&str> = (images.into_iter())
            .filter(|i| !stored.contains_key(*i) && !described.iter().any(|d| d.image == *i))
            .collect();
        let fetched = crate::published::fetch(&missing, &trusted)?;
        if !fetched.is_empty() {
            let descriptors: Vec<meshfile_plan::Descriptor> =
                fetched.iter().map(|f| f.descriptor.clone()).collect();
            store.record_all(&descriptors);
            let images = descriptors.iter().map(|d| d.image.as_str()).collect();
            stored.extend(store.lookup(&images, &mut report));
            notes.extend(fetched.into_iter().map(|f| f.source));
        }
    }
    let found = used_by(&manifests.meshes, &described, &stored);

    let options = Options {
        digests: digests.found,
        rewritten: store.rewritten(),
        ..request.options.clone()
    };
    // The store is recorded and written (on write.rs's background thread) while the meshes
    // compile; a run that writes nothing (`plan`, `apply -p`) records it in memory only.
    let (saving, compiled) = rayon::join(
        || {
            store.record_all(&described);
            if request.writes {
                store.save_in_background()
            } else {
                crate::write::background(move || Ok(store))
            }
        },
        || compile_meshes(&manifests.meshes, &found, &options, request),
    );
    let store = saving.finish()?;
    let mut meshes = Vec::new();
    for result in compiled {
        match result {
            Ok(mesh) => meshes.push(mesh),
            Err(problems) => report.problems.extend(problems),
        }
    }
    add_sources(&mut report, &store, &request.overlay);
    report.check()?;
    Ok(Compilation {
        recorded,
        meshes,
        report,
        warnings: digests.warnings,
        notes,
        prepared,
    })
}

/// Why the checks across files were not made.
#[derive(Debug)]
pub struct Skipped {
    /// Each reason once: a `$VAR` without a value, or what failed.
    pub why: Vec<String>,
    /// Each use of a `$VAR` without a value, where it is.
    pub unset: Vec<meshfile_plan::Located>,
    /// The code of what failed, when it was not a `$VAR`.
    pub failed: Option<Code>,
}

impl Skipped {
    fn failed(e: Error) -> Skipped {
        Skipped {
            why: vec![e.to_string()],
            unset: Vec::new(),
            failed: Some(e.code),
        }
    }
}

/// What `template` finds wrong with the meshes among `inputs` beyond each file's own checks:
/// descriptors and measurements, secrets across services, templates, the files a Meshfile
/// names. For `validate`, so nothing is written, no registry is asked and the descriptor
/// store under `target` is only read. `Err` when the checks could not be made: `$VAR`s
/// without a value in this environment (the checks need the values), or a failure.
pub fn mesh_problems(
    inputs: &[Input],
    target: &std::path::Path,
    allow_outside: bool,
    lint: bool,
    overlay: Overlay,
) -> Result<Report, Skipped> {
    let request = Request {
        inputs: Vec::new(),
        target: target.to_path_buf(),
        options: Options::default(),
        sets: Vec::new(),
        mrenclaves: Vec::new(),
        pull: false,
        writes: false,
        allow_outside,
        overrides: Overrides::default(),
        descriptor_keys: Vec::new(),
        helm_template: None,
        graph: lint,
        overlay,
    };
    let problems = |stop: Stop| match stop {
        Stop::Invalid(report) => {
            let (unset, other): (Vec<_>, Vec<_>) = (report.problems.into_iter())
                .partition(|p| p.diagnostic.code == Code::UndefinedVariable);
            if unset.is_empty() {
                return Ok(Report {
                    problems: other,
                    ..report
                });
            }
            let mut why: Vec<String> = Vec::new();
            for p in &unset {
                if !why.contains(&p.diagnostic.message) {
                    why.push(p.diagnostic.message.clone());
                }
            }
            Err(Skipped {
                why,
                unset,
                failed: None,
            })
        }
        Stop::Failed(e) => Err(Skipped::failed(e)),
    };
    let variables = Variables::new(&[]).map_err(Skipped::failed)?;
    let mut report = Report::default();
    let (manifests, store, measurements) = match load(&request, inputs, &variables, &mut report) {
        Ok(loaded) => loaded,
        Err(stop) => return problems(stop),
    };
    let measured = match measurements {
        Some(m) => Measured::Beside(m),
        None => Measured::Given(&[]),
    };
    let digests = digests::Digests::default();
    let described =
        match describe_services(manifests.services, &measured, &digests, &store, &mut report) {
            Ok(described) => described,
            Err(stop) => return problems(stop),
        };
    let stored = stored_for(&manifests.meshes, &described, &store, &mut report);
    let found = used_by(&manifests.meshes, &described, &stored);
    for result in compile_meshes(&manifests.meshes, &found, &request.options, &request) {
        match result {
            Err(found) => report.problems.extend(found),
            // With lint, the least-privilege findings the graph shows.
            Ok(mesh) => report.problems.extend(
                (mesh.graph.iter().flat_map(|g| &g.findings))
                    .filter(|f| meshfile_graph::FINDING_CODES.contains(&f.diagnostic.code))
                    .map(meshfile_graph::Finding::located),
            ),
        }
    }
    add_sources(&mut report, &store, &request.overlay);
    Ok(report)
}

impl Recorded {
    fn of(d: &Descriptor) -> Recorded {
        Recorded {
            file: d.file.clone(),
            image: d.image.clone(),
            mrenclaves: d.mrenclaves.len(),
        }
    }
}

/// The manifests parsed and validated, with the descriptor store and (without
/// `--mrenclave`) the measurements files beside the inputs, read meanwhile.
fn load<'i>(
    request: &Request,
    inputs: &'i [Input],
    variables: &Variables,
    report: &mut Report,
) -> Result<(Manifests<'i>, Store, Option<Measurements>), Stop> {
    let mut side = Report::default();
    let (manifests, (store, measurements)) = rayon::join(
        || load::load_manifests(inputs, variables, report),
        || {
            let store = Store::open(&request.target, &mut side);
            let measurements =
                (request.mrenclaves.is_empty()).then(|| Measurements::read(inputs, &mut side));
            (store, measurements)
        },
    );
    report.absorb(side);
    let store = store?;
    report.check()?;
    Ok((manifests, store, measurements))
}

/// Refuses arguments that do not fit the manifests given.
fn check_request(request: &Request, manifests: &Manifests<'_>) -> Result<(), Error> {
    if request.writes && manifests.meshes.len() > 1 {
        let names: Vec<&str> = (manifests.meshes.iter())
            .map(|m| m.input.name.as_str())
            .collect();
        let message = format!(
            "{} meshes were given ({}), but a target directory holds the output of one",
            names.len(),
            names.join(", ")
        );
        return Err(Error::new(Code::BadArguments, message)
            .hint("apply or template each mesh on its own, with its own `-t DIR`"));
    }
    if !request.mrenclaves.is_empty() && manifests.services.len() != 1 {
        let message = format!(
            "`--mrenclave` applies to one service manifest, but {} were given",
            manifests.services.len()
        );
        return Err(Error::new(Code::BadArguments, message).hint(
            "apply service manifests one at a time, or list measurements in a measurements.yaml next to them",
        ));
    }
    Ok(())
}

/// Each service's chart from the genservice template directory `dir`, rendered with its
/// manifest's variables (the service step of [`meshfile_plan::genservice`]).
fn with_chart_templates(dir: &Path, described: &mut [Descriptor]) -> Result<(), Error> {
    let failed = |why: &dyn std::fmt::Display| {
        Error::new(
            Code::ChartFailed,
            format!("--helm-template {}: {why}", dir.display()),
        )
        .hint("name a directory with genservice's templates: values.template, Chart.yaml.template and the chart's templates/ (or charts/templates/)")
    };
    if described.is_empty() {
        return Err(Error::new(
            Code::BadArguments,
            format!(
                "--helm-template {}: it applies to service manifests, and none was given",
                dir.display()
            ),
        )
        .hint("give it with the service step, as the tutorials' run.sh does: `meshfile apply -f service.yaml --helm-template DIR`"));
    }
    let files: BTreeMap<String, String> = crate::paths::read_chart(dir)
        .map_err(|why| failed(&why))?
        .into_iter()
        .map(|(path, bytes)| {
            String::from_utf8(bytes)
                .map(|text| (path.clone(), text))
                .map_err(|_| {
                    failed(&meshfile_plan::files::FileError::NotTextFile(format!(
                        "`{path}`"
                    )))
                })
        })
        .collect::<Result<_, _>>()?;
    for d in described {
        let variables: BTreeMap<String, String> = (d.manifest.environment.local.iter().flatten())
            .map(|kv| (kv.name.as_str().to_owned(), kv.value.as_str().to_owned()))
            .collect();
        let chartname = d.manifest.build.name.as_str().to_owned();
        let chart = meshfile_plan::genservice::render_templates(&files, &variables, &chartname)
            .map_err(|why| failed(&format!("for {}: {why}", d.file)))?;
        d.chart = Some(chart);
    }
    Ok(())
}

/// Each service manifest with its measurements and digest: the descriptors to record.
fn describe_services(
    services: Vec<Loaded<'_, Box<ServiceManifest>>>,
    measured: &Measured<'_>,
    digests: &digests::Digests,
    store: &Store,
    report: &mut Report,
) -> Result<Vec<Descriptor>, Stop> {
    let mut described = Vec::with_capacity(services.len());
    for service in services {
        if let Some(mut d) = descriptors::describe(service, measured, report) {
            // No digest from the registry (`-n`, or it could not be reached): the one
            // recorded before for the image stays.
            d.digest =
                (digests.found.get(&d.image).cloned()).or_else(|| store.recorded_digest(&d.image));
            described.push(d);
        }
    }
    report.check()?;
    Ok(described)
}

/// The descriptors the meshes use that this run did not describe, from the store.
fn stored_for(
    meshes: &[Loaded<'_, MeshManifest>],
    described: &[Descriptor],
    store: &Store,
    report: &mut Report,
) -> BTreeMap<String, Descriptor> {
    let images = descriptors::images_of(meshes.iter().map(|m| &m.manifest));
    let missing: BTreeSet<&str> = (images.into_iter())
        .filter(|image| !described.iter().any(|d| d.image == *image))
        .collect();
    store.lookup(&missing, report)
}

/// The descriptor of each image the meshes use: what this run described (its positions
/// those of the service manifests), else what the store holds.
fn used_by<'d>(
    meshes: &[Loaded<'_, MeshManifest>],
    described: &'d [Descriptor],
    stored: &'d BTreeMap<String, Descriptor>,
) -> Descriptors<'d> {
    let images = descriptors::images_of(meshes.iter().map(|m| &m.manifest));
    (stored.values())
        .chain(
            described
                .iter()
                .filter(|d| images.contains(d.image.as_str())),
        )
        .map(|d| (d.image.as_str(), d))
        .collect()
}

/// Each mesh compiled (pure); its relative paths read from its directory. With
/// [`Request::graph`], each mesh's graph too.
fn compile_meshes(
    meshes: &[Loaded<'_, MeshManifest>],
    descriptors: &Descriptors<'_>,
    options: &Options,
    request: &Request,
) -> Vec<Result<Mesh, Vec<meshfile_plan::Located>>> {
    let allow_outside = request.allow_outside;
    meshes
        .iter()
        .map(|loaded| {
            let input: &Input = loaded.input;
            let dir =
                MeshDir::new(input.dir(), allow_outside).with_overlay(request.overlay.clone());
            let outside: Vec<meshfile_plan::Located> = (dir.check(&loaded.manifest).into_iter())
                .map(|d| meshfile_plan::Located::new(&input.name, d))
                .collect();
            if !outside.is_empty() {
                return Err(outside);
            }
            let read = |rel: &str| dir.read_text(rel);
            let compiled =
                meshfile_plan::compile(&loaded.manifest, &input.name, descriptors, &read, options)?;
            let graph = request.graph.then(|| {
                meshfile_graph::build(&meshfile_graph::Inputs {
                    mesh: &loaded.manifest,
                    mesh_file: &input.name,
                    descriptors,
                    compiled: &compiled,
                    mode: options.mode,
                })
            });
            Ok(Mesh {
                file: input.name.clone(),
                dir,
                compiled,
                graph,
            })
        })
        .collect()
}

/// The text of every file a problem points into that the report does not hold yet.
fn add_sources(report: &mut Report, store: &Store, overlay: &Overlay) {
    let missing: Vec<String> = (report.problems.iter())
        .map(|p| p.file.clone())
        .filter(|f| !report.sources.contains_key(f))
        .collect();
    for file in missing {
        let text = (store.source_of(&file))
            .or_else(|| overlay.text_of(&file).map(str::to_owned))
            .or_else(|| std::fs::read_to_string(&file).ok());
        if let Some(text) = text {
            report.sources.insert(file, text);
        }
    }
}

/// `mode: SignOnline` is valid as the specification writes it, but no run can carry it out:
/// SCONE's online signing service speaks a protocol that is not public. Refused, located.
fn refuse_sign_online(meshes: &[Loaded<'_, MeshManifest>], report: &mut Report) {
    for mesh in meshes {
        for (i, cas) in mesh.manifest.cas.iter().enumerate() {
            let Some(mode) = cas
                .mode
                .as_ref()
                .filter(|m| m.value == meshfile_manifest::mesh::CasMode::SignOnline)
            else {
                continue;
            };
            // The error says all the warning said.
            let path = format!("cas[{i}].mode");
            report.problems.retain(|p| {
                !(p.file == mesh.input.name
                    && p.diagnostic.code == Code::CannotAct
                    && p.diagnostic.path == path)
            });
            report.problems.push(meshfile_plan::Located::new(
                &mesh.input.name,
                meshfile_manifest::Diagnostic::new(
                    Code::UnsupportedMode,
                    mode.span,
                    format!("cas[{i}].mode"),
                    "CAS mode `SignOnline` is not supported: it signs through SCONE's online signing service, whose protocol is not public",
                )
                .with_hint(meshfile_manifest::validate::SIGN_LOCALLY),
            ));
        }
    }
}

/// Each Meshfile's `repo.key_file`, when this run will sign copied images with it (asking
/// registries, `repo.push` not false), is a readable file: found missing here, before any
/// image is copied, and located.
fn check_image_keys(request: &Request, meshes: &[Loaded<'_, MeshManifest>], report: &mut Report) {
    if !request.pull {
        return;
    }
    for mesh in meshes {
        let Some(repo) = &mesh.manifest.repo else {
            continue;
        };
        let (Some(file), true) = (&repo.key_file, repo.push.as_ref().is_none_or(|p| p.value))
        else {
            continue;
        };
        let dir = MeshDir::new(mesh.input.dir(), request.allow_outside);
        if let Err(why) = dir.read_text(file.as_str()) {
            report.problems.push(meshfile_plan::Located::new(
                &mesh.input.name,
                meshfile_manifest::Diagnostic::new(
                    Code::OverrideFile,
                    file.span,
                    "repo.key_file",
                    format!("repo.key_file `{file}`, the cosign key that signs the copied images: {why}"),
                )
                .with_hint(format!(
                    "make it with `meshfile key generate --cosign --out {file}` (sealed with COSIGN_PASSWORD, or a password asked), beside the Meshfile"
                )),
            ));
        }
    }
}

/// The cosign public keys trusted to sign published descriptors, each named by its
/// fingerprint and file: those `--descriptor-key` names, and those of each Meshfile's
/// `descriptor_keys` (files in its directory; a problem with one is located there).
fn trusted_keys(
    request: &Request,
    meshes: &[Loaded<'_, MeshManifest>],
    report: &mut Report,
) -> Result<Vec<crate::published::TrustedKey>, Error> {
    use meshfile_sign::cosign::CosignPublicKey;
    let trusted =
        |key: CosignPublicKey, file: &dyn std::fmt::Display| crate::published::TrustedKey {
            name: format!("{} ({file})", key.fingerprint()),
            key,
        };
    let mut keys = Vec::new();
    for file in &request.descriptor_keys {
        let text = crate::paths::read_key_file(file)?;
        let key = CosignPublicKey::from_pem(&text)
            .map_err(|e| Error::new(Code::SigningKey, format!("{}: {e}", file.display())))?;
        keys.push(trusted(key, &file.display()));
    }
    for mesh in meshes {
        let dir = MeshDir::new(mesh.input.dir(), request.allow_outside);
        for (i, rel) in mesh.manifest.descriptor_keys.iter().flatten().enumerate() {
            let key = dir
                .read_text(rel.as_str())
                .map(|text| CosignPublicKey::from_pem(&text).map_err(|e| e.to_string()));
            match key.map_err(|e| e.to_string()).and_then(|key| key) {
                Ok(key) => keys.push(trusted(key, &dir.path().join(rel.as_str()).display())),
                Err(why) => report.problems.push(meshfile_plan::Located::new(
                    &mesh.input.name,
                    meshfile_manifest::Diagnostic::new(
                        Code::SigningKey,
                        rel.span,
                        format!("descriptor_keys[{i}]"),
                        format!("descriptor key `{rel}`: {why}"),
                    )
                    .with_hint(
                        "name a cosign public key file (cosign.pub), relative to the Meshfile",
                    ),
                )),
            }
        }
    }
    Ok(keys)
}
