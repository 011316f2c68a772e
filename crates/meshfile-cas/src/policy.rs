//! Access policies: who may read a session, update it, or create sessions below it. The
//! language (entries, signers, thresholds) is `meshfile_session::access`; this applies it to
//! a stored session's tree.

use meshfile_session::access::{self, Creator, Entry, Principals};
use meshfile_yaml::Node;

pub use meshfile_session::access::Operation;

use crate::session::get;

/// The entries that govern `op` on a session: its list for `op`; for `create_sessions`
/// without one, the `update` list; without either, `[CREATOR]`. A list that does not parse
/// (never accepted on upload) allows nothing.
pub fn entries(session: &Node, op: Operation) -> Vec<Entry> {
    let policy = get(session, "access_policy");
    let list = policy.and_then(|p| get(p, op.as_str())).or_else(|| {
        (op == Operation::CreateSessions)
            .then(|| policy.and_then(|p| get(p, "update")))
            .flatten()
    });
    match list {
        None => vec![Entry::Creator],
        Some(list) => access::parse_list(list, op).unwrap_or_default(),
    }
}

/// Whether `who` may perform `op` on a session with this tree, created by `creator` (as
/// the store records it).
pub fn allows(session: &Node, creator: &str, who: Principals<'_>, op: Operation) -> bool {
    access::list_allows(
        &entries(session, op),
        who,
        &Creator::from_record(creator),
        op,
    )
}

/// What `who` still lacks to perform `op`, in words, for a refusal a user can act on.
pub fn unmet(session: &Node, creator: &str, who: Principals<'_>, op: Operation) -> String {
    let creator = Creator::from_record(creator);
    let missing: Vec<String> = (entries(session, op).iter())
        .filter_map(|e| e.unmet(who, &creator, op))
        .collect();
    match missing.len() {
        0 => String::new(),
        1 => missing.into_iter().collect(),
        _ => format!("one of: {}", missing.join(" | ")),
    }
}

/// Checks an uploaded session's access policy against the session language, so that no
/// stored session holds a policy that would fail to parse later.
pub fn check(session: &Node) -> Result<(), crate::Error> {
    let Some(policy) = get(session, "access_policy") else {
        return Ok(());
    };
    for op in [
        Operation::Read,
        Operation::Update,
        Operation::CreateSessions,
    ] {
        if let Some(list) = get(policy, op.as_str()) {
            access::parse_list(list, op).map_err(|p| {
                crate::Error::Invalid(format!("access_policy.{}: {}", p.path, p.message))
            })?;
        }
    }
    Ok(())
}
