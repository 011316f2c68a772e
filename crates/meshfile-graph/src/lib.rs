//! The mesh as a graph: its services, the secrets they define, export, import and use, the
//! CAS instances and signers its namespace answers to, its images and where they are copied.
//! Least-privilege findings are read off the graph; so is the blast radius of a change.
//!
//! Pure: built from a compiled mesh, rendered to text; no I/O, no clock.

mod affected;
mod build;
mod dot;
mod findings;
mod html;
mod layout;
mod mermaid;

use schemars::JsonSchema;
use serde::Serialize;

pub use affected::{Affected, AffectedError, affected_by};
pub use build::{Inputs, build};
pub use dot::dot;
pub use findings::CODES as FINDING_CODES;
pub use html::{html, svg};
pub use layout::{Layout, layout};
pub use mermaid::mermaid;

/// The version of the JSON form; a change that is not an addition gets a new one.
pub const SCHEMA: &str = "meshfile-graph/1";

/// A mesh as nodes and edges, with what the least-privilege checks found.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Graph {
    /// Always `meshfile-graph/1`.
    pub schema: String,
    /// The Meshfile, as given.
    pub mesh: String,
    /// The CAS policy namespace.
    pub namespace: String,
    pub nodes: Vec<Node>,
    /// Edges name their ends by node id; each end is a node of `nodes`.
    pub edges: Vec<Edge>,
    pub findings: Vec<Finding>,
    /// The sessions in the order they are delivered to CAS: the namespace, then exporters
    /// before their importers.
    pub delivery: Vec<String>,
}

/// What a node stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// The CAS namespace that holds the mesh's sessions.
    Namespace,
    /// A CAS instance of the Meshfile, with the roles it serves.
    Cas,
    /// A key that signs the namespace's sessions (its access policy names it).
    Signer,
    /// A mesh service: one CAS session, one workload.
    Service,
    /// A secret a service's session defines.
    Secret,
    /// An environment variable of a service that uses a secret.
    Variable,
    /// An injection file of a service that uses a secret.
    File,
    /// A service's command line, when it uses a secret.
    Command,
    /// A whole session template (`image_policy`) that uses a secret somewhere.
    Template,
    /// A volume a service's session defines or imports.
    Volume,
    /// An image a service runs.
    Image,
    /// Where the Meshfile's `repo` copies an image.
    Destination,
    /// A host a service waits for that is not a service of the mesh.
    External,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Namespace => "namespace",
            NodeKind::Cas => "cas",
            NodeKind::Signer => "signer",
            NodeKind::Service => "service",
            NodeKind::Secret => "secret",
            NodeKind::Variable => "variable",
            NodeKind::File => "file",
            NodeKind::Command => "command",
            NodeKind::Template => "template",
            NodeKind::Volume => "volume",
            NodeKind::Image => "image",
            NodeKind::Destination => "destination",
            NodeKind::External => "external",
        }
    }

    /// Every kind, in legend order.
    pub const ALL: [NodeKind; 13] = [
        NodeKind::Namespace,
        NodeKind::Cas,
        NodeKind::Signer,
        NodeKind::Service,
        NodeKind::Secret,
        NodeKind::Variable,
        NodeKind::File,
        NodeKind::Command,
        NodeKind::Template,
        NodeKind::Volume,
        NodeKind::Image,
        NodeKind::Destination,
        NodeKind::External,
    ];
}

/// One node. Optional fields are present where they apply to the node's kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct Node {
    /// Unique in the graph: `service:NAME`, `secret:SERVICE/NAME`, `variable:SERVICE/NAME`,
    /// `file:SERVICE/PATH`, `cas:NAME`, `image:REFERENCE`, ...
    pub id: String,
    pub kind: Option<NodeKind>,
    /// What a picture shows.
    pub label: String,
    /// The service a secret, variable, file, command or volume belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// A secret's kind (`ascii`, `x509`, ...), when its session says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_kind: Option<String>,
    /// Whom a secret or volume is exported to: `namespace NAME`, or session names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exported_to: Vec<String>,
    /// A service's image reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// How many MRENCLAVEs a service's session accepts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrenclaves: Option<usize>,
    /// The program a service runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The CAS session a service's configuration lives in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// A CAS instance's roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// A CAS instance's address, or a signer's key as SCONE writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Where the node is defined, when a file says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defined_at: Option<Location>,
    /// A service's manifest: where its descriptor was recorded from (its `build.name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Location>,
}

/// A place in an input file (line and column from 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

