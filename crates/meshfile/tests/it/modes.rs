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
fn sign_online_is_refused_by_plan_as_by_apply() {
    let mut t = example("cas.scone-system", "SignOnline");
    for out in [plan(&mut t), apply(&mut t)] {
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
