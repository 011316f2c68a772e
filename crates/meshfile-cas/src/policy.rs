//! Access policies: who may read a session, update it, or create sessions below it.

use meshfile_yaml::Node;

use crate::session::{get, list};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Read,
    Update,
    CreateSessions,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::CreateSessions => "create_sessions",
        }
    }
}

/// Whether `caller` may perform `op` on a session with this tree, created by `creator`.
/// Entries: `CREATOR`, `ANY`, `NONE`, or a client key hash. `create_sessions` defaults to the
/// `update` list, and a missing list to `[CREATOR]`.
pub fn allows(session: &Node, creator: &str, caller: &str, op: Operation) -> bool {
    let policy = get(session, "access_policy");
    let entries = policy.and_then(|p| get(p, op.as_str())).or_else(|| {
        (op == Operation::CreateSessions)
            .then(|| policy.and_then(|p| get(p, "update")))
            .flatten()
    });
    let Some(entries) = entries else {
        return caller == creator;
    };
    list(Some(entries))
        .iter()
        .filter_map(Node::as_scalar)
        .any(|entry| match entry {
            "ANY" => true,
            "NONE" => false,
            "CREATOR" => caller == creator,
            key => key.eq_ignore_ascii_case(caller),
        })
}
