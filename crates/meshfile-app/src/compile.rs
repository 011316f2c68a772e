//! The compile pipeline: read inputs, load manifests, record service descriptors, resolve
//! image digests, compile each mesh (pure, `meshfile-plan`). Rendering and writing follow in
//! [`crate::render`] and [`crate::write`].

use std::collections::BTreeSet;
use std::path::PathBuf;

use meshfile_manifest::Code;
use meshfile_plan::{Compiled, Options};

use crate::descriptors::{self, Measured, Measurements, Store};
use crate::inputs::{self, Input};
use crate::load::{self, Variables};
use crate::{Error, Report, Stop, digests};

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
    /// The directory its relative paths (`helm_chart`, templates) start from.
    pub dir: PathBuf,
    pub compiled: Compiled,
}

/// Everything a compile run produced, and its warnings.
pub struct Compilation {
    pub recorded: Vec<Recorded>,
    pub meshes: Vec<Mesh>,
    /// Warnings located in the inputs.
    pub report: Report,
    /// Warnings about registries.
    pub notes: Vec<String>,
}

/// Runs the pipeline up to compiled meshes. Every problem in the inputs is reported at once.
pub fn compile(request: &Request) -> Result<Compilation, Stop> {
    let inputs = inputs::read_inputs(&request.inputs)?;
    let variables = Variables::new(&request.sets)?;
    let mut report = Report::default();
    let manifests = load::load_manifests(&inputs, &variables, &mut report);
    report.check()?;
    if request.writes && manifests.meshes.len() > 1 {
        let names: Vec<&str> = manifests
            .meshes
            .iter()
            .map(|m| m.input.name.as_str())
            .collect();
        return Err(Error::new(
            Code::BadArguments,
            format!(
                "{} meshes were given ({}), but a target directory holds the output of one",
                names.len(),
                names.join(", ")
            ),
        )
        .hint("apply or template each mesh on its own, with its own `-t DIR`")
        .into());
    }
    if !request.mrenclaves.is_empty() && manifests.services.len() != 1 {
        return Err(Error::new(
            Code::BadArguments,
            format!(
                "`--mrenclave` applies to one service manifest, but {} were given",
                manifests.services.len()
            ),
        )
        .hint("apply service manifests one at a time, or list measurements in a measurements.yaml next to them")
        .into());
    }

    let digests = if request.pull {
        let images = descriptors::images_of(manifests.meshes.iter().map(|m| &m.manifest))
            .into_iter()
            .chain(
                manifests
                    .services
                    .iter()
                    .map(|s| s.manifest.build.to.as_str()),
            );
        digests::resolve(images)
    } else {
        digests::Digests::default()
    };

    let mut store = Store::open(&request.target, &mut report)?;
    let mut measured = if request.mrenclaves.is_empty() {
        Measured::Beside(Measurements::default())
    } else {
        Measured::Given(&request.mrenclaves)
    };
    let mut described = Vec::with_capacity(manifests.services.len());
    for service in manifests.services {
        if let Some(mut d) = descriptors::describe(service, &mut measured, &mut report) {
            // No digest from the registry (`-n`, or it could not be reached): the one
            // recorded before for the image stays.
            d.digest =
                (digests.found.get(&d.image).cloned()).or_else(|| store.recorded_digest(&d.image));
            described.push(d);
        }
    }
    report.check()?;
    store.record_all(&described);
    store.save()?;
    let recorded = described
        .iter()
        .map(|d| Recorded {
            file: d.file.clone(),
            image: d.image.clone(),
            mrenclaves: d.mrenclaves.len(),
        })
        .collect();

    // What this run recorded is at hand (its positions those of the service manifests); the
    // rest comes from the store.
    let images = descriptors::images_of(manifests.meshes.iter().map(|m| &m.manifest));
    let stored: BTreeSet<&str> = {
        let at_hand: BTreeSet<&str> = described.iter().map(|d| d.image.as_str()).collect();
        images.difference(&at_hand).copied().collect()
    };
    let mut found = store.lookup(&stored, &mut report);
    found.extend(
        described
            .into_iter()
            .filter(|d| images.contains(d.image.as_str()))
            .map(|d| (d.image.clone(), d)),
    );
    report.check()?;

    let options = Options {
        digests: digests.found,
        ..request.options.clone()
    };
    let mut meshes = Vec::new();
    for loaded in &manifests.meshes {
        let input: &Input = loaded.input;
        let dir = input.dir();
        let read = |rel: &str| -> Result<String, String> {
            std::fs::read_to_string(dir.join(rel)).map_err(|e| e.to_string())
        };
        match meshfile_plan::compile(&loaded.manifest, &input.name, &found, &read, &options) {
            Ok(compiled) => meshes.push(Mesh {
                file: input.name.clone(),
                dir,
                compiled,
            }),
            Err(problems) => report.problems.extend(problems),
        }
    }
    add_sources(&mut report, &store);
    report.check()?;
    Ok(Compilation {
        recorded,
        meshes,
        report,
        notes: digests.warnings,
    })
}

/// The text of every file a problem points into that the report does not hold yet.
fn add_sources(report: &mut Report, store: &Store) {
    let missing: Vec<String> = (report.problems.iter())
        .map(|p| p.file.clone())
        .filter(|f| !report.sources.contains_key(f))
        .collect();
    for file in missing {
        let text = store
            .source_of(&file)
            .or_else(|| std::fs::read_to_string(&file).ok());
        if let Some(text) = text {
            report.sources.insert(file, text);
        }
    }
}
