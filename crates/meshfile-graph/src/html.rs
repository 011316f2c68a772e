//! One self-contained HTML page: the layout computed here, the picture inline SVG, the
//! script and style inline; nothing is fetched when it is viewed.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::layout::{LABEL_CHARS, Layout, NODE_HEIGHT, layout};
use crate::{Graph, Node, NodeKind, marks};

type Marks<'g> = std::collections::BTreeMap<&'g str, Vec<&'g str>>;

const STYLE: &str = include_str!("../assets/graph.css");
const SCRIPT: &str = include_str!("../assets/graph.js");

/// Text for HTML and SVG, in content and in quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn shown(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        return label.to_owned();
    }
    let cut: String = label.chars().take(LABEL_CHARS - 1).collect();
    cut + "…"
}

/// What a node's tooltip and the details panel say.
fn details(node: &Node, codes: Option<&Vec<&str>>) -> String {
    let kind = node.kind.map_or("node", |k| k.as_str());
    // The id is the node's `data-id`: the page's script adds it to the details it shows.
    let mut lines = vec![format!("{kind} {}", node.label)];
    let mut add = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            lines.push(format!("{name}: {value}"));
        }
    };
    add("service", node.service.clone());
    add("secret kind", node.secret_kind.clone());
    add("image", node.image.clone());
    add("MRENCLAVEs", node.mrenclaves.map(|n| n.to_string()));
    add("program", node.program.clone());
    add("session", node.session.clone());
    add(
        "roles",
        (!node.roles.is_empty()).then(|| node.roles.join(", ")),
    );
    add("address", node.address.clone());
    add(
        "exported to",
        (!node.exported_to.is_empty()).then(|| node.exported_to.join(", ")),
    );
    add(
        "defined at",
        node.defined_at
            .as_ref()
            .map(|l| format!("{}:{}:{}", l.file, l.line, l.column)),
    );
    add("findings", codes.map(|c| c.join(" ")));
    lines.join("\n")
}

fn edge_path(layout: &Layout, from: usize, to: usize) -> String {
    let (a, b) = (layout.boxes[from], layout.boxes[to]);
    let ((x1, y1), (x2, y2)) = if b.x > a.x {
        (a.right(), b.left())
    } else {
        (a.left(), b.right())
    };
    let bend = (x1.abs_diff(x2) / 2).max(40) as i64;
    let (x1, y1, x2, y2) = (x1 as i64, y1 as i64, x2 as i64, y2 as i64);
    let (c1, c2) = if x2 > x1 {
        (x1 + bend, x2 - bend)
    } else {
        (x1 - bend, x2 + bend)
    };
    format!("M{x1},{y1}C{c1},{y1} {c2},{y2} {x2},{y2}")
}

