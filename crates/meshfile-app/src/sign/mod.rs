//! Stage 6b, sign: the signed (and encrypted) sessions of the modes that deliver them
//! (`SignedManifest`, `EncryptedManifest`, `EncryptedOnly`), kept in `target/session_files/`.
//!
//! The files are named as sconectl names them, per session `<n>` (the session's name mangled
//! by [`mangle`]): `signed_<n>.json` the signed session (not in `EncryptedOnly`),
//! `encrypted_<n>.json` the encrypted one (encrypting modes), `signed_<n>.predecessor` the
//! hash of *this* version (the next run's predecessor), and the operator resources
//! `signed_manifest_<n>.yaml` / `encrypted_manifest_<n>.yaml` for a later `kubectl apply`.
//! meshfile's own bookkeeping, `meshfile_<n>.json`, holds the session's exact name, the
//! predecessor this version names and, with SCONE's CLI, the hash of the compiled text. A
//! target directory of meshfile's older layout (`<name>.json`, `<name>.hash`, ...) is read
//! and replaced by this one. The predecessor comes from the previous run's files, so no CAS
//! connection is needed; with one (`--upload`), from what CAS holds. A session whose text is unchanged keeps its files as
//! they are, signatures others added included: collecting signatures survives recompiling.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use meshfile_manifest::Code;
use meshfile_manifest::mesh::CasMode;
use meshfile_plan::Compiled;
use meshfile_session::Document;
use meshfile_session::signer::PublicKey;
use meshfile_sign::{EncryptedSession, KeyKind, SignedSession, SigningKey};

use crate::Error;
use crate::write::Tree;

mod add;
mod approvals;
mod keys;
mod resources;
mod scone_cli;
mod signer;

pub use add::*;
pub use approvals::*;
pub use keys::*;
pub use resources::*;
pub use scone_cli::*;
pub use signer::*;

/// The directory under the target directory.
pub const SESSION_FILES: &str = "session_files";
/// A file of `session_files/` is read only up to this size.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// How a mode delivers sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `Upload` with signing configured: signed sessions uploaded directly, no policy
    /// resources in the chart.
    SignedUpload,
    /// Signed sessions (`SignedManifest`).
    Signed,
    /// Signed, then encrypted to the CAS; both kept (`EncryptedManifest`).
    Encrypted,
    /// Only the encrypted sessions are kept: no plaintext policy under the target directory.
    EncryptedOnly,
}

impl Form {
    /// How a compiled mesh delivers its sessions; `None`: plain. `Upload` signs when signing
    /// is configured: a key named on the command line (`signing_key_given`), or signers in
    /// the access policy the Meshfile states (only signed sessions could meet it).
    pub fn of(compiled: &Compiled, signing_key_given: bool) -> Option<Form> {
        match compiled.mode {
            Some(CasMode::SignedManifest) => Some(Form::Signed),
            Some(CasMode::EncryptedManifest) => Some(Form::Encrypted),
            Some(CasMode::EncryptedOnly) => Some(Form::EncryptedOnly),
            None | Some(CasMode::Upload) if signing_key_given || names_signers(compiled) => {
                Some(Form::SignedUpload)
            }
            _ => None,
        }
    }

    pub fn encrypts(self) -> bool {
        matches!(self, Form::Encrypted | Form::EncryptedOnly)
    }

    /// Whether the chart carries the sessions as operator resources.
    pub fn has_resources(self) -> bool {
        self != Form::SignedUpload
    }
}

/// Whether the access policy the Meshfile states (the namespace session's) names a signer.
fn names_signers(compiled: &Compiled) -> bool {
    use meshfile_session::access::Operation;
    let Some(namespace) = compiled.sessions.first().filter(|d| !d.create_only) else {
        return false;
    };
    [Operation::Update, Operation::CreateSessions]
        .iter()
        .any(|&op| {
            meshfile_cas::policy::entries(&namespace.node(), op)
                .iter()
                .any(|e| !e.signers().is_empty())
        })
}

