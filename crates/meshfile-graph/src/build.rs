//! From a compiled mesh to its graph: nodes and edges from the sessions as compiled (after
//! every variable is filled in), positions from the manifests.

use std::collections::{BTreeMap, BTreeSet};

use meshfile_manifest::mesh::MeshManifest;
use meshfile_manifest::refs::{self, Token};
use meshfile_plan::{Compiled, Descriptor, Descriptors};
use meshfile_session::{Document, Export, Session};
use meshfile_yaml::{Node as Yaml, Span, Value as YamlValue};

use crate::{Edge, EdgeKind, Graph, Location, Node, NodeKind, SCHEMA};

/// What the graph is made of.
pub struct Inputs<'a> {
    pub mesh: &'a MeshManifest,
    pub mesh_file: &'a str,
    pub descriptors: &'a Descriptors<'a>,
    pub compiled: &'a Compiled,
    pub mode: meshfile_plan::Mode,
}

/// How one service's session uses secrets, for the findings.
#[derive(Default)]
pub(crate) struct Usage {
    /// Local secret names referenced as `$$SCONE::name[:format]$$`, with each format used
    /// (`""` for none).
    pub references: BTreeMap<String, BTreeSet<String>>,
    /// Local secret names another secret of the session names (`private_key`, `issuer`).
    pub named_by_secrets: BTreeSet<String>,
    /// Imported secrets: local name to the defining secret's node id.
    pub imported: BTreeMap<String, String>,
}

/// What the findings need besides the graph.
pub(crate) struct Facts<'a> {
    pub inputs: &'a Inputs<'a>,
    /// Per service name: its session (when compiled) and descriptor.
    pub services: BTreeMap<String, ServiceFacts<'a>>,
}

pub(crate) struct ServiceFacts<'a> {
    pub document: Option<&'a Document>,
    pub descriptor: Option<&'a Descriptor>,
    pub usage: Usage,
}

/// Builds the graph of a compiled mesh, findings included.
pub fn build(inputs: &Inputs<'_>) -> Graph {
    let mut b = Builder::default();
    let namespace = inputs.mesh.policy.namespace.as_str();
    b.node(Node {
        id: "namespace".into(),
        kind: Some(NodeKind::Namespace),
        label: namespace.to_owned(),
        session: Some(namespace.to_owned()),
        defined_at: Some(location(
            inputs.mesh_file,
            inputs.mesh.policy.namespace.span,
        )),
        ..Node::default()
    });
    for (i, cas) in inputs.mesh.cas.iter().enumerate() {
        let roles: Vec<String> = cas.roles().map(|r| r.as_str().to_owned()).collect();
        let name = cas
            .name
            .as_ref()
            .map_or_else(|| format!("cas[{i}]"), |n| n.as_str().to_owned());
        let id = format!("cas:{name}");
        b.node(Node {
            id: id.clone(),
            kind: Some(NodeKind::Cas),
            label: name,
            roles: roles.clone(),
            address: Some(cas.cas_url.as_str().to_owned()),
            defined_at: Some(location(inputs.mesh_file, cas.cas_url.span)),
            ..Node::default()
        });
        b.edge(&id, "namespace", EdgeKind::Serves, Some(roles.join(", ")));
    }
    let sessions: BTreeMap<&str, &Document> = (inputs.compiled.sessions.iter())
        .map(|d| (d.name.as_str(), d))
        .collect();
    if let Some(doc) = sessions.get(namespace) {
        b.signers(doc, "namespace");
    }
    let names = meshfile_plan::session_names(inputs.mesh);
    // Session name to service name, for imports.
    let owners: BTreeMap<&str, &str> = (names.iter().skip(1))
        .zip(&inputs.mesh.services)
        .map(|(session, s)| (session.as_str(), s.effective_name()))
        .collect();
    let mut facts = Facts {
        inputs,
        services: BTreeMap::new(),
    };
    for (session_name, service) in names.iter().skip(1).zip(&inputs.mesh.services) {
        let name = service.effective_name();
        let id = service_id(name);
        let descriptor = inputs.descriptors.get(service.image.as_str()).copied();
        let document = sessions.get(session_name.as_str()).copied();
        let chart = (inputs.compiled.chart.services.iter()).find(|c| c.mesh_service == name);
        let session = document.and_then(Document::session);
        let mrenclaves = session
            .and_then(|s| s.services.first())
            .map(|s| s.mrenclaves.len())
            .or_else(|| descriptor.map(|d| d.mrenclaves.len()));
        let program = chart.and_then(|c| c.program.clone()).or_else(|| {
            descriptor.map(|d| meshfile_plan::program_name(d.manifest.build.command.program_text()))
        });
        let image = chart.map_or_else(|| service.image.as_str().to_owned(), image_reference);
        b.node(Node {
            id: id.clone(),
            kind: Some(NodeKind::Service),
            label: name.to_owned(),
            image: Some(image.clone()),
            mrenclaves,
            program,
            session: Some(session_name.clone()),
            defined_at: Some(location(
                inputs.mesh_file,
                service.name.as_ref().map_or(service.image.span, |n| n.span),
            )),
            manifest: descriptor.map(|d| location(&d.file, d.manifest.build.name.span)),
            ..Node::default()
        });
        b.edge("namespace", &id, EdgeKind::Holds, None);
        let image_id = format!("image:{image}");
        b.node(Node {
            id: image_id.clone(),
            kind: Some(NodeKind::Image),
            label: image.clone(),
            image: Some(image),
            ..Node::default()
        });
        b.edge(&image_id, &id, EdgeKind::Runs, None);
        let usage = match document {
            Some(doc) => {
                b.signers(doc, &id);
                match doc.session() {
                    Some(session) => b.session(name, session, descriptor, &owners),
                    None => b.template(name, doc, &owners),
                }
            }
            None => Usage::default(),
        };
        facts.services.insert(
            name.to_owned(),
            ServiceFacts {
                document,
                descriptor,
                usage,
            },
        );
    }
    b.waits(inputs);
    if let Some(images) = &inputs.compiled.images {
        for copy in &images.copies {
            let dest = format!("destination:{}", copy.destination);
            b.node(Node {
                id: dest.clone(),
                kind: Some(NodeKind::Destination),
                label: copy.destination.clone(),
                image: Some(copy.destination.clone()),
                ..Node::default()
            });
            // The chart runs the destination: the service's image node is named by it.
            let source = format!("image:{}", copy.source);
            let from = if b.ids.contains_key(&source) {
                source
            } else {
                b.node(Node {
                    id: source.clone(),
                    kind: Some(NodeKind::Image),
                    label: copy.source.clone(),
                    image: Some(copy.source.clone()),
                    ..Node::default()
                });
                source
            };
            b.edge(&from, &dest, EdgeKind::CopiedTo, None);
        }
    }
    let findings = crate::findings::find(&b, &facts);
    Graph {
        schema: SCHEMA.to_owned(),
        mesh: inputs.mesh_file.to_owned(),
        namespace: namespace.to_owned(),
        nodes: b.nodes,
        edges: b.edges,
        findings,
        delivery: (inputs.compiled.sessions.iter())
            .map(|d| d.name.clone())
            .collect(),
    }
}

