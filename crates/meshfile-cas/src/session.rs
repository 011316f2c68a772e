//! Reading what the store needs from a session's YAML tree, and the session hash.

use meshfile_yaml::{Node, Style, Value};
use sha2::{Digest, Sha256};

use crate::Error;

/// `[A-Za-z0-9_\-.~]{1,128}` per element, `/`-separated, at most 512 characters in all.
pub fn check_name(name: &str) -> Result<(), Error> {
    let ok_element = |e: &str| {
        !e.is_empty()
            && e.len() <= 128
            && e != "."
            && e != ".."
            && e.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'~'))
    };
    if name.len() <= 512 && name.split('/').all(ok_element) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "`{name}` is not a valid session name (elements of [A-Za-z0-9_-.~], at most 128 characters each)"
        )))
    }
}

/// The session one level up (`a/b/c` gives `a/b`), if any.
pub fn parent(name: &str) -> Option<&str> {
    name.rsplit_once('/').map(|(p, _)| p)
}

pub fn get<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.value {
        Value::Mapping(entries) => entries
            .iter()
            .find(|e| e.key_text() == key)
            .map(|e| &e.value)
            .filter(|v| !v.is_null()),
        _ => None,
    }
}

pub fn text<'n>(node: &'n Node, key: &str) -> Option<&'n str> {
    get(node, key).and_then(Node::as_scalar)
}

pub fn list(node: Option<&Node>) -> &[Node] {
    match node.map(|n| &n.value) {
        Some(Value::Sequence(items)) => items,
        _ => &[],
    }
}

/// Entries of a list that may also be written as a single item (`export: {session: x}`).
pub fn one_or_many(node: Option<&Node>) -> Vec<&Node> {
    match node.map(|n| &n.value) {
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(Value::Mapping(_)) => node.into_iter().collect(),
        _ => Vec::new(),
    }
}

/// The canonical form: mapping keys sorted at every level, written by meshfile's emitter.
pub fn canonical(node: &Node) -> Node {
    match &node.value {
        Value::Mapping(entries) => {
            let mut entries: Vec<(String, Node)> = entries
                .iter()
                .map(|e| (e.key_text().to_owned(), canonical(&e.value)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Node::mapping(entries)
        }
        Value::Sequence(items) => Node::sequence(items.iter().map(canonical).collect()),
        Value::Scalar { text, style } => {
            // Style matters only as meaning: a plain scalar may be a number, the others are text.
            let style = if *style == Style::Plain {
                Style::Plain
            } else {
                Style::DoubleQuoted
            };
            Node::scalar(text.clone(), style)
        }
    }
}

/// The session hash: lower-case hex SHA-256 of the canonical YAML of the session as stored,
/// `predecessor` included (so a version's hash also pins its history).
pub fn hash(canonical_yaml: &str) -> String {
    hex::encode(Sha256::digest(canonical_yaml.as_bytes()))
}
