//! Blast radius: what a change to a secret, a service or an image touches.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::Serialize;

use crate::{EdgeKind, Graph, Node, NodeKind};

/// What changes with one secret, service or image, in delivery order.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Affected {
    /// The node the name was resolved to.
    pub subject: String,
    pub kind: NodeKind,
    /// For a secret: the services whose enclaves can read it (its definer, its importers and,
    /// for a private key, the importers of the certificates it is the key of).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readers: Vec<String>,
    /// The sessions whose content changes, in delivery order.
    pub sessions: Vec<String>,
    /// The workloads `helm upgrade` restarts (each changed session's service and the services
    /// that import from it: their pod templates carry the exporters' session hashes), in
    /// delivery order.
    pub restarts: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AffectedError {
    #[error("no secret, service or image of this mesh is called `{name}`")]
    NotFound { name: String, near: Vec<String> },
    #[error("`{name}` names several nodes: {}", matches.join(", "))]
    Ambiguous { name: String, matches: Vec<String> },
}

impl AffectedError {
    pub fn hint(&self) -> String {
        match self {
            AffectedError::NotFound { near, .. } if !near.is_empty() => {
                format!("did you mean {}?", near.join(", "))
            }
            AffectedError::NotFound { .. } => {
                "name a secret (`NAME` or `SERVICE/NAME`), a service, or an image reference as the Meshfile writes it; `meshfile graph -o json` lists them all".into()
            }
            AffectedError::Ambiguous { .. } => {
                "give the secret as `SERVICE/NAME`, or the node's id".into()
            }
        }
    }
}

/// Resolves `name` to one secret, service or image of the graph.
fn resolve<'g>(graph: &'g Graph, name: &str) -> Result<&'g Node, AffectedError> {
    if let Some(node) = graph.node(name) {
        return Ok(node);
    }
    let wanted = |n: &&Node| match n.kind {
        Some(NodeKind::Service) => n.label == name,
        Some(NodeKind::Secret) => {
            n.label == name
                || n.service
                    .as_ref()
                    .is_some_and(|s| format!("{s}/{}", n.label) == name)
        }
        Some(NodeKind::Image) => n.label == name,
        _ => false,
    };
    let matches: Vec<&Node> = graph.nodes.iter().filter(wanted).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => {
            let lower = name.to_ascii_lowercase();
            let near = (graph.nodes.iter())
                .filter(|n| {
                    matches!(
                        n.kind,
                        Some(NodeKind::Service | NodeKind::Secret | NodeKind::Image)
                    )
                })
                .filter(|n| {
                    n.label.to_ascii_lowercase().contains(&lower)
                        || lower.contains(&n.label.to_ascii_lowercase())
                })
                .take(5)
                .map(|n| n.id.clone())
                .collect();
            Err(AffectedError::NotFound {
                name: name.to_owned(),
                near,
            })
        }
        many => Err(AffectedError::Ambiguous {
            name: name.to_owned(),
            matches: many.iter().map(|n| n.id.clone()).collect(),
        }),
    }
}

/// What changes with `name`: a secret (`NAME` or `SERVICE/NAME`), a service, or an image.
pub fn affected_by(graph: &Graph, name: &str) -> Result<Affected, AffectedError> {
    let subject = resolve(graph, name)?;
    let kind = subject.kind.unwrap_or(NodeKind::External);
    let edges_from = |id: &str, kind: EdgeKind| -> Vec<String> {
        (graph.edges.iter())
            .filter(|e| e.from == id && e.kind == kind)
            .map(|e| e.to.clone())
            .collect()
    };
    // The services whose sessions change.
    let changed: BTreeSet<String> = match kind {
        NodeKind::Service => BTreeSet::from([subject.id.clone()]),
        NodeKind::Image => edges_from(&subject.id, EdgeKind::Runs)
            .into_iter()
            .collect(),
        NodeKind::Secret => subject
            .service
            .iter()
            .map(|s| format!("service:{s}"))
            .collect(),
        _ => BTreeSet::new(),
    };
    let mut restarting = changed.clone();
    for service in &changed {
        let name = service.trim_start_matches("service:");
        let owned = graph
            .nodes
            .iter()
            .filter(|n| n.service.as_deref() == Some(name));
        for node in owned {
            restarting.extend(edges_from(&node.id, EdgeKind::Imports));
        }
    }
    let mut readers = BTreeSet::new();
    if kind == NodeKind::Secret {
        readers.extend(changed.iter().cloned());
        readers.extend(edges_from(&subject.id, EdgeKind::Imports));
        for cert in edges_from(&subject.id, EdgeKind::KeyOf) {
            readers.extend(edges_from(&cert, EdgeKind::Imports));
        }
    }
    let in_delivery_order = |services: &BTreeSet<String>| -> Vec<String> {
        let mut named: Vec<(usize, String)> = (services.iter())
            .filter_map(|id| {
                let node = graph.node(id)?;
                let session = node.session.as_deref()?;
                let at = graph
                    .delivery
                    .iter()
                    .position(|d| d == session)
                    .unwrap_or(usize::MAX);
                Some((at, node.label.clone()))
            })
            .collect();
        named.sort();
        named.into_iter().map(|(_, label)| label).collect()
    };
    let sessions = {
        let mut named: Vec<&String> = (changed.iter())
            .filter_map(|id| graph.node(id)?.session.as_ref())
            .collect();
        named.sort_by_key(|s| graph.delivery.iter().position(|d| d == *s));
        named.into_iter().cloned().collect()
    };
    Ok(Affected {
        subject: subject.id.clone(),
        kind,
        readers: in_delivery_order(&readers),
        sessions,
        restarts: in_delivery_order(&restarting),
    })
}
