//! `graph`: the mesh as a picture or as data, and the blast radius of a change
//! (`meshfile_app::usecase::graph`).

use std::fmt::Write as _;

use meshfile_app::usecase::graph;
use meshfile_app::{Error, Exit, Stop};
use meshfile_graph::{Affected, Graph};
use meshfile_manifest::Code;

use crate::cli::{GraphArgs, GraphOutput};
use crate::commands::{self, terminal::Terminal};

pub fn run(args: &GraphArgs) -> Result<Exit, Stop> {
    let settings = args.compile.settings()?;
    let ui = Terminal {
        quiet: args.compile.quiet,
        verbose: false,
    };
    let graphs = graph::graph(&settings, &ui)?;
    let text = match &args.affected_by {
        Some(name) => affected(&graphs, name, args.output.unwrap_or(GraphOutput::Human))?,
        None => drawn(&graphs, args.output.unwrap_or(GraphOutput::Dot))?,
    };
    match &args.out {
        Some(path) => meshfile_app::write::user_file(path, text.as_bytes())?,
        None => commands::print(&text)?,
    }
    Ok(Exit::Ok)
}

/// The graphs in one form; several meshes' DOT and Mermaid follow one another, their JSON
/// is a list, and a page shows one mesh.
fn drawn(graphs: &[Graph], output: GraphOutput) -> Result<String, Error> {
    Ok(match (output, graphs) {
        (GraphOutput::Dot, _) => graphs.iter().map(meshfile_graph::dot).collect(),
        (GraphOutput::Mermaid, _) => graphs.iter().map(meshfile_graph::mermaid).collect(),
        (GraphOutput::Json, [one]) => one.to_json(),
        (GraphOutput::Json, _) => serde_json::to_string_pretty(graphs).unwrap_or_default() + "\n",
        (GraphOutput::Html, [one]) => meshfile_graph::html(one),
        (GraphOutput::Svg, [one]) => meshfile_graph::svg(one),
        (GraphOutput::Html | GraphOutput::Svg, _) => {
            return Err(Error::new(
                Code::BadArguments,
                format!(
                    "`-o html` and `-o svg` show one mesh; the inputs hold {}",
                    graphs.len()
                ),
            )
            .hint("give one Meshfile (or its directory) with -f"));
        }
        (GraphOutput::Human, _) => {
            return Err(
                Error::new(Code::BadArguments, "`-o human` is for `--affected-by`")
                    .hint("draw the graph with -o dot, mermaid, json or html"),
            );
        }
    })
}

fn affected(graphs: &[Graph], name: &str, output: GraphOutput) -> Result<String, Error> {
    let mut found = Vec::new();
    for graph in graphs {
        let affected = meshfile_graph::affected_by(graph, name).map_err(|e| {
            Error::new(Code::BadArguments, format!("--affected-by: {e}")).hint(e.hint())
        })?;
        found.push((graph, affected));
    }
    match output {
        GraphOutput::Human => Ok(found.iter().map(|(g, a)| human(g, a)).collect()),
        GraphOutput::Json => {
            let list: Vec<&Affected> = found.iter().map(|(_, a)| a).collect();
            Ok(match list.as_slice() {
                [one] => serde_json::to_string_pretty(one).unwrap_or_default() + "\n",
                _ => serde_json::to_string_pretty(&list).unwrap_or_default() + "\n",
            })
        }
        _ => Err(Error::new(
            Code::BadArguments,
            "`--affected-by` prints `-o human` or `-o json`",
        )
        .hint("leave out -o, or give -o json")),
    }
}

fn human(graph: &Graph, a: &Affected) -> String {
    let mut out = String::new();
    let subject = graph.node(&a.subject);
    let label = subject.map_or(a.subject.as_str(), |n| n.label.as_str());
    let _ = write!(out, "{} `{label}`", a.kind.as_str());
    if let Some(service) = subject.and_then(|n| n.service.as_ref()) {
        let _ = write!(out, " of service `{service}`");
    }
    if let Some(at) = subject.and_then(|n| n.defined_at.as_ref()) {
        let _ = write!(out, " ({}:{}:{})", at.file, at.line, at.column);
    }
    let _ = writeln!(out, " in {}:", graph.mesh);
    if !a.readers.is_empty() {
        let _ = writeln!(out, "  readable by: {}", a.readers.join(", "));
    }
    let list = |out: &mut String, title: &str, items: &[String]| {
        let _ = writeln!(out, "  {title} ({}):", items.len());
        for item in items {
            let _ = writeln!(out, "    {item}");
        }
    };
    list(
        &mut out,
        "sessions that change, in delivery order",
        &a.sessions,
    );
    list(
        &mut out,
        "workloads that restart on `helm upgrade`",
        &a.restarts,
    );
    out
}
