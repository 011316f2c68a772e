//! The store's rules, in process: versions, predecessors, namespaces, access, secrets, preview.

use meshfile_cas::{Error, Store};
use x509_parser::prelude::*;

const OWNER: &str = "owner-key";
const OTHER: &str = "other-key";

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    (dir, store)
}

fn namespace(store: &Store, name: &str) -> String {
    let yaml = format!(
        "name: {name}\nversion: \"0.3.10\"\naccess_policy:\n  read: [CREATOR]\n  update: [CREATOR]\n  create_sessions: [CREATOR]\n"
    );
    store.write(OWNER, &yaml).expect("namespace").hash
}

const APP: &str = r#"name: ns/app
version: "0.3.10"
services:
  - name: python3
    image_name: app_image
    attestation:
      mrenclave: ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]
    command: python3 app.py --token $$SCONE::token$$
    environment:
      PASSWORD: "$$SCONE::password$$"
      HEX: "$$SCONE::blob:hex$$"
      B64: "$$SCONE::blob:base64$$"
      JSON: "$$SCONE::note|escape(json)$$"
images:
  - name: app_image
    injection_files:
      - path: /etc/server.crt
        content: $$SCONE::server:crt$$
      - path: /etc/server.key
        content: $$SCONE::server:privatekey$$
      - path: /etc/chain.pem
        content: $$SCONE::server:chain$$
secrets:
  - name: password
    kind: ascii
    size: 12
  - name: token
    kind: ascii
  - name: note
    kind: ascii
    value: "say \"hi\""
  - name: blob
    kind: binary
    size: 4
  - name: ca_key
    kind: private-key
    key_type: P-384
  - name: ca
    kind: x509-ca
    common_name: App CA
    private_key: ca_key
  - name: server_key
    kind: private-key
    migrate: "true"
  - name: server
    kind: x509
    private_key: server_key
    issuer: ca
    endpoint: server
    dns: ["app.example", "app"]
    valid_for: 90 days
    export:
      - namespace: ns
access_policy:
  read: [CREATOR]
  update: [CREATOR]
"#;