/// One session, signed (and encrypted) for delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    pub name: String,
    /// Made once, never updated (a namespace meshfile creates when CAS has none).
    pub create_only: bool,
    pub predecessor: Option<String>,
    /// The session's hash as CAS computes it.
    pub hash: String,
    pub signed: SignedSession,
    pub encrypted: Option<EncryptedSession>,
    /// Sessions it must follow: its namespace and its exporters.
    pub weight: usize,
    /// The hash of the session text meshfile compiled, when `hash` is another's (SCONE's
    /// CLI re-writes the session it signs): what tells an unchanged session.
    pub source_hash: Option<String>,
    /// Signed by SCONE's CLI: the signatures are SCONE CAS's to check, not meshfile's.
    pub opaque: bool,
    /// The signer the session's `creator:` block names (meshfile's scheme).
    pub creator: Option<String>,
    /// The text of the version this one replaces, as it was signed, when known (not in
    /// `EncryptedOnly`, which keeps no plaintext).
    pub replaces: Option<String>,
}

impl Artifact {
    /// The signers whose signatures verify.
    pub fn signers(&self) -> Vec<PublicKey> {
        if self.opaque {
            return Vec::new();
        }
        self.signed.verified_signers().unwrap_or_default()
    }
}

/// Who signs and encrypts.
pub enum Backend<'a> {
    /// meshfile's own scheme (documented, accepted by meshfile's development CAS), with this
    /// key; without one nothing is signed or encrypted anew.
    Own(Option<&'a SigningKey>),
    /// SCONE's `scone` command line: what it prints is copied verbatim.
    Scone(&'a SconeCli),
}

/// Where the predecessors come from.
pub enum Base<'a> {
    /// The previous run's files (`template`, offline).
    PreviousRun,
    /// What CAS holds: each session's active hash, `None` when it has none (`apply`).
    Active(&'a BTreeMap<String, Option<String>>),
}

pub use meshfile_chart::policies::mangle;

/// The files of one session under `session_files/`.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Signed,
    /// This version's hash: the next version's predecessor.
    Hash,
    Encrypted,
    SignedManifest,
    EncryptedManifest,
    /// meshfile's bookkeeping.
    State,
}

/// Where a session's file of `kind` is.
pub fn file(target: &Path, name: &str, kind: Kind) -> PathBuf {
    let n = mangle(name);
    let file = match kind {
        Kind::Signed => format!("signed_{n}.json"),
        Kind::Hash => format!("signed_{n}.predecessor"),
        Kind::Encrypted => format!("encrypted_{n}.json"),
        Kind::SignedManifest => format!("signed_manifest_{n}.yaml"),
        Kind::EncryptedManifest => format!("encrypted_manifest_{n}.yaml"),
        Kind::State => format!("meshfile_{n}.json"),
    };
    target.join(SESSION_FILES).join(file)
}

/// meshfile's older layout: `session_files/<name>` and a suffix.
fn old_file(target: &Path, name: &str, suffix: &str) -> PathBuf {
    target.join(SESSION_FILES).join(format!("{name}{suffix}"))
}

/// meshfile's record of one session beside sconectl's files.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct State {
    /// The exact session name (the file names hold it mangled).
    session: String,
    /// The predecessor this version names, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    predecessor: Option<String>,
    /// The hash of the text meshfile compiled, when the version's hash is another's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source_hash: Option<String>,
    /// The signer its `creator:` block names (SCONE's form of the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    creator: Option<String>,
    /// The text of the version this one replaces, as it was signed: what a signer reviews
    /// the new version against (`meshfile sign`). Never kept in `EncryptedOnly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replaces: Option<String>,
}

