//! The session store: every version kept forever under its hash, one active version per name.
//!
//! Writes are serialized by redb's single write transaction and are durable when `write`
//! returns (redb commits with fsync), so a crash at any instant leaves every acknowledged
//! version whole and nothing partial. A second process opening the same store is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use meshfile_yaml::{Limits, Node, Value};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;
use meshfile_session::access::{Creator, Principals};
use meshfile_session::signer::PublicKey;

use crate::policy::{self, Operation, allows};
use crate::secrets::{self, SecretValue};
use crate::session::{self, get, list, one_or_many, text};

mod decide;
mod upload;

use decide::*;
pub use upload::Upload;

const ACTIVE: TableDefinition<&str, &str> = TableDefinition::new("active");
const VERSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("versions");
/// Bytes of stored versions written by each identity (key hash), for its quota.
const USAGE: TableDefinition<&str, u64> = TableDefinition::new("usage");
/// Top-level names by their folded form (see [`folded`]), so none can pose as another.
const FOLDED: TableDefinition<&str, &str> = TableDefinition::new("folded");

/// A stored version starts with this tag and the SHA-256 of the JSON that follows.
const RECORD_TAG: &[u8] = b"MV2";

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
            .map_err(|e| Error::Damaged(format!("stored session unreadable: {e}")))
    }

    /// Whether this version's access policy lets `caller` do `op`.
    fn allows(&self, who: Principals<'_>, op: Operation) -> Result<bool, Error> {
        Ok(allows(&self.tree()?, &self.creator, who, op))
    }

    /// What `who` lacks to do `op`, in words.
    fn unmet(&self, who: Principals<'_>, op: Operation) -> Result<String, Error> {
        Ok(policy::unmet(&self.tree()?, &self.creator, who, op))
    }

    fn encode(&self) -> Result<Vec<u8>, Error> {
        let json = serde_json::to_vec(self).map_err(storage)?;
        let mut out = Vec::with_capacity(RECORD_TAG.len() + 32 + json.len());
        out.extend_from_slice(RECORD_TAG);
        out.extend_from_slice(&Sha256::digest(&json));
        out.extend_from_slice(&json);
        Ok(out)
    }

    /// The version stored under `hash`, verified: the record's checksum, and the session's
    /// hash against the key it is stored under. A mismatch is damage, never served.
    fn decode(hash: &str, bytes: &[u8]) -> Result<Version, Error> {
        let damaged = |what: &str| {
            Error::Damaged(format!(
                "version {hash}: {what}; run `meshfile cas check --state DIR` to list all damage"
            ))
        };
        // Versions written before records carried a checksum start with the JSON itself;
        // their session hash is still verified below.
        let json = if bytes.first() == Some(&b'{') {
            bytes
        } else {
            let body = bytes
                .strip_prefix(RECORD_TAG)
                .filter(|b| b.len() >= 32)
                .ok_or_else(|| damaged("the record is not a stored version"))?;
            let (sum, json) = body.split_at(32);
            if Sha256::digest(json).as_slice() != sum {
                return Err(damaged("the record does not match its checksum"));
            }
            json
        };
        let version: Version =
            serde_json::from_slice(json).map_err(|_| damaged("the record is unreadable"))?;
        if session::hash(&version.session) != hash {
            return Err(damaged("the session does not match its hash"));
        }
        Ok(version)
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

/// Bounds a store keeps for every identity.
#[derive(Clone, Copy, Debug)]
pub struct Quota {
    /// Bytes of stored versions one identity may write, all versions counted.
    pub bytes_per_identity: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            bytes_per_identity: 256 * 1024 * 1024,
        }
    }
}

pub struct Store {
    db: Database,
    path: PathBuf,
    quota: Quota,
}

fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

/// A top-level name as compared for look-alikes: lower case, trailing `.` and `~` dropped.
fn folded(name: &str) -> String {
    name.trim_end_matches(['.', '~']).to_ascii_lowercase()
}

/// What [`Store::check`] found.
#[derive(Debug, Default)]
pub struct Checked {
    pub sessions: usize,
    pub versions: usize,
    /// Each problem in a sentence; empty when the store is whole.
    pub problems: Vec<String>,
}

/// A write transaction that commits in two phases: its pages are on disk before the header
/// names it. A last commit that then fails verification can only be damage, and redb refuses
/// to open the file, where a one-phase store would fall back to the commit before it and
/// silently lose an acknowledged write.
fn begin_write(db: &Database) -> Result<redb::WriteTransaction, Error> {
    let mut txn = db.begin_write().map_err(storage)?;
    txn.set_two_phase_commit(true);
    Ok(txn)
}

