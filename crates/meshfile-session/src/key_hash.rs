//! Key hashes: how CAS names a key (a client in an access policy, a CAS by its `cas_key`):
//! the SHA-256 of the key. People write one as 64 hex digits, or as SCONE writes `cas_key`
//! (`scone cas show-identification -c`): Base58Check in the Bitcoin alphabet, version byte 1,
//! the 32 bytes, and a 4-byte checksum.

/// Why a text is no key hash.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyHashError {
    #[error("`{0}` is Base58Check, but not of a 32-byte hash")]
    NotAHash(String),
    #[error("`{0}` has a wrong Base58Check checksum: a character is mistyped")]
    Checksum(String),
    #[error("`{0}` is neither 64 hex digits nor a Base58Check key hash")]
    Neither(String),
}

/// A key hash in either form, checksum verified; lower-case hex.
pub fn parse(text: &str) -> Result<String, KeyHashError> {
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(text.to_ascii_lowercase());
    }
    match bs58::decode(text).with_check(Some(1)).into_vec() {
        Ok(bytes) if bytes.len() == 33 => Ok(hex::encode(&bytes[1..])),
        Ok(_) => Err(KeyHashError::NotAHash(text.to_owned())),
        Err(bs58::decode::Error::InvalidChecksum { .. }) => {
            Err(KeyHashError::Checksum(text.to_owned()))
        }
        Err(_) => Err(KeyHashError::Neither(text.to_owned())),
    }
}

/// A key hash (hex) in SCONE's Base58Check form; `None` unless it is 64 hex digits.
pub fn base58check(key_hash_hex: &str) -> Option<String> {
    let bytes = hex::decode(key_hash_hex).ok().filter(|b| b.len() == 32)?;
    Some(bs58::encode(bytes).with_check_version(1).into_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_name_the_same_hash() {
        // The Meshfile specification's example cas_key.
        let scone = "46YyxrywJ8PFRruWX8YLxa9q4axxYJgTbA81tv7NBcJfn43DQt";
        let hex = parse(scone).expect("the spec's example is valid");
        assert_eq!(hex.len(), 64);
        assert_eq!(base58check(&hex).as_deref(), Some(scone));
        assert_eq!(parse(&hex.to_ascii_uppercase()), Ok(hex));
        let mistyped = scone.replace('Y', "Z");
        assert_eq!(parse(&mistyped), Err(KeyHashError::Checksum(mistyped)));
        assert_eq!(parse("zz"), Err(KeyHashError::Neither("zz".into())));
    }
}
