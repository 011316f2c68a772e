//! Hover and go to definition: what the thing under the cursor is in the compiled mesh (a
//! secret's definer and kind, a variable's effective value and origin, a service's manifest)
//! and the specification's documentation of the field.

use std::path::Path;

use lsp_types::{Hover, HoverContents, Location, MarkupContent, MarkupKind, Url};
use meshfile_graph::{EdgeKind, Graph, Node};
use meshfile_manifest::Manifest;
use meshfile_manifest::refs::{self, Token};
use meshfile_yaml::{Pos, Span};

use crate::position::{self, Hit, On, Step};
use crate::schema::Schemas;
use crate::workspace::Analysis;

/// What the cursor is on, beyond the field.
enum Subject {
    Secret(String),
    Variable(String),
    Service,
}

/// The reference of a scalar at the cursor: `$$SCONE::name$$` or `{{name}}`.
fn reference_at(value: &str, span: Span, pos: Pos) -> Option<Subject> {
    let tokens = refs::scan(value).ok()?;
    let found: Vec<(std::ops::Range<usize>, Subject)> = tokens
        .into_iter()
        .filter_map(|t| match t {
            Token::Scone(r) => Some((r.range.clone(), Subject::Secret(r.name.to_owned()))),
            Token::Mesh { name, range } => Some((range, Subject::Variable(name.to_owned()))),
            _ => None,
        })
        .collect();
    // On one line, the one under the cursor (a quote before the text moves it by one).
    if span.start.line == pos.line && span.end.line == pos.line {
        let offset = pos.column.saturating_sub(span.start.column) as usize;
        for skip in [0, 1] {
            let at = value
                .char_indices()
                .nth(offset.saturating_sub(skip))
                .map(|(b, _)| b);
            if let Some(at) = at
                && let Some(i) = found.iter().position(|(r, _)| r.contains(&at))
            {
                return found.into_iter().nth(i).map(|(_, s)| s);
            }
        }
        return None;
    }
    found.into_iter().next().map(|(_, s)| s)
}

/// The services of the mesh whose session a file describes: those recorded from a service
/// manifest, or the one a Meshfile's `services[i]` names.
fn services_of(graph: &Graph, path: &Path, hit: &Hit, analysis: &Analysis) -> Vec<String> {
    if let Some(Manifest::Mesh(mesh)) = analysis.manifest(path) {
        return match hit.path.as_slice() {
            [Step::Key(k), Step::Index(i), ..] if k == "services" => mesh
                .services
                .get(*i)
                .map(|s| s.effective_name().to_owned())
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
    }
    recorded_from(graph, path).map(str::to_owned).collect()
}

/// The services whose descriptor was recorded from the service manifest `path`.
fn recorded_from<'g>(graph: &'g Graph, path: &'g Path) -> impl Iterator<Item = &'g str> {
    (graph.nodes.iter())
        .filter(move |n| {
            n.manifest
                .as_ref()
                .is_some_and(|m| Path::new(&m.file) == path)
        })
        .map(|n| n.label.as_str())
}

/// The node of the secret `name` as service `service` sees it: its own, or the one it imports.
fn secret_node<'g>(graph: &'g Graph, service: &str, name: &str) -> Option<&'g Node> {
    let own = format!("secret:{service}/{name}");
    if let Some(node) = graph.node(&own) {
        return Some(node);
    }
    let me = format!("service:{service}");
    (graph.edges.iter())
        .find(|e| e.kind == EdgeKind::Imports && e.to == me && e.label.as_deref() == Some(name))
        .and_then(|e| graph.node(&e.from))
}

fn where_(node: &Node) -> String {
    node.defined_at.as_ref().map_or_else(String::new, |l| {
        format!(" at {}:{}:{}", l.file, l.line, l.column)
    })
}

fn describe_secret(graph: &Graph, service: &str, node: &Node) -> String {
    let kind = node.secret_kind.as_deref().unwrap_or("secret");
    let owner = node.service.as_deref().unwrap_or("another session");
    let mut text = format!("**secret `{}`** ({kind})", node.label);
    if owner == service {
        text += &format!(", defined by `{owner}`{}", where_(node));
    } else {
        text += &format!(", imported by `{service}` from `{owner}`{}", where_(node));
    }
    let importers: Vec<&str> = (graph.edges.iter())
        .filter(|e| e.kind == EdgeKind::Imports && e.from == node.id)
        .filter_map(|e| e.to.strip_prefix("service:"))
        .collect();
    if !node.exported_to.is_empty() {
        text += &format!("\n\nexported to: {}", node.exported_to.join(", "));
    }
    if !importers.is_empty() {
        text += &format!("\n\nimported by: {}", importers.join(", "));
    }
    text
}

