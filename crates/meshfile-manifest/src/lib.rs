//! Meshfile and service-manifest models: parsing with source positions, validation that
//! reports every problem at once, lint, JSON Schema and a canonical dump.
//!
//! Pure: no file system, network or clock. The caller reads bytes and renders diagnostics.

pub mod decode;
pub mod diagnostic;
pub mod helm_values;
pub mod inert;
mod lint;
pub mod mesh;
pub mod refs;
pub mod service;
pub mod validate;

pub use decode::{Spanned, Text};
pub use diagnostic::{Code, Diagnostic, Severity};
pub use mesh::MeshManifest;
pub use service::ServiceManifest;

use meshfile_yaml::{Limits, Node, Span, Value};
use serde::Serialize;

use decode::{Cx, Env};

/// A loaded manifest. Boxed: a large mesh loads thousands, and they move between
/// collections as they are sorted out; moving a pointer is cheaper than moving the model.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Manifest {
    Mesh(Box<MeshManifest>),
    Service(Box<ServiceManifest>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    Mesh,
    Service,
}

impl ManifestKind {
    pub const NAMES: &'static [(&'static str, ManifestKind)] = &[
        ("mesh", ManifestKind::Mesh),
        ("genservice", ManifestKind::Service),
    ];
}

/// A manifest and everything found wrong with it. `manifest` is `None` when the document
/// could not be read as a manifest at all; it may be `Some` alongside errors.
#[derive(Debug)]
pub struct Loaded {
    pub manifest: Option<Manifest>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Limits for manifests: far above any real Meshfile, far below what would hurt.
pub fn limits() -> Limits {
    Limits::default()
}

/// Parses, decodes and validates raw file contents; `$VAR`s are kept as written.
pub fn load(bytes: &[u8]) -> Loaded {
    load_with_env(bytes, None)
}

/// Like [`load`], but first replaces `$VAR`/`${VAR}` in every value through `env`; an
/// unknown variable is an error at its position. Validation then sees the final values.
pub fn load_with_env(bytes: &[u8], env: Option<refs::Lookup<'_>>) -> Loaded {
    let mut node = match meshfile_yaml::parse_bytes(bytes, &limits()) {
        Ok(node) => node,
        Err(e) => {
            return Loaded {
                manifest: None,
                diagnostics: vec![parse_diagnostic(&e)],
            };
        }
    };
    let mut unresolved = Vec::new();
    let env = match env {
        None => Env::AsWritten,
        Some(lookup) => {
            let mut given = Vec::new();
            substitute_env_in_tree(&mut node, lookup, &mut given, &mut unresolved);
            let unknown = unresolved.iter().map(|d| d.span).collect();
            Env::Substituted { given, unknown }
        }
    };
    let mut loaded = decode_node(&node, env);
    loaded.diagnostics.extend(unresolved);
    diagnostic::sort(&mut loaded.diagnostics);
    loaded
}

/// Replaces the `$VAR`s of every value below `node`; the places of values that changed go to
/// `given`, a variable without a value to `out`.
fn substitute_env_in_tree(
    node: &mut Node,
    env: refs::Lookup<'_>,
    given: &mut Vec<meshfile_yaml::Span>,
    out: &mut Vec<Diagnostic>,
) {
    match &mut node.value {
        Value::Scalar { text, style } => {
            if !text.contains('$') {
                return;
            }
            match refs::substitute_env(text, env) {
                Ok(resolved) => {
                    if resolved != *text {
                        given.push(node.span);
                        if *style == meshfile_yaml::Style::Plain {
                            // The value was text in the file; it stays text whatever it became.
                            *style = meshfile_yaml::Style::DoubleQuoted;
                        }
                    }
                    *text = resolved.into();
                }
                Err(missing) => {
                    for name in missing {
                        out.push(
                            Diagnostic::new(Code::UndefinedVariable, node.span, "", format!("environment variable `${name}` is not set"))
                                .with_hint(format!("export {name}=... before running meshfile, or pass `--set {name}=VALUE`")),
                        );
                    }
                }
            }
        }
        Value::Sequence(items) => items
            .iter_mut()
            .for_each(|n| substitute_env_in_tree(n, env, given, out)),
        Value::Mapping(entries) => entries
            .iter_mut()
            .for_each(|e| substitute_env_in_tree(&mut e.value, env, given, out)),
    }
}

/// A YAML parse error as a diagnostic.
pub fn parse_diagnostic(e: &meshfile_yaml::Error) -> Diagnostic {
    use meshfile_yaml::ErrorKind as K;
    let code = match &e.kind {
        K::InvalidUtf8 => Code::Read,
        K::Empty => Code::Empty,
        K::Syntax(_) | K::ComplexKey(_) | K::UnknownAlias(_) => Code::Syntax,
        K::DuplicateKey { .. } => Code::DuplicateKey,
        K::MultipleDocuments => Code::MultipleDocuments,
        K::TooLarge { .. }
        | K::TooDeep { .. }
        | K::TooManyNodes { .. }
        | K::ExpandsTooLarge { .. } => Code::Limit,
    };
    let d = Diagnostic::new(code, Span::at(e.pos), "", e.kind.to_string());
    match &e.kind {
        K::ComplexKey(_) => d.with_hint(
            "an unquoted `{{name}}` is a YAML mapping; quote mesh-time variables: \"{{name}}\"",
        ),
        K::DuplicateKey { .. } => {
            d.with_hint("remove one of them; YAML mappings cannot repeat a key")
        }
        K::MultipleDocuments => d.with_hint("put each manifest in its own file"),
        K::InvalidUtf8 => d.with_hint("save the file as UTF-8"),
        K::Syntax(_) => d.with_hint("check indentation and quoting around this position"),
        _ => d,
    }
}

/// Decodes and validates a parsed document.
pub fn load_node(node: &Node) -> Loaded {
    decode_node(node, Env::Untouched)
}

/// Decodes and validates a parsed manifest whose `$VAR`s became what `env` says.
fn decode_node(node: &Node, env: Env) -> Loaded {
    let mut cx = Cx {
        env,
        ..Cx::default()
    };
    let kind = detect_kind(&mut cx, node);
    let manifest = match kind {
        Some(ManifestKind::Mesh) => mesh::decode(&mut cx, node).map(|m| Manifest::Mesh(m.into())),
        Some(ManifestKind::Service) => {
            service::decode(&mut cx, node).map(|s| Manifest::Service(s.into()))
        }
        None => None,
    };
    let mut diagnostics = cx.diagnostics;
    if let Some(kind) = kind {
        inert::check(kind, node, &mut diagnostics);
    }
    validate::check_reference_syntax(node, &mut diagnostics);
    match &manifest {
        Some(Manifest::Mesh(m)) => validate::check_mesh(m, node, &mut diagnostics),
        Some(Manifest::Service(s)) => validate::check_service(s, &mut diagnostics),
        None => {}
    }
    diagnostic::sort(&mut diagnostics);
    Loaded {
        manifest,
        diagnostics,
    }
}

fn detect_kind(cx: &mut Cx, node: &Node) -> Option<ManifestKind> {
    let Value::Mapping(entries) = &node.value else {
        cx.report(
            Diagnostic::new(Code::WrongType, node.span, "", format!("a manifest must be a mapping, found {}", node.kind_name()))
                .with_hint("start the file with `apiVersion: scone/5.8` and `kind: mesh` (or `kind: genservice`)"),
        );
        return None;
    };
    let Some(entry) = entries.iter().find(|e| e.key_text() == "kind") else {
        cx.report(
            Diagnostic::new(
                Code::MissingField,
                node.span,
                "kind",
                "the manifest has no `kind`",
            )
            .with_hint(
                "add `kind: mesh` for a Meshfile or `kind: genservice` for a service manifest",
            ),
        );
        return None;
    };
    let text = entry.value.as_scalar().unwrap_or_default();
    if let Some((_, kind)) = ManifestKind::NAMES.iter().find(|(n, _)| *n == text) {
        return Some(*kind);
    }
    let mut d = Diagnostic::new(
        Code::Kind,
        entry.value.span,
        "kind",
        format!("`kind: {text}` is not a manifest kind; expected `mesh` or `genservice`"),
    );
    d = if text.eq_ignore_ascii_case("genimage") {
        d.with_hint("`genImage` was renamed; write `kind: genservice`")
    } else if let Some(best) =
        diagnostic::did_you_mean(text, ManifestKind::NAMES.iter().map(|(n, _)| *n))
    {
        d.with_suggestion(best)
    } else {
        d
    };
    cx.report(d);
    None
}

/// Security and hygiene warnings for a valid manifest.
pub fn lint(manifest: &Manifest) -> Vec<Diagnostic> {
    let mut out = lint::lint(manifest);
    diagnostic::sort(&mut out);
    out
}

/// [`lint`] of a Meshfile, for a caller that holds it without its [`Manifest`] wrapper.
pub fn lint_mesh(mesh: &mesh::MeshManifest) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    lint::lint_mesh(mesh, &mut out);
    diagnostic::sort(&mut out);
    out
}

