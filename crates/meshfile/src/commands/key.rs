//! `key`: the session signing key: make one, show its public key.

use meshfile_app::{Error, Exit, Stop};
use meshfile_manifest::Code;
use meshfile_session::signer::PublicKey;
use meshfile_sign::KeyKind;

use crate::cli::{KeyAlgorithm, KeyCommand};
use crate::commands;

pub fn run(command: KeyCommand) -> Result<Exit, Stop> {
    match command {
        KeyCommand::Generate {
            out: Some(out),
            cosign: true,
            ..
        } => {
            if out.exists() {
                // Kept, so that making the key is safe to run twice; another kind of file
                // there is refused.
                let text = meshfile_app::paths::read_key_file(&out)?;
                if !text.contains("ENCRYPTED SIGSTORE PRIVATE KEY")
                    && !text.contains("ENCRYPTED COSIGN PRIVATE KEY")
                {
                    return Err(Error::new(
                        Code::KeyExists,
                        format!(
                            "{} exists and is no cosign key; meshfile never replaces a key",
                            out.display()
                        ),
                    )
                    .hint("name a new file for the cosign key")
                    .into());
                }
                crate::render::eprint(&format!(
                    "the cosign key {} exists; kept (meshfile never replaces a key)\n",
                    out.display()
                ));
                return Ok(Exit::Ok);
            }
            let key = meshfile_sign::cosign::CosignKey::generate()
                .map_err(|e| Error::new(Code::SigningKey, e.to_string()))?;
            let password = commands::terminal::password(&out.display().to_string())?;
            let sealed = key
                .to_pem(&password)
                .map_err(|e| Error::new(Code::SigningKey, e.to_string()))?;
            meshfile_app::write::private_new_file(&out, sealed.as_bytes())?;
            let public = out.with_extension("pub");
            meshfile_app::write::file(&public, key.public_pem().as_bytes())?;
            crate::render::eprint(&format!(
                "made the cosign key {} (mode 0600, sealed with its password) and {}\n",
                out.display(),
                public.display()
            ));
        }
        KeyCommand::Generate { out, algorithm, .. } => {
            let kind = match algorithm {
                KeyAlgorithm::Ed25519 => KeyKind::Ed25519,
                KeyAlgorithm::P384 => KeyKind::P384,
            };
            let (key, path, made) = meshfile_app::sign::generate_key(out.as_deref(), kind)?;
            crate::render::eprint(&if made {
                format!(
                    "made the session signing key {} (mode 0600)\n",
                    path.display()
                )
            } else {
                format!(
                    "the session signing key {} exists; kept (meshfile never replaces a key)\n",
                    path.display()
                )
            });
            commands::print(&describe(&key.public_key()))?;
        }
        KeyCommand::Show { key } => {
            let public = match &key {
                // A public key PEM needs no secrecy; anything else is read as a private key.
                Some(path) if is_public(path) => {
                    let text = meshfile_app::paths::read_key_file(path)?;
                    PublicKey::parse(&text).map_err(|why| {
                        Error::new(Code::SigningKey, format!("{}: {why}", path.display()))
                    })?
                }
                _ => meshfile_app::sign::load_key(key.as_deref())?.0.public_key(),
            };
            commands::print(&describe(&public))?;
        }
    }
    Ok(Exit::Ok)
}

fn is_public(path: &std::path::Path) -> bool {
    meshfile_app::paths::read_key_file(path).is_ok_and(|t| t.contains("-----BEGIN PUBLIC KEY-----"))
}

/// The public key in every form a policy or a person uses.
fn describe(key: &PublicKey) -> String {
    let mut out = format!(
        "# {} session signing key; in an access policy:  - signer: |\n",
        key.algorithm()
    );
    out.push_str(&key.to_pem());
    if let Some(b58) = key.to_base58() {
        out.push_str(&format!("# Base58Check (SCONE's older form): {b58}\n"));
    }
    out
}
