//! Each CAS mode is decided once for `plan` and `apply`: what `plan` says `apply` does, and
//! the modes whose chart delivers the sessions open no connection to CAS.

use std::net::TcpListener;

use crate::{Output, Test, workspace};

/// The hello-world example with `cas_url` and `mode` replaced (and the CAS's session
/// encryption key, which the encrypting modes need), its service recorded.
fn example(cas_url: &str, mode: &str) -> Test {
    let dir = workspace().join("examples/hello-world");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("example");
    let mesh = read("mesh.yaml").replace(
        "    cas_url: embedded",
        &format!(
            "    cas_url: {cas_url}\n    mode: {mode}\n    cas_encryption_key: 908bb8d9b7fb0502c22e18c24d6a85bb2d6790133c66fcbe1f6413a45ab7197f"
        ),
    );
    let mut t = Test::new()
        .file("mesh.yaml", mesh)
        .file("service.yaml", read("service.yaml"))
        .file("measurements.yaml", read("measurements.yaml"));
    let out = t.rerun(&["apply", "-n", "-q", "-f", "service.yaml"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    t
}

/// `plan` wrote none of what `apply` writes (the service step wrote the descriptor store).
fn assert_wrote_nothing(t: &Test, mode: &str) {
    for written in ["policies", "helm", "session_files"] {
        let path = t.dir().join("target").join(written);
        assert!(!path.exists(), "{mode}: plan wrote {}", path.display());
    }
}

fn plan(t: &mut Test) -> Output {
    t.rerun(&["plan", "-n", "-f", "mesh.yaml"])
}

fn apply(t: &mut Test) -> Output {
    t.rerun(&["apply", "-n", "-f", "mesh.yaml"])
}

#[test]
fn chart_delivered_modes_open_no_connection_to_cas() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let address = listener.local_addr().expect("address").to_string();
    for mode in ["SignedManifest", "EncryptedManifest", "EncryptedOnly"] {
        let mut t = example(&address, mode);
        for out in [plan(&mut t), apply(&mut t), plan(&mut t)] {
            assert_eq!(out.status, 0, "{mode}: {}", out.stderr);
        }
        let out = t.rerun(&["apply", "-n", "-f", "mesh.yaml", "--dry-run"]);
        assert_eq!(out.status, 0, "{mode}: {}", out.stderr);
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("{mode}: a connection reached the CAS port: {other:?}"),
        }
    }
}

#[test]
fn plan_says_what_apply_does_in_every_mode() {
    // Upload: the embedded store; the chart modes: an in-cluster name that does not resolve.
    for (mode, cas_url, sessions) in [
        ("Upload", "embedded", 2),
        ("SignedManifest", "cas.scone-system", 2),
        ("EncryptedManifest", "cas.scone-system", 2),
        ("EncryptedOnly", "cas.scone-system", 2),
    ] {
        let mut t = example(cas_url, mode);
        let before = plan(&mut t);
        assert_eq!(before.status, 0, "{mode}: {}", before.stderr);
        assert!(
            before
                .stderr
                .contains(&format!("{sessions} to create, 0 to update, 0 unchanged")),
            "{mode}: {}",
            before.stderr
        );
        assert_wrote_nothing(&t, mode);
        let out = apply(&mut t);
        assert_eq!(out.status, 0, "{mode}: {}", out.stderr);
        let after = plan(&mut t);
        assert!(
            after
                .stderr
                .contains(&format!("0 to create, 0 to update, {sessions} unchanged")),
            "{mode}: {}",
            after.stderr
        );
        // A change to one service: plan names it, apply makes the version that plan named.
        let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
        std::fs::write(
            t.dir().join("mesh.yaml"),
            mesh.replace("value: myself", "value: other"),
        )
        .expect("write");
        let changed = plan(&mut t);
        assert!(
            changed
                .stderr
                .contains("0 to create, 1 to update, 1 unchanged")
                && changed
                    .stderr
                    .contains("update     hello-world-demo/pythonservice"),
            "{mode}: {}",
            changed.stderr
        );
        assert_eq!(apply(&mut t).status, 0, "{mode}");
        assert!(
            plan(&mut t)
                .stderr
                .contains(&format!("0 to create, 0 to update, {sessions} unchanged")),
            "{mode}"
        );
    }
}

