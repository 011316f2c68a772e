//! The compile pipeline: read inputs, load manifests, record service descriptors, resolve
//! image digests, compile each mesh (pure, `meshfile-plan`). Rendering and writing follow in
//! [`crate::render`] and [`crate::write`].

use std::collections::{BTreeMap, BTreeSet};
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
    pub warnings: Vec<String>,
    /// What was done besides (a store migrated).
    pub notes: Vec<String>,
}

/// Runs the pipeline up to compiled meshes. Every problem in the inputs is reported at once.
pub fn compile(request: &Request) -> Result<Compilation, Stop> {
    let inputs = inputs::read_inputs(&request.inputs)?;
    let variables = Variables::new(&request.sets)?;
    let mut report = Report::default();
    // The store and the measurements are read while the manifests load.
    let mut side = Report::default();
    let (manifests, (store, measurements)) = rayon::join(
        || load::load_manifests(&inputs, &variables, &mut report),
        || {
            let store = Store::open(&request.target, &mut side);
            let measurements = request
                .mrenclaves
                .is_empty()
                .then(|| Measurements::read(&inputs, &mut side));
            (store, measurements)
        },
    );
    report.absorb(side);
    let mut store = store?;
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

    let measured = match measurements {
        Some(m) => Measured::Beside(m),
        None => Measured::Given(&request.mrenclaves),
    };
    let mut described = Vec::with_capacity(manifests.services.len());
    for service in manifests.services {
        if let Some(mut d) = descriptors::describe(service, &measured, &mut report) {
            // No digest from the registry (`-n`, or it could not be reached): the one
            // recorded before for the image stays.
            d.digest =
                (digests.found.get(&d.image).cloned()).or_else(|| store.recorded_digest(&d.image));
            described.push(d);
        }
    }
    report.check()?;
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
    let at_hand: BTreeMap<&str, &meshfile_plan::Descriptor> =
        described.iter().map(|d| (d.image.as_str(), d)).collect();
    let stored_images: BTreeSet<&str> = (images.iter().copied())
        .filter(|image| !at_hand.contains_key(image))
        .collect();
    let stored = store.lookup(&stored_images, &mut report);
    report.check()?;
    let found: meshfile_plan::Descriptors<'_> = (stored.iter())
        .map(|(image, d)| (image.as_str(), d))
        .chain(
            at_hand
                .into_iter()
                .filter(|(image, _)| images.contains(image)),
        )
        .collect();

    let options = Options {
        digests: digests.found,
        ..request.options.clone()
    };
    // The store is written while the meshes compile.
    store.record_all(&described);
    let saving = store.save_in_background();
    let compiled: Vec<_> = (manifests.meshes.iter())
        .map(|loaded| {
            let input: &Input = loaded.input;
            let dir = input.dir();
            let read = |rel: &str| -> Result<String, String> {
                std::fs::read_to_string(dir.join(rel)).map_err(|e| e.to_string())
            };
            let compiled =
                meshfile_plan::compile(&loaded.manifest, &input.name, &found, &read, &options);
            (input, dir, compiled)
        })
        .collect();
    let store = saving.finish()?;
    let mut meshes = Vec::new();
    for (input, dir, compiled) in compiled {
        match compiled {
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
        warnings: digests.warnings,
        notes: store.migrated.clone().into_iter().collect(),
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
