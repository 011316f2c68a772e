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
            meshfile_cas::policy::entries(&namespace.node, op)
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

/// SCONE's `scone` command line, for signing and encrypting sessions the way SCONE CAS
/// accepts them (its message format and cipher are not public). Each command it runs is
/// recorded, so that the caller can show it.
pub struct SconeCli {
    pub program: PathBuf,
    pub ran: std::sync::Mutex<Vec<String>>,
}

impl SconeCli {
    pub fn new(program: PathBuf) -> SconeCli {
        SconeCli {
            program,
            ran: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Runs `scone ARGS... FILE`, with `contents` in FILE (private, removed afterwards);
    /// its standard output, at most [`MAX_FILE`] bytes.
    fn run(&self, args: &[&str], contents: &str) -> Result<String, Error> {
        use std::io::{Read, Write};
        let dir = tempfile::Builder::new()
            .prefix("meshfile-scone-")
            .tempdir()
            .map_err(|e| {
                Error::new(Code::WriteFailed, "cannot make a temporary directory").caused_by(e)
            })?;
        let file = dir.path().join("session");
        let mut f = std::fs::File::create(&file).map_err(|e| Error::write(&file, e))?;
        f.write_all(contents.as_bytes())
            .map_err(|e| Error::write(&file, e))?;
        drop(f);
        let shown = format!(
            "{} {} {}",
            self.program.display(),
            args.join(" "),
            file.display()
        );
        if let Ok(mut ran) = self.ran.lock() {
            ran.push(shown.clone());
        }
        let failed = |why: String| {
            Error::new(Code::SconeCli, format!("`{shown}` failed: {why}"))
                .hint("check that SCONE's CLI is installed, attested to the CAS and has its session signing key (`scone self show-session-signing-key`)")
        };
        let mut child = std::process::Command::new(&self.program)
            .args(args)
            .arg(&file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| failed(e.to_string()))?;
        let mut out = String::new();
        if let Some(stdout) = child.stdout.take() {
            stdout
                .take(MAX_FILE)
                .read_to_string(&mut out)
                .map_err(|e| failed(e.to_string()))?;
        }
        let mut err = String::new();
        if let Some(stderr) = child.stderr.take() {
            let _ = stderr.take(64 * 1024).read_to_string(&mut err);
        }
        let status = child.wait().map_err(|e| failed(e.to_string()))?;
        if !status.success() {
            return Err(failed(format!("{status}: {}", err.trim())));
        }
        Ok(out)
    }

    /// `scone session sign FILE`: the signed session's JSON, as it is.
    pub fn sign(&self, session_or_signed: &str) -> Result<SignedSession, Error> {
        let out = self.run(&["session", "sign"], session_or_signed)?;
        SignedSession::from_json(&out)
            .map_err(|e| Error::new(Code::SconeCli, format!("`scone session sign` printed {e}")))
    }

    /// `scone session encrypt --key KEY FILE`.
    pub fn encrypt(
        &self,
        signed: &SignedSession,
        cas_key: &str,
    ) -> Result<EncryptedSession, Error> {
        let out = self.run(&["session", "encrypt", "--key", cas_key], &signed.to_json())?;
        EncryptedSession::from_json(&out).map_err(|e| {
            Error::new(
                Code::SconeCli,
                format!("`scone session encrypt` printed {e}"),
            )
        })
    }

    /// `scone session calculate-hash FILE`: the hash SCONE CAS gives the session.
    pub fn hash(&self, signed: &SignedSession) -> Result<String, Error> {
        let out = self.run(&["session", "calculate-hash"], &signed.to_json())?;
        hex_line(Some(out)).ok_or_else(|| {
            Error::new(
                Code::SconeCli,
                "`scone session calculate-hash` printed no hash (64 hex digits)",
            )
        })
    }
}

/// Where the predecessors come from.
pub enum Base<'a> {
    /// The previous run's files (`template`, offline).
    PreviousRun,
    /// What CAS holds: each session's active hash, `None` when it has none (`apply`).
    Cas(&'a BTreeMap<String, Option<String>>),
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
        let state = read_bounded(&file(target, name, Kind::State))
            .and_then(|t| serde_json::from_str::<State>(&t).ok())
            .filter(|s| s.session == name);
        let Some(state) = state else {
            return Previous::read_old(target, name);
        };
        let at = |kind| read_bounded(&file(target, name, kind));
        Previous {
            hash: hex_line(at(Kind::Hash)),
            source: hex_line(state.source_hash),
            predecessor: hex_line(state.predecessor),
            creator: state.creator,
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
            signed,
            encrypted: at(".encrypted.json").and_then(|t| EncryptedSession::from_json(&t).ok()),
        }
    }

    /// The hash of the text the previous run compiled.
    fn source_hash(&self) -> Option<&str> {
        self.source.as_deref().or(self.hash.as_deref())
    }
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
        let block = Node::mapping(vec![("signer".into(), Node::scalar(signer, style))]);
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
            Base::Cas(active) => {
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

/// The files of `session_files/`, sconectl's and meshfile's; `cas_url` addresses the
/// operator resources (none for the embedded store, which has no address).
pub fn files(artifacts: &[Artifact], form: Form, target: &Path, cas_url: &str) -> Tree {
    use meshfile_chart::policies::resource_yaml;
    let dir = target.join(SESSION_FILES);
    let relative = |name: &str, kind| {
        file(target, name, kind)
            .strip_prefix(&dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let address = (cas_url != meshfile_plan::EMBEDDED_CAS)
        .then(|| format!("https://{}", crate::deliver::with_port(cas_url)));
    let mut files = Vec::with_capacity(artifacts.len() * 5);
    for a in artifacts {
        let state = State {
            session: a.name.clone(),
            predecessor: a.predecessor.clone(),
            source_hash: a.source_hash.clone(),
            creator: a.creator.clone(),
        };
        let state = serde_json::to_string_pretty(&state).unwrap_or_default() + "\n";
        files.push((relative(&a.name, Kind::State), state.into_bytes()));
        files.push((
            relative(&a.name, Kind::Hash),
            format!("{}\n", a.hash).into_bytes(),
        ));
        if form != Form::EncryptedOnly {
            files.push((
                relative(&a.name, Kind::Signed),
                a.signed.to_json().into_bytes(),
            ));
            if let Some(address) = &address {
                let resource = resource(a, Form::Signed);
                files.push((
                    relative(&a.name, Kind::SignedManifest),
                    resource_yaml(address, &resource).into_bytes(),
                ));
            }
        }
        if let Some(e) = &a.encrypted {
            files.push((relative(&a.name, Kind::Encrypted), e.to_json().into_bytes()));
            if let Some(address) = &address {
                files.push((
                    relative(&a.name, Kind::EncryptedManifest),
                    resource_yaml(address, &resource(a, form)).into_bytes(),
                ));
            }
        }
    }
    Tree { dir, files }
}

/// The operator resource of one session in `form`.
fn resource(a: &Artifact, form: Form) -> meshfile_chart::policies::PolicyResource {
    use meshfile_chart::policies::{PolicyBody, PolicyResource};
    PolicyResource {
        session: a.name.clone(),
        weight: a.weight,
        body: match (&a.encrypted, form) {
            (Some(e), Form::Encrypted | Form::EncryptedOnly) => PolicyBody::Encrypted {
                policy: e.encrypted_session.clone(),
                encryption_key: e.encryption_key.clone(),
            },
            _ => PolicyBody::Signed {
                policy: a.signed.session.clone(),
                signatures: (a.signed.signatures.iter())
                    .map(|s| (s.signer.clone(), s.signature.clone()))
                    .collect(),
            },
        },
    }
}

/// The chart files of the policy resources: one per session, in hook order.
pub fn chart_files(
    artifacts: &[Artifact],
    form: Form,
    cas_url: &str,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    use meshfile_chart::policies::{PolicyResource, policy_files};
    if cas_url == meshfile_plan::EMBEDDED_CAS {
        return Err(Error::new(
            Code::UnsupportedMode,
            "SignedPolicy and EncryptedPolicy resources name the CAS the operator registers them in, and the embedded store has no address",
        )
        .hint("point `cas_url` at a CAS the cluster reaches (`meshfile cas serve`, or SCONE CAS)"));
    }
    let mut resources: Vec<PolicyResource> = artifacts.iter().map(|a| resource(a, form)).collect();
    resources.sort_by_key(|r| r.weight);
    let address = format!("https://{}", crate::deliver::with_port(cas_url));
    Ok(policy_files(&address, &resources).into_iter().collect())
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
        if meshfile_cas::policy::entries(&doc.node, Operation::Read) == [Entry::Creator] {
            doc.set_readers(&readers);
        }
    }
}

/// Where the user's session signing key lives: `meshfile/signing-key.pem` in the config
/// directory, beside the client identity.
pub fn default_key_path() -> Result<PathBuf, Error> {
    Ok(crate::identity::default_identity_path()
        .map_err(|e| Error::new(Code::SigningKey, e.message.clone()))?
        .with_file_name("signing-key.pem"))
}

/// The signing key at `path` (default: the user's), refused when others may read it.
pub fn load_key(path: Option<&Path>) -> Result<(SigningKey, PathBuf), Error> {
    use crate::identity::ReadPrivate;
    let path = match path {
        Some(p) => p.to_owned(),
        None => default_key_path()?,
    };
    let pem = match crate::identity::read_private(&path) {
        Ok(pem) => pem,
        Err(ReadPrivate::Exposed(mode)) => {
            return Err(Error::new(
                Code::SigningKey,
                format!(
                    "{}: the signing key is accessible to others (mode {mode:04o})",
                    path.display()
                ),
            )
            .hint(format!("run `chmod 600 {}`", path.display())));
        }
        Err(ReadPrivate::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::new(
                Code::SigningKey,
                format!("no session signing key at {}", path.display()),
            )
            .hint("make one with `meshfile key generate` (or name a PKCS#8 PEM key with `--signing-key FILE`)"));
        }
        Err(ReadPrivate::Io(e)) => return Err(Error::read(&path, e)),
    };
    let key = SigningKey::from_pem(&pem)
        .map_err(|e| Error::new(Code::SigningKey, format!("{}: {e}", path.display())))?;
    Ok((key, path))
}

/// The user's signing key, made on first use as SCONE's CLI has its session signing key
/// without a separate step; whether it was made now.
pub fn load_or_make_default_key() -> Result<(SigningKey, PathBuf, bool), Error> {
    let path = default_key_path()?;
    if path.exists() {
        // Whatever its kind: the user's key is the one they made.
        let (key, path) = load_key(Some(&path))?;
        return Ok((key, path, false));
    }
    generate_key(Some(&path), KeyKind::Ed25519)
}

/// A key kind as a sentence names it.
fn kind_name(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Ed25519 => "an Ed25519",
        KeyKind::P384 => "an ECDSA P-384",
    }
}

/// The signing key at `path` (default: the user's), made there, readable by its owner only,
/// unless a key of that kind is there already, which is kept: never replaced, so that running
/// it twice is safe. Whether it was made now.
pub fn generate_key(
    path: Option<&Path>,
    kind: KeyKind,
) -> Result<(SigningKey, PathBuf, bool), Error> {
    let path = match path {
        Some(p) => p.to_owned(),
        None => default_key_path()?,
    };
    if path.exists() {
        let (key, path) = load_key(Some(&path))?;
        if key.kind() != kind {
            return Err(Error::new(
                Code::KeyExists,
                format!(
                    "{} holds {} key, not {}; meshfile never replaces a key",
                    path.display(),
                    kind_name(key.kind()),
                    kind_name(kind)
                ),
            )
            .hint("name a new file with `--out FILE` for a key of another kind"));
        }
        return Ok((key, path, false));
    }
    let key =
        SigningKey::generate(kind).map_err(|e| Error::new(Code::SigningKey, e.to_string()))?;
    crate::write::private_new_file(&path, key.to_pem().as_bytes())?;
    Ok((key, path, true))
}

/// What one session's signatures amount to before it is written.
#[derive(Clone, Debug)]
pub struct Approval {
    pub session: String,
    pub signers: Vec<PublicKey>,
    /// What is still missing, in words; `None` when the signatures suffice.
    pub unmet: Option<String>,
    /// Whose rule decides: `create_sessions of NAMESPACE` or `update of SESSION`.
    pub rule: Option<String>,
    /// Signed by SCONE's CLI: only SCONE CAS can check the signatures.
    pub opaque: bool,
}

/// For each session a delivery would write (by the mTLS `client`), its signers and what the
/// rule that governs the write (the namespace's `create_sessions` for a new session, the active version's `update`
/// for a new version) still lacks; as CAS decides it, so that `apply` refuses before writing.
pub fn approvals(
    artifacts: &[Artifact],
    steps: &[meshfile_plan::delivery::Step],
    current: &BTreeMap<String, meshfile_plan::delivery::Current>,
    client: &str,
) -> Vec<Approval> {
    use meshfile_cas::policy::{self, Operation};
    use meshfile_plan::delivery::Action;
    use meshfile_session::access::{Creator, Principals};
    let by_name: BTreeMap<&str, &Artifact> =
        artifacts.iter().map(|a| (a.name.as_str(), a)).collect();
    let mut out = Vec::new();
    for step in steps {
        let Some(artifact) = by_name.get(step.session.as_str()) else {
            continue;
        };
        if matches!(step.action, Action::Unchanged { .. }) {
            continue;
        }
        if artifact.opaque {
            out.push(Approval {
                session: step.session.clone(),
                signers: Vec::new(),
                unmet: None,
                rule: None,
                opaque: true,
            });
            continue;
        }
        let signers = artifact.signers();
        // The governing session's text and creator, and the operation.
        let governing: Option<(String, String, Operation, String)> = match &step.action {
            Action::Unchanged { .. } => continue,
            Action::Update { .. } => current.get(&step.session).map(|c| {
                (
                    c.session.clone(),
                    c.creator.clone().unwrap_or_default(),
                    Operation::Update,
                    format!("update of `{}`", step.session),
                )
            }),
            Action::Create => step.session.rsplit_once('/').and_then(|(parent, _)| {
                let rule = format!("create_sessions of `{parent}`");
                match (current.get(parent), by_name.get(parent)) {
                    (Some(c), _) => Some((
                        c.session.clone(),
                        c.creator.clone().unwrap_or_default(),
                        Operation::CreateSessions,
                        rule,
                    )),
                    (None, Some(p)) => p.signers().first().map(|first| {
                        (
                            p.signed.session.clone(),
                            Creator::Signer(first.clone()).to_record(),
                            Operation::CreateSessions,
                            rule,
                        )
                    }),
                    (None, None) => None,
                }
            }),
        };
        let (unmet, rule) = match governing {
            None => (None, None),
            Some((text, creator, op, rule)) => {
                let who = Principals {
                    client: Some(client),
                    signers: &signers,
                };
                let unmet = meshfile_yaml::parse(&text, &meshfile_yaml::Limits::default())
                    .ok()
                    .filter(|node| !policy::allows(node, &creator, who, op))
                    .map(|node| policy::unmet(&node, &creator, who, op));
                (unmet, Some(rule))
            }
        };
        out.push(Approval {
            session: step.session.clone(),
            signers,
            unmet,
            rule,
            opaque: false,
        });
    }
    out
}

/// Sends each written step's signed (or encrypted) session instead of its plain text.
pub fn attach(steps: &mut [meshfile_plan::delivery::Step], artifacts: &[Artifact], form: Form) {
    use meshfile_plan::delivery::SignedUpload;
    let by_name: BTreeMap<&str, &Artifact> =
        artifacts.iter().map(|a| (a.name.as_str(), a)).collect();
    for step in steps {
        if let Some(a) = by_name.get(step.session.as_str()) {
            step.signed = Some(match (&a.encrypted, form) {
                (Some(e), Form::Encrypted | Form::EncryptedOnly) => {
                    SignedUpload::Encrypted(e.to_json())
                }
                _ => SignedUpload::Signed(a.signed.to_json()),
            });
        }
    }
}

/// A signature to add to signed sessions.
pub enum Signer<'a> {
    /// Made here with this key.
    Key(&'a SigningKey),
    /// Made elsewhere (an HSM, `openssl pkeyutl`) over the exported message.
    External {
        signer: PublicKey,
        signature: Vec<u8>,
    },
    /// SCONE's CLI, with its own session signing key.
    Scone(&'a SconeCli),
}

/// The signed sessions under `target/session_files`, by name.
pub fn signed_sessions(target: &Path) -> Result<Vec<String>, Error> {
    let root = target.join(SESSION_FILES);
    if !root.is_dir() {
        return Err(Error::new(
            Code::InputNotFound,
            format!("{} holds no signed sessions", root.display()),
        )
        .hint("run `meshfile template` on a Meshfile whose CAS has `mode: SignedManifest` or `EncryptedManifest`, or name the directory handed over with `-t DIR`"));
    }
    let mut names = Vec::new();
    for entry in walkdir::WalkDir::new(&root)
        .max_depth(16)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| Error::new(Code::ReadFailed, e.to_string()))?;
        let rel = entry.path().strip_prefix(&root).unwrap_or(entry.path());
        let rel = rel.to_string_lossy();
        if !entry.file_type().is_file() || !rel.ends_with(".json") {
            continue;
        }
        if let Some(mangled) = rel
            .strip_prefix("meshfile_")
            .and_then(|r| r.strip_suffix(".json"))
        {
            // sconectl's layout: the state file names the session; only signed ones count.
            let state = read_bounded(entry.path())
                .and_then(|t| serde_json::from_str::<State>(&t).ok())
                .filter(|s| mangle(&s.session) == mangled);
            if let Some(state) = state
                && file(target, &state.session, Kind::Signed).is_file()
            {
                names.push(state.session);
            }
        } else if (rel.contains('/')
            || !["signed_", "encrypted_"].iter().any(|p| rel.starts_with(p)))
            && let Some(name) = rel.strip_suffix(".json")
            && !name.ends_with(".encrypted")
        {
            // meshfile's older layout: `<name>.json`.
            names.push(name.to_owned());
        }
        if names.len() > 100_000 {
            return Err(Error::new(
                Code::Limit,
                format!("{} holds more than 100,000 sessions", root.display()),
            ));
        }
    }
    Ok(names)
}

fn read_signed(target: &Path, name: &str) -> Result<SignedSession, Error> {
    let mut path = file(target, name, Kind::Signed);
    if !path.exists() {
        path = old_file(target, name, ".json");
    }
    let text = read_bounded(&path).ok_or_else(|| {
        Error::new(Code::ReadFailed, format!("cannot read {}", path.display()))
            .hint("`meshfile plan` lists the sessions; names are `NAMESPACE/SERVICE`")
    })?;
    SignedSession::from_json(&text)
        .map_err(|e| Error::new(Code::CasInvalid, format!("{}: {e}", path.display())))
}

/// The message to sign for session `name`, as an external tool signs it.
pub fn message(target: &Path, name: &str) -> Result<Vec<u8>, Error> {
    Ok(read_signed(target, name)?.message())
}

/// What signing one session did.
pub struct Signing {
    pub session: String,
    /// Whether the signature is new (signing twice adds nothing).
    pub added: bool,
    pub signers: Vec<PublicKey>,
}

/// Adds a signature to the signed sessions `names` of `target` (their files, the encrypted
/// copies and the chart's policy resources), without recompiling anything.
pub fn add_signature(
    target: &Path,
    names: &[String],
    by: &Signer<'_>,
) -> Result<Vec<Signing>, Error> {
    let mut done = Vec::with_capacity(names.len());
    for name in names {
        let mut signed = read_signed(target, name)?;
        let added = match by {
            // SCONE's signatures are SCONE CAS's to check: the CLI decides what to add.
            Signer::Scone(cli) => {
                signed = cli.sign(&signed.to_json())?;
                true
            }
            Signer::Key(key) => {
                add_verified(&mut signed, name, &key.public_key(), |s| s.sign(key))?
            }
            Signer::External { signer, signature } => {
                add_verified(&mut signed, name, signer, |s| s.add(signer, signature))?
            }
        };
        if added {
            crate::write::file(
                &file(target, name, Kind::Signed),
                signed.to_json().as_bytes(),
            )?;
            let encrypted_path = file(target, name, Kind::Encrypted);
            let encrypted =
                read_bounded(&encrypted_path).and_then(|t| EncryptedSession::from_json(&t).ok());
            if let Some(old) = &encrypted {
                let again = encrypt_again(by, &old.encryption_key, &signed)?;
                crate::write::file(&encrypted_path, again.to_json().as_bytes())?;
            }
            update_resource(target, name, &signed, encrypted.is_some())?;
        }
        let signers = match by {
            Signer::Scone(_) => Vec::new(),
            _ => signed.verified_signers().unwrap_or_default(),
        };
        done.push(Signing {
            session: name.clone(),
            added,
            signers,
        });
    }
    Ok(done)
}

/// Adds `adding`'s signature with `add` unless it is there; whether it added one. Every
/// signature already there must verify.
fn add_verified(
    signed: &mut SignedSession,
    name: &str,
    adding: &PublicKey,
    add: impl FnOnce(&mut SignedSession) -> Result<(), meshfile_sign::Error>,
) -> Result<bool, Error> {
    let before = signed.verified_signers().map_err(|e| {
        Error::new(Code::CasInvalid, format!("session `{name}`: {e}"))
            .hint("a file that no longer verifies was changed after it was signed: compile it again with `meshfile template`")
    })?;
    if before.contains(adding) {
        return Ok(false);
    }
    add(signed).map_err(|e| {
        Error::from_sign(e, &format!("session `{name}`"))
            .hint("sign exactly the bytes `meshfile sign --export-message` wrote, with the key whose public half is given")
    })?;
    Ok(true)
}

/// A signed session encrypted again after a signature was added: with the signer's key's
/// derived ephemeral key, by SCONE's CLI, or (an external signature, no key here) with a
/// fresh random one.
fn encrypt_again(
    by: &Signer<'_>,
    cas_key: &str,
    signed: &SignedSession,
) -> Result<EncryptedSession, Error> {
    let failed = |e: meshfile_sign::Error| Error::new(Code::UnsupportedMode, e.to_string());
    match by {
        Signer::Key(key) => meshfile_sign::encrypt_signed(key, cas_key, signed).map_err(failed),
        Signer::Scone(cli) => cli.encrypt(signed, cas_key),
        Signer::External { .. } => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| {
                Error::new(
                    Code::SigningKey,
                    format!("no randomness for the encryption: {e}"),
                )
            })?;
            meshfile_sign::seal(cas_key, signed.to_json().as_bytes(), seed).map_err(failed)
        }
    }
}

