//! CAS session policies (session language 0.3.10) as plain data, written as canonical YAML.
//!
//! A session says which attested program (by MRENCLAVE) gets which command line, environment,
//! injected files and secrets. Canonical means: same session, same bytes (fields in a fixed
//! order, lists in the order given, strings quoted only where YAML needs it).

pub mod access;
pub mod key_hash;
pub mod signer;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use meshfile_yaml::{Node, Style};

pub mod limits;

pub const LANGUAGE_VERSION: &str = "0.3.10";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Session {
    /// `namespace/name`, each element `[A-Za-z0-9_\-.~]{1,128}`.
    pub name: String,
    pub services: Vec<Service>,
    pub images: Vec<Image>,
    pub volumes: Vec<Volume>,
    pub secrets: Vec<Secret>,
    pub access_policy: AccessPolicy,
    pub security: Option<Security>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Service {
    pub name: String,
    pub image_name: Option<String>,
    pub mrenclaves: Vec<String>,
    pub command: Option<Command>,
    pub pwd: Option<String>,
    /// Sorted by name, so the session's bytes do not depend on declaration order.
    pub environment: BTreeMap<String, String>,
}

/// A service's command: a line the runtime splits on white space (with quoting), or its words
/// as a list (session language 0.3.5 and later).
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Line(String),
    Words(Vec<String>),
}

