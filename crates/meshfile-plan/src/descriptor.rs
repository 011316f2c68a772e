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
    pub fn to_yaml(&self) -> String {
        let manifest = meshfile_manifest::dump(&Manifest::Service(self.manifest.clone()));
        let manifest_node = meshfile_yaml::parse(&manifest, &meshfile_manifest::limits())
            .unwrap_or_else(|_| Node::mapping(vec![]));
        let node = Node::mapping(vec![
            (
                "image".into(),
                Node::scalar(self.image.clone(), Style::DoubleQuoted),
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
        ]);
        format!(
            "# Service descriptor recorded by `meshfile apply -f` from {}.\n# A mesh that uses image {} compiles against it.\n{}",
            self.file,
            self.image,
            meshfile_yaml::emit(&node)
        )
    }

    /// Reads a descriptor file written by [`Descriptor::to_yaml`].
    pub fn from_yaml(file: &str, text: &str) -> Result<Descriptor, Vec<Located>> {
        let fail = |message: String| {
            vec![Located::new(
                file,
                Diagnostic::new(
                    Code::MissingDescriptor,
                    meshfile_yaml::Span::default(),
                    "",
                    message,
                )
                .with_hint("record it again with `meshfile apply -f <service manifest>`"),
            )]
        };
        let node = meshfile_yaml::parse(text, &meshfile_manifest::limits())
            .map_err(|e| fail(format!("unreadable descriptor: {e}")))?;
        let Value::Mapping(entries) = &node.value else {
            return Err(fail("a descriptor is a mapping".into()));
        };
        let get = |key: &str| {
            entries
                .iter()
                .find(|e| e.key_text() == key)
                .map(|e| &e.value)
        };
        let image = get("image")
            .and_then(Node::as_scalar)
            .ok_or_else(|| fail("descriptor without `image`".into()))?;
        let mrenclaves = match get("mrenclaves").map(|n| &n.value) {
            Some(Value::Sequence(items)) => items
                .iter()
                .filter_map(|n| n.as_scalar().map(str::to_owned))
                .collect(),
            _ => return Err(fail("descriptor without `mrenclaves`".into())),
        };
        let manifest_node =
            get("manifest").ok_or_else(|| fail("descriptor without `manifest`".into()))?;
        let loaded = meshfile_manifest::load_node(manifest_node);
        match loaded.manifest {
            Some(Manifest::Service(manifest)) if !loaded.has_errors() => Ok(Descriptor {
                image: image.to_owned(),
                mrenclaves,
                manifest,
                file: file.to_owned(),
            }),
            _ => Err(loaded
                .diagnostics
                .into_iter()
                .map(|d| Located::new(file, d))
                .collect()),
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