/// Runs `f`, a call into redb that a damaged file can make panic; `None` if it did. The panic
/// is not printed: the caller reports the damage, once, as an error a user can act on.
fn damage_may_panic<T>(f: impl FnOnce() -> T) -> Option<T> {
    use std::cell::Cell;
    thread_local!(static EXPECTED: Cell<bool> = const { Cell::new(false) });
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !EXPECTED.with(Cell::get) {
                previous(info)
            }
        }));
    });
    EXPECTED.with(|e| e.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    EXPECTED.with(|e| e.set(false));
    result
}

/// How often a write is decided again because a session it read changed meanwhile.
const DECISION_ATTEMPTS: usize = 4;

impl Store {
    /// Opens (or creates) the store in `dir` with the default quota.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        Store::open_with(dir, Quota::default())
    }

    pub fn open_with(dir: &Path, quota: Quota) -> Result<Store, Error> {
        std::fs::create_dir_all(dir).map_err(storage)?;
        // The store holds secret values: only its owner may enter the directory.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(storage)?;
        Store::open_at(dir, quota, |path| Database::create(path))
    }

    /// An empty store held in memory, named by `dir` in messages: what a store that does not
    /// exist yet holds, for a plan that must not make one.
    pub fn empty(dir: &Path) -> Result<Store, Error> {
        Store::open_at(dir, Quota::default(), |_| {
            Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())
        })
    }

    /// Opens the store in `dir` only if one is there, for a check: a missing or empty file
    /// is damage to report, never a new store to make in its place.
    pub fn open_existing(dir: &Path) -> Result<Store, Error> {
        let path = dir.join("sessions.redb");
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > 0 => {
                Store::open_at(dir, Quota::default(), |path| Database::open(path))
            }
            Ok(_) => Err(Error::Damaged(format!(
                "{} is empty: it holds no store",
                path.display()
            ))),
            Err(e) => Err(Error::Damaged(format!("{}: {e}", path.display()))),
        }
    }

    fn open_at(
        dir: &Path,
        quota: Quota,
        open: impl FnOnce(&Path) -> Result<Database, redb::DatabaseError>,
    ) -> Result<Store, Error> {
        let path = dir.join("sessions.redb");
        // A damaged file can make redb panic rather than fail: that is damage too.
        let opened = damage_may_panic(|| open(&path))
            .ok_or_else(|| Error::Damaged(format!("{} cannot be opened", path.display())))?;
        let db = opened.map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Locked(path.clone()),
            other => Error::Damaged(format!("{}: {other}", path.display())),
        })?;
        let txn = begin_write(&db)?;
        {
            let active = txn.open_table(ACTIVE).map_err(storage)?;
            txn.open_table(VERSIONS).map_err(storage)?;
            txn.open_table(USAGE).map_err(storage)?;
            let mut folded_names = txn.open_table(FOLDED).map_err(storage)?;
            // Stores written before look-alike names were refused: index their top-level names.
            if folded_names.is_empty().map_err(storage)? {
                for entry in active.iter().map_err(storage)? {
                    let (name, _) = entry.map_err(storage)?;
                    let name = name.value();
                    if session::parent(name).is_none()
                        && folded_names
                            .get(folded(name).as_str())
                            .map_err(storage)?
                            .is_none()
                    {
                        folded_names
                            .insert(folded(name).as_str(), name)
                            .map_err(storage)?;
                    }
                }
            }
        }
        txn.commit().map_err(storage)?;
        Ok(Store { db, path, quota })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a session (no `predecessor`) or updates it (`predecessor` = the active hash).
    pub fn write(&self, caller: &str, yaml: &str) -> Result<Written, Error> {
        self.write_upload(caller, &Upload::parse(yaml)?, None)
    }

    /// Writes a parsed upload. Secrets are generated outside the write transaction, so a
    /// session with many keys to make holds up nobody else; the write then commits only if
    /// every session it was decided on is unchanged (otherwise it is decided again), and only
    /// before `deadline`: a write that would be answered too late is not committed at all.
    pub fn write_upload(
        &self,
        caller: &str,
        upload: &Upload,
        deadline: Option<std::time::Instant>,
    ) -> Result<Written, Error> {
        for _ in 0..DECISION_ATTEMPTS {
            let decision = {
                let txn = self.db.begin_read().map_err(storage)?;
                let active = txn.open_table(ACTIVE).map_err(storage)?;
                let versions = txn.open_table(VERSIONS).map_err(storage)?;
                decide(&active, &versions, caller, upload)?
            };
            // What the secrets will cost is known before any is generated: a request that
            // asks for more than a session may hold, or than the identity has left, costs
            // the store nothing.
            let cost = secrets::cost(&upload.node);
            secrets::check_cost(&upload.name, cost)?;
            let used = self.used_by(caller)?;
            let limit = self.quota.bytes_per_identity;
            if used.saturating_add(cost.bytes) > limit {
                return Err(Error::QuotaExceeded {
                    caller: caller.to_owned(),
                    used,
                    limit,
                });
            }
            let values = self.generate(upload, &decision)?;
            let canonical = meshfile_yaml::emit(&session::canonical(&upload.node));
            let hash = session::hash(&canonical);
            let version = Version {
                name: upload.name.clone(),
                predecessor: upload.predecessor.clone(),
                creator: decision.creator.clone(),
                session: canonical,
                secrets: values,
            };
            let record = version.encode()?;

            let txn = begin_write(&self.db)?;
            {
                let mut active = txn.open_table(ACTIVE).map_err(storage)?;
                let mut versions = txn.open_table(VERSIONS).map_err(storage)?;
                let mut usage = txn.open_table(USAGE).map_err(storage)?;
                let mut folded_names = txn.open_table(FOLDED).map_err(storage)?;
                let unchanged = decision
                    .read
                    .iter()
                    .map(|(name, hash)| Ok(active_hash(&active, name)? == *hash))
                    .collect::<Result<Vec<bool>, Error>>()?
                    .into_iter()
                    .all(|same| same);
                if !unchanged {
                    continue; // the transaction is dropped: nothing written
                }
                if versions.get(hash.as_str()).map_err(storage)?.is_some() {
                    return Err(Error::Invalid(format!(
                        "a version with hash {hash} exists already; sessions never repeat a hash"
                    )));
                }
                let used = usage.get(caller).map_err(storage)?.map_or(0, |u| u.value());
                let limit = self.quota.bytes_per_identity;
                if used + record.len() as u64 > limit {
                    return Err(Error::QuotaExceeded {
                        caller: caller.to_owned(),
                        used,
                        limit,
                    });
                }
                if decision.current.is_none() && session::parent(&upload.name).is_none() {
                    let key = folded(&upload.name);
                    if let Some(other) = folded_names.get(key.as_str()).map_err(storage)? {
                        return Err(Error::Invalid(format!(
                            "`{}` is too close to the existing top-level session `{}`: names that differ only by case or a trailing `.` or `~` are refused, so that none can pose as another",
                            upload.name,
                            other.value()
                        )));
                    }
                    folded_names
                        .insert(key.as_str(), upload.name.as_str())
                        .map_err(storage)?;
                }
                versions
                    .insert(hash.as_str(), record.as_slice())
                    .map_err(storage)?;
                active
                    .insert(upload.name.as_str(), hash.as_str())
                    .map_err(storage)?;
                usage
                    .insert(caller, used + record.len() as u64)
                    .map_err(storage)?;
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Err(Error::TimedOut(format!(
                    "writing `{}` took too long; it was not committed",
                    upload.name
                )));
            }
            txn.commit().map_err(storage)?;
            return Ok(Written {
                name: upload.name.clone(),
                hash,
                created: decision.current.is_none(),
            });
        }
        Err(Error::TimedOut(format!(
            "`{}` or a session it depends on changed {DECISION_ATTEMPTS} times while it was written; it was not committed, send it again",
            upload.name
        )))
    }

    /// Bytes of stored versions `caller` has written.
    fn used_by(&self, caller: &str) -> Result<u64, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let usage = txn.open_table(USAGE).map_err(storage)?;
        Ok(usage.get(caller).map_err(storage)?.map_or(0, |u| u.value()))
    }

    /// The upload's secret values, from the versions the decision read.
    fn generate(
        &self,
        upload: &Upload,
        decision: &Decision,
    ) -> Result<BTreeMap<String, SecretValue>, Error> {
        let imported = |secret_name: &str| -> Option<SecretValue> {
            list(get(&upload.node, "secrets"))
                .iter()
                .find(|s| text(s, "name") == Some(secret_name))
                .and_then(|s| {
                    let import = get(s, "import")?;
                    let key = format!(
                        "{}\u{0}{}",
                        text(import, "session")?,
                        text(import, "secret")?
                    );
                    decision
                        .exporters
                        .get(&key)?
                        .secrets
                        .get(text(import, "secret")?)
                        .cloned()
                })
        };
        secrets::generate(
            &upload.node,
            decision.current.as_ref().map(|v| &v.secrets),
            &imported,
        )
    }

    /// The active version of `name`, or the version with `hash`; the caller needs `read`.
    /// A caller who may not learn whether `name` exists is refused alike either way.
    pub fn read(
        &self,
        caller: &str,
        name: &str,
        hash: Option<&str>,
    ) -> Result<(Version, String), Error> {
        let refused = || Error::Forbidden {
            session: name.to_owned(),
            operation: "read".into(),
            caller: caller.to_owned(),
        };
        match self.load(name, hash) {
            Ok((active, version, hash)) => {
                if active.allows(Principals::client(caller), Operation::Read)? {
                    Ok((version, hash))
                } else {
                    Err(refused())
                }
            }
            // The session or the asked-for version is missing: say so only to who may know.
            Err(Error::NotFound(message)) => {
                let may_know = match self.load(name, None) {
                    Ok((active, _, _)) => {
                        active.allows(Principals::client(caller), Operation::Read)?
                    }
                    Err(Error::NotFound(_)) => {
                        let txn = self.db.begin_read().map_err(storage)?;
                        let active = txn.open_table(ACTIVE).map_err(storage)?;
                        let versions = txn.open_table(VERSIONS).map_err(storage)?;
                        may_learn_existence(&active, &versions, caller, name)?
                    }
                    Err(e) => return Err(e),
                };
                Err(if may_know {
                    Error::NotFound(message)
                } else {
                    refused()
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The active version and the requested one (the same when `hash` is `None`).
    fn load(&self, name: &str, hash: Option<&str>) -> Result<(Version, Version, String), Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let active = txn.open_table(ACTIVE).map_err(storage)?;
        let versions = txn.open_table(VERSIONS).map_err(storage)?;
        let active_hash = active_hash(&active, name)?
            .ok_or_else(|| Error::NotFound(format!("session `{name}` does not exist")))?;
        let current = load_from(&versions, &active_hash)?;
        match hash {
            None => Ok((current.clone(), current, active_hash)),
            Some(h) => {
                let found = versions.get(h).map_err(storage)?.is_some();
                let version = found
                    .then(|| load_from(&versions, h))
                    .transpose()?
                    .filter(|v| v.name == name)
                    .ok_or_else(|| {
                        Error::NotFound(format!("session `{name}` has no version {h}"))
                    })?;
                Ok((current, version, h.to_owned()))
            }
        }
    }

    /// Verifies the whole store: every version against its hash and checksum, every active
    /// name's history back to its first version, and that no version belongs to no history.
    /// A damaged file can make redb panic: that is reported as damage too.
    pub fn check(&self) -> Result<Checked, Error> {
        damage_may_panic(|| self.check_unguarded()).unwrap_or_else(|| {
            Err(Error::Damaged(format!(
                "{} cannot be read (the database is corrupt)",
                self.path.display()
            )))
        })
    }

    fn check_unguarded(&self) -> Result<Checked, Error> {
        let txn = self.db.begin_read().map_err(storage)?;
        let active = txn.open_table(ACTIVE).map_err(storage)?;
        let versions = txn.open_table(VERSIONS).map_err(storage)?;
        let mut report = Checked::default();
        let mut whole: BTreeMap<String, Version> = BTreeMap::new();
        for entry in versions.iter().map_err(storage)? {
            let (hash, bytes) = entry.map_err(storage)?;
            report.versions += 1;
            match Version::decode(hash.value(), bytes.value()) {
                Ok(version) => {
                    whole.insert(hash.value().to_owned(), version);
                }
                Err(e) => report.problems.push(e.to_string()),
            }
        }
        let mut reached = std::collections::BTreeSet::new();
        for entry in active.iter().map_err(storage)? {
            let (name, hash) = entry.map_err(storage)?;
            let name = name.value();
            report.sessions += 1;
            let mut at = Some(hash.value().to_owned());
            while let Some(hash) = at.take() {
                if !reached.insert(hash.clone()) {
                    report.problems.push(format!(
                        "session `{name}`: version {hash} appears twice in its history"
                    ));
                    break;
                }
                match whole.get(&hash) {
                    Some(v) if v.name == name => at = v.predecessor.clone(),
                    Some(v) => report.problems.push(format!(
                        "session `{name}`: version {hash} belongs to `{}`",
                        v.name
                    )),
                    None if versions.get(hash.as_str()).map_err(storage)?.is_none() => {
                        report.problems.push(format!(
                            "session `{name}`: version {hash} of its history is missing"
                        ))
                    }
                    None => {} // reported as damaged above
                }
            }
        }
        let orphans = whole.keys().filter(|h| !reached.contains(*h)).count();
        if orphans > 0 {
            report.problems.push(format!(
                "{orphans} version(s) belong to no session's history"
            ));
        }
        Ok(report)
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
