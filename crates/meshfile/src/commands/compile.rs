//! `template` and `apply`: record service descriptors, compile meshes, write `target/`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use meshfile_manifest::{Code, Diagnostic, Manifest, MeshManifest, ServiceManifest};
use meshfile_plan::{Compiled, Descriptor, Located, Options, descriptor};

use crate::cli::{CompileArgs, Mode};
use crate::commands::check::{Input, read_inputs};
use crate::error::{CliError, exit};
use crate::{fsutil, render};

/// What to do once a mesh compiled.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Write `target/` and nothing else (`template`): sessions become text as they are made,
    /// and the result carries none.
    Write,
    /// Write `target/` and keep everything for delivery (`apply`).
    WriteForDelivery,
    /// Print each service's variables; write nothing.
    PrintVariables,
    /// Compile only (for `plan`): write nothing.
    Compile,
}

/// Problems found so far, with the text of every file they point into (borrowed from the
/// inputs where it can be: a large mesh's manifests are not copied for the rare error).
#[derive(Default)]
struct Report<'i> {
    sources: BTreeMap<String, Cow<'i, str>>,
    problems: Vec<Located>,
}

impl Report<'_> {
    fn add(&mut self, file: &str, diagnostics: impl IntoIterator<Item = Diagnostic>) {
        self.problems
            .extend(diagnostics.into_iter().map(|d| Located::new(file, d)));
    }

    fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.diagnostic.is_error())
    }

    /// Prints every problem; errors or not, warnings are shown.
    fn print(&self) -> Result<(), CliError> {
        let mut err = std::io::stderr().lock();
        for p in &self.problems {
            let source = self.sources.get(&p.file).map(|text| text.as_ref());
            writeln!(err, "{}", render::human(&p.file, source, &p.diagnostic))
                .map_err(CliError::Output)?;
        }
        Ok(())
    }
}

fn env_lookup(sets: &[String]) -> Result<impl Fn(&str) -> Option<String>, CliError> {
    let mut given = BTreeMap::new();
    for set in sets {
        let (name, value) = set
            .split_once('=')
            .ok_or_else(|| CliError::BadSet(set.clone()))?;
        given.insert(name.to_owned(), value.to_owned());
    }
    Ok(move |name: &str| {
        given
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    })
}

struct Loaded<'i> {
    input: &'i Input,
    manifest: Manifest,
}

