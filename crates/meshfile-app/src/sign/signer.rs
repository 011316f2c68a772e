//! Who signs the sessions a run makes: SCONE's CLI, or meshfile's own scheme with a key.

use super::*;

/// Which signer the command line names; resolved to a [`SessionSigner`] when a mode signs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SignerChoice {
    /// The user's own key (made on first use when something is signed).
    #[default]
    UsersKey,
    /// `--signing-key FILE`.
    Key(PathBuf),
    /// `--scone-cli PATH`.
    SconeCli(PathBuf),
}

impl SignerChoice {
    /// Whether signing was asked for on the command line (a key or SCONE's CLI named): then
    /// `Upload` signs too.
    pub fn configured(&self) -> bool {
        *self != SignerChoice::UsersKey
    }
}

/// The signer of a run, loaded.
pub enum SessionSigner {
    Own(SigningKey, PathBuf),
    /// meshfile's scheme without a key of one's own (`plan`): signatures already made count.
    Keyless,
    Scone(SconeCli),
}

/// Whether loading the user's default key made it.
pub struct KeyMade {
    pub path: PathBuf,
    pub key: PublicKey,
}

impl SessionSigner {
    /// The signer `choice` names; the user's key is made when there is none (and said so).
    pub fn load(choice: &SignerChoice) -> Result<(SessionSigner, Option<KeyMade>), Error> {
        match choice {
            SignerChoice::SconeCli(program) => {
                Ok((SessionSigner::Scone(SconeCli::new(program.clone())), None))
            }
            SignerChoice::Key(path) => {
                let (key, path) = load_key(Some(path))?;
                Ok((SessionSigner::Own(key, path), None))
            }
            SignerChoice::UsersKey => {
                let (key, path, made) = load_or_make_default_key()?;
                let made = made.then(|| KeyMade {
                    path: path.clone(),
                    key: key.public_key(),
                });
                Ok((SessionSigner::Own(key, path), made))
            }
        }
    }

    /// As [`SessionSigner::load`], but nothing is made: without a key of the user's, the
    /// signer is [`SessionSigner::Keyless`] (nothing is signed anew).
    pub fn load_for_reading(choice: &SignerChoice) -> Result<SessionSigner, Error> {
        match choice {
            SignerChoice::SconeCli(program) => {
                Ok(SessionSigner::Scone(SconeCli::new(program.clone())))
            }
            SignerChoice::Key(path) => {
                let (key, path) = load_key(Some(path))?;
                Ok(SessionSigner::Own(key, path))
            }
            SignerChoice::UsersKey => Ok(match load_key(None) {
                Ok((key, path)) => SessionSigner::Own(key, path),
                Err(_) => SessionSigner::Keyless,
            }),
        }
    }

    pub fn backend(&self) -> Backend<'_> {
        match self {
            SessionSigner::Own(key, _) => Backend::Own(Some(key)),
            SessionSigner::Keyless => Backend::Own(None),
            SessionSigner::Scone(cli) => Backend::Scone(cli),
        }
    }

    /// The public key sessions are signed with, when meshfile signs.
    pub fn public_key(&self) -> Option<PublicKey> {
        match self {
            SessionSigner::Own(key, _) => Some(key.public_key()),
            _ => None,
        }
    }

    /// The signer as a sentence names it.
    pub fn describe(&self) -> String {
        match self {
            SessionSigner::Own(key, path) => format!(
                "{} ({} {})",
                path.display(),
                key.public_key().algorithm(),
                key.public_key().short_name()
            ),
            SessionSigner::Keyless => "no key of this user's".to_owned(),
            SessionSigner::Scone(cli) => format!(
                "SCONE's CLI {} (untested against SCONE CAS by meshfile)",
                cli.program.display()
            ),
        }
    }

    /// The commands SCONE's CLI ran since last asked.
    pub fn commands_ran(&self) -> Vec<String> {
        match self {
            SessionSigner::Scone(cli) => cli
                .ran
                .lock()
                .map(|mut ran| ran.drain(..).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}
