//! A session upload as the store takes it: YAML, signed or encrypted, parsed with bounds.

use super::*;

/// A session upload, parsed with bounds relative to its size: an alias may not make the tree
/// much bigger than the text (no alias bombs), and nesting is limited.
pub struct Upload {
    pub(super) node: Node,
    pub(super) name: String,
    pub(super) predecessor: Option<String>,
    /// The signers whose signatures of the session verified; empty for an unsigned upload,
    /// which the mTLS client makes on its own authority.
    pub(super) signers: Vec<PublicKey>,
}

impl Upload {
    pub fn parse(yaml: &str) -> Result<Upload, Error> {
        let limits = Limits {
            max_bytes: crate::BODY_LIMIT as u64,
            max_depth: 32,
            // Without aliases, a tree has at most about one node per byte of text.
            max_nodes: yaml.len() + 64,
        };
        let node = meshfile_yaml::parse(yaml, &limits)
            .map_err(|e| Error::Invalid(format!("the session is not valid YAML: {e}")))?;
        if !matches!(node.value, Value::Mapping(_)) {
            return Err(Error::Invalid("a session is a YAML mapping".into()));
        }
        let name = text(&node, "name")
            .ok_or_else(|| Error::Invalid("the session has no `name`".into()))?
            .to_owned();
        session::check_name(&name)?;
        policy::check(&node)?;
        let predecessor = text(&node, "predecessor").map(str::to_owned);
        Ok(Upload {
            node,
            name,
            predecessor,
            signers: Vec::new(),
        })
    }

    /// A signed session (`{"session", "signatures"}`): every signature must verify over the
    /// session's text, which then counts as made by its signers.
    pub fn parse_signed(json: &str) -> Result<Upload, Error> {
        let signed = meshfile_sign::SignedSession::from_json(json)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let mut upload = Upload::parse(&signed.session)?;
        if signed.signatures.is_empty() {
            return Err(Error::Invalid(format!(
                "the signed session `{}` carries no signature",
                upload.name
            )));
        }
        upload.signers = signed
            .verified_signers()
            .map_err(|e| Error::Invalid(format!("session `{}`: {e}", upload.name)))?;
        Ok(upload)
    }

    /// An encrypted session (`{"encrypted_session", "encryption_key"}`) for this CAS's `key`:
    /// it holds a signed session.
    pub fn parse_encrypted(
        json: &str,
        key: &meshfile_sign::EncryptionKey,
    ) -> Result<Upload, Error> {
        let encrypted = meshfile_sign::EncryptedSession::from_json(json)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let plaintext =
            meshfile_sign::open(key, &encrypted).map_err(|e| Error::Invalid(e.to_string()))?;
        let text = String::from_utf8(plaintext)
            .map_err(|_| Error::Invalid("the decrypted session is not UTF-8".into()))?;
        Upload::parse_signed(&text)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Who makes this upload: the mTLS client `caller`, and its signers if it is signed.
    pub(super) fn principals<'a>(&'a self, caller: &'a str) -> Principals<'a> {
        Principals {
            client: Some(caller),
            signers: &self.signers,
        }
    }
}