pub fn run(
    args: &CompileArgs,
    action: Action,
    quiet: bool,
) -> Result<(u8, Option<Vec<Compiled>>), CliError> {
    // Measurement files beside the inputs are read while the manifests load.
    let measurements = if args.mrenclaves.is_empty() {
        Measurements::read_ahead(&args.inputs.files)
    } else {
        Measurements::default()
    };
    let inputs = read_inputs(&args.inputs.files)?;
    let env = env_lookup(&args.set)?;
    let mut report = Report::default();
    let loaded = load_manifests(&inputs, &env, &mut report);
    if report.has_errors() {
        report.print()?;
        return Ok((exit::INVALID, None));
    }

    let mut services: Vec<(&Input, Box<ServiceManifest>)> = Vec::new();
    let mut meshes: Vec<(&Input, MeshManifest)> = Vec::new();
    for l in loaded {
        match l.manifest {
            Manifest::Service(s) => services.push((l.input, s)),
            Manifest::Mesh(m) => meshes.push((l.input, *m)),
        }
    }
    let writes = matches!(action, Action::Write | Action::WriteForDelivery);
    if writes && meshes.len() > 1 {
        return Err(CliError::ManyMeshes(
            meshes.iter().map(|(input, _)| input.name.clone()).collect(),
        ));
    }
    if !args.mrenclaves.is_empty() && services.len() != 1 {
        return Err(CliError::AmbiguousMrenclave(services.len()));
    }

    // Only written output pins images; `plan` and `-p` never ask a registry.
    let digests = if args.no_pull || !matches!(action, Action::Write | Action::WriteForDelivery) {
        BTreeMap::new()
    } else {
        let images = (meshes.iter().flat_map(|(_, m)| &m.services))
            .map(|s| s.image.as_str())
            .chain(services.iter().map(|(_, s)| s.build.to.as_str()));
        resolve_digests(images)
    };
    let (descriptors, descriptors_written) = update_descriptors(
        args,
        services,
        &meshes,
        &digests,
        measurements,
        &mut report,
        quiet,
    )?;
    if report.has_errors() {
        report.print()?;
        return Ok((exit::INVALID, None));
    }

    let options = Options {
        mode: match args.mode {
            Mode::Production => meshfile_plan::Mode::Production,
            Mode::Debug => meshfile_plan::Mode::Debug,
        },
        release: args.release.clone(),
        report_variables: action == Action::PrintVariables,
        digests,
    };
    let mut compiled = Vec::new();
    let mut policies = None;
    for (input, mesh) in &meshes {
        let dir = mesh_dir(&input.name);
        let read = |rel: &str| -> Result<String, String> {
            std::fs::read_to_string(dir.join(rel)).map_err(|e| e.to_string())
        };
        for d in descriptors.values() {
            if !report.sources.contains_key(&d.file)
                && let Ok(text) = std::fs::read_to_string(&d.file)
            {
                report.sources.insert(d.file.clone(), text.into());
            }
        }
        let result = if action == Action::Write {
            // Only files to write: each session becomes text as soon as it is made, and is
            // written while the rest compiles.
            let writer = fsutil::TreeWriter::start(args.target.join("policies"));
            let result = meshfile_plan::compile_streaming(
                mesh,
                &input.name,
                &descriptors,
                &read,
                &options,
                &|session| {
                    let (name, text) = policy_file(&session);
                    writer.send(name, text);
                },
            );
            result.map(|(compiled, sessions)| {
                policies = Some((writer, sessions.len()));
                compiled
            })
        } else {
            meshfile_plan::compile(mesh, &input.name, &descriptors, &read, &options)
        };
        match result {
            Ok(c) => compiled.push(c),
            Err(problems) => report.problems.extend(problems),
        }
    }
    report.print()?;
    if report.has_errors() {
        return Ok((exit::INVALID, None));
    }
    // What a large mesh no longer needs goes before its output is built.
    drop((report, descriptors));
    match action {
        Action::PrintVariables => print_variables(&meshes, &compiled)?,
        Action::Compile => {}
        Action::Write | Action::WriteForDelivery => {
            if let (Some((input, _)), Some(c)) = (meshes.first(), compiled.first()) {
                write_outputs(&args.target, input, c, policies, quiet)?;
            }
        }
    }
    if let Some(written) = descriptors_written {
        written.finish()?;
    }
    Ok((exit::OK, Some(compiled)))
}

/// Every input parsed and validated (on all cores), its text kept for error snippets.
fn load_manifests<'i>(
    inputs: &'i [Input],
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    report: &mut Report<'i>,
) -> Vec<Loaded<'i>> {
    let results = meshfile_plan::parallel::map(inputs, |input| {
        let bytes = input.bytes.as_ref().ok()?;
        Some(meshfile_manifest::load_with_env(bytes, Some(env)))
    });
    let mut loaded = Vec::new();
    for (input, result) in inputs.iter().zip(results) {
        let (bytes, result) = match (&input.bytes, result) {
            (Ok(bytes), Some(result)) => (bytes, result),
            (Err(d), _) => {
                report.add(&input.name, [d.clone()]);
                continue;
            }
            (Ok(_), None) => continue,
        };
        report
            .sources
            .insert(input.name.clone(), String::from_utf8_lossy(bytes));
        report.add(&input.name, result.diagnostics);
        if let Some(manifest) = result.manifest {
            loaded.push(Loaded { input, manifest });
        }
    }
    loaded
}

