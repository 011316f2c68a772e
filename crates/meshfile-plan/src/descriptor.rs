//! Service descriptors: what a mesh needs to know about one confidential image.
//!
//! SCONE's build measures each image (MRENCLAVE); `meshfile apply -f service.yaml` records the
//! manifest and those measurements so that a mesh can be compiled later, offline.

use std::collections::BTreeMap;

use meshfile_manifest::{Code, Diagnostic, Manifest, ServiceManifest};
use meshfile_yaml::{Node, Style, Value};

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
}

/// A file-system-safe name for an image's descriptor file.
pub fn file_name(image: &str) -> String {
    let safe: String = image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.yaml")
}

/// An MRENCLAVE: 32 bytes as 64 hex digits.
pub fn is_mrenclave(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Descriptor {
    fn to_node(&self) -> Node {
        let manifest_node = meshfile_manifest::to_node(&self.manifest);
        let mut fields = vec![
            (
                "source".into(),
                Node::scalar(self.file.clone(), Style::DoubleQuoted),
            ),
            (
                "mrenclaves".into(),
                Node::sequence(
                    self.mrenclaves
                        .iter()
                        .map(|m| Node::scalar(m.clone(), Style::DoubleQuoted))
                        .collect(),
                ),
            ),
            ("manifest".into(), manifest_node),
        ];
        if let Some(digest) = &self.digest {
            fields.insert(
                2,
                (
                    "digest".into(),
                    Node::scalar(digest.clone(), Style::DoubleQuoted),
                ),
            );
        }
        Node::mapping(fields)
    }
}

/// The descriptors file (`target/descriptors.yaml`): every recorded image, sorted, in one
/// file that is rewritten atomically, like a lockfile of measurements.
pub fn write_set(descriptors: &BTreeMap<String, Descriptor>) -> String {
    parts(
        descriptors
            .iter()
            .map(|(image, d)| entry(image, d))
            .collect(),
    )
    .concat()
}

/// One image's entry of the descriptors file (see [`parts`]).
pub fn entry(image: &str, descriptor: &Descriptor) -> String {
    meshfile_yaml::emit_entries([(image.to_owned(), descriptor.to_node())])
}

/// The descriptors file as pieces, from its entries in image order: what [`write_set`] joins,
/// for callers that build a large set's entries on several threads and write the file
/// (megabytes) piece by piece instead of copying it into one string first.
pub fn parts(entries: Vec<String>) -> Vec<String> {
    let header = "# Service descriptors recorded by `meshfile apply -f <service manifest>`: per image, its\n# MRENCLAVEs and manifest. Meshes that use these images compile against them.\n";
    let mut parts = Vec::with_capacity(entries.len() + 1);
    parts.push(header.to_owned());
    if entries.is_empty() {
        parts.push("{}\n".to_owned());
    }
    parts.extend(entries);
    parts
}

/// A descriptors file written by [`write_set`], split into its entries without parsing them:
/// image to the entry's text. Entries nobody asks for are carried over byte for byte, so
/// recording a few images does not parse and re-emit thousands of others. `None` when the
/// text is not laid out as [`write_set`] writes it (then read it whole with [`read_set`]).
pub fn split_entries(text: &str) -> Option<BTreeMap<String, &str>> {
    let mut entries = BTreeMap::new();
    let mut current: Option<(String, usize)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        if line.starts_with('#') && current.is_none() {
            continue;
        }
        if current.is_none() && entries.is_empty() && line.trim_end() == "{}" {
            return (offset == text.len()).then_some(entries);
        }
        if line.starts_with(' ') {
            current.as_ref()?;
            continue;
        }
        // A top-level key on a line of its own: `image:` (plain or quoted, as emitted).
        let key = meshfile_yaml::parse(line, &meshfile_manifest::limits()).ok()?;
        let Value::Mapping(fields) = &key.value else {
            return None;
        };
        let [field] = fields.as_slice() else {
            return None;
        };
        if !field.value.is_null() {
            return None;
        }
        if let Some((image, start)) = current.take()
            && entries.insert(image, &text[start..at]).is_some()
        {
            // An image twice: only a whole parse reports that properly.
            return None;
        }
        current = Some((field.key_text().to_owned(), at));
    }
    let (image, start) = current?;
    entries
        .insert(image, &text[start..])
        .is_none()
        .then_some(entries)
}