pub(crate) fn service_id(name: &str) -> String {
    format!("service:{name}")
}

pub(crate) fn secret_id(service: &str, name: &str) -> String {
    format!("secret:{service}/{name}")
}

fn image_reference(c: &meshfile_plan::ChartService) -> String {
    match &c.tag {
        Some(tag) => format!("{}:{tag}", c.repository),
        None => c.repository.clone(),
    }
}

pub(crate) fn location(file: &str, span: Span) -> Location {
    Location {
        file: file.to_owned(),
        line: span.start.line,
        column: span.start.column,
    }
}

#[derive(Default)]
pub(crate) struct Builder {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Node id to its index in `nodes`.
    pub ids: BTreeMap<String, usize>,
    edge_set: BTreeSet<(String, String, EdgeKind)>,
}

impl Builder {
    /// Adds a node; a node with the same id is kept as it was.
    fn node(&mut self, node: Node) {
        if !self.ids.contains_key(&node.id) {
            self.ids.insert(node.id.clone(), self.nodes.len());
            self.nodes.push(node);
        }
    }

    fn edge(&mut self, from: &str, to: &str, kind: EdgeKind, label: Option<String>) {
        if self.edge_set.insert((from.to_owned(), to.to_owned(), kind)) {
            self.edges.push(Edge {
                from: from.to_owned(),
                to: to.to_owned(),
                kind,
                label,
            });
        }
    }