#[test]
fn no_upload_delivers_nothing_and_plan_agrees() {
    let mut t = example("embedded", "NoUpload");
    let out = plan(&mut t);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("mode NoUpload: apply delivers nothing"),
        "{}",
        out.stderr
    );
    assert_wrote_nothing(&t, "NoUpload");
    assert!(
        !t.dir().join("target/cas").exists(),
        "NoUpload's plan opened the embedded store"
    );
    let out = apply(&mut t);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("mode NoUpload: nothing delivered"),
        "{}",
        out.stderr
    );
    assert!(t.dir().join("target/policies").is_dir());
    assert!(
        !t.dir().join("target/cas").exists(),
        "NoUpload reached the embedded store"
    );
}

#[test]
fn sign_online_is_refused_by_every_command_that_compiles() {
    let mut t = example("cas.scone-system", "SignOnline");
    // Valid as the specification writes it (its own example uses it): validate warns.
    let validate = t.rerun(&["validate", "-f", "mesh.yaml"]);
    assert_eq!(validate.status, 0, "{}", validate.stderr);
    assert!(
        validate.stderr.contains("warning[W008]")
            && validate
                .stderr
                .contains("template, plan and apply refuse it"),
        "{}",
        validate.stderr
    );
    let template = t.rerun(&["template", "-n", "-f", "."]);
    assert!(
        !template
            .stderr
            .contains("template, plan and apply refuse it"),
        "the error says it, not the warning too: {}",
        template.stderr
    );
    for out in [template, plan(&mut t), apply(&mut t)] {
        assert_eq!(out.status, 1, "{}", out.stderr);
        assert!(
            out.stderr.contains("mesh.yaml:")
                && out.stderr.contains("error[E108]")
                && out.stderr.contains("SignOnline"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn a_target_of_the_older_layout_is_read_and_replaced() {
    let mut t = example("cas.scone-system", "EncryptedManifest");
    assert_eq!(apply(&mut t).status, 0);
    // The layout an earlier meshfile wrote: `<name>.json`, `<name>.encrypted.json`,
    // `<name>.hash` (this version) and `<name>.predecessor` (the one it replaced).
    let files = t.dir().join("target/session_files");
    let read = |name: &str| std::fs::read_to_string(files.join(name)).expect(name);
    let session = "hello-world-demo/pythonservice";
    let hash = read("signed_hello-world-demo-pythonservice.predecessor");
    let old = [
        (
            "signed_hello-world-demo-pythonservice.json",
            format!("{session}.json"),
        ),
        (
            "encrypted_hello-world-demo-pythonservice.json",
            format!("{session}.encrypted.json"),
        ),
        (
            "signed_hello-world-demo.json",
            "hello-world-demo.json".to_owned(),
        ),
        (
            "encrypted_hello-world-demo.json",
            "hello-world-demo.encrypted.json".to_owned(),
        ),
    ];
    let namespace_hash = read("signed_hello-world-demo.predecessor");
    let contents: Vec<(String, String)> = old
        .iter()
        .map(|(new, old)| (old.clone(), read(new)))
        .collect();
    std::fs::remove_dir_all(&files).expect("clear");
    std::fs::create_dir_all(files.join("hello-world-demo")).expect("dir");
    for (name, text) in contents {
        std::fs::write(files.join(name), text).expect("old file");
    }
    std::fs::write(files.join(format!("{session}.hash")), &hash).expect("hash");
    std::fs::write(files.join(format!("{session}.predecessor")), "").expect("predecessor");
    std::fs::write(files.join("hello-world-demo.hash"), &namespace_hash).expect("hash");
    std::fs::write(files.join("hello-world-demo.predecessor"), "").expect("predecessor");
    // Read as it is: nothing changed, nothing to deliver.
    let out = plan(&mut t);
    assert!(
        out.stderr.contains("0 to create, 0 to update, 2 unchanged"),
        "{}",
        out.stderr
    );
    // A change names the old layout's version as predecessor; the files are sconectl's now.
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    std::fs::write(
        t.dir().join("mesh.yaml"),
        mesh.replace("value: myself", "value: other"),
    )
    .expect("write");
    assert_eq!(apply(&mut t).status, 0);
    let signed: serde_json::Value =
        serde_json::from_str(&read("signed_hello-world-demo-pythonservice.json")).expect("json");
    let text = signed["session"].as_str().expect("session");
    assert!(
        text.starts_with(&format!("predecessor: {}\n", hash.trim())),
        "{text}"
    );
    assert!(
        !files.join("hello-world-demo").exists(),
        "the older layout stayed"
    );
    assert!(
        !files.join("hello-world-demo.hash").exists(),
        "the older layout stayed"
    );
}