/// Reads a descriptors file written by [`write_set`]. Its entries are read on all cores when
/// it is laid out as written (a large mesh's file holds thousands), positions still those of
/// the file.
pub fn read_set(file: &str, text: &str) -> Result<BTreeMap<String, Descriptor>, Vec<Located>> {
    read_split(file, text, split_entries(text).as_ref())
}

/// [`read_set`] for a caller that already split `text` with [`split_entries`].
pub fn read_split(
    file: &str,
    text: &str,
    entries: Option<&BTreeMap<String, &str>>,
) -> Result<BTreeMap<String, Descriptor>, Vec<Located>> {
    let Some(entries) = entries.filter(|e| e.len() > 1) else {
        return read_entries(file, text, 0);
    };
    // Each entry with the number of lines before it, counted in one pass over the file.
    let mut starts: Vec<(usize, &str)> = entries
        .values()
        .map(|entry| (entry.as_ptr() as usize - text.as_ptr() as usize, *entry))
        .collect();
    starts.sort_unstable_by_key(|(offset, _)| *offset);
    let (mut lines, mut at) = (0, 0);
    let jobs: Vec<(u32, &str)> = starts
        .into_iter()
        .map(|(offset, entry)| {
            lines += text.as_bytes()[at..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u32;
            at = offset;
            (lines, entry)
        })
        .collect();
    let mut out = BTreeMap::new();
    for read in crate::parallel::map(&jobs, |(lines, entry)| read_entries(file, entry, *lines)) {
        out.extend(read?);
    }
    Ok(out)
}

/// The descriptors in `text`, which starts `lines_before` lines into `file`.
fn read_entries(
    file: &str,
    text: &str,
    lines_before: u32,
) -> Result<BTreeMap<String, Descriptor>, Vec<Located>> {
    let fail = |span: meshfile_yaml::Span, message: String| {
        vec![Located::new(
            file,
            Diagnostic::new(Code::MissingDescriptor, span, "", message)
                .with_hint("delete the file and record the services again with `meshfile apply -f <service manifest>`"),
        )]
    };
    let mut node = meshfile_yaml::parse(text, &meshfile_manifest::limits()).map_err(|e| {
        let mut pos = e.pos;
        pos.line += lines_before;
        fail(
            meshfile_yaml::Span::at(pos),
            format!("unreadable descriptors file: {}", e.kind),
        )
    })?;
    if lines_before > 0 {
        shift_lines(&mut node, lines_before);
    }
    let Value::Mapping(images) = &node.value else {
        return Err(fail(
            node.span,
            "a descriptors file maps images to descriptors".into(),
        ));
    };
    let mut out = BTreeMap::new();
    for entry in images {
        let Value::Mapping(fields) = &entry.value.value else {
            return Err(fail(
                entry.value.span,
                format!("`{}`: a descriptor is a mapping", entry.key_text()),
            ));
        };
        let get = |key: &str| {
            fields
                .iter()
                .find(|e| e.key_text() == key)
                .map(|e| &e.value)
        };
        let mrenclaves = match get("mrenclaves").map(|n| &n.value) {
            Some(Value::Sequence(items)) => items
                .iter()
                .filter_map(|n| n.as_scalar().map(str::to_owned))
                .collect(),
            _ => {
                return Err(fail(
                    entry.value.span,
                    format!("`{}` has no `mrenclaves`", entry.key_text()),
                ));
            }
        };
        let digest = match get("digest") {
            None => None,
            Some(node) => match node.as_scalar() {
                Some(d) if meshfile_manifest::mesh::is_digest(d) => Some(d.to_owned()),
                _ => {
                    return Err(fail(
                        node.span,
                        format!(
                            "`{}`: `digest` is not `sha256:` and 64 hex digits",
                            entry.key_text()
                        ),
                    ));
                }
            },
        };
        let Some(manifest_node) = get("manifest") else {
            return Err(fail(
                entry.value.span,
                format!("`{}` has no `manifest`", entry.key_text()),
            ));
        };
        let loaded = meshfile_manifest::load_node(manifest_node);
        match loaded.manifest {
            Some(Manifest::Service(manifest)) if !loaded.has_errors() => {
                let image = entry.key_text().to_owned();
                out.insert(
                    image.clone(),
                    Descriptor {
                        image,
                        mrenclaves,
                        manifest: *manifest,
                        file: file.to_owned(),
                        digest,
                    },
                );
            }
            _ => {
                return Err(loaded
                    .diagnostics
                    .into_iter()
                    .map(|d| Located::new(file, d))
                    .collect());
            }
        }
    }
    Ok(out)
}

/// Moves every position in `node` down by `lines`.
fn shift_lines(node: &mut Node, lines: u32) {
    node.span.start.line += lines;
    node.span.end.line += lines;
    match &mut node.value {
        Value::Scalar { .. } => {}
        Value::Sequence(items) => items.iter_mut().for_each(|n| shift_lines(n, lines)),
        Value::Mapping(entries) => {
            for entry in entries {
                shift_lines(&mut entry.key, lines);
                shift_lines(&mut entry.value, lines);
            }
        }
    }
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
        }
    }

    #[test]
    fn descriptors_file_round_trips_and_reads_as_one_mapping() {
        let set: BTreeMap<String, Descriptor> =
            ["registry.example.com/a:1", "registry.example.com/b:2"]
                .into_iter()
                .map(|image| (image.to_owned(), descriptor(image)))
                .collect();
        let text = write_set(&set);
        let whole = Node::mapping(
            set.iter()
                .map(|(image, d)| (image.clone(), d.to_node()))
                .collect(),
        );
        assert!(text.ends_with(&meshfile_yaml::emit(&whole)), "{text}");
        // Read back, positions point into the descriptors file.
        let mut expected = set;
        expected
            .values_mut()
            .for_each(|d| d.file = "descriptors.yaml".into());
        assert_eq!(read_set("descriptors.yaml", &text), Ok(expected));
        assert_eq!(
            read_set("descriptors.yaml", &write_set(&BTreeMap::new())),
            Ok(BTreeMap::new())
        );
    }

    #[test]
    fn entries_read_apart_keep_the_files_positions() {
        let set: BTreeMap<String, Descriptor> = ["a", "b", "c"]
            .into_iter()
            .map(|image| (image.to_owned(), descriptor(image)))
            .collect();
        let text = write_set(&set);
        let apart = read_set("d.yaml", &text).expect("reads");
        let whole = read_entries("d.yaml", &text, 0).expect("reads");
        for (image, d) in &whole {
            let span = |d: &Descriptor| d.manifest.build.to.span;
            assert_eq!(span(&apart[image]), span(d), "{image}");
        }
        // A bad value in the last entry is reported at its line in the file.
        let last = text.rfind("kind: python").expect("a kind");
        let broken = format!("{}kind: [python]{}", &text[..last], &text[last + 12..]);
        let at = |r: Result<_, Vec<Located>>| r.err().map(|e| e[0].diagnostic.line);
        let line = broken
            .lines()
            .position(|l| l.contains("[python]"))
            .map(|i| i as u32 + 1);
        assert!(line > Some(30), "{broken}");
        assert_eq!(at(read_set("d.yaml", &broken)), line);
        assert_eq!(at(read_entries("d.yaml", &broken, 0)), line);
        // An image twice is not split (the whole parse reports it).
        let twice = format!("{text}{}", entry("a", &set["a"]));
        assert_eq!(split_entries(&twice), None);
        assert!(read_set("d.yaml", &twice).is_err());
    }

    #[test]
    fn entries_split_without_parsing_are_the_written_ones() {
        let set: BTreeMap<String, Descriptor> = ["registry.example.com/a:1", "b"]
            .into_iter()
            .map(|image| (image.to_owned(), descriptor(image)))
            .collect();
        let text = write_set(&set);
        let split = split_entries(&text).expect("our own layout");
        assert_eq!(split.len(), 2);
        for (image, d) in &set {
            assert_eq!(split[image.as_str()], entry(image, d));
        }
        assert_eq!(
            split_entries(&write_set(&BTreeMap::new())),
            Some(BTreeMap::new())
        );
        assert_eq!(split_entries("a: 1\n"), None);
        assert_eq!(split_entries("- a\n"), None);
        assert_eq!(split_entries("  stray: indent\n"), None);
    }
}