    /// The signers a session's access policy requires, as nodes with an edge to `to`.
    fn signers(&mut self, doc: &Document, to: &str) {
        let Some(session) = doc.session() else { return };
        let policy = &session.access_policy;
        let entries = (policy.read.iter())
            .chain(&policy.update)
            .chain(policy.create_sessions.iter().flatten());
        let mut keys: Vec<String> = entries
            .flat_map(|e| e.signers())
            .map(|k| k.to_scone())
            .collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let short: String = key
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(12)
                .collect();
            let id = format!("signer:{short}");
            self.node(Node {
                id: id.clone(),
                kind: Some(NodeKind::Signer),
                label: format!("signer {short}…"),
                address: Some(key),
                ..Node::default()
            });
            self.edge(&id, to, EdgeKind::Signs, None);
        }
    }

    /// A generated session's secrets, volumes and what uses them.
    fn session(
        &mut self,
        service: &str,
        session: &Session,
        descriptor: Option<&Descriptor>,
        owners: &BTreeMap<&str, &str>,
    ) -> Usage {
        let me = service_id(service);
        let mut usage = Usage::default();
        let mut local: BTreeMap<String, String> = BTreeMap::new();
        for secret in &session.secrets {
            match &secret.import {
                Some(import) => {
                    let id = self.imported_secret(&import.session, &import.secret, owners);
                    self.edge(&id, &me, EdgeKind::Imports, Some(secret.name.clone()));
                    usage.imported.insert(secret.name.clone(), id.clone());
                    local.insert(secret.name.clone(), id);
                }
                None => {
                    let id = secret_id(service, &secret.name);
                    let defined_at = descriptor.and_then(|d| {
                        (d.manifest.secrets_defined())
                            .find(|s| s.name.as_str() == secret.name)
                            .map(|s| location(&d.file, s.name.span))
                    });
                    self.node(Node {
                        id: id.clone(),
                        kind: Some(NodeKind::Secret),
                        label: secret.name.clone(),
                        service: Some(service.to_owned()),
                        secret_kind: secret.kind.clone(),
                        exported_to: secret.export.iter().map(export_text).collect(),
                        defined_at,
                        ..Node::default()
                    });
                    self.edge(&me, &id, EdgeKind::Defines, None);
                    local.insert(secret.name.clone(), id);
                }
            }
        }
        // Keys and issuers: edges, and uses of the secrets they name.
        for secret in session.secrets.iter().filter(|s| s.import.is_none()) {
            let id = secret_id(service, &secret.name);
            for (field, kind) in [
                ("private_key", EdgeKind::KeyOf),
                ("issuer", EdgeKind::Issues),
            ] {
                let named = secret.fields.iter().find_map(|(k, v)| match v {
                    meshfile_session::Value::Text(text) if k == field => Some(text),
                    _ => None,
                });
                if let Some(named) = named
                    && let Some(from) = local.get(named)
                {
                    self.edge(from, &id, kind, None);
                    usage.named_by_secrets.insert(named.clone());
                }
            }
        }
        for (i, s) in session.services.iter().enumerate() {
            for (name, value) in &s.environment {
                let site = Node {
                    id: format!("variable:{service}/{name}"),
                    kind: Some(NodeKind::Variable),
                    label: name.clone(),
                    service: Some(service.to_owned()),
                    ..Node::default()
                };
                self.uses(&mut usage, &local, value, &me, site);
            }
            for text in s.command.iter().flat_map(|c| c.texts()) {
                let site = Node {
                    id: match i {
                        0 => format!("command:{service}"),
                        _ => format!("command:{service}/{}", s.name),
                    },
                    kind: Some(NodeKind::Command),
                    label: "command".into(),
                    service: Some(service.to_owned()),
                    ..Node::default()
                };
                self.uses(&mut usage, &local, text, &me, site);
            }
        }
        for image in &session.images {
            for file in &image.injection_files {
                let Some(content) = &file.content else {
                    continue;
                };
                let site = Node {
                    id: format!("file:{service}{}", file.path),
                    kind: Some(NodeKind::File),
                    label: file.path.clone(),
                    service: Some(service.to_owned()),
                    ..Node::default()
                };
                self.uses(&mut usage, &local, content, &me, site);
            }
        }
        for volume in &session.volumes {
            match &volume.import {
                Some(import) => {
                    let owner = owners.get(import.session.as_str()).copied();
                    let id = format!(
                        "volume:{}/{}",
                        owner.unwrap_or(&import.session),
                        import.volume
                    );
                    self.node(Node {
                        id: id.clone(),
                        kind: Some(NodeKind::Volume),
                        label: import.volume.clone(),
                        service: owner.map(str::to_owned),
                        ..Node::default()
                    });
                    self.edge(&id, &me, EdgeKind::Imports, Some(volume.name.clone()));
                }
                None => {
                    let id = format!("volume:{service}/{}", volume.name);
                    self.node(Node {
                        id: id.clone(),
                        kind: Some(NodeKind::Volume),
                        label: volume.name.clone(),
                        service: Some(service.to_owned()),
                        exported_to: volume.export.iter().map(|e| e.session.clone()).collect(),
                        ..Node::default()
                    });
                    self.edge(&me, &id, EdgeKind::Defines, None);
                }
            }
        }
        usage
    }

    /// The node of a secret another session defines: the defining service's, or one of its
    /// own for a session outside the mesh.
    fn imported_secret(
        &mut self,
        session: &str,
        secret: &str,
        owners: &BTreeMap<&str, &str>,
    ) -> String {
        match owners.get(session) {
            Some(owner) => secret_id(owner, secret),
            None => {
                let id = format!("secret:{session}/{secret}");
                self.node(Node {
                    id: id.clone(),
                    kind: Some(NodeKind::Secret),
                    label: secret.to_owned(),
                    session: Some(session.to_owned()),
                    ..Node::default()
                });
                id
            }
        }
    }

    /// The secrets a text refers to: an edge from each to the use (added when first
    /// needed), and from the use to its service.
    fn uses(
        &mut self,
        usage: &mut Usage,
        local: &BTreeMap<String, String>,
        text: &str,
        service: &str,
        site: Node,
    ) {
        let mut site = Some(site);
        let mut site_id = String::new();
        for (name, format) in scone_references(text) {
            usage
                .references
                .entry(name.clone())
                .or_default()
                .insert(format);
            let Some(secret) = local.get(&name) else {
                continue;
            };
            if let Some(node) = site.take() {
                site_id = node.id.clone();
                self.node(node);
                self.edge(&site_id, service, EdgeKind::Feeds, None);
            }
            self.edge(secret, &site_id, EdgeKind::Uses, None);
        }
    }

    /// A template's session: its imports walked in the tree, its uses read from its text.
    fn template(&mut self, service: &str, doc: &Document, owners: &BTreeMap<&str, &str>) -> Usage {
        let me = service_id(service);
        let mut usage = Usage::default();
        let node = doc.node();
        let mut local: BTreeMap<String, String> = BTreeMap::new();
        if let Some(YamlValue::Sequence(secrets)) = node.get("secrets").map(|e| &e.value.value) {
            for secret in secrets {
                let Some(name) = scalar(secret, "name") else {
                    continue;
                };
                let import = secret.get("import").map(|e| &e.value);
                match import.and_then(|i| Some((scalar(i, "session")?, scalar(i, "secret")?))) {
                    Some((session, imported)) => {
                        let id = self.imported_secret(&session, &imported, owners);
                        self.edge(&id, &me, EdgeKind::Imports, Some(name.clone()));
                        usage.imported.insert(name.clone(), id.clone());
                        local.insert(name, id);
                    }
                    None => {
                        let id = secret_id(service, &name);
                        self.node(Node {
                            id: id.clone(),
                            kind: Some(NodeKind::Secret),
                            label: name.clone(),
                            service: Some(service.to_owned()),
                            secret_kind: scalar(secret, "kind"),
                            ..Node::default()
                        });
                        self.edge(&me, &id, EdgeKind::Defines, None);
                        for field in ["private_key", "issuer"] {
                            if let Some(named) = scalar(secret, field) {
                                usage.named_by_secrets.insert(named);
                            }
                        }
                        local.insert(name, id);
                    }
                }
            }
        }
        let text = doc.to_yaml();
        let site = Node {
            id: format!("template:{service}"),
            kind: Some(NodeKind::Template),
            label: "policy template".into(),
            service: Some(service.to_owned()),
            ..Node::default()
        };
        self.uses(&mut usage, &local, &text, &me, site);
        usage
    }

    /// Init containers: a service waits for another of the mesh, or for a host outside it.
    fn waits(&mut self, inputs: &Inputs<'_>) {
        let release = inputs.compiled.chart.name.clone();
        let services = &inputs.compiled.chart.services;
        for waiter in services {
            for (host, port) in &waiter.wait_for {
                let first = host.split('.').next().unwrap_or(host);
                let target = services.iter().find(|s| {
                    first == s.chart
                        || first == s.mesh_service
                        || first == format!("{release}-{}", s.chart)
                });
                let to = match target {
                    Some(s) => service_id(&s.mesh_service),
                    None => {
                        let id = format!("external:{host}:{port}");
                        self.node(Node {
                            id: id.clone(),
                            kind: Some(NodeKind::External),
                            label: format!("{host}:{port}"),
                            ..Node::default()
                        });
                        id
                    }
                };
                self.edge(
                    &service_id(&waiter.mesh_service),
                    &to,
                    EdgeKind::WaitsFor,
                    Some(port.to_string()),
                );
            }
        }
    }
}

fn export_text(export: &Export) -> String {
    match export {
        Export::Namespace(ns) => format!("namespace {ns}"),
        Export::Session(session) => session.clone(),
    }
}

fn scalar(node: &Yaml, key: &str) -> Option<String> {
    node.get(key)
        .and_then(|e| e.value.as_scalar())
        .map(str::to_owned)
}

/// Each `$$SCONE::name[:format]$$` of a text: the name and the format (`crt`, `privatekey`,
/// a legacy suffix, or empty).
pub(crate) fn scone_references(text: &str) -> Vec<(String, String)> {
    let Ok(tokens) = refs::scan(text) else {
        return Vec::new();
    };
    tokens
        .into_iter()
        .filter_map(|t| match t {
            Token::Scone(r) => Some((
                r.name.to_owned(),
                r.format.or(r.legacy_suffix).unwrap_or_default().to_owned(),
            )),
            _ => None,
        })
        .collect()
}