/// What a hit names: a secret (a reference, an import, a `private_key` or `issuer`), a
/// variable (`{{name}}`, a `global` environment entry, a Meshfile `env` entry), a service.
fn subject(hit: &Hit, pos: Pos) -> Option<Subject> {
    let On::Value(value, span) = &hit.on else {
        return None;
    };
    if let Some(found) = reference_at(value, *span, pos) {
        return Some(found);
    }
    let keys = position::keys(&hit.path);
    match keys.as_slice() {
        ["secrets", "import"] => Some(Subject::Secret(value.clone())),
        [.., "private_key" | "issuer"] => Some(Subject::Secret(value.clone())),
        ["services", "name" | "image"] => Some(Subject::Service),
        // A variable a service manifest takes from the mesh, or one a Meshfile gives.
        ["environment", "global", "name"] | ["env", "env", "name"] => {
            Some(Subject::Variable(value.clone()))
        }
        _ => None,
    }
}

pub fn hover(
    analysis: &Analysis,
    schemas: &Schemas,
    path: &Path,
    text: &str,
    pos: Pos,
) -> Option<Hover> {
    let node = meshfile_yaml::parse(text, &meshfile_manifest::limits()).ok()?;
    let hit = position::locate(&node, pos)?;
    let mut parts: Vec<String> = Vec::new();
    if let (Some(model), Some(found)) = (&analysis.model, subject(&hit, pos)) {
        let graph = &model.graph;
        let services = services_of(graph, path, &hit, analysis);
        match found {
            Subject::Secret(name) => {
                for service in &services {
                    if let Some(secret) = secret_node(graph, service, &name) {
                        parts.push(describe_secret(graph, service, secret));
                        break;
                    }
                }
            }
            Subject::Variable(name) => {
                for service in &model.variables {
                    if !services.is_empty() && !services.contains(&service.service) {
                        continue;
                    }
                    if let Some(v) = service.variables.iter().find(|v| v.name == name) {
                        let value = v
                            .value
                            .as_deref()
                            .map_or_else(|| "no value".to_owned(), |v| format!("`{v}`"));
                        parts.push(format!(
                            "**`{{{{{name}}}}}`** in service `{}`: {value}, from {}",
                            service.service, v.origin
                        ));
                    }
                }
            }
            Subject::Service => {
                for service in &services {
                    if let Some(n) = graph.node(&format!("service:{service}")) {
                        let mut text = format!("**service `{service}`**");
                        if let Some(m) = &n.manifest {
                            text += &format!(", recorded from {}", m.file);
                        }
                        if let Some(count) = n.mrenclaves {
                            text += &format!(
                                "; {count} MRENCLAVE{}",
                                if count == 1 { "" } else { "s" }
                            );
                        }
                        if let Some(session) = &n.session {
                            text += &format!("; session `{session}`");
                        }
                        if let Some(program) = &n.program {
                            text += &format!("; runs `{program}`");
                        }
                        parts.push(text);
                    }
                }
            }
        }
    }
    let keys = position::keys(&hit.path);
    if let Some(kind) = crate::complete::kind_of(text)
        && let Some(place) = schemas.at(kind, &keys)
        && let Some(field) = keys.last()
    {
        let typed = place
            .type_name()
            .map_or_else(String::new, |t| format!(" ({t})"));
        let doc = place.description().unwrap_or_default();
        parts.push(format!("**`{field}`**{typed}\n\n{doc}"));
    }
    if parts.is_empty() {
        return None;
    }
    let span = match &hit.on {
        On::Value(_, span) => Some(*span),
        On::Key => None,
    };
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: parts.join("\n\n---\n\n"),
        }),
        range: span.map(|s| position::range(text, s)),
    })
}

