//! Session names and the order sessions go to CAS: the namespace first, exporters before
//! the sessions that import from them.

use super::*;

/// The session a mesh service's policy is: `<namespace>/<service>`.
pub(super) fn service_session_name(namespace: &str, service: &str) -> String {
    format!("{namespace}/{service}")
}

/// The names of the sessions [`compile`] makes of a mesh, known before it compiles: the
/// namespace, then one per service.
pub fn session_names(mesh: &MeshManifest) -> Vec<String> {
    let namespace = mesh.policy.namespace.as_str();
    std::iter::once(namespace.to_owned())
        .chain((mesh.services.iter()).map(|s| service_session_name(namespace, s.effective_name())))
        .collect()
}

/// The namespace session. Without `policy.access_policy`, as meshfile creates it when CAS has
/// none (an existing one is kept as it is); with it, exactly that policy, applied like any
/// other change.
pub(super) fn namespace_session(namespace: &str, mesh: &MeshManifest) -> Document {
    let stated = mesh.policy.access_policy.as_ref().map(|a| a.parsed.clone());
    let create_only = stated.is_none();
    let mut doc = Session {
        name: namespace.to_owned(),
        access_policy: stated.unwrap_or_else(|| AccessPolicy {
            create_sessions: Some(vec![meshfile_session::access::Entry::Creator]),
            ..AccessPolicy::default()
        }),
        ..Session::default()
    }
    .into_document();
    doc.create_only = create_only;
    doc
}

/// A service session's access policy: `read` and `update` of `policy.access_policy` when the
/// Meshfile states one (`create_sessions` governs a namespace's children only), else only
/// the creator's.
pub(super) fn service_access_policy(mesh: &MeshManifest) -> AccessPolicy {
    match &mesh.policy.access_policy {
        Some(stated) => AccessPolicy {
            create_sessions: None,
            ..stated.parsed.clone()
        },
        None => AccessPolicy::default(),
    }
}

/// Sessions that import from another session come after it, so a fresh CAS accepts them.
/// Otherwise mesh order is kept: of the sessions ready to go, the earliest goes first.
pub(super) fn order_exporters_first(sessions: Vec<Document>) -> Vec<Document> {
    use std::cmp::Reverse;
    let index: BTreeMap<&str, usize> = sessions
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name.as_str(), i))
        .collect();
    let mut waiting_for = vec![0usize; sessions.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); sessions.len()];
    for (i, d) in sessions.iter().enumerate() {
        for exporter in &d.imports {
            if let Some(&j) = index.get(exporter.as_str()) {
                waiting_for[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: std::collections::BinaryHeap<Reverse<usize>> = (0..sessions.len())
        .filter(|&i| waiting_for[i] == 0)
        .map(Reverse)
        .collect();
    let mut placed = vec![false; sessions.len()];
    let mut order = Vec::with_capacity(sessions.len());
    let mut earliest_unplaced = 0;
    while order.len() < sessions.len() {
        // A cycle cannot be ordered; keep mesh order for the rest (CAS then reports it).
        let i = match ready.pop() {
            Some(Reverse(i)) => i,
            None => {
                while placed[earliest_unplaced] {
                    earliest_unplaced += 1;
                }
                earliest_unplaced
            }
        };
        if std::mem::replace(&mut placed[i], true) {
            continue;
        }
        order.push(i);
        for &d in &dependents[i] {
            waiting_for[d] -= 1;
            if waiting_for[d] == 0 && !placed[d] {
                ready.push(Reverse(d));
            }
        }
    }
    let mut slots: Vec<Option<Document>> = sessions.into_iter().map(Some).collect();
    order.iter().filter_map(|&i| slots[i].take()).collect()
}

#[cfg(test)]
mod ordering_tests {
    use super::*;

    fn session(name: &str, imports_from: &[&str]) -> Document {
        let secrets: String = imports_from
            .iter()
            .map(|s| format!("  - name: k\n    import:\n      session: {s}\n      secret: k\n"))
            .collect();
        let text = format!("name: {name}\nsecrets:\n{secrets}");
        let text = if imports_from.is_empty() {
            format!("name: {name}\n")
        } else {
            text
        };
        Document::from_tree(
            name.into(),
            meshfile_yaml::parse(&text, &meshfile_manifest::limits()).expect("yaml"),
        )
    }

    fn order(sessions: Vec<Document>) -> Vec<String> {
        order_exporters_first(sessions)
            .into_iter()
            .map(|d| d.name)
            .collect()
    }

    #[test]
    fn exporters_come_first_otherwise_mesh_order() {
        let got = order(vec![
            session("a", &["c"]),
            session("b", &[]),
            session("c", &[]),
            session("d", &["a", "elsewhere"]),
        ]);
        assert_eq!(got, ["b", "c", "a", "d"]);
    }

    #[test]
    fn a_cycle_keeps_mesh_order_for_its_members() {
        let got = order(vec![
            session("x", &["y"]),
            session("y", &["x"]),
            session("z", &[]),
            session("self", &["self"]),
        ]);
        assert_eq!(got, ["z", "x", "y", "self"]);
    }
}
