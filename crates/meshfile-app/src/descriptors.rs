//! Stage 3, the descriptor store: service manifests recorded with their MRENCLAVEs in
//! `target/descriptors.json`, looked up by image when a mesh compiles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use meshfile_manifest::{Code, Diagnostic, MeshManifest, ServiceManifest};
use meshfile_plan::Descriptor;
use meshfile_plan::descriptor::{self, Entry};
use rayon::prelude::*;

use crate::inputs::manifest_dir;
use crate::load::Loaded;
use crate::{Error, Report, write};

/// The store's file under the target directory.
pub const STORE_FILE: &str = "descriptors.json";
/// The store's former file (YAML), migrated when found.
pub const LEGACY_FILE: &str = "descriptors.yaml";

/// The recorded descriptors of a target directory.
pub struct Store {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
    /// Whether `entries` differ from the file.
    changed: bool,
    /// Said once the store was migrated from its former format.
    pub migrated: Option<String>,
}

impl Store {
    /// Opens the store of `target` (empty when there is none). A store in the former YAML
    /// format is migrated: read, written anew as JSON, the old file removed.
    pub fn open(target: &Path, report: &mut Report) -> Result<Store, Error> {
        let path = target.join(STORE_FILE);
        let name = path.display().to_string();
        let mut store = Store {
            path,
            entries: BTreeMap::new(),
            changed: false,
            migrated: None,
        };
        match std::fs::read(&store.path) {
            Ok(bytes) => match descriptor::from_json(&name, &bytes) {
                Ok(entries) => store.entries = entries,
                Err(problems) => {
                    report
                        .sources
                        .insert(name, String::from_utf8_lossy(&bytes).into_owned());
                    report.problems.extend(problems);
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => store.migrate(target, report)?,
            Err(e) => return Err(Error::read(&store.path, e)),
        }
        Ok(store)
    }

    fn migrate(&mut self, target: &Path, report: &mut Report) -> Result<(), Error> {
        let legacy = target.join(LEGACY_FILE);
        let text = match std::fs::read_to_string(&legacy) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::read(&legacy, e)),
        };
        let name = legacy.display().to_string();
        match descriptor::from_legacy_yaml(&name, &text) {
            Ok(entries) => {
                self.entries = entries;
                self.changed = true;
                self.save()?;
                std::fs::remove_file(&legacy).map_err(|e| Error::write(&legacy, e))?;
                self.migrated = Some(format!(
                    "migrated {} to {}",
                    legacy.display(),
                    self.path.display()
                ));
            }
            Err(problems) => {
                report.sources.insert(name, text);
                report.problems.extend(problems);
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The digest recorded with an image, if any.
    pub fn recorded_digest(&self, image: &str) -> Option<String> {
        self.entries.get(image).and_then(|e| e.digest.clone())
    }

    /// Records descriptors, replacing the images' earlier ones (their manifests made
    /// canonical on all cores).
    pub fn record_all(&mut self, descriptors: &[Descriptor]) {
        let entries: Vec<Entry> = descriptors.par_iter().map(Entry::new).collect();
        for mut entry in entries {
            if let Some(earlier) = self.entries.get(&entry.image) {
                entry.keep_rewritten(earlier);
            }
            if self.entries.get(&entry.image) != Some(&entry) {
                self.entries.insert(entry.image.clone(), entry);
                self.changed = true;
            }
        }
    }

    /// Records the digest of an image `repo` made of `image` (its source), by
    /// [`meshfile_plan::rewrite_key`]. An image without a recorded descriptor is passed over:
    /// no mesh compiles without one.
    pub fn record_rewritten(&mut self, image: &str, key: String, digest: String) {
        // The Meshfile may name the image with its digest as well.
        let prefix = format!("{image}@");
        let entry =
            (self.entries.values_mut()).find(|e| e.image == image || e.image.starts_with(&prefix));
        if let Some(entry) = entry
            && entry.rewritten.get(&key) != Some(&digest)
        {
            entry.rewritten.insert(key, digest);
            self.changed = true;
        }
    }

    /// The digests of every image `repo` made before, by [`meshfile_plan::rewrite_key`].
    pub fn rewritten(&self) -> BTreeMap<String, String> {
        (self.entries.values())
            .flat_map(|e| e.rewritten.iter())
            .map(|(key, digest)| (key.clone(), digest.clone()))
            .collect()
    }

    /// The descriptors of `images`, parsed on all cores. An image the store lacks is left
    /// out (the compiler reports it, located in the Meshfile); a stored manifest that no
    /// longer validates is reported, located in the store.
    pub fn lookup(
        &self,
        images: &BTreeSet<&str>,
        report: &mut Report,
    ) -> BTreeMap<String, Descriptor> {
        let found: Vec<&Entry> = images.iter().filter_map(|i| self.entries.get(*i)).collect();
        let store = self.path.display().to_string();
        let parsed: Vec<Result<Descriptor, Vec<meshfile_plan::Located>>> =
            found.par_iter().map(|e| e.descriptor(&store)).collect();
        let mut out = BTreeMap::new();
        for (entry, result) in found.into_iter().zip(parsed) {
            match result {
                Ok(d) => {
                    out.insert(d.image.clone(), d);
                }
                Err(problems) => {
                    report
                        .sources
                        .insert(entry.location(&store), entry.manifest_text());
                    report.problems.extend(problems);
                }
            }
        }
        out
    }

    /// The manifest text behind a diagnostic about a stored descriptor, for its snippet.
    pub fn source_of(&self, file: &str) -> Option<String> {
        let store = self.path.display().to_string();
        let image = file.strip_prefix(&store)?.strip_prefix('#')?;
        self.entries.get(image).map(Entry::manifest_text)
    }

    /// [`Store::save`] while the caller goes on; the store comes back when it is done.
    pub fn save_in_background(mut self) -> write::Background<Result<Store, Error>> {
        write::background(move || self.save().map(|()| self))
    }

    /// Writes the store when it changed (atomically).
    pub fn save(&mut self) -> Result<(), Error> {
        if self.changed {
            write::streamed_file(&self.path, |out| descriptor::write_json(&self.entries, out))?;
            self.changed = false;
        }
        Ok(())
    }
}

/// Measurements (`measurements.yaml` beside service manifests), read once per directory.
#[derive(Default)]
pub struct Measurements {
    by_dir: BTreeMap<PathBuf, Option<BTreeMap<String, Vec<String>>>>,
}

impl Measurements {
    /// Reads the measurements files of the directories the inputs are in (on all cores).
    pub fn read(inputs: &[crate::inputs::Input], report: &mut Report) -> Measurements {
        let dirs: BTreeSet<PathBuf> = inputs.iter().map(|i| i.dir()).collect();
        let read: Vec<(PathBuf, Option<MeasurementsFile>)> = dirs
            .into_par_iter()
            .map(|dir| {
                let file = dir.join("measurements.yaml");
                let found = std::fs::read_to_string(&file).ok().map(|text| {
                    let name = file.display().to_string();
                    let parsed = descriptor::parse_measurements(&name, &text);
                    (name, text, parsed)
                });
                (dir, found)
            })
            .collect();
        let mut by_dir = BTreeMap::new();
        for (dir, found) in read {
            let known = found.and_then(|(name, text, parsed)| {
                report.sources.insert(name, text);
                parsed
                    .map_err(|problems| report.problems.extend(problems))
                    .ok()
            });
            by_dir.insert(dir, known);
        }
        Measurements { by_dir }
    }

    fn of(&self, dir: &Path) -> Option<&BTreeMap<String, Vec<String>>> {
        self.by_dir.get(dir).and_then(Option::as_ref)
    }
}

/// A measurements file's name, text and what it says.
type MeasurementsFile = (
    String,
    String,
    Result<BTreeMap<String, Vec<String>>, Vec<meshfile_plan::Located>>,
);

/// What measures a service: MRENCLAVEs from `--mrenclave`, else `measurements.yaml` files.
pub enum Measured<'a> {
    Given(&'a [String]),
    Beside(Measurements),
}

/// A service manifest and its measurements: the descriptor to record, or the problem.
pub fn describe(
    service: Loaded<'_, Box<ServiceManifest>>,
    measured: &Measured<'_>,
    report: &mut Report,
) -> Option<Descriptor> {
    let Loaded { input, manifest } = service;
    let image = manifest.build.to.as_str().to_owned();
    let span = manifest.build.to.span;
    let missing = |message: String, hint: String| {
        Diagnostic::new(Code::MissingMeasurement, span, "build.to", message).with_hint(hint)
    };
    let mut mrenclaves: Vec<String> = match measured {
        Measured::Given(given) => {
            if let Some(bad) = given.iter().find(|m| !descriptor::is_mrenclave(m)) {
                report.add(
                    &input.name,
                    [missing(
                        format!("`--mrenclave {bad}` is not 64 hexadecimal digits"),
                        "pass the MRENCLAVE that SCONE's build printed for this image".into(),
                    )],
                );
                return None;
            }
            given.iter().map(|m| m.to_ascii_lowercase()).collect()
        }
        Measured::Beside(measurements) => {
            // Without one the service is still recorded, as sconectl records what it built;
            // the mesh step asks for it (E106 there).
            measurements
                .of(&manifest_dir(&input.name))
                .and_then(|k| k.get(&image))
                .cloned()
                .unwrap_or_default()
        }
    };
    mrenclaves.sort();
    mrenclaves.dedup();
    Some(Descriptor {
        image,
        mrenclaves,
        manifest: *manifest,
        file: input.name.clone(),
        digest: None,
        chart: None,
    })
}

/// Every image the meshes use.
pub fn images_of<'m>(meshes: impl IntoIterator<Item = &'m MeshManifest>) -> BTreeSet<&'m str> {
    meshes
        .into_iter()
        .flat_map(|m| &m.services)
        .map(|s| s.image.as_str())
        .collect()
}