impl Command {
    /// Every text of it, for checks that read each: the line, or each word.
    pub fn texts(&self) -> Vec<&String> {
        match self {
            Command::Line(line) => vec![line],
            Command::Words(words) => words.iter().collect(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Image {
    pub name: String,
    pub injection_files: Vec<InjectionFile>,
    /// Where the image's program finds each volume of the session.
    pub volumes: Vec<Mount>,
}

/// A volume mounted into an image: `images[].volumes[]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mount {
    pub name: String,
    pub path: String,
}

/// A volume of the session: defined here (and perhaps exported), or imported from another.
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    pub name: String,
    pub import: Option<VolumeImport>,
    pub export: Vec<VolumeExport>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VolumeImport {
    pub session: String,
    pub volume: String,
}

/// Another session granted this volume; what it may do and the name it sees it by go under
/// `to:`, as the session language writes them.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeExport {
    pub session: String,
    pub session_hash: Option<String>,
    /// `ephemeral`, `rollback_protected` (SCONE's default) or `no_rollback_protection`.
    pub update_policy: Option<String>,
    pub volume_alias: Option<String>,
}

impl Volume {
    fn to_node(&self) -> Node {
        let mut fields = vec![entry("name", text(&self.name))];
        if let Some(import) = &self.import {
            fields.push(entry(
                "import",
                Node::mapping(vec![
                    entry("session", text(&import.session)),
                    entry("volume", text(&import.volume)),
                ]),
            ));
        }
        if !self.export.is_empty() {
            let exports = self.export.iter().map(|e| {
                let mut fields = vec![entry("session", text(&e.session))];
                if let Some(hash) = &e.session_hash {
                    fields.push(entry("session_hash", text(hash)));
                }
                let to: Vec<(Cow<'static, str>, Node)> = [
                    ("update_policy", &e.update_policy),
                    ("volume_alias", &e.volume_alias),
                ]
                .into_iter()
                .filter_map(|(key, value)| Some(entry(key, text(value.as_ref()?))))
                .collect();
                if !to.is_empty() {
                    fields.push(entry("to", Node::mapping(to)));
                }
                Node::mapping(fields)
            });
            fields.push(entry("export", Node::sequence(exports.collect())));
        }
        Node::mapping(fields)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct InjectionFile {
    pub path: String,
    /// `None`: the file is read from the image's (protected) file system.
    pub content: Option<String>,
    /// An octal mode (`0o600`); `None`: SCONE's default, `0o700`.
    pub permission: Option<String>,
}

/// A secret: generated or given here, or imported from another session.
#[derive(Clone, Debug, PartialEq)]
pub struct Secret {
    pub name: String,
    pub kind: Option<String>,
    /// Further fields in the session language's spelling (`size`, `private_key`, `dns`, ...).
    pub fields: Vec<(String, Value)>,
    pub export: Vec<Export>,
    pub import: Option<Import>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Export {
    Namespace(String),
    Session(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    pub session: String,
    pub secret: String,
}

/// A field value: numbers and booleans are written plain, text is quoted where needed.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Int(u64),
    Bool(bool),
    List(Vec<String>),
    /// Any YAML, passed through from a secrets template.
    Yaml(Node),
}

#[derive(Clone, Debug, PartialEq)]
pub struct AccessPolicy {
    pub read: Vec<access::Entry>,
    pub update: Vec<access::Entry>,
    pub create_sessions: Option<Vec<access::Entry>>,
}

impl Default for AccessPolicy {
    /// Only the identity that created the session may read or change it.
    fn default() -> Self {
        AccessPolicy {
            read: vec![access::Entry::Creator],
            update: vec![access::Entry::Creator],
            create_sessions: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Security {
    /// `maa` when attesting with Azure MAA; `None` for the default (hardware, DCAP).
    pub mode: Option<String>,
    pub url: Option<String>,
    pub tolerate: Vec<String>,
    pub ignore_advisories: Advisories,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub enum Advisories {
    #[default]
    None,
    All,
    List(Vec<String>),
}

fn text(s: &str) -> Node {
    Node::scalar(s.to_owned(), Style::DoubleQuoted)
}

fn texts(items: &[String]) -> Node {
    Node::sequence(items.iter().map(|s| text(s)).collect())
}

/// A key and its value; a key of the session language is known when the program is built,
/// and borrowed rather than allocated.
fn entry(key: impl Into<Cow<'static, str>>, value: Node) -> (Cow<'static, str>, Node) {
    (key.into(), value)
}

impl Value {
    fn to_node(&self) -> Node {
        match self {
            Value::Text(s) => text(s),
            Value::Int(i) => Node::scalar(i.to_string(), Style::Plain),
            Value::Bool(b) => Node::scalar(b.to_string(), Style::Plain),
            Value::List(items) => texts(items),
            Value::Yaml(node) => node.clone(),
        }
    }
}

/// A session ready to upload: its name, the sessions it imports secrets from, and its
/// content. Generated sessions stay [`Session`]s (a few strings each; their YAML tree is made
/// when it is read, so 10,000 of them do not hold 10,000 trees at once); sessions from a
/// user's policy template (`image_policy`) are trees. The imports travel as data, so ordering
/// and delivery never read the tree again.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub name: String,
    pub imports: BTreeSet<String>,
    body: Body,
    /// Made when CAS holds no such session, never changed once it does: a namespace, whose
    /// access policy is its creator's (another team's entries, a policy set by hand) and no
    /// apply's to narrow or widen.
    pub create_only: bool,
}

/// What a document holds: a generated session, or a tree written by hand.
#[derive(Clone, Debug, PartialEq)]
enum Body {
    Session(Box<Session>),
    Tree(Node),
}

impl Document {
    /// A document from a session tree written by hand (a template): its imports are read from
    /// every `import: {session: ...}` in it.
    pub fn from_tree(name: String, node: Node) -> Document {
        Document {
            imports: imported_sessions(&node),
            name,
            body: Body::Tree(node),
            create_only: false,
        }
    }

    /// The session as a YAML tree, fields in the order the session language documents them
    /// (made anew from a generated session).
    pub fn node(&self) -> Cow<'_, Node> {
        match &self.body {
            Body::Session(session) => Cow::Owned(session.to_node()),
            Body::Tree(node) => Cow::Borrowed(node),
        }
    }

    /// Canonical YAML: what is uploaded to CAS and written to `target/policies/`.
    pub fn to_yaml(&self) -> String {
        meshfile_yaml::emit(&self.node())
    }

    /// The generated session, when the document is one (not a template's tree): its fields
    /// read without making the tree.
    pub fn session(&self) -> Option<&Session> {
        match &self.body {
            Body::Session(session) => Some(session),
            Body::Tree(_) => None,
        }
    }

    /// Replaces the `read` list of the session's access policy (when it has one).
    pub fn set_readers(&mut self, readers: &[access::Entry]) {
        let node = match &mut self.body {
            Body::Session(session) => {
                session.access_policy.read = readers.to_vec();
                return;
            }
            Body::Tree(node) => node,
        };
        let meshfile_yaml::Value::Mapping(fields) = &mut node.value else {
            return;
        };
        let Some(policy) = fields.iter_mut().find(|e| e.key_text() == "access_policy") else {
            return;
        };
        let meshfile_yaml::Value::Mapping(lists) = &mut policy.value.value else {
            return;
        };
        if let Some(read) = lists.iter_mut().find(|e| e.key_text() == "read") {
            read.value = Node::sequence(readers.iter().map(access::Entry::to_node).collect());
        }
    }
}

/// The sessions a session tree imports secrets from.
fn imported_sessions(node: &Node) -> BTreeSet<String> {
    use meshfile_yaml::Value as V;
    let mut out = BTreeSet::new();
    let mut todo = vec![node];
    while let Some(n) = todo.pop() {
        match &n.value {
            V::Mapping(entries) => {
                for e in entries {
                    if e.key_text() == "import"
                        && let V::Mapping(fields) = &e.value.value
                        && let Some(s) = fields
                            .iter()
                            .find(|f| f.key_text() == "session")
                            .and_then(|f| f.value.as_scalar())
                    {
                        out.insert(s.to_owned());
                    }
                    todo.push(&e.value);
                }
            }
            V::Sequence(items) => todo.extend(items),
            V::Scalar { .. } => {}
        }
    }
    out
}

impl Session {
    pub fn to_document(&self) -> Document {
        self.clone().into_document()
    }

    /// The session as a document, kept typed.
    pub fn into_document(self) -> Document {
        Document {
            name: self.name.clone(),
            imports: (self.secrets.iter())
                .filter_map(|s| s.import.as_ref())
                .map(|i| i.session.clone())
                .chain(
                    (self.volumes.iter())
                        .filter_map(|v| v.import.as_ref())
                        .map(|i| i.session.clone()),
                )
                .collect(),
            body: Body::Session(Box::new(self)),
            create_only: false,
        }
    }

    /// The session as a YAML tree, fields in the order the session language documents them.
    pub fn to_node(&self) -> Node {
        let mut top = vec![
            entry("name", text(&self.name)),
            entry("version", text(LANGUAGE_VERSION)),
        ];
        if !self.services.is_empty() {
            top.push(entry(
                "services",
                Node::sequence(self.services.iter().map(Service::to_node).collect()),
            ));
        }
        if !self.images.is_empty() {
            top.push(entry(
                "images",
                Node::sequence(self.images.iter().map(Image::to_node).collect()),
            ));
        }
        if !self.volumes.is_empty() {
            top.push(entry(
                "volumes",
                Node::sequence(self.volumes.iter().map(Volume::to_node).collect()),
            ));
        }
        if !self.secrets.is_empty() {
            top.push(entry(
                "secrets",
                Node::sequence(self.secrets.iter().map(Secret::to_node).collect()),
            ));
        }
        top.push(entry("access_policy", self.access_policy.to_node()));
        if let Some(security) = &self.security
            && let Some(node) = security.to_node()
        {
            top.push(entry("security", node));
        }
        Node::mapping(top)
    }

    /// Canonical YAML: what is uploaded to CAS and written to `target/policies/`.
    pub fn to_yaml(&self) -> String {
        meshfile_yaml::emit(&self.to_node())
    }
}

impl Service {
    fn to_node(&self) -> Node {
        let mut fields = vec![entry("name", text(&self.name))];
        if let Some(image) = &self.image_name {
            fields.push(entry("image_name", text(image)));
        }
        fields.push(entry(
            "attestation",
            Node::mapping(vec![entry("mrenclave", texts(&self.mrenclaves))]),
        ));
        match &self.command {
            Some(Command::Line(line)) => fields.push(entry("command", text(line))),
            Some(Command::Words(words)) => fields.push(entry("command", texts(words))),
            None => {}
        }
        if let Some(pwd) = &self.pwd {
            fields.push(entry("pwd", text(pwd)));
        }
        if !self.environment.is_empty() {
            fields.push(entry(
                "environment",
                Node::mapping(
                    self.environment
                        .iter()
                        .map(|(k, v)| entry(k.clone(), text(v)))
                        .collect(),
                ),
            ));
        }
        Node::mapping(fields)
    }
}

impl Image {
    fn to_node(&self) -> Node {
        let files = self
            .injection_files
            .iter()
            .map(|f| {
                let mut fields = vec![entry("path", text(&f.path))];
                if let Some(content) = &f.content {
                    fields.push(entry("content", text(content)));
                }
                if let Some(permission) = &f.permission {
                    fields.push(entry(
                        "permission",
                        Node::scalar(permission.clone(), Style::Plain),
                    ));
                }
                Node::mapping(fields)
            })
            .collect();
        let mut fields = vec![
            entry("name", text(&self.name)),
            entry("injection_files", Node::sequence(files)),
        ];
        if !self.volumes.is_empty() {
            let mounts = self.volumes.iter().map(|m| {
                Node::mapping(vec![
                    entry("name", text(&m.name)),
                    entry("path", text(&m.path)),
                ])
            });
            fields.push(entry("volumes", Node::sequence(mounts.collect())));
        }
        Node::mapping(fields)
    }
}

impl Secret {
    fn to_node(&self) -> Node {
        let mut fields = vec![entry("name", text(&self.name))];
        if let Some(kind) = &self.kind {
            fields.push(entry("kind", text(kind)));
        }
        fields.extend(
            self.fields
                .iter()
                .map(|(k, v)| entry(k.clone(), v.to_node())),
        );
        if !self.export.is_empty() {
            let exports = self
                .export
                .iter()
                .map(|e| match e {
                    Export::Namespace(ns) => Node::mapping(vec![entry("namespace", text(ns))]),
                    Export::Session(s) => Node::mapping(vec![entry("session", text(s))]),
                })
                .collect();
            fields.push(entry("export", Node::sequence(exports)));
        }
        if let Some(import) = &self.import {
            fields.push(entry(
                "import",
                Node::mapping(vec![
                    entry("session", text(&import.session)),
                    entry("secret", text(&import.secret)),
                ]),
            ));
        }
        Node::mapping(fields)
    }
}

impl AccessPolicy {
    fn to_node(&self) -> Node {
        let entries = |list: &[access::Entry]| {
            Node::sequence(list.iter().map(access::Entry::to_node).collect())
        };
        let mut fields = vec![
            entry("read", entries(&self.read)),
            entry("update", entries(&self.update)),
        ];
        if let Some(create) = &self.create_sessions {
            fields.push(entry("create_sessions", entries(create)));
        }
        Node::mapping(fields)
    }
}

impl Security {
    fn to_node(&self) -> Option<Node> {
        let mut attestation = Vec::new();
        if let Some(mode) = &self.mode {
            attestation.push(entry("mode", text(mode)));
        }
        if let Some(url) = &self.url {
            attestation.push(entry("url", text(url)));
        }
        if !self.tolerate.is_empty() {
            attestation.push(entry("tolerate", texts(&self.tolerate)));
        }
        match &self.ignore_advisories {
            Advisories::None => {}
            Advisories::All => attestation.push(entry("ignore_advisories", text("*"))),
            Advisories::List(list) => attestation.push(entry("ignore_advisories", texts(list))),
        }
        (!attestation.is_empty())
            .then(|| Node::mapping(vec![entry("attestation", Node::mapping(attestation))]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_service_session() {
        let session = Session {
            name: "ns/api".into(),
            services: vec![Service {
                name: "python3".into(),
                image_name: Some("api_image".into()),
                mrenclaves: vec!["ab".repeat(32)],
                command: Some(Command::Line("python3 api.py".into())),
                pwd: Some("/app".into()),
                environment: BTreeMap::from([
                    ("PASSWORD".into(), "$$SCONE::pw$$".into()),
                    ("PORT".into(), "443".into()),
                ]),
            }],
            images: vec![Image {
                name: "api_image".into(),
                injection_files: vec![],
                volumes: vec![],
            }],
            volumes: vec![],
            secrets: vec![Secret {
                name: "pw".into(),
                kind: Some("ascii".into()),
                fields: vec![("size".into(), Value::Int(10))],
                export: vec![Export::Namespace("ns".into())],
                import: None,
            }],
            access_policy: AccessPolicy::default(),
            security: Some(Security {
                tolerate: vec!["outdated-tcb".into()],
                ignore_advisories: Advisories::All,
                ..Security::default()
            }),
        };
        let yaml = session.to_yaml();
        assert!(
            yaml.starts_with("name: ns/api\nversion: \"0.3.10\"\n"),
            "{yaml}"
        );
        assert!(yaml.contains("    PORT: \"443\"\n"), "{yaml}");
        assert!(yaml.contains("  size: 10\n"), "{yaml}");
        assert!(yaml.contains("    ignore_advisories: \"*\"\n"), "{yaml}");
        let back = meshfile_yaml::parse(&yaml, &meshfile_yaml::Limits::default()).expect("parses");
        assert_eq!(meshfile_yaml::emit(&back), yaml);
    }
}
