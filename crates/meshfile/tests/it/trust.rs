//! Talking to a CAS the way SCONE's is reached: trust by the CA and the CAS's configured name
//! (not the address dialled), SCONE's error and values shapes, and `cas probe`.

use crate::Test;
use crate::mesh::{args, example_for};
use crate::server::Server;

/// A served CAS whose certificate, like SCONE CAS's, names `cas` and `localhost` but not the
/// address it is reached at.
fn named_cas() -> Server {
    Server::start_with(tempfile::tempdir().expect("state"), &["--name", "cas"])
}

/// What openssl (not meshfile) reads in a certificate file.
fn openssl_text(pem: &str) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("cert.pem");
    std::fs::write(&path, pem).expect("write");
    let out = std::process::Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
            "-in",
        ])
        .arg(&path)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_cas_is_trusted_by_its_ca_and_name_not_by_the_address_dialled() {
    let server = named_cas();
    let cert = openssl_text(&server.file("server.pem"));
    assert!(
        cert.contains("CN = cas") || cert.contains("CN=cas"),
        "{cert}"
    );
    assert!(
        cert.contains("DNS:cas") && cert.contains("DNS:localhost"),
        "{cert}"
    );
    assert!(
        !cert.contains("127.0.0.1"),
        "no SAN for the address dialled: {cert}"
    );

    let mut t = Test::new();
    example_for(&t, &server);
    let out = t.rerun(&args("plan", &[]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stderr.contains("3 to create"), "{}", out.stderr);

    let out = t.rerun(&args("plan", &["--cas-server-name", "other"]));
    assert_eq!(out.status, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("expected the name `other`")
            && out.stderr.contains("alternative names: cas, localhost"),
        "names the expected and the presented names: {}",
        out.stderr
    );
    assert!(out.stderr.contains("error[E211]"), "{}", out.stderr);
}

#[test]
fn errors_and_values_come_in_scones_shapes() {
    let server = Server::start();
    let owner = server.owner();
    let namespace = "name: team\nversion: \"0.3.10\"\naccess_policy:\n  read: [CREATOR]\n  update: [CREATOR]\n  create_sessions: [CREATOR]\n";
    owner.write(namespace).expect("namespace");
    let app = "name: team/app\nversion: \"0.3.10\"\nsecrets:\n  - name: pw\n    kind: ascii\n    size: 20\n    export_public: true\n";
    owner.write(app).expect("create");

    let http = reqwest::blocking::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(server.file("ca.pem").as_bytes()).expect("ca"),
        ])
        .identity(
            reqwest::Identity::from_pem(server.file("owner.pem").as_bytes()).expect("identity"),
        )
        .build()
        .expect("client");
    let url = |path: &str| {
        format!(
            "https://localhost:{}{path}",
            server.address.rsplit(':').next().expect("port")
        )
    };
    // A conflict: SCONE's `msg` lines, with our fields beside them.
    let body: serde_json::Value = http
        .post(url("/v1/sessions"))
        .body(app)
        .send()
        .expect("post")
        .json()
        .expect("json");
    let msg = body["msg"].as_array().expect("a msg array");
    assert!(
        msg[0].as_str().is_some_and(|m| m.contains("exists")),
        "{body}"
    );
    assert!(body["active_hash"].is_string(), "{body}");

    let get = |path: &str| -> serde_json::Value {
        http.get(url(path))
            .send()
            .expect("get")
            .json()
            .expect("json")
    };
    let one = get("/v1/values/session=team/app,secret=pw");
    for field in ["kind", "value", "expires", "renew"] {
        assert!(one.get(field).is_some(), "{field} in {one}");
    }
    assert_eq!(one["kind"], "ascii");
    let all = get("/v1/values/session=team/app");
    assert_eq!(all["values"]["pw"]["value"], one["value"], "{all}");

    // The client reads both shapes alike.
    let read_one = owner.values("team/app", Some("pw")).expect("one");
    let read_all = owner.values("team/app", None).expect("all");
    assert_eq!(read_one["pw"].value, read_all["pw"].value);
    assert_eq!(read_one["pw"].kind.as_deref(), Some("ascii"));
}

#[test]
fn probe_shows_the_chain_both_key_hash_forms_and_the_trust_verdict() {
    let server = named_cas();
    let mut t = Test::new();
    crate::mesh::trust_files(&t, &server);
    let hex = meshfile_cas::pki::key_hash_of_pem(&server.file("server.pem")).expect("hash");
    let probe = [
        "cas",
        "probe",
        &server.address,
        "--identity",
        "owner.pem",
        "--cas-ca",
        "ca.pem",
    ];
    let out = t.rerun(&probe);
    assert_eq!(out.status, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("0: CN=cas (alternative names: cas, localhost)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("issued by CN=meshfile development CAS root"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("key hash: {hex}")),
        "{}",
        out.stdout
    );
    let b58 = out
        .stdout
        .lines()
        .find(|l| l.contains("(Base58Check"))
        .and_then(|l| l.split_whitespace().next())
        .expect("the Base58Check form");
    let decoded = bs58::decode(b58)
        .with_check(Some(1))
        .into_vec()
        .expect("a valid Base58Check");
    assert_eq!(hex::encode(&decoded[1..]), hex, "the same key hash");
    assert!(out.stdout.contains("trust: accepted"), "{}", out.stdout);
    assert!(
        out.stdout.contains("development CAS"),
        "the version answer: {}",
        out.stdout
    );

    let mut other = probe.to_vec();
    other.extend(["--cas-server-name", "other"]);
    let out = t.rerun(&other);
    assert_eq!(out.status, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("trust: REFUSED") && out.stdout.contains("`other`"),
        "{}",
        out.stdout
    );
}

/// `cas probe --insecure` warns as loudly as every other command with `--insecure`, and names
/// the key hash to pin instead.
#[test]
fn probe_with_insecure_warns_and_names_the_key_to_pin() {
    let server = named_cas();
    let mut t = Test::new();
    crate::mesh::trust_files(&t, &server);
    let hex = meshfile_cas::pki::key_hash_of_pem(&server.file("server.pem")).expect("hash");
    let out = t.rerun(&[
        "cas",
        "probe",
        &server.address,
        "--identity",
        "owner.pem",
        "--insecure",
    ]);
    assert_eq!(out.status, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("WARNING: --insecure: the identity of the CAS at")
            && out.stderr.contains(&format!("pass `--cas-pin {hex}`")),
        "{}",
        out.stderr
    );
}
