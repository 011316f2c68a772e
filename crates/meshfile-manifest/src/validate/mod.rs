//! Rules beyond the shape of the document: names, references between sections, value syntax.
//!
//! Values that still hold a `$VAR` or `{{name}}` are checked after resolution, when a mesh is
//! compiled; here they are only checked for reference syntax.

use std::collections::HashMap;

use meshfile_session::limits;
use meshfile_yaml::{Node, Span, Value};

use crate::decode::{Path, Text};
use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::mesh::MeshManifest;
use crate::refs::{self, Token, is_cas_name, is_env_name};
use crate::service::{SecretKind, ServiceManifest};

mod mesh;
mod secrets;
mod service;

pub use mesh::*;
use secrets::*;
pub use service::*;

/// Roles a mesh needs; each must be served by exactly one CAS entry (by `name` or `alias`).
pub const CAS_ROLES: &[&str] = &["cas", "image", "security", "access", "attestation"];

/// Words allowed in `policy.tolerate` (CAS session language, `security.attestation.tolerate`).
pub const TOLERATE_WORDS: &[&str] = &[
    "debug-mode",
    "hyperthreading",
    "insecure-igpu",
    "software-hardening-needed",
    "insecure-configuration",
    "outdated-tcb",
    "aepic-leak",
    "maa-managed-tcb",
];

pub const KEY_TYPES: &[&str] = &["P-256", "P-384", "Ed25519", "RSA-2048", "RSA-3072"];

/// Names that `env[].service` may use besides the mesh's services.
pub const RESERVED_ENV_SECTIONS: &[&str] = &["global", "helm"];

fn diag(code: Code, span: Span, path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(code, span, path, message)
}

/// True when the value is finished only after `$VAR`/`{{name}}` resolution.
pub fn has_references(text: &str) -> bool {
    text.contains('$') || text.contains("{{")
}

/// Splits a comma-separated list, trimming each item.
pub fn split_list(text: &str) -> Vec<&str> {
    text.split(',').map(str::trim).collect()
}

/// `scone/MAJOR.MINOR[.PATCH]`, at least 5.8.
pub fn check_api_version(api: &Text, out: &mut Vec<Diagnostic>) {
    let hint = "write `apiVersion: scone/5.8` (or a later version)";
    let Some(version) = api.as_str().strip_prefix("scone/") else {
        out.push(
            diag(
                Code::ApiVersion,
                api.span,
                "apiVersion",
                format!("apiVersion `{api}` must have the form `scone/MAJOR.MINOR[.PATCH]`"),
            )
            .with_hint(hint),
        );
        return;
    };
    let parts: Vec<&str> = version.split('.').collect();
    let numbers: Option<Vec<u64>> = parts.iter().map(|p| p.parse::<u64>().ok()).collect();
    match numbers {
        Some(n) if (2..=3).contains(&n.len()) => {
            if (n[0], n[1]) < (5, 8) {
                out.push(
                    diag(
                        Code::ApiVersion,
                        api.span,
                        "apiVersion",
                        format!("apiVersion `{api}` is older than scone/5.8, the first version with these manifests"),
                    )
                    .with_hint(hint),
                );
            }
        }
        _ => out.push(
            diag(
                Code::ApiVersion,
                api.span,
                "apiVersion",
                format!("apiVersion `{api}`: `{version}` is not a version of the form MAJOR.MINOR[.PATCH]"),
            )
            .with_hint(hint),
        ),
    }
}

/// Reference syntax in every string value of the document (Helm values are passed through).
pub fn check_reference_syntax(root: &Node, out: &mut Vec<Diagnostic>) {
    walk_references(root, &Path::Root, out);
}

fn walk_references(node: &Node, path: &Path<'_>, out: &mut Vec<Diagnostic>) {
    match &node.value {
        Value::Scalar { text, .. } => {
            if !text.bytes().any(|b| b == b'$' || b == b'{') {
                return;
            }
            if let Err(e) = refs::scan(text) {
                let code = if e.scone {
                    Code::SecretRefSyntax
                } else {
                    Code::VariableSyntax
                };
                out.push(diag(code, node.span, path.to_string(), e.message));
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_references(item, &path.index(i), out);
            }
        }
        Value::Mapping(entries) => {
            for e in entries {
                let key = e.key_text();
                if matches!(path, Path::Root) && key == "helm_extra_values" {
                    continue;
                }
                walk_references(&e.value, &path.key(key), out);
            }
        }
    }
}

/// A document path kept as indices, formatted only when a diagnostic needs it.
#[derive(Clone, Copy)]
enum Loc {
    /// `{0}[{1}]{2}`, e.g. `services[3].name`.
    Item(&'static str, usize, &'static str),
    /// `{0}[{1}]{2}[{3}]{4}`, e.g. `env[0].env[2].name`.
    Nested(&'static str, usize, &'static str, usize, &'static str),
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loc::Item(a, i, b) => write!(f, "{a}[{i}]{b}"),
            Loc::Nested(a, i, b, j, c) => write!(f, "{a}[{i}]{b}[{j}]{c}"),
        }
    }
}

/// Reports each name seen before in `items`, pointing at the later one.
fn duplicates<'a>(
    items: impl IntoIterator<Item = (&'a Text, Loc)>,
    code: Code,
    what: &str,
    out: &mut Vec<Diagnostic>,
) {
    let mut seen: HashMap<&str, &Text> = HashMap::new();
    for (name, path) in items {
        if let Some(first) = seen.get(name.as_str()) {
            out.push(diag(
                code,
                name.span,
                path.to_string(),
                format!(
                    "{what} `{name}` is defined twice (first at line {})",
                    first.span.start.line
                ),
            ));
        } else {
            seen.insert(name.as_str(), name);
        }
    }
}

fn check_env_name(name: &Text, path: Loc, out: &mut Vec<Diagnostic>) {
    if !has_references(name.as_str()) && !is_env_name(name.as_str()) {
        out.push(
            diag(
                Code::InvalidEnvName,
                name.span,
                path.to_string(),
                format!("`{name}` is not a valid environment variable name"),
            )
            .with_hint("use letters, digits and `_`, starting with a letter or `_`"),
        );
    }
}

/// An image reference. `$VAR` and `{{name}}` references in it stand for a valid name part, so
/// the text around them is checked wherever the value comes from.
fn check_image(image: &Text, path: impl std::fmt::Display, out: &mut Vec<Diagnostic>) {
    let Ok(tokens) = refs::scan(image.as_str()) else {
        return; // a malformed reference is reported as such
    };
    let shape: String = tokens
        .iter()
        .map(|t| match t {
            Token::Literal(text) => *text,
            _ => "x0",
        })
        .collect();
    if let Some(why) = crate::mesh::image_reference_error(&shape) {
        out.push(
            diag(
                Code::InvalidImage,
                image.span,
                path.to_string(),
                format!("{:?} is not an image reference: {why}", image.as_str()),
            )
            .with_hint("write `[registry/]repository[:tag][@sha256:digest]`, e.g. `registry.example.com/team/app:1.0`"),
        );
    }
}
