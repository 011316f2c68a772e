//! Service descriptors: what a mesh needs to know about one confidential image.
//!
//! SCONE's build measures each image (MRENCLAVE); `meshfile apply -f service.yaml` records the
//! manifest and those measurements in the descriptor store (`target/descriptors.json`) so
//! that a mesh can be compiled later, offline. The store is read and written through serde;
//! each stored manifest is kept as its canonical YAML, parsed only when a mesh uses it.

use std::collections::BTreeMap;

use meshfile_manifest::{Code, Diagnostic, Manifest, ServiceManifest};
use meshfile_yaml::{Node, Value};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Located;

#[derive(Clone, Debug, PartialEq)]
pub struct Descriptor {
    /// The image reference (`build.to`) that mesh services name.
    pub image: String,
    /// MRENCLAVEs, lower-case hex, one per accepted build of the image.
    pub mrenclaves: Vec<String>,
    pub manifest: ServiceManifest,
    /// The file the manifest's positions refer to, for diagnostics.
    pub file: String,
    /// The digest (`sha256:...`) the image's registry served for its tag when it was recorded:
    /// a chart compiled later, offline, still pins the image.
    pub digest: Option<String>,
    /// The service's chart from a genservice template directory (`--helm-template`), after
    /// the service step ([`crate::genservice`]).
    pub chart: Option<crate::genservice::Files>,
}

/// An MRENCLAVE: 32 bytes as 64 hex digits.
pub fn is_mrenclave(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The format tag of the store file; a file with another tag is refused, not guessed at.
pub const STORE_FORMAT: &str = "meshfile-descriptors/2";

/// One recorded image as the store keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub mrenclaves: Vec<String>,
    /// The service manifest file it was recorded from.
    pub source: String,
    /// The manifest in canonical YAML; in the file one line per item, so it reads and diffs
    /// well.
    #[serde(with = "lines")]
    pub manifest: String,
    /// The images `repo` made of this one (squashed, stripped): their digests by
    /// [`crate::rewrite_key`], so that a later run, offline too, pins them. The enclave binary
    /// is untouched, so the MRENCLAVEs hold for them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rewritten: BTreeMap<String, String>,
    /// The service's chart from `--helm-template DIR`, by path, rendered by the service step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<crate::genservice::Files>,
}

/// A text as a JSON array of its lines.
mod lines {
    use serde::de::{DeserializeSeed, SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for line in text.lines() {
            seq.serialize_element(line)?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_seq(Lines)
    }

    /// Joins the lines into one text as they are read, without a string per line.
    struct Lines;

    impl<'de> Visitor<'de> for Lines {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of lines")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
            let mut text = String::new();
            while seq.next_element_seed(Line(&mut text))?.is_some() {}
            Ok(text)
        }
    }

    /// Appends one line (and its line break) to the text.
    struct Line<'a>(&'a mut String);

    impl<'de> DeserializeSeed<'de> for Line<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_str(self)
        }
    }

    impl Visitor<'_> for Line<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a line of text")
        }
        fn visit_str<E: serde::de::Error>(self, line: &str) -> Result<(), E> {
            self.0.push_str(line);
            self.0.push('\n');
            Ok(())
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    format: String,
    descriptors: Vec<Entry>,
}

impl Entry {
    /// What the store keeps of a descriptor.
    pub fn new(descriptor: &Descriptor) -> Entry {
        let yaml = meshfile_yaml::emit(&meshfile_manifest::to_node(&descriptor.manifest));
        Entry {
            image: descriptor.image.clone(),
            digest: descriptor.digest.clone(),
            mrenclaves: descriptor.mrenclaves.clone(),
            source: descriptor.file.clone(),
            manifest: yaml,
            rewritten: BTreeMap::new(),
            chart: descriptor.chart.clone(),
        }
    }

    /// Keeps the rewritten images `earlier` (this image's entry before) recorded, those made
    /// of the image's current digest; all of them when the digest is not known.
    pub fn keep_rewritten(&mut self, earlier: &Entry) {
        self.rewritten = (earlier.rewritten.iter())
            .filter(|(key, _)| {
                self.digest
                    .as_deref()
                    .is_none_or(|digest| crate::rewritten_from(key) == Some(digest))
            })
            .map(|(key, digest)| (key.clone(), digest.clone()))
            .collect();
    }

