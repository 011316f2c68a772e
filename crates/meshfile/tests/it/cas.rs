//! `meshfile cas serve` as a real process over mTLS on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

use crate::client::{Client, Error as ClientError};
use crate::server::{NAMESPACE, Server};
use meshfile_cas::pki;

fn refused(result: Result<impl std::fmt::Debug, ClientError>) -> (u16, String, Option<String>) {
    match result {
        Err(e) => (
            e.status(),
            e.to_string(),
            e.active_hash().map(str::to_owned),
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn sessions_over_mtls() {
    let server = Server::start();
    let owner = server.owner();
    assert!(
        owner.version().expect("version")["warning"]
            .as_str()
            .is_some_and(|w| w.contains("not SCONE CAS"))
    );
    owner.write(NAMESPACE).expect("namespace");
    let app = "name: team/app\nversion: \"0.3.10\"\nsecrets:\n  - name: pw\n    kind: ascii\n    export_public: \"true\"\n";
    let first = owner.write(app).expect("create");
    let read = owner.read("team/app", None).expect("read");
    assert_eq!(read.hash, first.hash);
    let (status, _, active) = refused(owner.write(app));
    assert_eq!(
        (status, active.as_deref()),
        (409, Some(first.hash.as_str()))
    );
    let second = owner
        .write(&format!("predecessor: {}\n{app}", first.hash))
        .expect("update");
    let (status, message, active) =
        refused(owner.write(&format!("predecessor: {}\n{app}", first.hash)));
    assert_eq!(
        (status, active.as_deref()),
        (409, Some(second.hash.as_str())),
        "{message}"
    );
    let old = owner.read("team/app", Some(&first.hash)).expect("history");
    assert!(old.predecessor.is_none());
    assert_eq!(
        owner
            .read("team/app", Some(&second.hash))
            .expect("history")
            .predecessor
            .as_deref(),
        Some(first.hash.as_str())
    );
    let (status, _, _) = refused(owner.read("team/missing", None));
    assert_eq!(status, 404);
    let (status, _, _) = refused(owner.write("name: [bad\n"));
    assert_eq!(status, 400);
    // Just over the limit: the server answers 413 while the client may still be sending, and
    // the less is left to send, the less likely the client sees the connection closed first.
    let big = format!(
        "name: team/big\nversion: \"0.3.10\"\n# {}\n",
        "x".repeat(1024 * 1024 + 16 * 1024)
    );
    let (status, _, _) = refused(owner.write(&big));
    assert_eq!(status, 413);
    let values = owner.values("team/app", None).expect("public values");
    assert!(
        values["pw"].value.as_str().is_some_and(|v| v.len() == 20),
        "{values:?}"
    );
}

#[test]
fn identities_outside_the_policy_are_refused() {
    let server = Server::start();
    let owner = server.owner();
    owner.write(NAMESPACE).expect("namespace");
    let (stranger, hash) = server.stranger();
    let (status, message, _) = refused(stranger.read("team", None));
    assert_eq!(status, 403);
    assert!(
        message.contains(&hash),
        "the refusal names the key hash to add: {message}"
    );
    let (status, _, _) = refused(stranger.write("name: team/x\n"));
    assert_eq!(status, 403, "create_sessions is CREATOR only");
    // A top-level namespace of its own is allowed, and then it is its creator.
    stranger.write("name: strangers\n").expect("own namespace");
    stranger.read("strangers", None).expect("creator reads");
    let (status, _, _) = refused(owner.read("strangers", None));
    assert_eq!(status, 403);
}

#[test]
fn a_pinned_server_key_is_trusted_and_any_other_refused() {
    let server = Server::start();
    let pin = pki::key_hash_of_pem(&server.file("server.pem")).expect("server key hash");
    let identity = server.file("owner.pem");
    let pinned = Client::with_trust(
        &server.address,
        crate::client::Trust::PinnedKey(&pin),
        &identity,
    )
    .expect("client");
    pinned.version().expect("the pinned server answers");
    let wrong = Client::with_trust(
        &server.address,
        crate::client::Trust::PinnedKey(&"0".repeat(64)),
        &identity,
    )
    .expect("client");
    match wrong.version() {
        Err(ClientError::Untrusted { detail, .. }) => {
            assert!(detail.contains("pin mismatch"), "{detail}")
        }
        other => panic!("a wrong pin must fail: {other:?}"),
    }
}

#[test]
fn no_client_certificate_fails_the_handshake() {
    let server = Server::start();
    let ca = reqwest::Certificate::from_pem(server.file("ca.pem").as_bytes()).expect("ca");
    let http = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("client");
    let result = http
        .get(format!("https://{}/v1/version", server.address))
        .send();
    assert!(
        result.is_err(),
        "a request without a client certificate must not get an answer"
    );
}

#[test]
fn imports_need_an_export_and_preview_resolves_them() {
    let server = Server::start();
    let owner = server.owner();
    owner.write(NAMESPACE).expect("namespace");
    owner.write("name: other\n").expect("other namespace");
    owner
        .write("name: team/db\nsecrets:\n  - name: db_key\n    kind: private-key\n  - name: db_ca\n    kind: x509-ca\n    private_key: db_key\n    export:\n      - namespace: team\n")
        .expect("exporter");
    let mrenclave = "ab".repeat(32);
    let client = format!(
        "name: team/api\nservices:\n  - name: api\n    image_name: img\n    attestation:\n      mrenclave: [\"{mrenclave}\"]\n    environment:\n      CA: \"$$SCONE::db_ca:crt$$\"\nimages:\n  - name: img\n    injection_files:\n      - path: /ca.pem\n        content: $$SCONE::db_ca:crt$$\nsecrets:\n  - name: db_ca\n    import:\n      session: team/db\n      secret: db_ca\n"
    );
    owner.write(&client).expect("importer in the namespace");
    let (status, message, _) = refused(owner.write(&client.replace("team/api", "other/api")));
    assert_eq!(status, 400);
    assert!(
        message.contains("team/db") && message.contains("other/api"),
        "{message}"
    );
    let preview = owner.preview("team/api/api", &mrenclave).expect("preview");
    assert!(preview.environment["CA"].starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        preview.injection_files["/ca.pem"],
        preview.environment["CA"]
    );
    let wrong = "cd".repeat(32);
    let (status, message, _) = refused(owner.preview("team/api/api", &wrong));
    assert_eq!(status, 403);
    assert_eq!(
        message,
        format!(
            "a program with MRENCLAVE {wrong} is not one service `api` of session `team/api` accepts: its attestation lists other MRENCLAVEs"
        )
    );
}

#[test]
#[ignore = "stress suite: `.ci/run` runs it (cargo test -- --include-ignored)"]
fn racing_updates_lose_nothing() {
    const CLIENTS: usize = 8;
    const ROUNDS: usize = 1_000;
    let server = Server::start();
    let owner = server.owner();
    owner.write(NAMESPACE).expect("namespace");
    let mut hash = owner
        .write("name: team/counter\nversion: \"0.3.10\"\n")
        .expect("create")
        .hash;
    let clients: Vec<Arc<Client>> = (0..CLIENTS).map(|_| Arc::new(server.owner())).collect();
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let threads: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (c, barrier, hash) = (c.clone(), barrier.clone(), hash.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    c.write(&format!("name: team/counter\nversion: \"0.3.10\"\npredecessor: {hash}\n# round {round} client {i}\n"))
                })
            })
            .collect();
        let results: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one update wins");
        let new_hash = winners[0].hash.clone();
        for r in &results {
            if let Err(e) = r {
                match e {
                    ClientError::Conflict { active: a, .. } => assert_eq!(a, &new_hash),
                    other => panic!("round {round}: {other}"),
                }
            }
        }
        hash = new_hash;
    }
    // The chain is whole: walking predecessors from the active version visits every round.
    let mut steps = 0;
    let mut at = owner.read("team/counter", None).expect("active");
    while let Some(p) = at.predecessor.clone() {
        at = owner.read("team/counter", Some(&p)).expect("version");
        steps += 1;
    }
    assert_eq!(steps, ROUNDS);
}

