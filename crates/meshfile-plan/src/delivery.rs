//! What delivering a compiled mesh would change in CAS, session by session.
//!
//! Pure: the current state comes in as data (what CAS holds per session name), the decision
//! and a readable, secret-free difference come out.

use std::collections::{BTreeMap, BTreeSet};

use meshfile_session::Document;
use meshfile_yaml::{Limits, Node, Value};
use serde::Serialize;

/// What CAS holds for one session name.
#[derive(Clone, Debug, PartialEq)]
pub struct Current {
    pub session: String,
    pub hash: String,
    /// Who created the session, as CAS records it (a client key hash, or `signer:` a key),
    /// when it tells.
    pub creator: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "action")]
pub enum Action {
    Create,
    Update { predecessor: String },
    Unchanged { hash: String },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub session: String,
    /// Sessions that must be in CAS before this one: its namespace and its exporters.
    #[serde(skip)]
    pub after: BTreeSet<String>,
    #[serde(flatten)]
    pub action: Action,
    /// One line per difference, e.g. `~ services[python3].environment.API_USER: "a" -> "b"`.
    pub changes: Vec<String>,
    /// The YAML to upload (with `predecessor` for an update).
    #[serde(skip)]
    pub yaml: String,
    /// Unchanged although CAS holds something else than meshfile would create: a namespace
    /// that exists is kept as it is.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub kept: bool,
    /// In the signing modes: the signed (or encrypted) session sent instead of `yaml`, whose
    /// session text is `yaml`.
    #[serde(skip)]
    pub signed: Option<SignedUpload>,
}

/// A signed or encrypted session as uploaded.
#[derive(Clone, Debug, PartialEq)]
pub enum SignedUpload {
    /// `POST /v1/sessions` with the signed session's JSON.
    Signed(String),
    /// `PUT /v1/encrypted_sessions` with the encrypted session's JSON.
    Encrypted(String),
}

fn parse(yaml: &str) -> Option<Node> {
    meshfile_yaml::parse(yaml, &Limits::default()).ok()
}

/// Leaves of a session by path; list items with a `name` are keyed by it. Fields the server
/// keeps (`predecessor`, `creator`) are left out: they are not part of the policy's meaning.
fn leaves(node: &Node) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo: Vec<(String, &Node)> = vec![(String::new(), node)];
    while let Some((path, n)) = todo.pop() {
        match &n.value {
            Value::Scalar { text, .. } => {
                out.insert(path, text.to_string());
            }
            Value::Sequence(items) => {
                if items.is_empty() {
                    out.insert(path.clone(), "[]".into());
                }
                for (i, item) in items.iter().enumerate() {
                    let key = match &item.value {
                        Value::Mapping(entries) => entries
                            .iter()
                            .find(|e| e.key_text() == "name" || e.key_text() == "path")
                            .and_then(|e| e.value.as_scalar())
                            .map_or_else(|| i.to_string(), str::to_owned),
                        _ => i.to_string(),
                    };
                    todo.push((format!("{path}[{key}]"), item));
                }
            }
            Value::Mapping(entries) => {
                for e in entries {
                    let key = e.key_text();
                    if path.is_empty() && matches!(key, "predecessor" | "creator") {
                        continue;
                    }
                    let child = if path.is_empty() {
                        key.to_owned()
                    } else {
                        format!("{path}.{key}")
                    };
                    todo.push((child, &e.value));
                }
            }
        }
    }
    out
}

/// Secret values never appear in a difference: only that they changed.
fn shown(path: &str, value: &str) -> String {
    let secret_value = path.starts_with("secrets[")
        && (path.ends_with(".value") || path.ends_with(".application_secret"));
    if secret_value {
        "(secret value)".into()
    } else {
        format!("{value:?}")
    }
}

/// The differences between two sessions' meanings, one line each, in path order.
fn diff_trees(old: &Node, new: &Node) -> Vec<String> {
    let (old, new) = (leaves(old), leaves(new));
    let mut out = Vec::new();
    for (path, value) in &new {
        match old.get(path) {
            None => out.push(format!("+ {path}: {}", shown(path, value))),
            Some(before) if before != value => out.push(format!(
                "~ {path}: {} -> {}",
                shown(path, before),
                shown(path, value)
            )),
            Some(_) => {}
        }
    }
    for (path, value) in &old {
        if !new.contains_key(path) {
            out.push(format!("- {path}: {}", shown(path, value)));
        }
    }
    out.sort_by(|a, b| a[2..].cmp(&b[2..]));
    out
}