/// What an edge says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// A CAS instance serves the namespace (label: its roles).
    Serves,
    /// A signer's signature is required by the namespace's access policy.
    Signs,
    /// The namespace holds a service's session.
    Holds,
    /// A service's session defines a secret or a volume.
    Defines,
    /// A service's session imports a secret or volume (from the secret to the importer).
    Imports,
    /// A secret is used by a variable, file, command or template.
    Uses,
    /// A variable, file, command or template belongs to a service.
    Feeds,
    /// A private key is the key of a certificate.
    KeyOf,
    /// A certificate authority issues a certificate.
    Issues,
    /// A service waits for another (an init container) before it starts.
    WaitsFor,
    /// An image is run by a service.
    Runs,
    /// An image is copied to a destination.
    CopiedTo,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Serves => "serves",
            EdgeKind::Signs => "signs",
            EdgeKind::Holds => "holds",
            EdgeKind::Defines => "defines",
            EdgeKind::Imports => "imports",
            EdgeKind::Uses => "uses",
            EdgeKind::Feeds => "feeds",
            EdgeKind::KeyOf => "key_of",
            EdgeKind::Issues => "issues",
            EdgeKind::WaitsFor => "waits_for",
            EdgeKind::Runs => "runs",
            EdgeKind::CopiedTo => "copied_to",
        }
    }

    /// Whether DOT and Mermaid draw the edge: not the namespace's to each service, which
    /// would cross the whole picture (the page draws them).
    pub fn drawn(self) -> bool {
        self != EdgeKind::Holds
    }

    /// Whether pictures draw the edge dashed: waiting for a service passes no secret.
    pub fn dashed(self) -> bool {
        self == EdgeKind::WaitsFor
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A least-privilege finding: a lint warning, located, and the nodes it marks.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Finding {
    /// The diagnostic code (`W111` ...), as `meshfile explain CODE` explains it.
    pub code: String,
    pub file: String,
    /// 0 when the finding is about the file as a whole.
    pub line: u32,
    pub column: u32,
    pub message: String,
    pub hint: String,
    /// The nodes it is about.
    pub nodes: Vec<String>,
    /// The same, as `lint` reports it.
    #[serde(skip)]
    pub diagnostic: meshfile_manifest::Diagnostic,
}

impl Finding {
    pub fn new(
        file: &str,
        diagnostic: meshfile_manifest::Diagnostic,
        nodes: Vec<String>,
    ) -> Finding {
        Finding {
            code: diagnostic.code.as_str().to_owned(),
            file: file.to_owned(),
            line: diagnostic.line,
            column: diagnostic.column,
            message: diagnostic.message.clone(),
            hint: diagnostic.hint.clone().unwrap_or_default(),
            nodes,
            diagnostic,
        }
    }

    /// The finding as `lint` reports it.
    pub fn located(&self) -> meshfile_plan::Located {
        meshfile_plan::Located::new(&self.file, self.diagnostic.clone())
    }
}

impl Graph {
    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Each node's position in `nodes`, by id: how the drawings name nodes (`n12`).
    pub fn positions(&self) -> std::collections::HashMap<&str, usize> {
        (self.nodes.iter().enumerate())
            .map(|(i, n)| (n.id.as_str(), i))
            .collect()
    }

    /// The JSON form, as `-o json` prints it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// The JSON Schema of the JSON form.
pub fn schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Graph)).unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "$id".into(),
            format!("https://meshfile.dev/schema/{SCHEMA}.json").into(),
        );
    }
    schema
}

/// A kind's fill colour, the same in every picture.
pub fn fill(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Namespace => "#f4e1b5",
        NodeKind::Cas => "#d6e4f0",
        NodeKind::Signer => "#e8d7f1",
        NodeKind::Service => "#cfe8cf",
        NodeKind::Secret => "#f9d6d5",
        NodeKind::Variable | NodeKind::File | NodeKind::Command | NodeKind::Template => "#fdf2d0",
        NodeKind::Volume => "#e3e3e3",
        NodeKind::Image | NodeKind::Destination => "#dde7f5",
        NodeKind::External => "#f2f2f2",
    }
}

/// The colour of a node a finding marks.
pub const FINDING_COLOUR: &str = "#c0392b";

/// Per node id, the codes of the findings that mark it, in order.
pub fn marks(graph: &Graph) -> std::collections::BTreeMap<&str, Vec<&str>> {
    let mut marks: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for f in &graph.findings {
        for node in &f.nodes {
            let codes = marks.entry(node.as_str()).or_default();
            if !codes.contains(&f.code.as_str()) {
                codes.push(&f.code);
            }
        }
    }
    marks
}