    /// The manifest's text; diagnostics about it point into this text.
    pub fn manifest_text(&self) -> String {
        self.manifest.clone()
    }

    /// The name diagnostics about the stored manifest use: the store file and the image.
    pub fn location(&self, store_file: &str) -> String {
        format!("{store_file}#{}", self.image)
    }

    /// The descriptor, its manifest parsed and validated again (a hand-edited store is
    /// checked like any manifest).
    pub fn descriptor(&self, store_file: &str) -> Result<Descriptor, Vec<Located>> {
        let file = self.location(store_file);
        let bad = |message: String| {
            vec![Located::new(
                &file,
                Diagnostic::new(Code::MissingDescriptor, Default::default(), "", message)
                    .with_hint(REMAKE_HINT),
            )]
        };
        if let Some(m) = self.mrenclaves.iter().find(|m| !is_mrenclave(m)) {
            return Err(bad(format!("`{m}` is not an MRENCLAVE (64 hex digits)")));
        }
        if let Some(d) = self
            .digest
            .as_deref()
            .filter(|d| !meshfile_manifest::mesh::is_digest(d))
        {
            return Err(bad(format!("`{d}` is not `sha256:` and 64 hex digits")));
        }
        let loaded = meshfile_manifest::load(self.manifest.as_bytes());
        match loaded.manifest {
            Some(Manifest::Service(manifest)) if !loaded.has_errors() => Ok(Descriptor {
                image: self.image.clone(),
                mrenclaves: self.mrenclaves.clone(),
                manifest: *manifest,
                file,
                digest: self.digest.clone(),
                chart: self.chart.clone(),
            }),
            _ => Err(loaded
                .diagnostics
                .into_iter()
                .map(|d| Located::new(&file, d))
                .collect()),
        }
    }
}

const REMAKE_HINT: &str =
    "delete the file and record the services again with `meshfile apply -f <service manifest>`";

/// The store file's bytes: every entry, sorted by image. Same entries, same bytes.
pub fn to_json(entries: &BTreeMap<String, Entry>) -> Vec<u8> {
    let mut bytes = Vec::new();
    // Writing to memory fails only when memory does.
    let _ = write_json(entries, &mut bytes);
    bytes
}

/// Writes the store file's bytes ([`to_json`]) to `out` as they are made, so that a store of
/// thousands of descriptors is never held twice in memory.
pub fn write_json(
    entries: &BTreeMap<String, Entry>,
    mut out: impl std::io::Write,
) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct StoreFileOut<'a> {
        format: &'a str,
        descriptors: Vec<&'a Entry>,
    }
    let file = StoreFileOut {
        format: STORE_FORMAT,
        descriptors: entries.values().collect(),
    };
    serde_json::to_writer_pretty(&mut out, &file)?;
    out.write_all(b"\n")
}

/// Reads a store file: image to entry. Manifests stay unparsed until asked for.
pub fn from_json(file: &str, bytes: &[u8]) -> Result<BTreeMap<String, Entry>, Vec<Located>> {
    let fail = |line: usize, column: usize, message: String| {
        let pos = meshfile_yaml::Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX).max(1),
            column: u32::try_from(column).unwrap_or(u32::MAX).max(1),
        };
        vec![Located::new(
            file,
            Diagnostic::new(
                Code::MissingDescriptor,
                meshfile_yaml::Span::at(pos),
                "",
                message,
            )
            .with_hint(REMAKE_HINT),
        )]
    };
    let store: StoreFile = serde_json::from_slice(bytes).map_err(|e| {
        fail(
            e.line(),
            e.column(),
            format!("unreadable descriptor store: {e}"),
        )
    })?;
    if store.format != STORE_FORMAT {
        return Err(fail(
            1,
            1,
            format!(
                "descriptor store of format `{}`; this meshfile reads `{STORE_FORMAT}`",
                store.format
            ),
        ));
    }
    let mut out = BTreeMap::new();
    for entry in store.descriptors {
        let image = entry.image.clone();
        if out.insert(image.clone(), entry).is_some() {
            return Err(fail(1, 1, format!("image `{image}` is recorded twice")));
        }
    }
    Ok(out)
}