/// Records the given service manifests in `target/descriptors.yaml` and returns every
/// descriptor the meshes can use. Descriptors recorded earlier are parsed only when a mesh
/// needs one that this run did not record; otherwise they are carried over as text.
fn update_descriptors<'i>(
    args: &CompileArgs,
    services: Vec<(&'i Input, Box<ServiceManifest>)>,
    meshes: &[(&'i Input, MeshManifest)],
    digests: &BTreeMap<String, String>,
    mut measurements: Measurements,
    report: &mut Report<'i>,
    quiet: bool,
) -> Result<(BTreeMap<String, Descriptor>, Option<fsutil::PendingWrite>), CliError> {
    let descriptors_file = args.target.join("descriptors.yaml");
    let recorded_any = !services.is_empty();
    let mut made = Vec::with_capacity(services.len());
    for (input, manifest) in services {
        if let Some(mut d) = record(args, input, manifest, &mut measurements, report) {
            d.digest = digests.get(&d.image).cloned();
            if !quiet {
                let n = d.mrenclaves.len();
                eprintln!(
                    "recorded {} (image {}, {n} MRENCLAVE{})",
                    input.name,
                    d.image,
                    if n == 1 { "" } else { "s" }
                );
            }
            made.push(d);
        }
    }
    // Into the map in image order (sorted by index: a descriptor is large, and so is moving it
    // around, in a sort or inside the map's nodes when inserted in file order).
    let mut order: Vec<usize> = (0..made.len()).collect();
    order.sort_unstable_by(|&a, &b| made[a].image.cmp(&made[b].image));
    let mut made: Vec<Option<Descriptor>> = made.into_iter().map(Some).collect();
    let mut recorded = BTreeMap::new();
    for d in order.into_iter().filter_map(|i| made[i].take()) {
        recorded.insert(d.image.clone(), d);
    }
    let stored = std::fs::read_to_string(&descriptors_file).ok();
    let stored_entries = stored.as_deref().and_then(descriptor::split_entries);
    let needs_stored = meshes
        .iter()
        .flat_map(|(_, m)| &m.services)
        .any(|s| !recorded.contains_key(s.image.as_str()));
    let mut descriptors = match &stored {
        Some(text) if needs_stored || stored_entries.is_none() => {
            read_descriptors(&descriptors_file, text, stored_entries.as_ref(), report)
        }
        _ => BTreeMap::new(),
    };
    // Recorded again without a digest from the registry (`-n`, `plan`, or it could not be
    // reached): the digest recorded before for the same image stays, read from the descriptor
    // parsed above or from its entry alone (on all cores; an entry that does not mention a
    // digest has none, and most have none: they are not parsed).
    let old_digests = {
        let lacking: Vec<&str> = (recorded.values())
            .filter(|d| d.digest.is_none())
            .map(|d| d.image.as_str())
            .collect();
        meshfile_plan::parallel::map(&lacking, |image| match descriptors.get(*image) {
            Some(old) => old.digest.clone(),
            None => stored_entries
                .as_ref()
                .and_then(|entries| entries.get(*image))
                .filter(|entry| entry.contains("digest"))
                .and_then(|entry| {
                    descriptor::read_set(&descriptors_file.display().to_string(), entry).ok()
                })
                .and_then(|set| set.into_values().next())
                .and_then(|old| old.digest),
        })
    };
    for (d, digest) in (recorded.values_mut())
        .filter(|d| d.digest.is_none())
        .zip(old_digests)
    {
        d.digest = digest;
    }
    let mut written = None;
    if recorded_any && !report.has_errors() {
        let mut entries: BTreeMap<&str, Result<&Descriptor, &str>> = stored_entries
            .iter()
            .flatten()
            .map(|(image, text)| (image.as_str(), Err(*text)))
            .collect();
        entries.extend(descriptors.iter().map(|(i, d)| (i.as_str(), Ok(d))));
        entries.extend(recorded.iter().map(|(i, d)| (i.as_str(), Ok(d))));
        let entries: Vec<_> = entries.into_iter().collect();
        let parts = descriptor::parts(meshfile_plan::parallel::map(
            &entries,
            |(image, d)| match d {
                Ok(d) => descriptor::entry(image, d),
                Err(text) => (*text).to_owned(),
            },
        ));
        // Written while the meshes compile.
        written = Some(fsutil::PendingWrite::start(descriptors_file, parts));
    }
    descriptors.extend(recorded);
    Ok((descriptors, written))
}

/// The mesh's `target/` output; policies already being written while it compiled are left
/// to their writer, otherwise they are made from the sessions.
fn write_outputs(
    target: &Path,
    input: &Input,
    c: &Compiled,
    policies: Option<(fsutil::TreeWriter, usize)>,
    quiet: bool,
) -> Result<(), CliError> {
    let (writer, sessions) = policies.unwrap_or_else(|| {
        let writer = fsutil::TreeWriter::start(target.join("policies"));
        for (name, text) in meshfile_plan::parallel::map(&c.sessions, policy_file) {
            writer.send(name, text);
        }
        (writer, c.sessions.len())
    });
    write_target(target, c, writer, &mesh_dir(&input.name))?;
    if !quiet {
        eprintln!(
            "wrote {sessions} session polic{} to {} and the Helm chart `{}` ({} service{}) to {}",
            if sessions == 1 { "y" } else { "ies" },
            target.join("policies").display(),
            c.chart.name,
            c.chart.services.len(),
            if c.chart.services.len() == 1 { "" } else { "s" },
            target.join("helm").display()
        );
    }
    Ok(())
}

/// The digests of images, from their registries: charts pin every image they can, and
/// descriptors record them for later offline compiles. A registry that cannot be reached, or
/// an image it does not have, gives a warning and no digest; nothing fails for it (`-n` skips
/// the lookup).
fn resolve_digests<'a>(images: impl Iterator<Item = &'a str>) -> BTreeMap<String, String> {
    use meshfile_registry::{Credentials, Reference, RegistryError, Resolver};
    let mut by_registry: BTreeMap<String, BTreeMap<String, Reference>> = BTreeMap::new();
    for image in images {
        if let Some(reference) = Reference::parse(image) {
            by_registry
                .entry(reference.registry.clone())
                .or_default()
                .insert(image.to_owned(), reference);
        }
    }
    let mut digests = BTreeMap::new();
    if by_registry.is_empty() {
        return digests;
    }
    let resolver = match Resolver::new(Credentials::from_docker_config()) {
        Ok(resolver) => resolver,
        Err(e) => {
            eprintln!("warning: no registry lookups ({e}); images keep recorded digests or tags");
            return digests;
        }
    };
    for (registry, images) in by_registry {
        let images: Vec<(String, Reference)> = images.into_iter().collect();
        // The first answer tells whether the registry is there at all; then the rest at once.
        let Some(((first, reference), rest)) = images.split_first() else {
            continue;
        };
        let mut answers = vec![(first, resolver.digest(reference))];
        if let Some(Err(RegistryError::Unreachable { detail, .. })) = answers.first().map(|a| &a.1)
        {
            eprintln!(
                "warning: cannot reach registry {registry} ({detail}): {} keep the digest recorded with their service, if any, else their tag (`-n` skips this lookup)",
                if images.len() == 1 {
                    "its image".to_owned()
                } else {
                    format!("its {} images", images.len())
                },
            );
            continue;
        }
        answers.extend(rest.iter().map(|(image, _)| image).zip(
            meshfile_plan::parallel::map_waiting(rest, |(_, r)| resolver.digest(r)),
        ));
        for (image, answer) in answers {
            match answer {
                Ok(digest) => {
                    digests.insert(image.clone(), digest);
                }
                Err(e) => eprintln!("warning: {e}; no digest from the registry for it"),
            }
        }
    }
    digests
}

/// The directory a Meshfile's relative paths start from.
fn mesh_dir(name: &str) -> PathBuf {
    if name == "<stdin>" {
        return PathBuf::from(".");
    }
    Path::new(name)
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn read_descriptors(
    file: &Path,
    text: &str,
    entries: Option<&BTreeMap<String, &str>>,
    report: &mut Report,
) -> BTreeMap<String, Descriptor> {
    let name = file.display().to_string();
    let set = match descriptor::read_split(&name, text, entries) {
        Ok(set) => set,
        Err(problems) => {
            report.problems.extend(problems);
            BTreeMap::new()
        }
    };
    report.sources.insert(name, text.to_owned().into());
    set
}

/// `measurements.yaml` files, parsed once per directory.
#[derive(Default)]
struct Measurements {
    by_dir: BTreeMap<PathBuf, Option<BTreeMap<String, Vec<String>>>>,
    /// The files beside the inputs, being read and parsed on a thread of their own.
    ahead: Option<std::thread::JoinHandle<BTreeMap<PathBuf, Option<MeasurementsFile>>>>,
    read_ahead: BTreeMap<PathBuf, Option<MeasurementsFile>>,
}

/// A measurements file's text and what it says.
type MeasurementsFile = (String, Result<BTreeMap<String, Vec<String>>, Vec<Located>>);

impl Measurements {
    /// Starts reading the measurements files of the directories the inputs are in (a large
    /// one takes a while to parse, and nothing needs it before the manifests are loaded).
    fn read_ahead(inputs: &[PathBuf]) -> Self {
        let dirs: std::collections::BTreeSet<PathBuf> = inputs
            .iter()
            .map(|path| {
                if path.is_dir() {
                    path.clone()
                } else {
                    mesh_dir(&path.display().to_string())
                }
            })
            .collect();
        let ahead = std::thread::spawn(move || {
            dirs.into_iter()
                .map(|dir| {
                    let file = read_measurements(&dir.join("measurements.yaml"));
                    (dir, file)
                })
                .collect()
        });
        Measurements {
            ahead: Some(ahead),
            ..Measurements::default()
        }
    }

    fn of(
        &mut self,
        dir: PathBuf,
        report: &mut Report,
    ) -> (PathBuf, Option<&BTreeMap<String, Vec<String>>>) {
        if let Some(ahead) = self.ahead.take() {
            self.read_ahead = ahead
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
        }
        let file = dir.join("measurements.yaml");
        let read_ahead = &mut self.read_ahead;
        let entry = self.by_dir.entry(dir).or_insert_with_key(|dir| {
            let (text, parsed) = read_ahead
                .remove(dir)
                .unwrap_or_else(|| read_measurements(&file))?;
            report
                .sources
                .insert(file.display().to_string(), text.into());
            parsed
                .map_err(|problems| report.problems.extend(problems))
                .ok()
        });
        (file, entry.as_ref())
    }
}

fn read_measurements(file: &Path) -> Option<MeasurementsFile> {
    let text = std::fs::read_to_string(file).ok()?;
    let parsed = descriptor::parse_measurements(&file.display().to_string(), &text);
    Some((text, parsed))
}

/// A service manifest and its measurements, from `--mrenclave` or a `measurements.yaml` beside it.
fn record(
    args: &CompileArgs,
    input: &Input,
    manifest: Box<ServiceManifest>,
    measurements: &mut Measurements,
    report: &mut Report,
) -> Option<Descriptor> {
    let image = manifest.build.to.as_str().to_owned();
    let span = manifest.build.to.span;
    let missing = |message: String, hint: String| {
        Diagnostic::new(Code::MissingMeasurement, span, "build.to", message).with_hint(hint)
    };
    let mut mrenclaves: Vec<String> = Vec::new();
    if !args.mrenclaves.is_empty() {
        for m in &args.mrenclaves {
            if descriptor::is_mrenclave(m) {
                mrenclaves.push(m.to_ascii_lowercase());
            } else {
                report.add(
                    &input.name,
                    [missing(
                        format!("`--mrenclave {m}` is not 64 hexadecimal digits"),
                        "pass the MRENCLAVE that SCONE's build printed for this image".into(),
                    )],
                );
                return None;
            }
        }
    } else {
        let (file, known) = measurements.of(mesh_dir(&input.name), report);
        if let Some(known) = known {
            mrenclaves = known.get(&image).cloned().unwrap_or_default();
        }
        if mrenclaves.is_empty() && !report.has_errors() {
            let hint = format!(
                "pass `--mrenclave HEX`, or add `{image}: [HEX]` to {}",
                file.display()
            );
            report.add(
                &input.name,
                [missing(
                    format!("no MRENCLAVE is known for image `{image}`"),
                    hint,
                )],
            );
            return None;
        }
        if mrenclaves.is_empty() {
            return None;
        }
    }
    mrenclaves.sort();
    mrenclaves.dedup();
    Some(Descriptor {
        image,
        mrenclaves,
        manifest: *manifest,
        file: input.name.clone(),
        digest: None,
    })
}

/// A session's file under `target/policies/`: named after the session.
fn policy_file(session: &meshfile_session::Document) -> (String, Vec<u8>) {
    (
        format!("{}.yaml", session.name),
        session.to_yaml().into_bytes(),
    )
}

/// `target/policies/<session name>.yaml` (being written by `policies`) and `target/helm/...`,
/// each directory swapped in whole once both are written.
fn write_target(
    target: &Path,
    compiled: &Compiled,
    policies: fsutil::TreeWriter,
    mesh_dir: &Path,
) -> Result<(), CliError> {
    let model = &compiled.chart;
    let read_chart = |rel: &str| read_chart_dir(&mesh_dir.join(rel));
    let helm = fsutil::TreeWriter::start(target.join("helm"));
    // A user's chart is written as soon as it is packaged; each generated service's entry in
    // the umbrella's values (one long file) is made meanwhile.
    let services = meshfile_plan::parallel::map(&model.services, |s| {
        let mut service = meshfile_chart::service(model, s, &read_chart)?;
        if let Some(chart) = service.own_chart.take() {
            helm.send(chart.archive_path(), chart.archive());
        }
        Ok((service.dependency, service.values_entry))
    });
    let services: Vec<(meshfile_chart::Dependency, Option<String>)> = services
        .into_iter()
        .collect::<Result<_, String>>()
        .map_err(CliError::Chart)?;
    let mut dependencies = Vec::with_capacity(services.len());
    let mut entries = Vec::with_capacity(services.len());
    for (dependency, entry) in services {
        dependencies.push(dependency);
        entries.extend(entry);
    }
    let values = meshfile_chart::umbrella_values_from(model, entries);
    let umbrella =
        meshfile_chart::umbrella(model, &dependencies, values).map_err(CliError::Chart)?;
    for (relative, bytes) in umbrella {
        helm.send(relative, bytes);
    }
    let _writeback = fsutil::Writeback::start(target);
    let staged: Vec<fsutil::Staged> = [policies.finish()?, helm.finish()?]
        .into_iter()
        .flatten()
        .collect();
    fsutil::commit(&staged)
}

/// A user's chart directory (`helm_chart`): every file `helm package` would take, by relative
/// path (`/`-separated), leaving out what its `.helmignore` says, as Helm does.
fn read_chart_dir(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let ignore = match std::fs::read_to_string(root.join(".helmignore")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}/.helmignore: {e}", root.display())),
    };
    let rules = meshfile_chart::helmignore::Rules::parse(&ignore)?;
    let mut out = BTreeMap::new();
    let mut todo = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = todo.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("{}: a chart's file names are UTF-8", path.display()))?;
            let rel = format!("{prefix}{name}");
            let is_dir = path.is_dir();
            if rules.ignores(&rel, is_dir) {
                continue;
            }
            if is_dir {
                todo.push((path, format!("{rel}/")));
                continue;
            }
            let bytes =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            out.insert(rel, bytes);
        }
    }
    Ok(out)
}

fn print_variables(
    meshes: &[(&Input, MeshManifest)],
    compiled: &[Compiled],
) -> Result<(), CliError> {
    let mut out = String::new();
    for ((input, _), c) in meshes.iter().zip(compiled) {
        out.push_str(&format!("# Variables of the services of {}: value and where it comes from.\n# Paste into the Meshfile's `env:` and adjust.\nenv:\n", input.name));
        for s in &c.variables {
            out.push_str(&format!("  - service: {}\n    env:\n", s.service));
            if s.variables.is_empty() {
                out.pop();
                out.push_str(" []\n");
            }
            for v in &s.variables {
                let value = quoted(v.value.as_deref().unwrap_or_default());
                out.push_str(&format!(
                    "      - name: {}\n        value: {value}    # {}\n",
                    v.name, v.origin
                ));
            }
        }
    }
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(CliError::Output)
}

fn quoted(text: &str) -> String {
    let node = meshfile_yaml::Node::scalar(text, meshfile_yaml::Style::DoubleQuoted);
    meshfile_yaml::emit(&node).trim_end().to_owned()
}
