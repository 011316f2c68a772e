//! `graph`: each mesh as a graph of its services, secrets, CAS, signers and images, with
//! the least-privilege findings; nothing written, no registry or CAS asked.

use super::{Event, Purpose, Settings, Ui};
use crate::Stop;

/// The graph of each mesh among the inputs.
pub fn graph(settings: &Settings, ui: &dyn Ui) -> Result<Vec<meshfile_graph::Graph>, Stop> {
    let request = crate::compile::Request {
        graph: true,
        ..super::request(settings, Purpose::Read)
    };
    let compilation = crate::compile::run(&request)?;
    ui.event(Event::Compiled(&compilation));
    Ok(compilation
        .meshes
        .into_iter()
        .filter_map(|mesh| mesh.graph)
        .collect())
}
