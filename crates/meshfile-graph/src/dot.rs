//! Graphviz DOT: `meshfile graph -o dot | dot -Tsvg > mesh.svg`.

use std::fmt::Write as _;

use crate::{FINDING_COLOUR, Graph, NodeKind, fill, marks};

fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn shape(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Namespace => "folder",
        NodeKind::Cas => "box3d",
        NodeKind::Signer => "hexagon",
        NodeKind::Service => "box",
        NodeKind::Secret => "ellipse",
        NodeKind::Variable | NodeKind::File | NodeKind::Command | NodeKind::Template => "note",
        NodeKind::Volume => "cylinder",
        NodeKind::Image | NodeKind::Destination => "component",
        NodeKind::External => "plaintext",
    }
}

pub fn dot(graph: &Graph) -> String {
    let marks = marks(graph);
    let mut out = String::new();
    let _ = writeln!(out, "digraph mesh {{");
    let _ = writeln!(
        out,
        "  label={};",
        quoted(&format!("{} ({})", graph.namespace, graph.mesh))
    );
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(
        out,
        "  node [fontname=\"Helvetica\", fontsize=10, style=\"filled\"];"
    );
    let _ = writeln!(out, "  edge [fontname=\"Helvetica\", fontsize=8];");
    for node in &graph.nodes {
        let kind = node.kind.unwrap_or(NodeKind::External);
        let mut attributes = vec![
            format!("label={}", quoted(&node.label)),
            format!("shape={}", shape(kind)),
            format!("fillcolor=\"{}\"", fill(kind)),
        ];
        if let Some(codes) = marks.get(node.id.as_str()) {
            attributes.push(format!("color=\"{FINDING_COLOUR}\""));
            attributes.push("penwidth=2".into());
            attributes.push(format!("tooltip={}", quoted(&codes.join(" "))));
        }
        let _ = writeln!(out, "  {} [{}];", quoted(&node.id), attributes.join(", "));
    }
    let _ = writeln!(
        out,
        "  // The namespace holds every service's session: those edges (in -o json) are left out,\n  // as they would cross the whole picture and make Graphviz's layout slow on large meshes."
    );
    for edge in graph.edges.iter().filter(|e| e.kind.drawn()) {
        let mut attributes = vec![format!("class={}", quoted(edge.kind.as_str()))];
        let label = match &edge.label {
            Some(label) => format!("{} {label}", edge.kind.as_str()),
            None => edge.kind.as_str().to_owned(),
        };
        attributes.push(format!("label={}", quoted(&label)));
        if edge.kind.dashed() {
            attributes.push("style=dashed".into());
        }
        let _ = writeln!(
            out,
            "  {} -> {} [{}];",
            quoted(&edge.from),
            quoted(&edge.to),
            attributes.join(", ")
        );
    }
    out.push_str("}\n");
    out
}
