//! Signed and encrypted delivery against `meshfile cas serve`: a policy board whose second
//! signer signs with openssl, signatures verified by openssl over the documented message, the
//! chart's operator resources checked against the CRDs, and `EncryptedOnly` leaving no
//! plaintext under the target directory.

use std::path::{Path, PathBuf};

use crate::mesh::{example_for, server_encryption_key};
use crate::server::Server;
use crate::tools::{run, tool};
use crate::{Output, Test, workspace};

const CAS: &[&str] = &["--identity", "owner.pem", "--cas-ca", "ca.pem"];

/// `verb` against the test's CAS; `apply` and `plan` with `--upload`, since the chart-delivered
/// modes otherwise leave delivery to the operator and open no connection.
fn verb<'a>(verb: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![verb, "-n", "-f", "."];
    v.extend(CAS);
    if matches!(verb, "apply" | "plan") {
        v.push("--upload");
    }
    v.extend(extra);
    v
}

/// Runs openssl; its output, after asserting that it succeeded.
fn openssl(program: &PathBuf, dir: &Path, args: &[&str]) -> String {
    let (ok, text) = run(program, args, dir);
    assert!(ok, "openssl {args:?}: {text}");
    text
}

/// The PEM lines of a public key as an indented block scalar of a `signer:` entry.
fn signer_entry(pem: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = format!("{pad}- signer: |\n");
    for line in pem.lines() {
        out.push_str(&format!("{pad}    {line}\n"));
    }
    out
}

/// The example mesh in `mode`, on `server`, with `policy` added under `policy:`.
fn signed_example(t: &Test, server: &Server, mode: &str, policy: &str) {
    example_for(t, server);
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    let encryption_key = if mode.starts_with("Encrypted") {
        format!(
            "\n    cas_encryption_key: {}",
            server_encryption_key(server)
        )
    } else {
        String::new()
    };
    let mesh = mesh
        .replace(
            &format!("cas_url: {}", server.address),
            &format!(
                "cas_url: {}\n    mode: {mode}{encryption_key}\n    # ",
                server.address
            ),
        )
        .replace(
            "  tolerate: \"outdated-tcb\"\n",
            &format!("  tolerate: \"outdated-tcb\"\n{policy}"),
        );
    std::fs::write(t.dir().join("mesh.yaml"), mesh).expect("write mesh");
}

/// A signer outside meshfile: the message of `session` exported, signed with openssl by
/// `who` (`WHO.pem`: Ed25519 with `pkeyutl`, P-384 with `dgst -sha384`), and added with its
/// public key (`WHO.pub`) as `WHO.sig`.
fn sign_externally(t: &mut Test, openssl_bin: &PathBuf, session: &str, who: &str) {
    let path = |name: &str| t.dir().join(name).display().to_string();
    let (key, signature, message) = (
        path(&format!("{who}.pem")),
        path(&format!("{who}.sig")),
        path("message.bin"),
    );
    let p384 = std::fs::read_to_string(&key).is_ok_and(|pem| !pem.contains("MC4CAQAwBQYDK2Vw"));
    let args: Vec<&str> = if p384 {
        vec![
            "dgst", "-sha384", "-sign", &key, "-out", &signature, &message,
        ]
    } else {
        vec![
            "pkeyutl", "-sign", "-rawin", "-inkey", &key, "-in", &message, "-out", &signature,
        ]
    };
    let dir = t.dir().to_path_buf();
    ok(&t.rerun(&[
        "sign",
        "--session",
        session,
        "--export-message",
        "message.bin",
    ]));
    openssl(openssl_bin, &dir, &args);
    let (public, signature) = (format!("{who}.pub"), format!("{who}.sig"));
    ok(&t.rerun(&[
        "sign",
        "--session",
        session,
        "--signer",
        &public,
        "--signature",
        &signature,
    ]));
}

fn ok(out: &Output) {
    assert_eq!(out.status, 0, "{}", out.stderr);
}

