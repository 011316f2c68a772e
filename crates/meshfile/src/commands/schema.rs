//! `schema` and `completions`: what editors and shells read.

use clap::CommandFactory;
use meshfile_app::{Exit, Stop};
use meshfile_manifest::ManifestKind;

use crate::cli::{Cli, SchemaKind};
use crate::commands::print;

pub fn run(kind: SchemaKind) -> Result<Exit, Stop> {
    let schema = match kind {
        SchemaKind::Mesh => meshfile_manifest::schema(ManifestKind::Mesh),
        SchemaKind::Service => meshfile_manifest::schema(ManifestKind::Service),
        SchemaKind::Plan => crate::commands::review::schema(),
        SchemaKind::Graph => meshfile_graph::schema(),
    };
    print(&(serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"))?;
    Ok(Exit::Ok)
}

pub fn completions(shell: clap_complete::Shell) -> Result<Exit, Stop> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "meshfile", &mut out);
    print(&String::from_utf8_lossy(&out))?;
    Ok(Exit::Ok)
}