/// Writes the chart's policy resource of session `name` again with its new signatures (or
/// its new ciphertext), keeping its address and weight.
fn update_resource(
    target: &Path,
    name: &str,
    signed: &SignedSession,
    encrypted: bool,
) -> Result<(), Error> {
    use meshfile_chart::policies::{PolicyBody, PolicyResource, resource_name, resource_yaml};
    let dir = target.join("helm").join("policies");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let wanted = resource_name(name);
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(text) = read_bounded(&path) else {
            continue;
        };
        let Ok(node) = meshfile_yaml::parse(&text, &meshfile_yaml::Limits::default()) else {
            continue;
        };
        let field = |outer: &str, inner: &str| {
            node.get(outer)
                .and_then(|e| e.value.scalar_at(inner))
                .map(str::to_owned)
        };
        if field("metadata", "name").as_deref() != Some(wanted.as_str()) {
            continue;
        }
        let weight = node
            .get("metadata")
            .and_then(|m| m.value.get("annotations"))
            .and_then(|a| a.value.scalar_at("helm.sh/hook-weight"))
            .and_then(|w| w.parse().ok())
            .unwrap_or(0);
        let address = field("spec", "casAddress").unwrap_or_default();
        let body = match (encrypted, field("spec", "encryptionKey")) {
            (true, Some(_)) => {
                let text = read_bounded(&file(target, name, Kind::Encrypted));
                let Some(e) = text.and_then(|t| EncryptedSession::from_json(&t).ok()) else {
                    return Ok(());
                };
                PolicyBody::Encrypted {
                    policy: e.encrypted_session,
                    encryption_key: e.encryption_key,
                }
            }
            _ => PolicyBody::Signed {
                policy: signed.session.clone(),
                signatures: (signed.signatures.iter())
                    .map(|s| (s.signer.clone(), s.signature.clone()))
                    .collect(),
            },
        };
        let kind = match body {
            PolicyBody::Encrypted { .. } => Kind::EncryptedManifest,
            PolicyBody::Signed { .. } => Kind::SignedManifest,
        };
        let resource = PolicyResource {
            session: name.to_owned(),
            weight,
            body,
        };
        let text = resource_yaml(&address, &resource);
        crate::write::file(&path, text.as_bytes())?;
        // The copy for `kubectl apply` says the same.
        crate::write::file(&file(target, name, kind), text.as_bytes())?;
    }
    Ok(())
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