#[test]
fn two_of_three_signers_approve_and_openssl_signs_and_verifies() {
    let Some(openssl_bin) = tool("bin/openssl") else {
        return;
    };
    let server = Server::start();
    let mut t = Test::new();
    let dir = t.dir().to_path_buf();
    let path = |name: &str| dir.join(name).display().to_string();
    let ssl = |args: &[&str]| openssl(&openssl_bin, &dir, args);

    // Alice signs with meshfile's key; Bob (Ed25519) and Carol (P-384) with openssl only.
    let alice = t.rerun(&["key", "generate"]);
    ok(&alice);
    let alice_pem: String = alice
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(t.dir().join("alice.pub"), &alice_pem).expect("alice.pub");
    ssl(&["genpkey", "-algorithm", "ed25519", "-out", &path("bob.pem")]);
    ssl(&[
        "pkey",
        "-in",
        &path("bob.pem"),
        "-pubout",
        "-out",
        &path("bob.pub"),
    ]);
    ssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        &path("carol.pem"),
    ]);
    ssl(&[
        "pkey",
        "-in",
        &path("carol.pem"),
        "-pubout",
        "-out",
        &path("carol.pub"),
    ]);
    let public = |name: &str| std::fs::read_to_string(dir.join(name)).expect("public key");
    let board: String = ["alice.pub", "bob.pub", "carol.pub"]
        .iter()
        .map(|k| signer_entry(&public(k), 8))
        .collect();
    let owner = meshfile_cas::pki::key_hash_of_pem(&server.file("owner.pem")).expect("owner");
    let policy = format!(
        "  access_policy:\n    read: [{owner}]\n    update:\n      - require-at-least-2:\n{board}    create_sessions:\n      - require-at-least-2:\n{board}"
    );
    signed_example(&t, &server, "SignedManifest", &policy);

    // Only Alice has signed: refused before anything is written, naming who is missing.
    let out = t.rerun(&verb("apply", &[]));
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(out.stderr.contains("error[E218]"), "{}", out.stderr);
    assert!(
        out.stderr.contains("1 more of 2 required (1 present)"),
        "{}",
        out.stderr
    );
    let bob_b58 = meshfile_session::signer::PublicKey::parse(&public("bob.pub"))
        .expect("bob")
        .short_name();
    assert!(out.stderr.contains(&bob_b58), "{}", out.stderr);
    let plan = t.rerun(&verb("plan", &[]));
    ok(&plan);
    assert!(plan.stderr.contains("NOT YET"), "{}", plan.stderr);
    assert!(
        server.owner().read("flask-redis-demo", None).is_err(),
        "nothing may be written"
    );

    // Bob signs every session with openssl over the exported message.
    let sessions = [
        "flask-redis-demo",
        "flask-redis-demo/redis",
        "flask-redis-demo/flask",
    ];
    for session in sessions {
        sign_externally(&mut t, &openssl_bin, session, "bob");
    }
    // Carol's P-384 signature (openssl dgst -sha384) is accepted too.
    sign_externally(&mut t, &openssl_bin, sessions[0], "carol");
    // A signature of another session is refused.
    let out = t.rerun(&[
        "sign",
        "--session",
        sessions[1],
        "--signer",
        "carol.pub",
        "--signature",
        "carol.sig",
    ]);
    assert_eq!(
        out.status, 1,
        "a refusal, not the environment failing: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("error[E224]: ") && out.stderr.contains("does not verify"),
        "{}",
        out.stderr
    );

    // Alice's signature verifies with openssl over the documented message.
    let signed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            t.dir()
                .join("target/session_files/signed_flask-redis-demo-flask.json"),
        )
        .expect("signed session"),
    )
    .expect("json");
    let alice_signature = signed["signatures"]
        .as_array()
        .expect("signatures")
        .iter()
        .find(|s| {
            let signer = s["signer"].as_str().unwrap_or_default();
            // SCONE's form: an Ed25519 signer in Base58Check, never its PEM.
            !signer.contains("BEGIN")
                && meshfile_session::signer::PublicKey::parse(signer)
                    == meshfile_session::signer::PublicKey::parse(&alice_pem)
        })
        .and_then(|s| s["signature"].as_str())
        .expect("alice signed");
    std::fs::write(
        t.dir().join("alice.sig"),
        hex::decode(alice_signature).expect("hex"),
    )
    .expect("sig");
    let message = [
        b"meshfile signed session v1\n".as_slice(),
        signed["session"].as_str().expect("session").as_bytes(),
    ]
    .concat();
    std::fs::write(t.dir().join("documented.bin"), message).expect("message");
    let verified = ssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        &path("alice.pub"),
        "-rawin",
        "-in",
        &path("documented.bin"),
        "-sigfile",
        &path("alice.sig"),
    ]);
    assert!(
        verified.contains("Signature Verified Successfully"),
        "{verified}"
    );

    // Two of three: applied.
    let out = t.rerun(&verb("apply", &[]));
    ok(&out);
    assert!(out.stderr.contains("3 created"), "{}", out.stderr);

    // One flipped byte of a signed session: the CAS refuses it.
    let mut tampered = signed.clone();
    tampered["session"] = signed["session"]
        .as_str()
        .expect("session")
        .replacen("flask", "flasK", 1)
        .into();
    let refused = server
        .owner()
        .write_signed(&tampered.to_string())
        .expect_err("tampered");
    assert!(refused.to_string().contains("does not verify"), "{refused}");

    // An update needs two signatures again; the predecessor is the version CAS holds.
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    std::fs::write(
        t.dir().join("mesh.yaml"),
        mesh.replace("value: 6379", "value: 6380"),
    )
    .expect("write");
    let out = t.rerun(&verb("apply", &[]));
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("update of `flask-redis-demo/"),
        "{}",
        out.stderr
    );
    let active = server
        .owner()
        .read("flask-redis-demo/flask", None)
        .expect("flask")
        .hash;
    // The new version names CAS's active one as its predecessor.
    let files = t.dir().join("target/session_files");
    let flask: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(files.join("signed_flask-redis-demo-flask.json")).expect("flask"),
    )
    .expect("json");
    let text = flask["session"].as_str().expect("session");
    assert!(
        text.starts_with(&format!("predecessor: {active}\n")),
        "{text}"
    );
    // redis is unchanged: its version, as CAS holds it, with both signatures, stays.
    let redis: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(files.join("signed_flask-redis-demo-redis.json")).expect("redis"),
    )
    .expect("json");
    assert_eq!(redis["signatures"].as_array().map(Vec::len), Some(2));
    sign_externally(&mut t, &openssl_bin, sessions[2], "carol");
    let out = t.rerun(&verb("apply", &[]));
    ok(&out);
    assert!(
        out.stderr.contains("1 updated, 2 unchanged"),
        "{}",
        out.stderr
    );
}

