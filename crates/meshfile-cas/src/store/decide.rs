//! The access decision of a write: what the caller may do to the session and its namespace,
//! and the versions that decision read (all must still be active when the write commits).

use super::*;

/// What a write was decided on: the versions it read. When the write commits, each of them
/// must still be active, or the write is decided again.
pub(super) struct Decision {
    pub(super) creator: String,
    pub(super) current: Option<Version>,
    /// Exporters of imported secrets, by `session\0secret`.
    pub(super) exporters: BTreeMap<String, Version>,
    /// `(name, active hash)` of every session the decision read.
    pub(super) read: Vec<(String, Option<String>)>,
}

pub(super) fn load_from(
    versions: &impl ReadableTable<&'static str, &'static [u8]>,
    hash: &str,
) -> Result<Version, Error> {
    let bytes = versions
        .get(hash)
        .map_err(storage)?
        .ok_or_else(|| Error::Damaged(format!("version {hash} is missing")))?;
    Version::decode(hash, bytes.value())
}

pub(super) fn active_hash(
    active: &impl ReadableTable<&'static str, &'static str>,
    name: &str,
) -> Result<Option<String>, Error> {
    Ok(active
        .get(name)
        .map_err(storage)?
        .map(|h| h.value().to_owned()))
}

/// Whether `caller` may learn if `name` exists: anyone, of a top-level name (they are first
/// come, first served: a create tells anyway), and whoever may create sessions in its
/// namespace. Others get the same refusal whether the session exists or not.
pub(super) fn may_learn_existence(
    active: &impl ReadableTable<&'static str, &'static str>,
    versions: &impl ReadableTable<&'static str, &'static [u8]>,
    caller: &str,
    name: &str,
) -> Result<bool, Error> {
    let Some(parent) = session::parent(name) else {
        return Ok(true);
    };
    match active_hash(active, parent)? {
        None => may_learn_existence(active, versions, caller, parent),
        Some(hash) => {
            let parent = load_from(versions, &hash)?;
            Ok(parent.allows(Principals::client(caller), Operation::CreateSessions)?)
        }
    }
}

/// Checks what `upload` by `caller` may do against the tables as they are.
pub(super) fn decide(
    active: &impl ReadableTable<&'static str, &'static str>,
    versions: &impl ReadableTable<&'static str, &'static [u8]>,
    caller: &str,
    upload: &Upload,
) -> Result<Decision, Error> {
    let name = &upload.name;
    let current_hash = active_hash(active, name)?;
    let current = current_hash
        .as_deref()
        .map(|h| load_from(versions, h))
        .transpose()?;
    let mut read = vec![(name.clone(), current_hash.clone())];
    let who = upload.principals(caller);
    let refused = |version: &Version, session: &str, op: Operation, operation: &str| {
        if upload.signers.is_empty() {
            Ok(Error::Forbidden {
                session: session.to_owned(),
                operation: operation.to_owned(),
                caller: caller.to_owned(),
            })
        } else {
            Ok(Error::Unapproved {
                session: session.to_owned(),
                operation: operation.to_owned(),
                unmet: version.unmet(who, op)?,
            })
        }
    };
    let forbidden = |session: &str, operation: &str| Error::Forbidden {
        session: session.to_owned(),
        operation: operation.to_owned(),
        caller: caller.to_owned(),
    };
    let creator = match (&upload.predecessor, &current, &current_hash) {
        (None, existing, _) => {
            if let Some(parent) = session::parent(name) {
                let parent_hash = active_hash(active, parent)?;
                read.push((parent.to_owned(), parent_hash.clone()));
                let Some(parent_hash) = parent_hash else {
                    return Err(if may_learn_existence(active, versions, caller, parent)? {
                        Error::NotFound(format!(
                            "namespace `{parent}` does not exist; create it before `{name}`"
                        ))
                    } else {
                        forbidden(parent, "create_sessions")
                    });
                };
                let parent_version = load_from(versions, &parent_hash)?;
                if !parent_version.allows(who, Operation::CreateSessions)? {
                    return Err(refused(
                        &parent_version,
                        parent,
                        Operation::CreateSessions,
                        "create_sessions",
                    )?);
                }
            }
            if let (Some(version), Some(hash)) = (existing, &current_hash) {
                // The active hash is told only to whoever may read the session.
                return Err(
                    if version.allows(Principals::client(caller), Operation::Read)? {
                        Error::Exists {
                            name: name.clone(),
                            active: hash.clone(),
                        }
                    } else {
                        forbidden(name, "create over the existing")
                    },
                );
            }
            match upload.signers.first() {
                Some(signer) => Creator::Signer(signer.clone()).to_record(),
                None => caller.to_owned(),
            }
        }
        (Some(given), Some(version), Some(hash)) => {
            if !version.allows(who, Operation::Update)? {
                return Err(refused(version, name, Operation::Update, "update")?);
            }
            if given != hash {
                return Err(Error::Conflict {
                    name: name.clone(),
                    active: hash.clone(),
                    given: given.clone(),
                });
            }
            version.creator.clone()
        }
        (Some(_), _, _) => {
            return Err(if may_learn_existence(active, versions, caller, name)? {
                Error::NotFound(format!(
                    "session `{name}` does not exist; create it without `predecessor`"
                ))
            } else {
                forbidden(name, "update")
            });
        }
    };

    // Imports must be exported to this session by their exporter.
    let mut exporters: BTreeMap<String, Version> = BTreeMap::new();
    for secret in list(get(&upload.node, "secrets")) {
        let Some(import) = get(secret, "import") else {
            continue;
        };
        let (Some(from), Some(what)) = (text(import, "session"), text(import, "secret")) else {
            return Err(Error::Invalid(format!(
                "secret `{}`: an import names `session` and `secret`",
                text(secret, "name").unwrap_or("?")
            )));
        };
        let hash = active_hash(active, from)?;
        read.push((from.to_owned(), hash.clone()));
        let hash = hash.ok_or_else(|| {
            Error::Invalid(format!(
                "session `{name}` imports secret `{what}` from `{from}`, which does not exist"
            ))
        })?;
        let exporter = load_from(versions, &hash)?;
        if !exports_to(&exporter.tree()?, what, name) {
            return Err(Error::Invalid(format!(
                "session `{name}` imports secret `{what}` from `{from}`, but `{from}` does not export it to `{name}`"
            )));
        }
        exporters.insert(format!("{from}\u{0}{what}"), exporter);
    }
    Ok(Decision {
        creator,
        current,
        exporters,
        read,
    })
}