/// Reads the store's former format, `descriptors.yaml` (a YAML mapping of image to `source`,
/// `digest`, `mrenclaves` and `manifest`), so that it can be migrated.
pub fn from_legacy_yaml(file: &str, text: &str) -> Result<BTreeMap<String, Entry>, Vec<Located>> {
    let fail = |span: meshfile_yaml::Span, message: String| {
        vec![Located::new(
            file,
            Diagnostic::new(Code::MissingDescriptor, span, "", message).with_hint(REMAKE_HINT),
        )]
    };
    let node = meshfile_yaml::parse(text, &meshfile_manifest::limits()).map_err(|e| {
        fail(
            meshfile_yaml::Span::at(e.pos),
            format!("unreadable descriptors file: {}", e.kind),
        )
    })?;
    let images = match &node.value {
        Value::Mapping(images) => images.as_slice(),
        Value::Scalar { .. } if node.is_null() => &[],
        _ => {
            return Err(fail(
                node.span,
                "a descriptors file maps images to descriptors".into(),
            ));
        }
    };
    let read = |entry: &meshfile_yaml::Entry| -> Result<Entry, Vec<Located>> {
        let image = entry.key_text().to_owned();
        let Value::Mapping(fields) = &entry.value.value else {
            return Err(fail(
                entry.value.span,
                format!("`{image}`: a descriptor is a mapping"),
            ));
        };
        let get = |key: &str| {
            fields
                .iter()
                .find(|e| e.key_text() == key)
                .map(|e| &e.value)
        };
        let scalar = |key: &str| get(key).and_then(Node::as_scalar).map(str::to_owned);
        let mrenclaves = match get("mrenclaves").map(|n| &n.value) {
            Some(Value::Sequence(items)) => items
                .iter()
                .filter_map(|n| n.as_scalar().map(str::to_owned))
                .collect(),
            _ => {
                return Err(fail(
                    entry.value.span,
                    format!("`{image}` has no `mrenclaves`"),
                ));
            }
        };
        let Some(manifest) = get("manifest") else {
            return Err(fail(
                entry.value.span,
                format!("`{image}` has no `manifest`"),
            ));
        };
        Ok(Entry {
            digest: scalar("digest"),
            mrenclaves,
            source: scalar("source").unwrap_or_else(|| file.to_owned()),
            manifest: meshfile_yaml::emit(manifest),
            image,
            rewritten: BTreeMap::new(),
            chart: None,
        })
    };
    let entries: Vec<Entry> = images.par_iter().map(read).collect::<Result<_, _>>()?;
    Ok(entries.into_iter().map(|e| (e.image.clone(), e)).collect())
}