#[test]
fn policy_resources_fit_the_crds_and_helm() {
    let (Some(helm), Some(kval)) = (tool("bin/helm4"), tool("kval/bin/kubernetes-validate")) else {
        return;
    };
    let python = kval.with_file_name("python");
    let crds = workspace().join("docs/src/reference/crds");
    let crd = |kind: &str| {
        crds.join(format!("{kind}.cas.scone.cloud.yaml"))
            .display()
            .to_string()
    };
    let scratch = tempfile::tempdir().expect("scratch");
    let (ok_crds, text) = run(
        &kval,
        &[
            "--strict",
            "-k",
            "1.35",
            &crd("signedpolicies"),
            &crd("encryptedpolicies"),
        ],
        scratch.path(),
    );
    assert!(ok_crds, "the CRDs themselves: {text}");
    let server = Server::start();
    for mode in ["SignedManifest", "EncryptedManifest", "EncryptedOnly"] {
        let mut t = Test::new();
        signed_example(&t, &server, mode, "");
        let mut args = verb("template", &[]);
        args.retain(|a| !["--cas-ca", "ca.pem"].contains(a));
        t.signing_fixtures();
        ok(&t.rerun(&args));
        let chart = t.dir().join("target/helm").display().to_string();
        let (linted, text) = run(&helm, &["lint", "--strict", &chart], t.dir());
        assert!(linted, "{mode}: {text}");
        let (rendered, manifests) = run(
            &helm,
            &[
                "template",
                "demo",
                &chart,
                "--set",
                "global.casAddr=cas.example",
            ],
            t.dir(),
        );
        assert!(rendered, "{mode}: {manifests}");
        let file = t.dir().join("rendered.yaml");
        std::fs::write(&file, &manifests).expect("rendered");
        let (valid, text) = run(
            &kval,
            &["--strict", "-k", "1.35", &file.display().to_string()],
            t.dir(),
        );
        assert!(valid, "{mode}: {text}");
        let (checked, text) = run(
            &python,
            &[
                &workspace()
                    .join("crates/meshfile/tests/it/check_policy_resources.py")
                    .display()
                    .to_string(),
                &crds
                    .join("signedpolicies.cas.scone.cloud.yaml")
                    .display()
                    .to_string(),
                &crds
                    .join("encryptedpolicies.cas.scone.cloud.yaml")
                    .display()
                    .to_string(),
                &file.display().to_string(),
            ],
            t.dir(),
        );
        assert!(checked && text.trim() == "3", "{mode}: {text}");
        let kind = if mode == "SignedManifest" {
            "kind: SignedPolicy"
        } else {
            "kind: EncryptedPolicy"
        };
        assert_eq!(manifests.matches(kind).count(), 3, "{mode}: {manifests}");
        // Hooks in order: the namespace, then redis (the exporter), then flask.
        let weights: Vec<&str> = manifests
            .lines()
            .filter_map(|l| l.trim().strip_prefix("helm.sh/hook-weight: "))
            .collect();
        assert_eq!(weights, ["\"0\"", "\"1\"", "\"2\""], "{mode}");
    }
}

