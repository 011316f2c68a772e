//! The user's session signing key: where it lives, reading it (refused when others may), and
//! making it (never replacing one).

use super::*;

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
pub(super) fn kind_name(kind: KeyKind) -> &'static str {
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