#[test]
#[ignore = "stress suite: `.ci/run` runs it (cargo test -- --include-ignored)"]
fn killed_at_random_moments_loses_no_acknowledged_version() {
    const KILLS: usize = 50;
    let mut state = tempfile::tempdir().expect("state");
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for kill in 0..KILLS {
        let server = Server::start_in(state);
        let owner = server.owner();
        // Everything acknowledged before survived the previous kills, whole.
        for (name, hash) in &acknowledged {
            let read = owner
                .read(name, Some(hash))
                .unwrap_or_else(|e| panic!("after {kill} kills, {name} {hash}: {e}"));
            assert!(read.session.contains(&format!("name: {name}")));
        }
        if kill == 0 {
            owner.write(NAMESPACE).expect("namespace");
        }
        // Write from another thread; kill the server after a pseudo-random delay.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = std::time::Duration::from_millis(5 + seed % 60);
        let writer = std::thread::spawn(move || {
            let mut done = Vec::new();
            for i in 0.. {
                let name = format!("team/s{kill}-{i}");
                match owner.write(&format!(
                    "name: {name}\nsecrets:\n  - name: k\n    kind: private-key\n"
                )) {
                    Ok(w) => done.push((name, w.hash)),
                    Err(_) => break,
                }
                if i > 10_000 {
                    break;
                }
            }
            done
        });
        std::thread::sleep(delay);
        state = server.kill();
        acknowledged.extend(writer.join().expect("writer"));
    }
    assert!(
        acknowledged.len() > KILLS,
        "the writer got some writes through ({})",
        acknowledged.len()
    );
    let server = Server::start_in(state);
    let owner = server.owner();
    for (name, hash) in &acknowledged {
        owner
            .read(name, Some(hash))
            .unwrap_or_else(|e| panic!("{name} {hash}: {e}"));
    }
    // The state as the kills left it, damaged in copies: each a clear refusal or a whole store.
    let state = server.kill();
    crate::hostile::damaged_copies_end_clearly(state.path(), &acknowledged);
}