pub fn html(graph: &Graph) -> String {
    let layout = layout(graph);
    let marks = marks(graph);
    let dom = graph.positions();
    let mut out = String::with_capacity(graph.nodes.len() * 300 + graph.edges.len() * 110 + 16_384);
    let title = format!("meshfile graph: {}", graph.namespace);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"meshfile {}\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        crate::SCHEMA,
        escape(&title)
    );
    let _ = write!(
        out,
        "<header><h1>{}</h1><input id=\"search\" type=\"search\" placeholder=\"Search services, secrets, images\" aria-label=\"Search\"><span id=\"count\"></span><button id=\"reset\" type=\"button\">Reset view</button><span>{} services, {} secrets, {} findings</span></header>\n<main>\n<div id=\"view\">\n",
        escape(&graph.namespace),
        count(graph, NodeKind::Service),
        count(graph, NodeKind::Secret),
        graph.findings.len()
    );
    out.push_str(&picture(graph, &dom, &layout, &marks, &title, false));
    out.push_str("</div>\n<aside>\n");
    out.push_str("<section id=\"details\"><h2>Selection</h2><pre id=\"details-text\">Click a node to see what it reaches. Drag to pan, scroll to zoom.</pre><p id=\"details-reach\"></p></section>\n");
    let _ = write!(
        out,
        "<section id=\"findings\"><h2>Findings ({})</h2>",
        graph.findings.len()
    );
    if graph.findings.is_empty() {
        out.push_str("<p>No least-privilege findings.</p>");
    } else {
        out.push_str("<ul>\n");
        for f in &graph.findings {
            let nodes: Vec<String> = (f.nodes.iter())
                .filter_map(|id| dom.get(id.as_str()))
                .map(|i| format!("n{i}"))
                .collect();
            let _ = writeln!(
                out,
                "<li data-nodes=\"{}\"><code>{}</code> {}:{}:{}: {}<em>{}</em></li>",
                nodes.join(" "),
                escape(&f.code),
                escape(&f.file),
                f.line,
                f.column,
                escape(&f.message),
                escape(&f.hint)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>\n<section id=\"legend\"><h2>Legend</h2>\n");
    for kind in NodeKind::ALL.into_iter().filter(|k| count(graph, *k) > 0) {
        let _ = writeln!(
            out,
            "<div><span class=\"swatch\" style=\"background:{}\"></span>{}</div>",
            crate::fill(kind),
            kind.as_str()
        );
    }
    out.push_str("<div><span class=\"swatch\" style=\"border:3px solid #c0392b\"></span>marked by a finding</div>\n");
    out.push_str("<p>Edges: red imports a secret, amber uses it, dashed waits for; hover an edge for its kind.</p>\n");
    out.push_str("</section>\n</aside>\n</main>\n<script>\n");
    out.push_str(SCRIPT);
    out.push_str("</script>\n</body>\n</html>\n");
    out
}

/// The picture: edges under nodes, each node a group with its id, label and details. A
/// standalone picture (an SVG file) carries its size and the nodes' and edges' style.
fn picture(
    graph: &Graph,
    dom: &HashMap<&str, usize>,
    layout: &Layout,
    marks: &Marks<'_>,
    title: &str,
    standalone: bool,
) -> String {
    let mut out = String::with_capacity(graph.nodes.len() * 300 + graph.edges.len() * 110);
    let _ = write!(
        out,
        "<svg id=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\"{size} role=\"img\" aria-label=\"{}\">\n{style}\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0L10,5L0,10z\" fill=\"#8a8a8a\"/></marker></defs>\n<g id=\"scene\">\n<g id=\"edges\">\n",
        escape(title),
        w = layout.width,
        h = layout.height,
        size = if standalone {
            format!(" width=\"{}\" height=\"{}\"", layout.width, layout.height)
        } else {
            String::new()
        },
        style = if standalone {
            format!("<style>\n{}</style>\n", picture_style())
        } else {
            String::new()
        },
    );
    for edge in &graph.edges {
        let (Some(&f), Some(&t)) = (dom.get(edge.from.as_str()), dom.get(edge.to.as_str())) else {
            continue;
        };
        if f == t {
            continue;
        }
        let label = match &edge.label {
            Some(l) => format!("{} {}", edge.kind.as_str(), l),
            None => edge.kind.as_str().to_owned(),
        };
        let _ = writeln!(
            out,
            "<path class=\"e {}\" d=\"{}\" data-f=\"n{f}\" data-t=\"n{t}\"><title>{}</title></path>",
            edge.kind.as_str(),
            edge_path(layout, f, t),
            escape(&label)
        );
    }
    out.push_str("</g>\n<g id=\"nodes\">\n");
    for (i, node) in graph.nodes.iter().enumerate() {
        let kind = node.kind.unwrap_or(NodeKind::External);
        let place = layout.boxes[i];
        let codes = marks.get(node.id.as_str());
        let _ = writeln!(
            out,
            "<g class=\"n {}{}\" id=\"n{i}\" data-id=\"{}\" transform=\"translate({},{})\"><rect width=\"{}\" height=\"{NODE_HEIGHT}\" rx=\"6\" fill=\"{}\"/><text x=\"10\" y=\"18\">{}</text><title>{}</title></g>",
            kind.as_str(),
            if codes.is_some() { " marked" } else { "" },
            escape(&node.id),
            place.x,
            place.y,
            place.width,
            crate::fill(kind),
            escape(&shown(&node.label)),
            escape(&details(node, codes))
        );
    }
    out.push_str("</g>\n</g>\n</svg>\n");
    out
}

/// The picture alone, as an SVG file: what the page shows, styled, without the script.
pub fn svg(graph: &Graph) -> String {
    let layout = layout(graph);
    let marks = marks(graph);
    let title = format!("meshfile graph: {}", graph.namespace);
    let picture = picture(graph, &graph.positions(), &layout, &marks, &title, true);
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{picture}")
}

/// The page's rules for nodes and edges: all an SVG file needs.
fn picture_style() -> String {
    (STYLE.lines())
        .filter(|l| l.starts_with(".n") || l.starts_with(".e"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn count(graph: &Graph, kind: NodeKind) -> usize {
    graph.nodes.iter().filter(|n| n.kind == Some(kind)).count()
}
