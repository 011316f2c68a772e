//! The client identity meshfile presents to CAS (mTLS): the given file, or the user's, made
//! on first use; and private key files, read only when no one else may.

use std::path::{Path, PathBuf};
use std::time::Duration;

use meshfile_manifest::Code;

use crate::Error;
use crate::access::{CasAccess, Notices};

/// Where the user's client identity lives: `meshfile/identity.pem` in the config directory.
pub fn default_identity_path() -> Result<PathBuf, Error> {
    use etcetera::BaseStrategy;
    let base = etcetera::choose_base_strategy().map_err(|e| {
        Error::new(
            Code::ClientIdentity,
            "no home directory for the client identity",
        )
        .hint("pass `--identity FILE`, or set HOME")
        .caused_by(e)
    })?;
    Ok(base.config_dir().join("meshfile").join("identity.pem"))
}

/// The key hash of the client identity (the given file, or the user's, made on first use).
pub fn client_key_hash(identity_file: Option<&Path>) -> Result<(String, Notices), Error> {
    let settings = CasAccess {
        identity: identity_file.map(Path::to_owned),
        cas_ca: None,
        server_name: String::new(),
        cas_pin: None,
        insecure: false,
        timeout: Duration::from_secs(1),
    };
    let mut notices = Vec::new();
    let pem = identity(&settings, &mut notices)?;
    let hash = meshfile_cas::pki::key_hash_of_pem(&pem)
        .map_err(|e| Error::new(Code::ClientIdentity, format!("the client identity: {e}")))?;
    Ok((hash, notices))
}

/// The client identity: the given file, or the user's, created on first use (readable by
/// its owner only).
pub(crate) fn identity(settings: &CasAccess, notices: &mut Notices) -> Result<String, Error> {
    let path = match &settings.identity {
        Some(path) => path.clone(),
        None => default_identity_path()?,
    };
    match read_private(&path) {
        Ok(pem) => Ok(pem),
        Err(ReadPrivate::Exposed(mode)) => Err(Error::new(
            Code::ClientIdentity,
            format!(
                "{}: the client identity's private key is accessible to others (mode {mode:04o})",
                path.display()
            ),
        )
        .hint(format!(
            "run `chmod 600 {}`; a key others can read is not used",
            path.display()
        ))),
        Err(ReadPrivate::Io(e))
            if settings.identity.is_none() && e.kind() == std::io::ErrorKind::NotFound =>
        {
            let made = |e: meshfile_cas::Error| {
                Error::new(
                    Code::ClientIdentity,
                    format!("cannot make a client identity: {e}"),
                )
            };
            let pem = meshfile_cas::pki::client_identity("meshfile client", None).map_err(made)?;
            crate::write::private_file(&path, pem.as_bytes())?;
            let hash = meshfile_cas::pki::key_hash_of_pem(&pem).map_err(made)?;
            notices.push(format!(
                "created the client identity {} (key hash {hash}); put this hash in access policies that should admit you",
                path.display()
            ));
            Ok(pem)
        }
        Err(ReadPrivate::Io(e)) => Err(Error::read(&path, e)
            .hint("pass `--identity FILE` with a client certificate and key (PEM)")),
    }
}

pub(crate) enum ReadPrivate {
    Io(std::io::Error),
    /// Group or others may read or write it: the permission bits.
    Exposed(u32),
}

/// A file holding a private key, refused (as ssh refuses one) when others may access it. The
/// mode is read from the open file, so it is the mode of what is read.
pub(crate) fn read_private(path: &std::path::Path) -> Result<String, ReadPrivate> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(ReadPrivate::Io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .map_err(ReadPrivate::Io)?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o077 != 0 {
            return Err(ReadPrivate::Exposed(mode));
        }
    }
    let mut pem = String::new();
    let limit = crate::paths::MAX_KEY_FILE;
    file.take(limit + 1)
        .read_to_string(&mut pem)
        .map_err(ReadPrivate::Io)?;
    if pem.len() as u64 > limit {
        return Err(ReadPrivate::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} KiB: a private key file is a few hundred bytes",
                limit / 1024
            ),
        )));
    }
    Ok(pem)
}