#[test]
fn sigterm_shuts_down_gracefully_and_the_state_reopens() {
    let server = Server::start();
    let owner = server.owner();
    owner.write(NAMESPACE).expect("namespace");
    let mut server = server;
    let pid = server.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit within 10 s of SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(exit.success(), "a graceful shutdown exits 0: {exit:?}");
    let state = server.kill();
    let again = Server::start_in(state);
    again
        .owner()
        .read("team", None)
        .expect("the store reopens with its sessions");
}

#[test]
fn public_values_without_a_client_certificate_on_the_public_listener() {
    let state = tempfile::tempdir().expect("state");
    let mut child = crate::meshfile(state.path())
        .args([
            "cas",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--public-listen",
            "127.0.0.1:0",
            "--state",
        ])
        .arg(state.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut text = String::new();
    let (mut main, mut public) = (None, None);
    while main.is_none() || public.is_none() {
        let line = lines.next().expect("a line").expect("utf-8");
        text.push_str(&line);
        if let Some(rest) = line.strip_prefix("meshfile development CAS listening on https://") {
            main = Some(rest.to_owned());
        }
        if let Some(rest) = line.split("no client certificate: https://").nth(1) {
            public = rest.split('/').next().map(str::to_owned);
        }
    }
    let (main, public) = (main.expect("main"), public.expect("public"));
    let ca = std::fs::read_to_string(state.path().join("ca.pem")).expect("ca");
    let owner = Client::new(
        &main,
        &ca,
        &std::fs::read_to_string(state.path().join("owner.pem")).expect("owner"),
    )
    .expect("client");
    owner.write("name: pub\nsecrets:\n  - name: shared\n    kind: ascii\n    export_public: \"true\"\n  - name: private\n    kind: ascii\n").expect("create");
    let anonymous = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).expect("ca")])
        .build()
        .expect("client");
    let get = |addr: &str, path: &str| {
        anonymous
            .get(format!("https://{addr}{path}"))
            .send()
            .map(|r| (r.status().as_u16(), r.text().unwrap_or_default()))
    };
    let (status, body) =
        get(&public, "/v1/values/session=pub,secret=shared").expect("public values answer");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"value\""), "{body}");
    assert_eq!(
        get(&public, "/v1/values/session=pub,secret=private")
            .expect("answer")
            .0,
        403
    );
    assert_eq!(
        get(&public, "/v1/sessions/pub").expect("answer").0,
        404,
        "sessions are not served publicly"
    );
    assert!(
        get(&main, "/v1/version").is_err(),
        "the main port still requires a certificate"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_certificate_carries_the_subject_alternative_names_its_san_gives() {
    let server = Server::start();
    let owner = server.owner();
    owner.write(NAMESPACE).expect("namespace");
    owner
        .write("name: team/tls\nversion: \"0.3.10\"\nsecrets:\n  - name: key\n    kind: private-key\n  - name: cert\n    kind: x509\n    private_key: key\n    san: [\"dns:api.example\", \"ip:10.0.0.7\"]\n    export_public: true\n")
        .expect("session with san");
    let values = owner.values("team/tls", Some("cert")).expect("values");
    let pem = values["cert"].value.as_str().expect("a PEM").to_owned();
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("cert.pem"), &pem).expect("pem");
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(dir.path().join("cert.pem"))
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("DNS:api.example") && text.contains("IP Address:10.0.0.7"),
        "{text}"
    );
}

/// A second server on an address the first holds is refused as the environment failing, with
/// its own code and a hint that fits, and before its state directory is made.
#[test]
fn an_address_in_use_is_refused_before_the_state_is_touched() {
    let first = Server::start();
    let scratch = tempfile::tempdir().expect("dir");
    let state = scratch.path().join("second-state");
    let out = crate::meshfile(scratch.path())
        .args(["cas", "serve", "--listen", &first.address, "--state"])
        .arg(&state)
        .output()
        .expect("run meshfile");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error[E226]: the development CAS: cannot listen on {}",
            first.address
        )) && stderr.contains("help: another process listens there"),
        "{stderr}"
    );
    assert!(!stderr.contains("target/policies"), "{stderr}");
    assert!(!state.exists(), "the state directory was made");
}

/// `cas check` on a directory that is not a state directory says so (a usage error), and
/// calls no store damaged.
#[test]
fn check_on_a_mistyped_directory_says_so() {
    let scratch = tempfile::tempdir().expect("dir");
    for (dir, expected) in [
        ("missing", "error[E205]: there is no directory"),
        ("empty", "holds no development CAS state"),
    ] {
        let path = scratch.path().join(dir);
        if dir == "empty" {
            std::fs::create_dir(&path).expect("dir");
        }
        let out = crate::meshfile(scratch.path())
            .args(["cas", "check", "--state"])
            .arg(&path)
            .output()
            .expect("run meshfile");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("damaged"), "{stderr}");
    }
}
