//! Signed and encrypted uploads: signatures verify, thresholds count signers, signers never
//! read, and an encrypted session opens only for this store's key.

use meshfile_cas::store::Upload;
use meshfile_cas::{Error, Store};
use meshfile_sign::{EncryptionKey, KeyKind, SignedSession, SigningKey, encrypt_signed};

const OWNER: &str = "owner-key";

fn signed(session: &str, keys: &[&SigningKey]) -> String {
    let mut signed = SignedSession::unsigned(session.to_owned());
    for key in keys {
        signed.sign(key).expect("signs");
    }
    signed.to_json()
}

fn write(store: &Store, json: &str) -> Result<String, Error> {
    let upload = Upload::parse_signed(json)?;
    store.write_upload(OWNER, &upload, None).map(|w| w.hash)
}

#[test]
fn a_namespace_requiring_two_of_three_signers_gets_two() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let [a, b, c] = [KeyKind::Ed25519, KeyKind::P384, KeyKind::Ed25519]
        .map(|k| SigningKey::generate(k).expect("key"));
    let signer = |k: &SigningKey| {
        k.public_key()
            .to_pem()
            .lines()
            .map(|l| format!("\n              {l}"))
            .collect::<String>()
    };
    let namespace = format!(
        "name: board\nversion: \"0.3.10\"\naccess_policy:\n  read: [NONE]\n  update: [CREATOR]\n  create_sessions:\n    - require-at-least-2:\n        - signer: |{}\n        - signer: |{}\n        - signer: |{}\n",
        signer(&a),
        signer(&b),
        signer(&c)
    );
    write(&store, &signed(&namespace, &[&a])).expect("the creator signs the namespace");
    let app = "name: board/app\nversion: \"0.3.10\"\n";
    let refused = write(&store, &signed(app, &[&a])).expect_err("one signature is not two");
    let Error::Unapproved { unmet, .. } = &refused else {
        panic!("{refused:?}");
    };
    assert!(
        unmet.contains("1 more of 2 required (1 present)"),
        "{unmet}"
    );
    assert!(unmet.contains(&b.public_key().short_name()));
    write(&store, &signed(app, &[&a, &b])).expect("two of three");

    // The signer who created the namespace may update it (`update: [CREATOR]`); a client
    // certificate alone may not.
    let active = "9".repeat(64);
    let update = |hash: &str| {
        format!("predecessor: {hash}\n{namespace}").replace("read: [NONE]", "read: [NONE, NONE]")
    };
    let refused = store
        .write(OWNER, &update(&active))
        .expect_err("a client is no signer");
    assert!(matches!(refused, Error::Forbidden { .. }), "{refused:?}");

    // A tampered session, and a signature carried over to another session, are refused.
    let mut tampered: serde_json::Value = serde_json::from_str(&signed(
        "name: board/other\nversion: \"0.3.10\"\n",
        &[&a, &c],
    ))
    .expect("json");
    tampered["session"] = "name: board/other\nversion: \"0.3.11\"\n".into();
    let refused = write(&store, &tampered.to_string()).expect_err("tampered");
    assert!(refused.to_string().contains("does not verify"), "{refused}");
}

#[test]
fn encrypted_sessions_open_only_for_their_store() {
    let key = EncryptionKey::derive(&[3; 32]);
    let other = EncryptionKey::derive(&[4; 32]);
    let signer = SigningKey::generate(KeyKind::Ed25519).expect("key");
    let mut session = SignedSession::unsigned("name: solo\nversion: \"0.3.10\"\n".into());
    session.sign(&signer).expect("signs");
    let sealed = encrypt_signed(&signer, &key.public_hex(), &session).expect("seals");
    let upload = Upload::parse_encrypted(&sealed.to_json(), &key).expect("opens");
    assert_eq!(upload.name(), "solo");
    let refused = Upload::parse_encrypted(&sealed.to_json(), &other)
        .err()
        .expect("other key");
    assert!(refused.to_string().contains(&key.public_hex()), "{refused}");
}