/// Refuses two sessions whose names mangle to one file name: their files would overwrite
/// each other (sconectl's names are lossy).
pub fn check_names(compiled: &Compiled) -> Result<(), Error> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for doc in &compiled.sessions {
        if let Some(other) = seen.insert(mangle(&doc.name), &doc.name) {
            return Err(Error::new(
                Code::UnsupportedMode,
                format!(
                    "sessions `{other}` and `{}` would share the files and resource name `{}` (sconectl's names turn `_ : / .` into `-` and ignore case)",
                    doc.name,
                    mangle(&doc.name)
                ),
            )
            .hint("rename one of the two services"));
        }
    }
    Ok(())
}

/// The previous run's files of one session, as far as they are there and readable.
#[derive(Default)]
struct Previous {
    hash: Option<String>,
    /// Written when `hash` is not the compiled text's own (the `scone` backend).
    source: Option<String>,
    predecessor: Option<String>,
    /// The signer the version's `creator:` block names.
    creator: Option<String>,
    /// The text of the version the previous run's replaced.
    replaces: Option<String>,
    signed: Option<SignedSession>,
    encrypted: Option<EncryptedSession>,
}

fn read_bounded(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_FILE)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

fn hex_line(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Previous {
    fn read(target: &Path, name: &str) -> Previous {
        let Some(state) = read_state(target, name) else {
            return Previous::read_old(target, name);
        };
        let at = |kind| read_bounded(&file(target, name, kind));
        Previous {
            hash: hex_line(at(Kind::Hash)),
            source: hex_line(state.source_hash),
            predecessor: hex_line(state.predecessor),
            creator: state.creator,
            replaces: state.replaces,
            signed: at(Kind::Signed).and_then(|t| SignedSession::from_json(&t).ok()),
            encrypted: at(Kind::Encrypted).and_then(|t| EncryptedSession::from_json(&t).ok()),
        }
    }

    /// meshfile's older layout, read once and then replaced.
    fn read_old(target: &Path, name: &str) -> Previous {
        let at = |suffix: &str| read_bounded(&old_file(target, name, suffix));
        let signed = at(".json").and_then(|t| SignedSession::from_json(&t).ok());
        Previous {
            creator: signed.as_ref().and_then(|s| creator_of(&s.session)),
            hash: hex_line(at(".hash")),
            source: hex_line(at(".source-hash")),
            predecessor: hex_line(at(".predecessor")),
            replaces: None,
            signed,
            encrypted: at(".encrypted.json").and_then(|t| EncryptedSession::from_json(&t).ok()),
        }
    }

    /// The hash of the text the previous run compiled.
    fn source_hash(&self) -> Option<&str> {
        self.source.as_deref().or(self.hash.as_deref())
    }
}

/// The text of the version session `name` replaced, from meshfile's bookkeeping alone (none
/// in meshfile's older layout).
pub(super) fn replaced_text(target: &Path, name: &str) -> Option<String> {
    read_state(target, name).and_then(|s| s.replaces)
}

/// meshfile's bookkeeping of session `name`, when it is there and names that session.
fn read_state(target: &Path, name: &str) -> Option<State> {
    read_bounded(&file(target, name, Kind::State))
        .and_then(|t| serde_json::from_str::<State>(&t).ok())
        .filter(|s| s.session == name)
}

/// The signer a session text's `creator:` block names, if it has one.
fn creator_of(text: &str) -> Option<String> {
    let node = meshfile_yaml::parse(text, &meshfile_yaml::Limits::default()).ok()?;
    let signer = node.get("creator")?.value.scalar_at("signer")?;
    Some(signer.trim_end_matches('\n').to_owned())
}

/// The text of a session as it is signed: `predecessor` first when it has one, and, as
/// SCONE's CLI sets it before signing, a `creator:` block naming the signer last.
fn session_text(doc: &Document, predecessor: Option<&str>, creator: Option<&str>) -> String {
    let mut text = match predecessor {
        Some(p) => format!("predecessor: {p}\n{}", doc.to_yaml()),
        None => doc.to_yaml(),
    };
    if let Some(signer) = creator {
        use meshfile_yaml::{Node, Style};
        let style = if signer.contains('\n') {
            Style::Literal
        } else {
            Style::Plain
        };
        let block = Node::mapping(vec![("signer", Node::scalar(signer.to_owned(), style))]);
        text.push_str(&meshfile_yaml::emit_entries([(
            "creator".to_owned(),
            block,
        )]));
    }
    text
}

/// The hash CAS gives a session's text: SHA-256 of its canonical YAML.
pub fn session_hash(text: &str) -> Result<String, Error> {
    let node = meshfile_yaml::parse(text, &meshfile_yaml::Limits::default()).map_err(|e| {
        Error::new(
            Code::CasInvalid,
            format!("a signed session is not valid YAML: {e}"),
        )
    })?;
    let canonical = meshfile_yaml::emit(&meshfile_cas::session::canonical(&node));
    Ok(meshfile_cas::session::hash(&canonical))
}

/// Signs (and encrypts) every session of a compiled mesh.
pub fn sign(
    compiled: &Compiled,
    form: Form,
    backend: &Backend<'_>,
    target: &Path,
    base: &Base<'_>,
) -> Result<Vec<Artifact>, Error> {
    check_names(compiled)?;
    let cas_key = if form.encrypts() {
        Some(compiled.cas_encryption_key.as_deref().ok_or_else(|| {
            Error::new(
                Code::UnsupportedMode,
                "the encrypting modes (EncryptedManifest, EncryptedOnly) need the CAS's session encryption key",
            )
            .hint("set `cas_encryption_key` of the CAS entry to the key `meshfile cas serve` prints (or `scone cas show-identification --session-encryption-key`)")
        })?)
    } else {
        None
    };
    // Hook weights in plan order: one more than any session a session must follow.
    let mut weights: BTreeMap<&str, usize> = BTreeMap::new();
    for doc in &compiled.sessions {
        let weight = (doc.imports.iter())
            .filter_map(|i| weights.get(i.as_str()))
            .chain(
                doc.name
                    .rsplit_once('/')
                    .and_then(|(ns, _)| weights.get(ns)),
            )
            .max()
            .map_or(0, |w| w + 1);
        weights.insert(&doc.name, weight);
    }
    let one = |doc: &Document| {
        let weight = weights[doc.name.as_str()];
        sign_one(doc, weight, form, backend, target, base, cas_key)
    };
    match backend {
        // SCONE's CLI one session at a time, so that the commands it ran read in plan order.
        Backend::Scone(_) => compiled.sessions.iter().map(one).collect(),
        // meshfile's own scheme on all cores.
        Backend::Own(_) => {
            use rayon::prelude::*;
            compiled.sessions.par_iter().map(one).collect()
        }
    }
}

/// One session signed (and encrypted) against its predecessor.
fn sign_one(
    doc: &Document,
    weight: usize,
    form: Form,
    backend: &Backend<'_>,
    target: &Path,
    base: &Base<'_>,
    cas_key: Option<&str>,
) -> Result<Artifact, Error> {
    let previous = Previous::read(target, &doc.name);
    // Unchanged since the previous run (and, with CAS, that run's version is the one
    // CAS holds): the same version again, with its predecessor and signatures.
    let same = session_text(
        doc,
        previous.predecessor.as_deref(),
        previous.creator.as_deref(),
    );
    let same_hash = session_hash(&same)?;
    let unchanged_since = previous.source_hash() == Some(same_hash.as_str());
    let predecessor = if doc.create_only {
        None
    } else {
        match base {
            Base::Active(active) => {
                let active = active.get(&doc.name).cloned().flatten();
                if unchanged_since && active == previous.hash {
                    previous.predecessor.clone()
                } else {
                    active
                }
            }
            Base::PreviousRun if unchanged_since => previous.predecessor.clone(),
            Base::PreviousRun => previous.hash.clone(),
        }
    };
    // The signer is the creator of what meshfile signs; SCONE's CLI sets its own. An
    // unchanged version keeps its creator, whoever signs now.
    let creator = match backend {
        Backend::Scone(_) => None,
        Backend::Own(_) if unchanged_since => previous.creator.clone(),
        Backend::Own(key) => key
            .map(|k| k.public_key().to_scone())
            .or_else(|| previous.creator.clone()),
    };
    let text = session_text(doc, predecessor.as_deref(), creator.as_deref());
    // Most sessions of a run are what they were: their hash is known already.
    let source = if text == same {
        same_hash
    } else {
        session_hash(&text)?
    };
    let unchanged = previous.source_hash() == Some(source.as_str());
    let made = match backend {
        Backend::Own(key) => own(&previous, &text, unchanged, *key, cas_key, form)?,
        Backend::Scone(cli) => scone(&previous, &text, unchanged, cli, cas_key)?,
    };
    let opaque = matches!(backend, Backend::Scone(_));
    // A new version replaces the one the previous run signed; an unchanged one keeps what
    // that replaced. `EncryptedOnly` keeps no plaintext of any version.
    let replaces = match (form, unchanged) {
        (Form::EncryptedOnly, _) => None,
        (_, true) => previous.replaces.clone(),
        (_, false) => previous.signed.as_ref().map(|s| s.session.clone()),
    };
    Ok(Artifact {
        name: doc.name.clone(),
        create_only: doc.create_only,
        predecessor,
        hash: made.hash.unwrap_or_else(|| source.clone()),
        signed: made.signed,
        encrypted: made.encrypted,
        weight,
        source_hash: opaque.then_some(source),
        opaque,
        creator,
        replaces,
    })
}

/// A session as a backend signed (and encrypted) it.
struct Made {
    signed: SignedSession,
    encrypted: Option<EncryptedSession>,
    /// The hash CAS gives it, when not the compiled text's own.
    hash: Option<String>,
}

/// meshfile's own scheme: the previous version kept when unchanged (with the signatures
/// others added), the key's signature added when missing, encrypted when the mode says.
fn own(
    previous: &Previous,
    text: &str,
    unchanged: bool,
    key: Option<&SigningKey>,
    cas_key: Option<&str>,
    form: Form,
) -> Result<Made, Error> {
    let kept = previous
        .signed
        .clone()
        .filter(|s| unchanged && s.session == text);
    let mut signed = kept
        .clone()
        .unwrap_or_else(|| SignedSession::unsigned(text.to_owned()));
    if let Some(key) = key
        && !signed
            .verified_signers()
            .unwrap_or_default()
            .contains(&key.public_key())
    {
        signed
            .sign(key)
            .map_err(|e| Error::new(Code::SigningKey, e.to_string()))?;
    }
    let encrypted = match cas_key {
        None => None,
        Some(cas_key) => {
            let same_plaintext = form == Form::EncryptedOnly || kept.as_ref() == Some(&signed);
            let reuse = previous.encrypted.clone().filter(|e| {
                unchanged && same_plaintext && e.encryption_key.eq_ignore_ascii_case(cas_key)
            });
            match (reuse, key) {
                (Some(e), _) => Some(e),
                (None, Some(key)) => Some(
                    meshfile_sign::encrypt_signed(key, cas_key, &signed)
                        .map_err(|e| Error::new(Code::UnsupportedMode, e.to_string()))?,
                ),
                (None, None) => None,
            }
        }
    };
    Ok(Made {
        signed,
        encrypted,
        hash: None,
    })
}

/// SCONE's CLI: an unchanged session keeps what the CLI made last time (it is not run
/// again); otherwise `scone session sign`, `encrypt` and `calculate-hash`, copied verbatim.
fn scone(
    previous: &Previous,
    text: &str,
    unchanged: bool,
    cli: &SconeCli,
    cas_key: Option<&str>,
) -> Result<Made, Error> {
    let encrypted_kept = previous
        .encrypted
        .clone()
        .filter(|e| cas_key.is_some_and(|k| e.encryption_key.eq_ignore_ascii_case(k)));
    if unchanged
        && let Some(hash) = &previous.hash
        && (cas_key.is_none() || encrypted_kept.is_some())
        && (previous.signed.is_some() || encrypted_kept.is_some())
    {
        return Ok(Made {
            // EncryptedOnly keeps no signed copy: the encrypted one is all there is.
            signed: previous
                .signed
                .clone()
                .unwrap_or_else(|| SignedSession::unsigned(text.to_owned())),
            encrypted: encrypted_kept,
            hash: Some(hash.clone()),
        });
    }
    let signed = cli.sign(text)?;
    let encrypted = cas_key.map(|k| cli.encrypt(&signed, k)).transpose()?;
    let hash = cli.hash(&signed)?;
    Ok(Made {
        signed,
        encrypted,
        hash: Some(hash),
    })
}

/// Signed sessions are created by their signer, and a signer never reads (SCONE 5.8): a
/// session whose `read` is `[CREATOR]` (meshfile's default, or what the Meshfile states)
/// could be read by nobody, and `plan` and `apply` could not compare what CAS holds. So in
/// the signing modes such a `read` names the client identity `reader` (its key hash) instead,
/// the identity that uploads them.
pub fn readable_by(compiled: &mut Compiled, reader: &str) {
    use meshfile_session::access::{Entry, Operation};
    let readers = [Entry::KeyHash(reader.to_ascii_lowercase())];
    for doc in &mut compiled.sessions {
        // A generated session's policy is read as it is; a template's tree is parsed for it.
        let creator_only = match doc.session() {
            Some(session) => session.access_policy.read == [Entry::Creator],
            None => meshfile_cas::policy::entries(&doc.node(), Operation::Read) == [Entry::Creator],
        };
        if creator_only {
            doc.set_readers(&readers);
        }
    }
}

/// What a chart-delivered mode changes, compared with the previous run's files (the versions
/// the operator registered last, as far as this target directory knows): each session
/// signed against those predecessors, created, updated with the fields that differ, or
/// unchanged. No CAS is asked.
pub fn chart_plan(
    compiled: &Compiled,
    form: Form,
    backend: &Backend<'_>,
    target: &Path,
) -> Result<Vec<meshfile_plan::delivery::Step>, Error> {
    use meshfile_plan::delivery::{Action, Current, plan};
    let artifacts = sign(compiled, form, backend, target, &Base::PreviousRun)?;
    let mut current = BTreeMap::new();
    for doc in &compiled.sessions {
        let previous = Previous::read(target, &doc.name);
        if let Some(hash) = previous.hash {
            let session = previous.signed.map(|s| s.session).unwrap_or_default();
            let creator = None;
            current.insert(
                doc.name.clone(),
                Current {
                    session,
                    hash,
                    creator,
                },
            );
        }
    }
    let mut steps = plan(&compiled.sessions, &current);
    for (step, artifact) in steps.iter_mut().zip(&artifacts) {
        let Some(previous) = current.get(&step.session) else {
            continue;
        };
        if previous.hash == artifact.hash {
            step.action = Action::Unchanged {
                hash: artifact.hash.clone(),
            };
            step.changes.clear();
        } else if !artifact.create_only {
            step.action = Action::Update {
                predecessor: artifact.predecessor.clone().unwrap_or_default(),
            };
            if previous.session.is_empty() {
                step.changes = vec![
                    "~ (EncryptedOnly keeps no plaintext of the previous version to compare with)"
                        .to_owned(),
                ];
            }
        }
    }
    attach(&mut steps, &artifacts, form);
    Ok(steps)
}