#[test]
fn encrypted_only_leaves_no_plaintext_and_round_trips_through_the_cas() {
    let server = Server::start();
    let mut t = Test::new();
    signed_example(&t, &server, "EncryptedOnly", "");
    let mut args = verb("apply", &[]);
    args.extend(["--signing-key", "signing.pem"]);
    t.signing_fixtures();
    let out = t.rerun(&args);
    ok(&out);
    assert!(out.stderr.contains("3 created"), "{}", out.stderr);
    // Every value the mesh gives its services, and every secret name of its sessions.
    let mut needles: Vec<String> = ["flaskapp-redis", "6379", "OnFailure"]
        .map(str::to_owned)
        .to_vec();
    let session = server
        .owner()
        .read("flask-redis-demo/flask", None)
        .expect("decrypted by the CAS");
    assert!(
        session.session.contains("flaskapp-redis"),
        "{}",
        session.session
    );
    for line in session.session.lines() {
        if let Some(name) = line.trim().strip_prefix("- name: ") {
            needles.push(name.trim_matches('"').to_owned());
        }
    }
    let target = t.dir().join("target");
    let files = crate::compile::raw_files(&target);
    assert!(
        files
            .keys()
            .any(|f| f.starts_with("session_files/encrypted_"))
    );
    for (file, bytes) in &files {
        // The descriptor store records the service manifests given, not the mesh's sessions.
        if file == "descriptors.json" || file.starts_with("cas/") {
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        for needle in &needles {
            assert!(
                needle.len() < 4 || !text.contains(needle.as_str()),
                "target/{file} holds `{needle}` in clear"
            );
        }
    }
    // Encrypted for another CAS: refused, naming both keys.
    let other = meshfile_sign::EncryptionKey::derive(&[9; 32]).public_hex();
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    std::fs::write(
        t.dir().join("mesh.yaml"),
        mesh.replace(&server_encryption_key(&server), &other)
            .replace("value: 6379", "value: 6390"),
    )
    .expect("write");
    let out = t.rerun(&args);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&other) && out.stderr.contains(&server_encryption_key(&server)),
        "{}",
        out.stderr
    );
}

