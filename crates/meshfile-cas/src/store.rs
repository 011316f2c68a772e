//! The session store: every version kept forever under its hash, one active version per name.
//!
//! Writes are serialized by redb's single write transaction and are durable when `write`
//! returns (redb commits with fsync), so a crash at any instant leaves every acknowledged
//! version whole and nothing partial. A second process opening the same store is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use meshfile_yaml::{Limits, Node, Value};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::policy::{Operation, allows};
use crate::secrets::{self, SecretValue};
use crate::session::{self, get, list, one_or_many, text};

const ACTIVE: TableDefinition<&str, &str> = TableDefinition::new("active");
const VERSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("versions");

/// One version of a session as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Version {
    pub name: String,
    pub predecessor: Option<String>,
    /// Key hash of the identity that created the session's first version.
    pub creator: String,
    /// The session in canonical YAML (its hash is over these bytes).
    pub session: String,
    pub secrets: BTreeMap<String, SecretValue>,
}

impl Version {
    fn tree(&self) -> Result<Node, Error> {
        meshfile_yaml::parse(&self.session, &Limits::default())
            .map_err(|e| Error::Internal(format!("stored session unreadable: {e}")))
    }
}

/// What a successful write reports. SCONE CAS's answer to a write is not public: only the
/// `hash` is required of it; an answer without one is not taken as success.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Written {
    #[serde(default)]
    pub name: String,
    pub hash: String,
    #[serde(default)]
    pub created: bool,
}

pub struct Store {
    db: Database,
    path: PathBuf,
}

fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        std::fs::create_dir_all(dir).map_err(storage)?;
        // The store holds secret values: only its owner may enter the directory.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(storage)?;
        let path = dir.join("sessions.redb");
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Locked(path.clone()),
            other => storage(other),
        })?;
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(ACTIVE).map_err(storage)?;
        txn.open_table(VERSIONS).map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok(Store { db, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a session (no `predecessor`) or updates it (`predecessor` = the active hash).
    pub fn write(&self, caller: &str, yaml: &str) -> Result<Written, Error> {
        let node = meshfile_yaml::parse(yaml, &Limits::default())
            .map_err(|e| Error::Invalid(format!("the session is not valid YAML: {e}")))?;
        if !matches!(node.value, Value::Mapping(_)) {
            return Err(Error::Invalid("a session is a YAML mapping".into()));
        }
        let name = text(&node, "name")
            .ok_or_else(|| Error::Invalid("the session has no `name`".into()))?
            .to_owned();
        session::check_name(&name)?;
        let predecessor = text(&node, "predecessor").map(str::to_owned);

        let txn = self.db.begin_write().map_err(storage)?;
        let written = {
            let mut active = txn.open_table(ACTIVE).map_err(storage)?;
            let mut versions = txn.open_table(VERSIONS).map_err(storage)?;
            let load = |hash: &str| -> Result<Version, Error> {
                let bytes = versions
                    .get(hash)
                    .map_err(storage)?
                    .ok_or_else(|| Error::Internal(format!("version {hash} is missing")))?;
                serde_json::from_slice(bytes.value()).map_err(storage)
            };
            let current_hash = active
                .get(name.as_str())
                .map_err(storage)?
                .map(|h| h.value().to_owned());
            let current = current_hash.as_deref().map(load).transpose()?;
            let creator = match (&predecessor, &current, &current_hash) {
                (None, Some(_), Some(hash)) => {
                    return Err(Error::Exists {
                        name,
                        active: hash.clone(),
                    });
                }
                (None, _, _) => {
                    if let Some(parent) = session::parent(&name) {
                        let parent_hash = active
                            .get(parent)
                            .map_err(storage)?
                            .map(|h| h.value().to_owned())
                            .ok_or_else(|| {
                                Error::NotFound(format!(
                                    "namespace `{parent}` does not exist; create it before `{name}`"
                                ))
                            })?;
                        let parent_version = load(&parent_hash)?;
                        if !allows(
                            &parent_version.tree()?,
                            &parent_version.creator,
                            caller,
                            Operation::CreateSessions,
                        ) {
                            return Err(Error::Forbidden {
                                session: parent.to_owned(),
                                operation: "create_sessions".into(),
                                caller: caller.to_owned(),
                            });
                        }
                    }
                    caller.to_owned()
                }
                (Some(given), Some(version), Some(hash)) => {
                    if given != hash {
                        return Err(Error::Conflict {
                            name,
                            active: hash.clone(),
                            given: given.clone(),
                        });
                    }
                    if !allows(
                        &version.tree()?,
                        &version.creator,
                        caller,
                        Operation::Update,
                    ) {
                        return Err(Error::Forbidden {
                            session: name,
                            operation: "update".into(),
                            caller: caller.to_owned(),
                        });
                    }
                    version.creator.clone()
                }
                (Some(_), _, _) => {
                    return Err(Error::NotFound(format!(
                        "session `{name}` does not exist; create it without `predecessor`"
                    )));
                }
            };

            // Imports must be exported to this session by their exporter.
            let mut exporters: BTreeMap<String, Version> = BTreeMap::new();
            for secret in list(get(&node, "secrets")) {
                let Some(import) = get(secret, "import") else {
                    continue;
                };
                let (Some(from), Some(what)) = (text(import, "session"), text(import, "secret"))
                else {
                    return Err(Error::Invalid(format!(
                        "secret `{}`: an import names `session` and `secret`",
                        text(secret, "name").unwrap_or("?")
                    )));
                };
                let hash = active.get(from).map_err(storage)?.map(|h| h.value().to_owned()).ok_or_else(|| {
                    Error::Invalid(format!("session `{name}` imports secret `{what}` from `{from}`, which does not exist"))
                })?;
                let exporter = load(&hash)?;
                if !exports_to(&exporter.tree()?, what, &name) {
                    return Err(Error::Invalid(format!(
                        "session `{name}` imports secret `{what}` from `{from}`, but `{from}` does not export it to `{name}`"
                    )));
                }
                exporters.insert(format!("{from}\u{0}{what}"), exporter);
            }
            let imported = |secret_name: &str| -> Option<SecretValue> {
                list(get(&node, "secrets"))
                    .iter()
                    .find(|s| text(s, "name") == Some(secret_name))
                    .and_then(|s| {
                        let import = get(s, "import")?;
                        let key = format!(
                            "{}\u{0}{}",
                            text(import, "session")?,
                            text(import, "secret")?
                        );
                        exporters
                            .get(&key)?
                            .secrets
                            .get(text(import, "secret")?)
                            .cloned()
                    })
            };
            let values = secrets::generate(&node, current.as_ref().map(|v| &v.secrets), &imported)?;

            let canonical = meshfile_yaml::emit(&session::canonical(&node));
            let hash = session::hash(&canonical);
            if versions.get(hash.as_str()).map_err(storage)?.is_some() {
                return Err(Error::Invalid(format!(
                    "a version with hash {hash} exists already; sessions never repeat a hash"
                )));
            }
            let version = Version {
                name: name.clone(),
                predecessor,
                creator,
                session: canonical,
                secrets: values,
            };
            let bytes = serde_json::to_vec(&version).map_err(storage)?;
            versions
                .insert(hash.as_str(), bytes.as_slice())
                .map_err(storage)?;
            active
                .insert(name.as_str(), hash.as_str())
                .map_err(storage)?;
            Written {
                name,
                hash,
                created: current.is_none(),
            }
        };
        txn.commit().map_err(storage)?;
        Ok(written)
    }

    /// The active version of `name`, or the version with `hash`; the caller needs `read`.
    pub fn read(
        &self,
        caller: &str,
        name: &str,
        hash: Option<&str>,
    ) -> Result<(Version, String), Error> {
        let (active, version, hash) = self.load(name, hash)?;
        if !allows(&active.tree()?, &active.creator, caller, Operation::Read) {
            return Err(Error::Forbidden {
                session: name.to_owned(),
                operation: "read".into(),
                caller: caller.to_owned(),
            });
        }
        Ok((version, hash))
    }

    /// The active version and the requested one (the same when `hash` is `None`).
    fn load(&self, name: &str, hash: Option<&str>) -> Result<(Version, Version, String), Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let active = txn.open_table(ACTIVE).map_err(storage)?;
        let versions = txn.open_table(VERSIONS).map_err(storage)?;
        let get_version = |h: &str| -> Result<Option<Version>, Error> {
            versions
                .get(h)
                .map_err(storage)?
                .map(|b| serde_json::from_slice(b.value()).map_err(storage))
                .transpose()
        };
        let active_hash = active
            .get(name)
            .map_err(storage)?
            .map(|h| h.value().to_owned())
            .ok_or_else(|| Error::NotFound(format!("session `{name}` does not exist")))?;
        let current = get_version(&active_hash)?
            .ok_or_else(|| Error::Internal(format!("version {active_hash} is missing")))?;
        match hash {
            None => Ok((current.clone(), current, active_hash)),
            Some(h) => {
                let version = get_version(h)?.filter(|v| v.name == name).ok_or_else(|| {
                    Error::NotFound(format!("session `{name}` has no version {h}"))
                })?;
                Ok((current, version, h.to_owned()))
            }
        }
    }

    /// Secrets of `name` marked `export_public: true`, readable by anyone.
    pub fn public_values(
        &self,
        name: &str,
        secret: Option<&str>,
    ) -> Result<BTreeMap<String, (String, String)>, Error> {
        let (_, version, _) = self.load(name, None)?;
        let tree = version.tree()?;
        // Name to kind, of every secret exported to the public.
        let public: BTreeMap<&str, &str> = list(get(&tree, "secrets"))
            .iter()
            .filter(|s| text(s, "export_public") == Some("true"))
            .filter_map(|s| Some((text(s, "name")?, text(s, "kind").unwrap_or_default())))
            .collect();
        let mut out = BTreeMap::new();
        for (secret_name, value) in &version.secrets {
            let Some(kind) = public.get(secret_name.as_str()) else {
                continue;
            };
            if secret.is_none_or(|s| s == secret_name) {
                let rendered = secrets::render(secret_name, value, None, None)?;
                out.insert(secret_name.clone(), ((*kind).to_owned(), rendered));
            }
        }
        if let Some(s) = secret
            && !out.contains_key(s)
        {
            return Err(Error::Forbidden {
                session: name.to_owned(),
                operation: "read a non-public secret of".into(),
                caller: "anyone".into(),
            });
        }
        Ok(out)
    }

    /// The value of secret `secret` as session `name` sees it: its own, or imported.
    pub(crate) fn secret_of(&self, version: &Version, secret: &str) -> Result<SecretValue, Error> {
        if let Some(value) = version.secrets.get(secret) {
            return Ok(value.clone());
        }
        let tree = version.tree()?;
        let def = list(get(&tree, "secrets"))
            .iter()
            .find(|s| text(s, "name") == Some(secret))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "session `{}` neither defines nor imports secret `{secret}`",
                    version.name
                ))
            })?;
        let import = get(def, "import")
            .ok_or_else(|| Error::Invalid(format!("secret `{secret}` has no value")))?;
        let (from, what) = (
            text(import, "session").unwrap_or_default(),
            text(import, "secret").unwrap_or_default(),
        );
        let (_, exporter, _) = self.load(from, None).map_err(|_| {
            Error::Invalid(format!(
                "session `{}` imports `{what}` from `{from}`, which does not exist",
                version.name
            ))
        })?;
        if !exports_to(&exporter.tree()?, what, &version.name) {
            return Err(Error::Invalid(format!(
                "`{from}` no longer exports `{what}` to `{}`",
                version.name
            )));
        }
        exporter
            .secrets
            .get(what)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("`{from}` has no value for `{what}`")))
    }

    /// For the preview: the active version, checked for `read` by `caller`.
    pub(crate) fn active_for(&self, caller: &str, name: &str) -> Result<Version, Error> {
        self.read(caller, name, None).map(|(v, _)| v)
    }
}

/// Whether the session `exporter` exports secret `secret` to session `importer`.
fn exports_to(exporter: &Node, secret: &str, importer: &str) -> bool {
    list(get(exporter, "secrets"))
        .iter()
        .filter(|s| text(s, "name") == Some(secret))
        .any(|s| {
            one_or_many(get(s, "export")).iter().any(|e| {
                text(e, "session") == Some(importer)
                    || text(e, "namespace")
                        .is_some_and(|ns| importer == ns || importer.starts_with(&format!("{ns}/")))
            })
        })
}