/// A committed measurements file (`measurements.yaml` next to service manifests):
/// image reference to one MRENCLAVE or a list of them.
pub fn parse_measurements(
    file: &str,
    text: &str,
) -> Result<BTreeMap<String, Vec<String>>, Vec<Located>> {
    let node = meshfile_yaml::parse(text, &meshfile_manifest::limits())
        .map_err(|e| vec![Located::new(file, meshfile_manifest::parse_diagnostic(&e))])?;
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    let bad = |node: &Node, message: String| {
        Located::new(
            file,
            Diagnostic::new(Code::MissingMeasurement, node.span, "", message).with_hint(
                "write `image: [64 hex digits, ...]` per image, as SCONE's build reports MRENCLAVE",
            ),
        )
    };
    let Value::Mapping(entries) = &node.value else {
        return Err(vec![bad(
            &node,
            "a measurements file maps image references to MRENCLAVEs".into(),
        )]);
    };
    for entry in entries {
        let values: Vec<&Node> = match &entry.value.value {
            Value::Sequence(items) => items.iter().collect(),
            Value::Scalar { .. } => vec![&entry.value],
            Value::Mapping(_) => {
                errors.push(bad(
                    &entry.value,
                    format!("`{}`: expected MRENCLAVE hex digits", entry.key_text()),
                ));
                continue;
            }
        };
        let mut list = Vec::new();
        for v in values {
            match v.as_scalar() {
                Some(hex) if is_mrenclave(hex) => list.push(hex.to_ascii_lowercase()),
                _ => errors.push(bad(
                    v,
                    format!(
                        "`{}`: an MRENCLAVE is 64 hexadecimal digits",
                        entry.key_text()
                    ),
                )),
            }
        }
        out.insert(entry.key_text().to_owned(), list);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(image: &str) -> Descriptor {
        let text = format!(
            "apiVersion: scone/5.8\nkind: genservice\nenvironment:\n  local:\n    - name: GREETING\n      value: \"hello\\nworld\"\nbuild:\n  name: svc\n  kind: python\n  to: {image}\n  command: python3 app.py\n"
        );
        let Some(Manifest::Service(manifest)) = meshfile_manifest::load(text.as_bytes()).manifest
        else {
            panic!("a service manifest");
        };
        Descriptor {
            image: image.into(),
            mrenclaves: vec!["ab".repeat(32)],
            manifest: *manifest,
            file: "svc.yaml".into(),
            digest: (image == "b").then(|| format!("sha256:{}", "0f".repeat(32))),
            chart: None,
        }
    }

    fn store(images: &[&str]) -> BTreeMap<String, Entry> {
        images
            .iter()
            .map(|image| ((*image).to_owned(), Entry::new(&descriptor(image))))
            .collect()
    }

    #[test]
    fn the_store_round_trips_and_its_manifests_parse_again() {
        let entries = store(&["registry.example.com/a:1", "b"]);
        let bytes = to_json(&entries);
        assert_eq!(to_json(&entries), bytes, "deterministic");
        let read = from_json("d.json", &bytes).expect("reads");
        assert_eq!(read, entries);
        let again = read["b"].descriptor("d.json").expect("parses");
        let original = descriptor("b");
        assert_eq!(
            again.manifest.build.command,
            original.manifest.build.command
        );
        assert_eq!(again.digest, original.digest);
        assert_eq!(again.file, "d.json#b");
        assert_eq!(Entry::new(&again).manifest, entries["b"].manifest);
        assert_eq!(
            from_json("d.json", &to_json(&BTreeMap::new())),
            Ok(BTreeMap::new())
        );
    }

    #[test]
    fn rewritten_digests_round_trip_and_follow_the_source_digest() {
        let mut entries = store(&["b"]);
        let current = entries["b"].digest.clone().expect("digest");
        let former = format!("sha256:{}", "11".repeat(32));
        let made = |from: &str| (crate::rewrite_key(from, true, true), format!("{from}-made"));
        let entry = entries.get_mut("b").expect("b");
        entry.rewritten.extend([made(&current), made(&former)]);
        let read = from_json("d.json", &to_json(&entries)).expect("reads");
        assert_eq!(read, entries);
        let mut again = Entry::new(&descriptor("b"));
        again.keep_rewritten(&entries["b"]);
        assert_eq!(again.rewritten, BTreeMap::from([made(&current)]));
        let mut unknown = Entry::new(&descriptor("a"));
        unknown.keep_rewritten(&entries["b"]);
        assert_eq!(unknown.rewritten.len(), 2, "no digest: all are kept");
    }

    #[test]
    fn a_damaged_store_is_located_and_refused() {
        let at = |r: Result<_, Vec<Located>>| r.err().map(|e| e[0].diagnostic.line);
        assert_eq!(at(from_json("d.json", b"{\n  \"format\": 3\n}")), Some(2));
        let other = br#"{"format": "x/9", "descriptors": []}"#;
        assert!(from_json("d.json", other).is_err());
        let mut entries = store(&["a"]);
        let manifest = &mut entries.get_mut("a").expect("a").manifest;
        *manifest = manifest.replace("kind: genservice", "kind: [genservice]");
        assert!(entries["a"].descriptor("d.json").is_err());
        entries.get_mut("a").expect("a").mrenclaves = vec!["zz".into()];
        assert!(entries["a"].descriptor("d.json").is_err());
    }

    #[test]
    fn the_former_yaml_store_migrates() {
        let d = descriptor("b");
        let legacy = format!(
            "# comment\n\"b\":\n  source: \"svc.yaml\"\n  mrenclaves:\n    - \"{}\"\n  digest: \"{}\"\n  manifest:\n{}",
            d.mrenclaves[0],
            d.digest.clone().expect("digest"),
            meshfile_yaml::emit(&meshfile_manifest::to_node(&d.manifest))
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        );
        let migrated = from_legacy_yaml("descriptors.yaml", &legacy).expect("reads");
        assert_eq!(migrated, store(&["b"]));
        assert_eq!(
            from_legacy_yaml("descriptors.yaml", "{}\n"),
            Ok(BTreeMap::new())
        );
        assert!(from_legacy_yaml("descriptors.yaml", "- a\n").is_err());
    }
}