#[test]
fn upload_with_a_signing_key_uploads_signed_sessions_without_resources() {
    let server = Server::start();
    let mut t = Test::new();
    example_for(&t, &server);
    t.signing_fixtures();
    let args = verb("apply", &["--signing-key", "signing.pem"]);
    let out = t.rerun(&args);
    ok(&out);
    assert!(out.stderr.contains("3 created"), "{}", out.stderr);
    assert!(
        t.dir()
            .join("target/session_files/signed_flask-redis-demo-flask.json")
            .is_file()
    );
    assert!(!t.dir().join("target/helm/policies").exists());
    let flask = server
        .owner()
        .read("flask-redis-demo/flask", None)
        .expect("readable by the client");
    assert!(
        flask
            .creator
            .as_deref()
            .is_some_and(|c| c.starts_with("signer:")),
        "{:?}",
        flask.creator
    );
    // Again: nothing to do.
    let out = t.rerun(&args);
    ok(&out);
    assert!(out.stderr.contains("3 unchanged"), "{}", out.stderr);
}

#[test]
fn validate_locates_what_a_signing_mesh_lacks() {
    let mut t = Test::new();
    let src = workspace().join("examples/hello-world/mesh.yaml");
    let mesh = std::fs::read_to_string(src).expect("mesh");
    let broken = mesh
        .replace("cas_url: embedded", "mode: EncryptedManifest\n    cas_url: embedded")
        .replace(
            "  namespace: hello-world-demo\n",
            "  namespace: hello-world-demo\n  access_policy:\n    read:\n      - signer: LtLcbPVddnCkH36ZcRdgYsw4H8xDbYaFZfuefkDc25uq2qdjmM\n    update:\n      - require-at-least-3: [CREATOR, ANY]\n",
        );
    std::fs::write(t.dir().join("mesh.yaml"), &broken).expect("write");
    let out = t.rerun(&["validate", "-f", "mesh.yaml"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    for expected in [
        "mesh.yaml:10:14: error[E108]", // cas_url: embedded
        "mesh.yaml:9:11: error[E011]",  // mode without cas_encryption_key
        "error[E061]",
        "never grants reading",
        "requires 3 of 2 entries",
    ] {
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
    }
    let signed = mesh.replace(
        "cas_url: embedded",
        "mode: SignedManifest\n    cas_url: cas.example",
    );
    let signed = signed.replace(
        "  namespace: hello-world-demo\n",
        "  namespace: hello-world-demo\n  access_policy:\n    update: [CREATOR]\n",
    );
    std::fs::write(t.dir().join("mesh.yaml"), signed).expect("write");
    let out = t.rerun(&["lint", "-f", "mesh.yaml"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("warning[W108]") && out.stderr.contains("warning[W109]"),
        "{}",
        out.stderr
    );
}

#[test]
fn scone_cli_output_is_copied_verbatim() {
    let standin = workspace().join("crates/meshfile/tests/it/scone-standin.py");
    let standin = standin.display().to_string();
    let mut t = Test::new();
    let src = workspace().join("examples/hello-world");
    for name in ["mesh.yaml", "service.yaml", "measurements.yaml"] {
        std::fs::copy(src.join(name), t.dir().join(name)).expect("copy");
    }
    let key = "ab".repeat(32);
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    let mesh = mesh.replace(
        "cas_url: embedded",
        &format!(
            "mode: EncryptedManifest\n    cas_encryption_key: {key}\n    cas_url: cas.example"
        ),
    );
    std::fs::write(t.dir().join("mesh.yaml"), mesh).expect("write");
    t.signing_fixtures();
    let log = t.dir().join("scone.log");
    let run = |t: &mut Test, args: &[&str]| {
        let mut command = crate::meshfile(t.dir());
        command.args(args).env("SCONE_STANDIN_LOG", &log);
        let out = command.output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    let template = ["template", "-n", "-f", ".", "--scone-cli", standin.as_str()];
    let stderr = run(&mut t, &template);
    assert!(
        stderr.contains(&format!("ran: {standin} session sign ")),
        "{stderr}"
    );
    assert!(stderr.contains("session encrypt --key"), "{stderr}");
    let files = t.dir().join("target/session_files");
    let read = |name: &str| std::fs::read_to_string(files.join(name)).expect(name);
    let signed: serde_json::Value =
        serde_json::from_str(&read("signed_hello-world-demo-pythonservice.json")).expect("json");
    let session = signed["session"].as_str().expect("session");
    assert!(
        session.starts_with("---\nname: hello-world-demo/pythonservice\n"),
        "{session}"
    );
    assert!(
        session.ends_with("creator:\n  signer: STANDIN\n"),
        "{session}"
    );
    let encrypted: serde_json::Value =
        serde_json::from_str(&read("encrypted_hello-world-demo-pythonservice.json")).expect("json");
    use base64::Engine as _;
    let inside = base64::engine::general_purpose::STANDARD
        .decode(encrypted["encrypted_session"].as_str().expect("ciphertext"))
        .expect("base64");
    let inside: serde_json::Value = serde_json::from_slice(&inside).expect("the signed session");
    assert_eq!(inside, signed, "encrypted exactly what the CLI signed");
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(format!("standin {session}")));
    assert_eq!(
        read("signed_hello-world-demo-pythonservice.predecessor").trim(),
        hash
    );
    resource_holds_the_ciphertext(t.dir(), &encrypted);

    // Unchanged: the CLI is not asked again, and the files stay as they are.
    let calls = std::fs::read_to_string(&log).expect("log").lines().count();
    run(&mut t, &template);
    assert_eq!(
        std::fs::read_to_string(&log).expect("log").lines().count(),
        calls
    );
    assert_eq!(
        read("signed_hello-world-demo-pythonservice.predecessor").trim(),
        hash
    );

    // A second signature, by the CLI: copied, encrypted again, and the resource follows.
    let stderr = run(
        &mut t,
        &[
            "sign",
            "--yes",
            "--session",
            "hello-world-demo/pythonservice",
            "--scone-cli",
            standin.as_str(),
        ],
    );
    assert!(stderr.contains("session sign"), "{stderr}");
    assert!(read("signed_hello-world-demo-pythonservice.json").contains("STANDIN-SECOND"));
    let encrypted: serde_json::Value =
        serde_json::from_str(&read("encrypted_hello-world-demo-pythonservice.json")).expect("json");
    resource_holds_the_ciphertext(t.dir(), &encrypted);
}

/// The chart's resource of `pythonservice` carries exactly the encrypted session's ciphertext.
fn resource_holds_the_ciphertext(dir: &Path, encrypted: &serde_json::Value) {
    let chart = crate::compile::raw_files(&dir.join("target/helm/policies"));
    let resource = chart
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .find(|r| r.contains("pythonservice"))
        .expect("resource");
    let ciphertext = encrypted["encrypted_session"].as_str().expect("policy");
    assert!(resource.contains(ciphertext), "{resource}");
}

/// `key generate` is safe to run twice: a key of the kind asked is kept (exit 0, its public
/// key printed again, the file untouched); a key of another kind is refused with its own code.
#[test]
fn key_generate_keeps_the_key_it_finds() {
    let mut t = Test::new();
    let first = t.rerun(&["key", "generate", "--out", "k.pem"]);
    ok(&first);
    assert!(
        first.stderr.contains("made the session signing key"),
        "{}",
        first.stderr
    );
    let bytes = std::fs::read(t.dir().join("k.pem")).expect("key");
    let again = t.rerun(&["key", "generate", "--out", "k.pem"]);
    ok(&again);
    assert!(
        again
            .stderr
            .contains("k.pem exists; kept (meshfile never replaces a key)"),
        "{}",
        again.stderr
    );
    assert_eq!(
        again.stdout, first.stdout,
        "the same public key, printed again"
    );
    assert_eq!(std::fs::read(t.dir().join("k.pem")).expect("key"), bytes);
    let other = t.rerun(&["key", "generate", "--out", "k.pem", "--algorithm", "p384"]);
    assert_eq!(other.status, 1, "{}", other.stderr);
    assert!(
        other.stderr.contains("error[E225]: ")
            && other
                .stderr
                .contains("holds an Ed25519 key, not an ECDSA P-384"),
        "{}",
        other.stderr
    );
    assert_eq!(std::fs::read(t.dir().join("k.pem")).expect("key"), bytes);
}

/// A mode that uploads signs each session once a run, against what CAS holds: `target/` is
/// written once, with those signatures, never first against the previous run's files.
#[test]
fn apply_signs_each_session_once_against_what_cas_holds() {
    let standin = workspace().join("crates/meshfile/tests/it/scone-standin.py");
    let server = Server::start();
    let t = Test::new();
    example_for(&t, &server);
    let log = t.dir().join("scone.log");
    let standin = standin.display().to_string();
    let args = crate::mesh::args("apply", &["--dry-run", "--scone-cli", &standin]);
    let out = crate::meshfile(t.dir())
        .args(&args)
        .env("SCONE_STANDIN_LOG", &log)
        .output()
        .expect("apply");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let calls = std::fs::read_to_string(&log).expect("log");
    let signed = calls.lines().filter(|l| l.contains("session sign")).count();
    let sessions = std::fs::read_dir(t.dir().join("target/policies/flask-redis-demo"))
        .expect("policies")
        .count()
        + 1;
    assert_eq!(signed, sessions, "{calls}");
    assert!(
        stderr.contains(&format!("signed {sessions} sessions with SCONE's CLI")),
        "{stderr}"
    );
}

/// `sign --cas` reviews each session against what CAS holds now: the change a signature
/// approves there; a version CAS holds already is said to be delivered; a version made before
/// CAS moved on is said to be refused; an unreachable CAS leaves the directory's version to
/// compare with, said.
#[test]
fn sign_reviews_against_what_cas_holds() {
    let server = Server::start();
    let mut t = Test::new();
    signed_example(&t, &server, "SignedManifest", "");
    let second = std::fs::read(crate::fixture("keys/second-signer.pem")).expect("fixture");
    t.private_file("second.pem", second);
    ok(&t.rerun(&verb("apply", &[])));
    let sign = |t: &mut Test, target: &str, cas: &str| {
        let mut args = vec![
            "sign",
            "-t",
            target,
            "--cas",
            cas,
            "--signing-key",
            "second.pem",
            "--yes",
        ];
        args.extend(CAS);
        let out = t.rerun(&args);
        ok(&out);
        out.stderr
    };
    let address = server.address.clone();
    // Delivered as it is: nothing for a signature to change there.
    let delivered = sign(&mut t, "target", &address);
    assert!(
        delivered.contains(&format!("compared with CAS {address}")),
        "{delivered}"
    );
    assert!(
        delivered.contains("CAS holds this version already (delivered)"),
        "{delivered}"
    );
    // A new version, compiled and signed offline: its change against what CAS holds.
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    let host = "value: \"flaskapp-python-hello-user\"";
    t = t.file("mesh.yaml", mesh.replace(host, "value: \"flask-api\""));
    ok(&t.rerun(&["template", "-n", "-f", ".", "--identity", "owner.pem"]));
    copy_dir(&t.dir().join("target"), &t.dir().join("before"));
    let review = sign(&mut t, "target", &address);
    assert!(
        review.contains("injection_files[/etc/hostname].content: \"flaskapp-python-hello-user\\n\" -> \"flask-api\\n\""),
        "the change is not shown: {review}"
    );
    assert!(!review.contains("warning:"), "{review}");
    // CAS moves on (another version delivered): the copy made before is refused, said.
    t = t.file("mesh.yaml", mesh.replace(host, "value: \"flask-api-2\""));
    ok(&t.rerun(&verb("apply", &[])));
    let stale = sign(&mut t, "before", &address);
    assert!(stale.contains("warning: CAS holds version"), "{stale}");
    assert!(stale.contains("CAS will refuse it"), "{stale}");
    // No CAS to ask: the directory's version, and why.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let unreachable = sign(&mut t, "target", &format!("127.0.0.1:{port}"));
    assert!(
        unreachable.contains("each session is compared with the version in target instead"),
        "{unreachable}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("entry");
        let relative = entry.path().strip_prefix(from).expect("inside");
        let destination = to.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&destination).expect("dir");
        } else {
            std::fs::copy(entry.path(), &destination).expect("copy");
        }
    }
}