/// A place in a file of the analysis, as the protocol names it.
fn location(analysis: &Analysis, file: &str, line: u32, column: u32) -> Option<Location> {
    let path = Path::new(file);
    let text = (analysis.checked.iter())
        .find(|c| Path::new(&c.file) == path)
        .and_then(|c| c.source.clone())
        .or_else(|| std::fs::read_to_string(path).ok())
        .unwrap_or_default();
    let pos = Pos { line, column };
    let at = position::to_lsp(&text, pos);
    Some(Location {
        uri: Url::from_file_path(path).ok()?,
        range: lsp_types::Range { start: at, end: at },
    })
}

pub fn definition(analysis: &Analysis, path: &Path, text: &str, pos: Pos) -> Option<Location> {
    let node = meshfile_yaml::parse(text, &meshfile_manifest::limits()).ok()?;
    let hit = position::locate(&node, pos)?;
    let model = analysis.model.as_ref()?;
    let graph = &model.graph;
    let services = services_of(graph, path, &hit, analysis);
    match subject(&hit, pos)? {
        Subject::Secret(name) => services.iter().find_map(|s| {
            let at = secret_node(graph, s, &name)?.defined_at.as_ref()?;
            location(analysis, &at.file, at.line, at.column)
        }),
        Subject::Service => services.iter().find_map(|s| {
            let at = graph.node(&format!("service:{s}"))?.manifest.as_ref()?;
            location(analysis, &at.file, at.line, at.column)
        }),
        Subject::Variable(name) => {
            let (file, mesh) = analysis.mesh()?;
            // The section that gives the value: the service's own, then `helm`, then `global`.
            let order = services
                .iter()
                .map(String::as_str)
                .chain(["helm", "global"]);
            for section in order {
                let entry = (mesh.env.iter())
                    .filter(|e| e.service.as_str() == section)
                    .flat_map(|e| e.env.iter().flatten())
                    .find(|kv| kv.name.as_str() == name);
                if let Some(kv) = entry {
                    return location(
                        analysis,
                        file,
                        kv.name.span.start.line,
                        kv.name.span.start.column,
                    );
                }
            }
            None
        }
    }
}

/// The names a service manifest's services can use, for completion: their secrets (defined
/// and imported), their variables, and the secrets other services define (to import). Each
/// with what completion shows beside it.
#[derive(Default)]
pub struct Names {
    pub secrets: Vec<(String, String)>,
    pub variables: Vec<(String, String)>,
    pub importable: Vec<(String, String)>,
}

pub fn names(analysis: &Analysis, path: &Path) -> Names {
    let Some(model) = &analysis.model else {
        return Names::default();
    };
    let graph = &model.graph;
    let services: Vec<&str> = recorded_from(graph, path).collect();
    let mut names = Names::default();
    let add = |list: &mut Vec<(String, String)>, name: &str, detail: String| {
        if !list.iter().any(|(n, _)| n == name) {
            list.push((name.to_owned(), detail));
        }
    };
    for node in graph
        .nodes
        .iter()
        .filter(|n| n.kind == Some(meshfile_graph::NodeKind::Secret))
    {
        let kind = node.secret_kind.as_deref().unwrap_or("secret");
        let owner = node.service.as_deref().unwrap_or("another session");
        if services.contains(&owner) {
            add(
                &mut names.secrets,
                &node.label,
                format!("{kind}, defined here"),
            );
        } else {
            add(
                &mut names.importable,
                &node.label,
                format!("{kind}, defined by {owner}"),
            );
        }
    }
    for edge in graph.edges.iter().filter(|e| e.kind == EdgeKind::Imports) {
        let importer = edge.to.strip_prefix("service:").unwrap_or_default();
        if let (true, Some(name)) = (services.contains(&importer), &edge.label) {
            let from = graph
                .node(&edge.from)
                .and_then(|n| n.service.clone())
                .unwrap_or_default();
            add(&mut names.secrets, name, format!("imported from {from}"));
        }
    }
    for service in model
        .variables
        .iter()
        .filter(|v| services.contains(&v.service.as_str()))
    {
        for v in &service.variables {
            let value = v
                .value
                .as_deref()
                .map_or_else(|| "no value".to_owned(), |v| format!("= {v}"));
            add(
                &mut names.variables,
                &v.name,
                format!("{value} ({})", v.origin),
            );
        }
    }
    names
}
