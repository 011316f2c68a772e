//! Signatures added after the sessions were made: by a signer with meshfile's key, or one
//! made elsewhere (openssl) over the exported message, checked before it is added; the
//! encrypted copies and the chart's resources follow.

use super::*;
use crate::connection::CasConnection;

/// A signature to add to signed sessions.
pub enum SignatureSource<'a> {
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

pub(super) fn read_signed(target: &Path, name: &str) -> Result<SignedSession, Error> {
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

/// What a signer reviews before signing a session: how its version differs from the one it
/// replaces.
pub struct Review {
    pub session: String,
    /// The hash of the version it replaces (its predecessor); `None`: a new session.
    pub predecessor: Option<String>,
    /// One line per difference (`+` added, `~` changed, `-` removed; a secret's value never
    /// shown); every field of a new session. `None`: the replaced version's text is not in
    /// this directory (`EncryptedOnly` keeps none; a directory signed by an older meshfile).
    pub changes: Option<Vec<String>>,
    /// Who signed this version already (signatures that verify; none by SCONE's CLI that
    /// meshfile could check).
    pub signers: Vec<PublicKey>,
    /// What the changes are against: CAS (named) when it was asked, else the directory.
    pub against: Option<String>,
    /// Why CAS would refuse this version: it holds another one than this replaces.
    pub stale: Option<String>,
    /// CAS holds this version already (it was delivered): a signature adds nothing there.
    pub delivered: bool,
}

/// The review of session `name` of `target`: its signed version against the one it replaces.
pub fn review(target: &Path, name: &str) -> Result<Review, Error> {
    let signed = read_signed(target, name)?;
    let predecessor = predecessor_of(&signed.session);
    let replaced = replaced_text(target, name);
    let changes = match (&predecessor, &replaced) {
        (Some(_), None) => None,
        _ => Some(changes(name, replaced.as_deref(), &signed.session)?),
    };
    Ok(Review {
        session: name.to_owned(),
        predecessor,
        changes,
        signers: signed.verified_signers().unwrap_or_default(),
        against: None,
        stale: None,
        delivered: false,
    })
}

/// The review of session `name` against what `cas` holds now: the changes a signature
/// approves there, and whether CAS would take the version at all (it holds the version this
/// one replaces).
pub fn review_against(target: &Path, name: &str, cas: &CasConnection) -> Result<Review, Error> {
    let signed = read_signed(target, name)?;
    let predecessor = predecessor_of(&signed.session);
    let current = cas.active(name)?;
    let short = |h: &str| format!("{}…", h.get(..12).unwrap_or(h));
    let stale = match (&predecessor, current.as_ref().map(|(_, h)| h.as_str())) {
        (Some(p), Some(h)) if !p.eq_ignore_ascii_case(h) => Some(format!(
            "CAS holds version {}, not {} that this one replaces: CAS will refuse it",
            short(h),
            short(p)
        )),
        (Some(p), None) => Some(format!(
            "CAS holds no such session, and this version replaces {}: CAS will refuse it",
            short(p)
        )),
        (None, Some(h)) => Some(format!(
            "CAS holds version {} already, and this new session replaces none: CAS will refuse it",
            short(h)
        )),
        _ => None,
    };
    let held = current.map(|(text, _)| text);
    let changes = changes(name, held.as_deref(), &signed.session)?;
    // What CAS holds already, in meaning, only not as the version this one replaces: this
    // version was delivered (CAS's copy is its successor in name only).
    let delivered = stale.is_some() && held.is_some() && changes.is_empty();
    Ok(Review {
        session: name.to_owned(),
        changes: Some(changes),
        predecessor,
        signers: signed.verified_signers().unwrap_or_default(),
        against: Some(cas.describe()),
        stale: stale.filter(|_| !delivered),
        delivered,
    })
}

fn predecessor_of(session: &str) -> Option<String> {
    hex_line(
        meshfile_yaml::parse(session, &meshfile_yaml::Limits::default())
            .ok()
            .and_then(|n| n.scalar_at("predecessor").map(str::to_owned)),
    )
}

/// The differences from `before` (none: a new session) to the signed text.
fn changes(name: &str, before: Option<&str>, signed: &str) -> Result<Vec<String>, Error> {
    meshfile_plan::delivery::diff_versions(before, signed).ok_or_else(|| {
        Error::new(
            Code::CasInvalid,
            format!("session `{name}`: a signed version is not YAML"),
        )
        .hint("compile it again with `meshfile template`")
    })
}

/// The message to sign for session `name`, as an external tool signs it.
pub fn message(target: &Path, name: &str) -> Result<Vec<u8>, Error> {
    Ok(read_signed(target, name)?.message())
}

/// What signing one session did.
pub struct AddedSignature {
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
    by: &SignatureSource<'_>,
) -> Result<Vec<AddedSignature>, Error> {
    let mut done = Vec::with_capacity(names.len());
    for name in names {
        let mut signed = read_signed(target, name)?;
        let added = match by {
            // SCONE's signatures are SCONE CAS's to check: the CLI decides what to add.
            SignatureSource::Scone(cli) => {
                signed = cli.sign(&signed.to_json())?;
                true
            }
            SignatureSource::Key(key) => {
                add_verified(&mut signed, name, &key.public_key(), |s| s.sign(key))?
            }
            SignatureSource::External { signer, signature } => {
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
            SignatureSource::Scone(_) => Vec::new(),
            _ => signed.verified_signers().unwrap_or_default(),
        };
        done.push(AddedSignature {
            session: name.clone(),
            added,
            signers,
        });
    }
    Ok(done)
}

/// Adds `adding`'s signature with `add` unless it is there; whether it added one. Every
/// signature already there must verify.
pub(super) fn add_verified(
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
pub(super) fn encrypt_again(
    by: &SignatureSource<'_>,
    cas_key: &str,
    signed: &SignedSession,
) -> Result<EncryptedSession, Error> {
    let failed = |e: meshfile_sign::Error| Error::new(Code::UnsupportedMode, e.to_string());
    match by {
        SignatureSource::Key(key) => {
            meshfile_sign::encrypt_signed(key, cas_key, signed).map_err(failed)
        }
        SignatureSource::Scone(cli) => cli.encrypt(signed, cas_key),
        SignatureSource::External { .. } => {
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
pub(super) fn update_resource(
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