/// The manifest as canonical YAML: fields in specification order, text kept as written.
pub fn dump(manifest: &Manifest) -> String {
    meshfile_yaml::emit(&to_node(manifest))
}

/// A model as the YAML tree [`dump`] writes, for embedding it in a larger document.
pub fn to_node(model: &impl Serialize) -> Node {
    let json = serde_json::to_value(model).unwrap_or(serde_json::Value::Null);
    helm_values::from_json(&json)
}

/// JSON Schema (2020-12) for a manifest kind, generated from the models.
pub fn schema(kind: ManifestKind) -> serde_json::Value {
    let schema = match kind {
        ManifestKind::Mesh => schemars::schema_for!(MeshManifest),
        ManifestKind::Service => schemars::schema_for!(ServiceManifest),
    };
    schema.to_value()
}

/// An `env` override file of a mesh service: an `environment` section on its own
/// (`local:` and `global:` lists), as the service manifest would hold it.
pub fn load_environment(bytes: &[u8]) -> Result<service::Environment, Vec<Diagnostic>> {
    let node =
        meshfile_yaml::parse_bytes(bytes, &limits()).map_err(|e| vec![parse_diagnostic(&e)])?;
    let mut cx = Cx::default();
    let env = service::decode_environment(&mut cx, &node, &decode::Path::Root);
    match env {
        Some(env) if cx.diagnostics.iter().all(|d| !d.is_error()) => Ok(env),
        _ => Err(cx.diagnostics),
    }
}