/// The differences between two versions of a session as CAS holds them (texts: a signed
/// session's, a version CAS answered with), one line each as [`plan`] shows them: `+` added,
/// `~` changed, `-` removed, a secret's value never shown. Without `old`, every field is new.
/// `None` when a text is not YAML.
pub fn diff_versions(old: Option<&str>, new: &str) -> Option<Vec<String>> {
    let empty = Node::mapping(Vec::<(String, Node)>::new());
    let old = match old {
        Some(text) => parse(text)?,
        None => empty,
    };
    Some(diff_trees(&old, &parse(new)?))
}

/// Decides, per desired session, whether to create, update (naming the active hash) or skip
/// it. `current` is what CAS answered (its text, read from the network); the desired sessions
/// are compared as the trees they are.
pub fn plan(desired: &[Document], current: &BTreeMap<String, Current>) -> Vec<Step> {
    let empty = Node::mapping(Vec::<(String, Node)>::new());
    desired
        .iter()
        .map(|doc| {
            let node = doc.node();
            let yaml = meshfile_yaml::emit(&node);
            let mut after = doc.imports.clone();
            if let Some((namespace, _)) = doc.name.rsplit_once('/') {
                after.insert(namespace.to_owned());
            }
            let mut kept = false;
            let (action, changes, yaml) = match current.get(&doc.name) {
                None => (Action::Create, diff_trees(&empty, &node), yaml),
                Some(cur) if doc.create_only => {
                    kept =
                        parse(&cur.session).is_none_or(|old| !diff_trees(&old, &node).is_empty());
                    let hash = cur.hash.clone();
                    (Action::Unchanged { hash }, Vec::new(), yaml)
                }
                Some(cur) => {
                    let changes = match parse(&cur.session) {
                        Some(old) => diff_trees(&old, &node),
                        None => vec!["~ (the stored session is not readable YAML)".into()],
                    };
                    if changes.is_empty() {
                        let hash = cur.hash.clone();
                        (Action::Unchanged { hash }, changes, yaml)
                    } else {
                        let predecessor = cur.hash.clone();
                        let yaml = format!("predecessor: {predecessor}\n{yaml}");
                        (Action::Update { predecessor }, changes, yaml)
                    }
                }
            };
            Step {
                session: doc.name.clone(),
                after,
                action,
                changes,
                yaml,
                kept,
                signed: None,
            }
        })
        .collect()
}

/// The steps (in plan order: namespace first, exporters before importers) grouped into
/// levels: a session comes after every earlier session it must follow (see [`Step::after`]);
/// sessions of one level are independent.
pub fn levels(steps: &[Step]) -> Vec<Vec<usize>> {
    let mut level_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut levels: Vec<Vec<usize>> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let level = (step.after.iter())
            .filter_map(|d| level_of.get(d.as_str()))
            .max()
            .map_or(0, |l| l + 1);
        level_of.insert(&step.session, level);
        if levels.len() <= level {
            levels.resize_with(level + 1, Vec::new);
        }
        levels[level].push(i);
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn semantic_diff(old: &str, new: &str) -> Vec<String> {
        diff_trees(&parse(old).expect("yaml"), &parse(new).expect("yaml"))
    }

    #[test]
    fn order_and_server_fields_do_not_count() {
        let a = "name: x\nservices:\n  - name: s\n    environment: {A: \"1\", B: \"2\"}\n";
        let b = "predecessor: abc\nservices:\n  - environment: {B: \"2\", A: \"1\"}\n    name: s\nname: x\n";
        assert!(semantic_diff(a, b).is_empty());
    }

    #[test]
    fn differences_name_the_path_and_hide_secret_values() {
        let a = "name: x\nservices:\n  - name: s\n    environment: {A: \"1\"}\nsecrets:\n  - name: pw\n    kind: ascii\n    value: hunter2\n";
        let b = "name: x\nservices:\n  - name: s\n    environment: {A: \"2\"}\nsecrets:\n  - name: pw\n    kind: ascii\n    value: hunter3\n";
        let diff = semantic_diff(a, b);
        assert_eq!(
            diff,
            [
                "~ secrets[pw].value: (secret value) -> (secret value)",
                "~ services[s].environment.A: \"1\" -> \"2\"",
            ]
        );
        assert!(!diff.concat().contains("hunter"));
    }

    #[test]
    fn levels_put_namespaces_and_exporters_first() {
        let doc = |name: &str, imports: &[&str]| {
            let mut doc =
                Document::from_tree(name.into(), Node::mapping(Vec::<(String, Node)>::new()));
            doc.imports = imports.iter().map(|s| (*s).to_owned()).collect();
            doc
        };
        let docs = [
            doc("ns", &[]),
            doc("ns/a", &[]),
            doc("ns/b", &["ns/a"]),
            doc("ns/c", &["elsewhere"]),
        ];
        let steps = plan(&docs, &BTreeMap::new());
        assert_eq!(levels(&steps), [vec![0], vec![1, 3], vec![2]]);
    }
}