#[test]
fn create_read_update_conflict_and_history() {
    let (_d, store) = store();
    namespace(&store, "ns");
    let first = store.write(OWNER, APP).expect("create");
    assert!(first.created);
    assert_eq!(first.hash.len(), 64);
    let (version, hash) = store.read(OWNER, "ns/app", None).expect("read");
    assert_eq!(hash, first.hash);
    assert!(version.session.contains("name: ns/app"));

    // Create again: refused with the active hash.
    assert_eq!(
        store.write(OWNER, APP),
        Err(Error::Exists {
            name: "ns/app".into(),
            active: first.hash.clone()
        })
    );
    // Update with the right predecessor.
    let update = format!(
        "predecessor: {}\n{}",
        first.hash,
        APP.replace("size: 12", "size: 12\n    export_public: \"true\"")
    );
    let second = store.write(OWNER, &update).expect("update");
    assert!(!second.created);
    // A stale predecessor is a conflict naming the active hash.
    let stale = format!("predecessor: {}\n{}", first.hash, APP);
    assert_eq!(
        store.write(OWNER, &stale),
        Err(Error::Conflict {
            name: "ns/app".into(),
            active: second.hash.clone(),
            given: first.hash.clone()
        })
    );
    // History: both versions readable by hash, the second names the first.
    let (old, _) = store
        .read(OWNER, "ns/app", Some(&first.hash))
        .expect("old version");
    let (new, _) = store
        .read(OWNER, "ns/app", Some(&second.hash))
        .expect("new version");
    assert_eq!(new.predecessor.as_deref(), Some(first.hash.as_str()));
    assert!(old.predecessor.is_none());
    assert!(matches!(
        store.read(OWNER, "ns/app", Some(&"0".repeat(64))),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn namespaces_and_access_policies() {
    let (_d, store) = store();
    assert!(
        matches!(store.write(OWNER, APP), Err(Error::NotFound(m)) if m.contains("namespace `ns` does not exist"))
    );
    namespace(&store, "ns");
    assert!(matches!(
        store.write(OTHER, APP),
        Err(Error::Forbidden { operation, .. }) if operation == "create_sessions"
    ));
    let created = store.write(OWNER, APP).expect("owner creates");
    assert!(matches!(
        store.read(OTHER, "ns/app", None),
        Err(Error::Forbidden { operation, .. }) if operation == "read"
    ));
    let update = format!("predecessor: {}\n{}", created.hash, APP);
    assert!(matches!(
        store.write(OTHER, &update),
        Err(Error::Forbidden { operation, .. }) if operation == "update"
    ));
    // ANY opens reading to every caller.
    let open = format!(
        "predecessor: {}\n{}",
        created.hash,
        APP.replace("read: [CREATOR]", "read: [ANY]")
    );
    store.write(OWNER, &open).expect("update policy");
    store.read(OTHER, "ns/app", None).expect("ANY may read");
    // The creator stays the creator across updates by others with rights.
    assert!(matches!(
        store.write(OWNER, "name: \"bad name\"\n"),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn imports_must_be_exported_to_the_importer() {
    let (_d, store) = store();
    namespace(&store, "ns");
    namespace(&store, "other");
    store.write(OWNER, APP).expect("exporter");
    let importer = "name: ns/client\nsecrets:\n  - name: server\n    import:\n      session: ns/app\n      secret: server\n";
    store
        .write(OWNER, importer)
        .expect("exported to the namespace");
    let outsider = importer.replace("ns/client", "other/client");
    let err = store
        .write(OWNER, &outsider)
        .expect_err("not exported there");
    assert!(
        err.to_string()
            .contains("`ns/app` does not export it to `other/client`"),
        "{err}"
    );
    let not_exported = importer
        .replace("secret: server", "secret: ca")
        .replace("- name: server", "- name: ca");
    assert!(
        store
            .write(OWNER, &not_exported.replace("ns/client", "ns/client2"))
            .is_err()
    );
}

#[test]
fn generated_certificates_chain_to_their_issuer() {
    let (_d, store) = store();
    namespace(&store, "ns");
    store.write(OWNER, APP).expect("create");
    let (version, _) = store.read(OWNER, "ns/app", None).expect("read");
    let server = &version.secrets["server"];
    let ca = &version.secrets["ca"];
    let (_, server_pem) = parse_x509_pem(server.value.as_bytes()).expect("pem");
    let server_cert = server_pem.parse_x509().expect("server certificate");
    let (_, ca_pem) = parse_x509_pem(ca.value.as_bytes()).expect("pem");
    let ca_cert = ca_pem.parse_x509().expect("ca certificate");
    assert_eq!(server_cert.issuer(), ca_cert.subject());
    assert!(ca_cert.is_ca());
    assert!(!server_cert.is_ca());
    server_cert
        .verify_signature(Some(ca_cert.public_key()))
        .expect("signed by the CA");
    let sans: Vec<String> = server_cert
        .subject_alternative_name()
        .expect("san")
        .expect("has san")
        .value
        .general_names
        .iter()
        .map(|n| format!("{n}"))
        .collect();
    assert_eq!(sans, ["DNSName(app.example)", "DNSName(app)"]);
    let days = (server_cert.validity().not_after.timestamp()
        - server_cert.validity().not_before.timestamp())
        / 86_400;
    assert_eq!(days, 90);
    let eku = server_cert
        .extended_key_usage()
        .expect("eku")
        .expect("has eku")
        .value;
    assert!(eku.server_auth && !eku.client_auth);
    assert_eq!(server.chain, vec![ca.value.clone()]);
    assert!(
        version.secrets["ca_key"]
            .value
            .contains("BEGIN PRIVATE KEY")
    );
}

#[test]
fn secrets_migrate_as_the_session_language_says() {
    let (_d, store) = store();
    namespace(&store, "ns");
    let first = store.write(OWNER, APP).expect("create");
    let (v1, _) = store.read(OWNER, "ns/app", None).expect("read");
    let changed = APP.replace("size: 12", "size: 16").replace(
        "    kind: private-key\n    key_type: P-384",
        "    kind: private-key\n    key_type: P-384\n    migrate: \"true\"",
    );
    let second = store
        .write(OWNER, &format!("predecessor: {}\n{changed}", first.hash))
        .expect("update");
    let (v2, _) = store.read(OWNER, "ns/app", None).expect("read");
    assert_eq!(
        v1.secrets["token"].value, v2.secrets["token"].value,
        "ascii kept while name, kind and size stay"
    );
    assert_eq!(
        v1.secrets["blob"].value, v2.secrets["blob"].value,
        "binary kept"
    );
    assert_ne!(
        v1.secrets["password"].value, v2.secrets["password"].value,
        "a new size regenerates"
    );
    assert_eq!(v2.secrets["password"].value.len(), 16);
    assert_ne!(
        v1.secrets["ca_key"].value, v2.secrets["ca_key"].value,
        "migrate must be set in both versions"
    );
    assert_eq!(
        v1.secrets["server_key"].value, v2.secrets["server_key"].value,
        "migrate: true in both keeps the key"
    );
    assert_ne!(
        v1.secrets["server"].value, v2.secrets["server"].value,
        "certificates are re-issued"
    );
    let third = store
        .write(OWNER, &format!("predecessor: {}\n{changed}", second.hash))
        .expect("update");
    let (v3, _) = store.read(OWNER, "ns/app", None).expect("read");
    assert_eq!(
        v2.secrets["ca_key"].value, v3.secrets["ca_key"].value,
        "now both say migrate"
    );
    let _ = third;
}

#[test]
fn preview_resolves_every_format_for_the_right_measurement() {
    let (_d, store) = store();
    namespace(&store, "ns");
    store.write(OWNER, APP).expect("create");
    let (v, _) = store.read(OWNER, "ns/app", None).expect("read");
    let p = store
        .preview(OWNER, "ns/app/python3", &"A".repeat(64))
        .expect("preview");
    assert_eq!(
        p.command.as_deref(),
        Some(format!("python3 app.py --token {}", v.secrets["token"].value).as_str())
    );
    assert_eq!(p.environment["PASSWORD"], v.secrets["password"].value);
    assert_eq!(p.environment["HEX"], v.secrets["blob"].value);
    assert_eq!(p.environment["JSON"], "say \\\"hi\\\"");
    assert_eq!(
        p.injection_files["/etc/server.crt"],
        v.secrets["server"].value
    );
    assert_eq!(
        p.injection_files["/etc/server.key"],
        v.secrets["server_key"].value
    );
    assert_eq!(p.injection_files["/etc/chain.pem"], v.secrets["ca"].value);
    let wrong = store
        .preview(OWNER, "ns/app/python3", &"b".repeat(64))
        .expect_err("wrong measurement");
    assert!(wrong.to_string().contains("MRENCLAVE"), "{wrong}");
    assert!(matches!(
        store.preview(OTHER, "ns/app/python3", &"a".repeat(64)),
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        store.preview(OWNER, "ns/app/java", &"a".repeat(64)),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn public_values_and_a_second_process() {
    let (dir, store) = store();
    namespace(&store, "ns");
    store
        .write(
            OWNER,
            &APP.replace("    size: 12", "    size: 12\n    export_public: \"true\""),
        )
        .expect("create");
    let values = store.public_values("ns/app", None).expect("public");
    assert_eq!(values.keys().collect::<Vec<_>>(), ["password"]);
    assert!(matches!(
        store.public_values("ns/app", Some("token")),
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(Store::open(dir.path()), Err(Error::Locked(_))));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path())
        .expect("store dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the store holds secrets: owner only");
}

#[test]
fn every_format_renders() {
    use base64::Engine;
    let (_d, store) = store();
    namespace(&store, "ns");
    let session = r#"name: ns/formats
services:
  - name: svc
    attestation:
      mrenclave: ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]
    environment:
      BIN: "$$SCONE::blob:bin$$"
      HEX: "$$SCONE::blob:hex$$"
      B64: "$$SCONE::blob:base64$$"
      B64URL: "$$SCONE::blob:base64url$$"
      B32: "$$SCONE::blob:base32$$"
      B32NOPAD: "$$SCONE::blob:base32nopad$$"
      LEGACY_HEX: "$$SCONE::blob.hex$$"
      KEY_PEM: "$$SCONE::key:pem$$"
      KEY_PKCS8: "$$SCONE::key:pkcs8:pem$$"
      KEY_DER: "$$SCONE::key:der$$"
      CRT: "$$SCONE::cert:crt$$"
      CRT_PEM: "$$SCONE::cert:crt:pem$$"
      CRT_DER: "$$SCONE::cert:crt:der$$"
      PRIV: "$$SCONE::cert:privatekey$$"
      PRIV_DER: "$$SCONE::cert:privatekey:der$$"
      CHAIN: "$$SCONE::cert:chain$$"
      LEGACY_CRT: "$$SCONE::cert.crt$$"
      LEGACY_KEY: "$$SCONE::cert.key$$"
      LEGACY_CHAIN: "$$SCONE::cert.chain$$"
secrets:
  - name: blob
    kind: binary
    value: "666f6f626172"
  - name: key
    kind: private-key
  - name: ca_key
    kind: private-key
  - name: ca
    kind: x509-ca
    private_key: ca_key
  - name: cert
    kind: x509
    private_key: key
    issuer: ca
"#;
    store.write(OWNER, session).expect("create");
    let (v, _) = store.read(OWNER, "ns/formats", None).expect("read");
    let env = store
        .preview(OWNER, "ns/formats/svc", &"a".repeat(64))
        .expect("preview")
        .environment;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(env["HEX"], "666f6f626172");
    assert_eq!(env["LEGACY_HEX"], "666f6f626172");
    assert_eq!(env["B64"], "Zm9vYmFy");
    assert_eq!(
        env["BIN"], "Zm9vYmFy",
        "raw bytes are shown base64-encoded in a preview"
    );
    assert_eq!(env["B64URL"], "Zm9vYmFy");
    assert_eq!(env["B32"], "MZXW6YTBOI======");
    assert_eq!(env["B32NOPAD"], "MZXW6YTBOI");
    let key = &v.secrets["key"].value;
    assert_eq!(&env["KEY_PEM"], key);
    assert_eq!(&env["KEY_PKCS8"], key);
    assert!(b64.decode(&env["KEY_DER"]).is_ok_and(|der| !der.is_empty()));
    let cert = &v.secrets["cert"].value;
    assert_eq!(&env["CRT"], cert);
    assert_eq!(&env["CRT_PEM"], cert);
    let der = b64.decode(&env["CRT_DER"]).expect("der");
    assert!(x509_parser::parse_x509_certificate(&der).is_ok());
    assert_eq!(&env["PRIV"], key);
    assert_eq!(env["PRIV_DER"], env["KEY_DER"]);
    let ca = &v.secrets["ca"].value;
    assert_eq!(
        &env["CHAIN"], ca,
        "`:chain` holds the issuers, not the certificate"
    );
    assert_eq!(&env["LEGACY_CRT"], cert);
    assert_eq!(&env["LEGACY_KEY"], key);
    assert_eq!(
        env["LEGACY_CHAIN"],
        format!("{ca}{cert}"),
        "`.chain` holds the certificate too, root first"
    );
    // A format that does not fit the kind is refused, naming both.
    let bad = session
        .replace("ns/formats", "ns/bad")
        .replace("$$SCONE::blob:hex$$", "$$SCONE::blob:crt$$");
    store
        .write(OWNER, &bad)
        .expect("stored: formats are checked when resolved");
    let err = store
        .preview(OWNER, "ns/bad/svc", &"a".repeat(64))
        .expect_err("wrong format");
    assert!(
        err.to_string()
            .contains("format `crt` does not apply to `blob`"),
        "{err}"
    );
}

#[test]
fn alias_bombs_are_refused_before_they_expand() {
    let (_dir, store) = store();
    let mut bomb = String::from("name: bomb\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
            p = i - 1
        ));
    }
    assert!(bomb.len() < 1024, "a small text: {}", bomb.len());
    let err = store.write(OWNER, &bomb).expect_err("refused");
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    // Six levels: 10^6 nodes from a few hundred bytes, which used to be stored expanded.
    let six: String = bomb.lines().take(7).map(|l| format!("{l}\n")).collect();
    assert!(matches!(store.write(OWNER, &six), Err(Error::Invalid(_))));
}

#[test]
fn each_identity_has_a_storage_quota() {
    let dir = tempfile::tempdir().expect("dir");
    let quota = meshfile_cas::store::Quota {
        bytes_per_identity: 64 * 1024,
    };
    let store = Store::open_with(dir.path(), quota).expect("open");
    let padding = "x".repeat(20 * 1024);
    let mut refused = None;
    for i in 0..10 {
        match store.write(
            OWNER,
            &format!("name: s{i}\n# {padding}\nservices: [{{name: {padding}}}]\n"),
        ) {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert!(
        matches!(refused, Some(Error::QuotaExceeded { limit: 65536, .. })),
        "{refused:?}"
    );
    store
        .write(OTHER, "name: others\n")
        .expect("another identity still writes");
}

#[test]
fn existence_is_told_only_to_who_may_know() {
    let (_dir, store) = store();
    namespace(&store, "team");
    let app = store
        .write(OWNER, "name: team/app\nversion: \"0.3.10\"\n")
        .expect("app");
    fn refusal<T: std::fmt::Debug>(r: Result<T, Error>) -> (String, String) {
        match r {
            Err(Error::Forbidden {
                session, operation, ..
            }) => (session, operation),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    // A stranger: the same answer whether the session exists or not, and no active hash.
    assert_eq!(refusal(store.read(OTHER, "team/app", None)).1, "read");
    assert_eq!(refusal(store.read(OTHER, "team/nothing", None)).1, "read");
    assert_eq!(
        refusal(store.write(OTHER, "name: team/app\n")),
        ("team".into(), "create_sessions".into())
    );
    let update = format!("name: team/app\npredecessor: {}\n", "0".repeat(64));
    let err = store.write(OTHER, &update).expect_err("refused");
    assert!(!err.to_string().contains(&app.hash), "{err}");
    // The owner learns both.
    assert!(matches!(
        store.read(OWNER, "team/nothing", None),
        Err(Error::NotFound(_))
    ));
    // Top-level names that only differ by case or a trailing `.`/`~` are one name.
    for look_alike in ["Team", "team.", "TEAM~"] {
        let err = store
            .write(OTHER, &format!("name: {look_alike}\n"))
            .expect_err(look_alike);
        assert!(err.to_string().contains("too close"), "{look_alike}: {err}");
    }
}

#[test]
fn a_write_past_its_deadline_is_not_committed() {
    let (_dir, store) = store();
    let upload = meshfile_cas::store::Upload::parse("name: late\n").expect("parse");
    let past = std::time::Instant::now();
    let err = store
        .write_upload(OWNER, &upload, Some(past))
        .expect_err("too late");
    assert!(matches!(err, Error::TimedOut(_)), "{err:?}");
    assert!(matches!(
        store.read(OWNER, "late", None),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn key_generation_does_not_hold_up_other_writers() {
    let (_dir, store) = store();
    let store = std::sync::Arc::new(store);
    let keys: String = (0..12)
        .map(|i| format!("  - name: k{i}\n    kind: private-key\n    key_type: RSA-3072\n"))
        .collect();
    let slow = {
        let store = store.clone();
        std::thread::spawn(move || store.write(OWNER, &format!("name: keys\nsecrets:\n{keys}")))
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    store.write(OTHER, "name: quick\n").expect("quick");
    assert!(
        !slow.is_finished(),
        "the one-line create finished while twelve RSA keys were still being made"
    );
    slow.join().expect("thread").expect("keys");
}

#[test]
fn damage_is_found_on_read_and_by_check() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let store = Store::open(dir.path()).expect("open");
        namespace(&store, "team");
        store
            .write(
                OWNER,
                "name: team/app\nsecrets:\n  - name: pw\n    kind: ascii\n",
            )
            .expect("app");
        let checked = store.check().expect("check");
        assert_eq!(
            (checked.sessions, checked.versions, checked.problems.len()),
            (2, 2, 0)
        );
    }
    // One changed character in a stored session.
    let file = dir.path().join("sessions.redb");
    let mut bytes = std::fs::read(&file).expect("read");
    let at = bytes
        .windows(b"kind: ascii".len())
        .position(|w| w == b"kind: ascii")
        .expect("the session text is stored as it is");
    bytes[at + 6] = b'b';
    std::fs::write(&file, &bytes).expect("write");
    let store = Store::open(dir.path()).expect("open");
    let err = store.read(OWNER, "team/app", None).expect_err("not served");
    assert!(matches!(err, Error::Damaged(_)), "{err:?}");
    let checked = store.check().expect("check");
    assert_eq!(checked.problems.len(), 1, "{:?}", checked.problems);
}
