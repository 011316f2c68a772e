//! Mermaid flowchart: pasted into a Markdown file, GitHub and GitLab draw it.

use std::fmt::Write as _;

use crate::{FINDING_COLOUR, Graph, NodeKind, fill, marks};

/// A label as Mermaid takes it inside `"..."`: quotes and markup as entity codes.
fn label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn shaped(kind: NodeKind, text: &str) -> String {
    let text = label(text);
    match kind {
        NodeKind::Service => format!("[\"{text}\"]"),
        NodeKind::Secret => format!("([\"{text}\"])"),
        NodeKind::Namespace => format!("[/\"{text}\"/]"),
        NodeKind::Cas | NodeKind::Volume => format!("[(\"{text}\")]"),
        NodeKind::Signer => format!("{{{{\"{text}\"}}}}"),
        NodeKind::Image | NodeKind::Destination => format!("[[\"{text}\"]]"),
        _ => format!(">\"{text}\"]"),
    }
}

pub fn mermaid(graph: &Graph) -> String {
    let marks = marks(graph);
    let index = graph.positions();
    let mut out = String::from("flowchart LR\n");
    for (i, node) in graph.nodes.iter().enumerate() {
        let kind = node.kind.unwrap_or(NodeKind::External);
        let _ = writeln!(out, "  n{i}{}", shaped(kind, &node.label));
    }
    out.push_str("  %% The namespace holds every service's session: those edges (in -o json) are left out.\n");
    for edge in graph.edges.iter().filter(|e| e.kind.drawn()) {
        let (Some(from), Some(to)) = (index.get(edge.from.as_str()), index.get(edge.to.as_str()))
        else {
            continue;
        };
        let arrow = if edge.kind.dashed() { "-.->" } else { "-->" };
        let text = match &edge.label {
            Some(l) => format!("{} {l}", edge.kind.as_str()),
            None => edge.kind.as_str().to_owned(),
        };
        let _ = writeln!(out, "  n{from} {arrow}|\"{}\"| n{to}", label(&text));
    }
    for kind in NodeKind::ALL {
        let members: Vec<String> = (graph.nodes.iter().enumerate())
            .filter(|(_, n)| n.kind == Some(kind))
            .map(|(i, _)| format!("n{i}"))
            .collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "  classDef {} fill:{},stroke:#555",
            kind.as_str(),
            fill(kind)
        );
        let _ = writeln!(out, "  class {} {}", members.join(","), kind.as_str());
    }
    let marked: Vec<String> = (graph.nodes.iter().enumerate())
        .filter(|(_, n)| marks.contains_key(n.id.as_str()))
        .map(|(i, _)| format!("n{i}"))
        .collect();
    if !marked.is_empty() {
        let _ = writeln!(
            out,
            "  classDef finding stroke:{FINDING_COLOUR},stroke-width:3px"
        );
        let _ = writeln!(out, "  class {} finding", marked.join(","));
    }
    out
}
