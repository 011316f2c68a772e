//! `apply` and `plan` end to end against `meshfile cas serve` over mTLS, and on the embedded store.

use crate::mesh::{args, example_for, trust_files};
use crate::server::Server;
use crate::{Test, workspace};

/// A served CAS and the example mesh pointed at it, applied once by the server's owner.
fn applied_example() -> (Server, Test, crate::Output) {
    let server = Server::start();
    let mut t = Test::new();
    example_for(&t, &server);
    let out = t.rerun(&args("apply", &[]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    (server, t, out)
}

#[test]
fn apply_converges_and_updates_exactly_what_changed() {
    // The namespace is owned by whoever creates it: here, the server's owner identity.
    let (server, mut t, out) = applied_example();
    assert!(
        out.stderr
            .contains("3 created, 0 updated, 0 unchanged, 0 failed"),
        "{}",
        out.stderr
    );

    // Again: nothing to write, and plan agrees.
    let out = t.rerun(&args("apply", &[]));
    assert!(
        out.stderr
            .contains("0 created, 0 updated, 3 unchanged, 0 failed"),
        "{}",
        out.stderr
    );
    let out = t.rerun(&args("plan", &["--exit-code"]));
    assert_eq!(out.status, 0, "{}", out.stderr);

    // One env value changes: plan shows exactly that, apply updates exactly one session.
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    std::fs::write(
        t.dir().join("mesh.yaml"),
        mesh.replace("value: \"10.96.0.10\"", "value: \"10.96.0.53\""),
    )
    .expect("edit");
    let out = t.rerun(&args("plan", &["--exit-code"]));
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("update     flask-redis-demo/flask"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "~ services[python3].environment.CLUSTER_DNS_IP: \"10.96.0.10\" -> \"10.96.0.53\""
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("0 to create, 1 to update, 2 unchanged"),
        "{}",
        out.stderr
    );
    let out = t.rerun(&args("apply", &[]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("0 created, 1 updated, 2 unchanged, 0 failed"),
        "{}",
        out.stderr
    );

    // The preview shows the new value; the history holds both versions.
    let owner = server.owner();
    let mrenclave =
        std::fs::read_to_string(t.dir().join("measurements.yaml")).expect("measurements");
    let flask_mrenclave = mrenclave
        .lines()
        .skip_while(|l| !l.contains("python_flask_redis"))
        .nth(1)
        .expect("line")
        .trim()
        .trim_start_matches('-')
        .trim()
        .to_owned();
    let preview = owner
        .preview("flask-redis-demo/flask/python3", &flask_mrenclave)
        .expect("preview");
    assert_eq!(preview.environment["CLUSTER_DNS_IP"], "10.96.0.53");
    assert!(
        preview.injection_files["/tls/client.crt"].starts_with("-----BEGIN CERTIFICATE-----"),
        "imports resolve"
    );
    let active = owner.read("flask-redis-demo/flask", None).expect("active");
    let previous = owner
        .read("flask-redis-demo/flask", active.predecessor.as_deref())
        .expect("previous version");
    assert!(previous.session.contains("10.96.0.10") && active.session.contains("10.96.0.53"));
}

#[test]
fn an_identity_outside_the_policy_is_refused_with_the_hash_to_add() {
    let (_server, mut t, _) = applied_example();
    let stranger = meshfile_cas::pki::client_identity("stranger", None).expect("identity");
    let hash = meshfile_cas::pki::key_hash_of_pem(&stranger).expect("hash");
    t.private_file("stranger.pem", stranger);
    let out = t.rerun(&[
        "apply",
        "-n",
        "-f",
        ".",
        "--identity",
        "stranger.pem",
        "--cas-ca",
        "ca.pem",
    ]);
    assert_eq!(
        out.status, 1,
        "refused by CAS (exit 1) before anything is written: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("flask-redis-demo") && out.stderr.contains(&hash),
        "{}",
        out.stderr
    );
}

#[test]
fn a_stopped_cas_is_reported_and_a_rerun_converges() {
    let server = Server::start();
    let mut t = Test::new();
    example_for(&t, &server);
    let state = server.kill();
    let out = t.rerun(&args("apply", &[]));
    assert_eq!(out.status, 3, "{}", out.stderr);
    assert!(out.stderr.contains("cannot reach"), "{}", out.stderr);
    // The same state, served again (on a new port): the rerun converges.
    let server = Server::start_in(state);
    example_for(&t, &server);
    let out = t.rerun(&args("apply", &[]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stderr.contains("3 created"), "{}", out.stderr);
}

#[test]
fn the_main_job_applies_to_the_embedded_store() {
    let dir = workspace()
        .join("examples/flask-redis")
        .display()
        .to_string();
    let mut t = Test::new();
    let out = t.rerun(&["apply", "-n", "-f", &dir]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("3 created, 0 updated, 0 unchanged, 0 failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("target/helm"),
        "says where the chart is: {}",
        out.stderr
    );
    let out = t.rerun(&["apply", "-n", "-f", &dir]);
    assert!(
        out.stderr.contains("0 created, 0 updated, 3 unchanged"),
        "{}",
        out.stderr
    );
    let out = t.rerun(&["plan", "-n", "--exit-code", "-f", &dir]);
    assert_eq!(out.status, 0, "{}", out.stderr);
}

#[test]
fn no_trust_no_connection() {
    let server = Server::start();
    let mut t = Test::new();
    example_for(&t, &server);
    let out = t.rerun(&["apply", "-n", "-f", ".", "--identity", "owner.pem"]);
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--cas-ca"), "{}", out.stderr);
}

#[test]
fn insecure_warns_and_names_the_key_to_pin() {
    let server = Server::start();
    let mut t = Test::new();
    example_for(&t, &server);
    let pin = meshfile_cas::pki::key_hash_of_pem(&server.file("server.pem")).expect("server key");
    let out = t.rerun(&[
        "plan",
        "-n",
        "-f",
        ".",
        "--identity",
        "owner.pem",
        "--insecure",
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stderr.contains("WARNING: --insecure"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("--cas-pin {pin}")),
        "{}",
        out.stderr
    );
    // The key it names is the one to pin: the same run with it checks the server.
    let out = t.rerun(&[
        "apply",
        "-n",
        "-f",
        ".",
        "--identity",
        "owner.pem",
        "--cas-pin",
        &pin,
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("WARNING"), "{}", out.stderr);
    // --insecure does not combine with a way to check the server.
    let out = t.rerun(&["plan", "-n", "-f", ".", "--insecure", "--cas-ca", "ca.pem"]);
    assert_eq!(out.status, 2, "{}", out.stderr);
}

/// A mesh of `n` small services pointed at `server`, written into `t`'s directory; the value of
/// `MARKER` in the env section of service `svc-{n-1}` is `marker`.
fn big_mesh(t: &Test, server: &Server, n: usize, marker: &str) {
    let mut mesh = format!(
        "apiVersion: scone/5.8\nkind: mesh\ncas:\n  - name: cas\n    alias: [image, security, access, attestation]\n    cas_url: {}\npolicy:\n  namespace: big\nenv:\n  - service: svc-{}\n    env:\n      - name: MARKER\n        value: {marker}\nservices:\n",
        server.address,
        n - 1
    );
    let mut measurements = String::new();
    for i in 0..n {
        mesh.push_str(&format!(
            "  - name: svc-{i}\n    image: registry.example.com/big/svc-{i}:1\n"
        ));
        measurements.push_str(&format!(
            "registry.example.com/big/svc-{i}:1: [\"{i:064x}\"]\n"
        ));
        let service = format!(
            "apiVersion: scone/5.8\nkind: genservice\nenvironment:\n  local:\n    - name: PW\n      value: \"$$SCONE::pw{i}$$\"\n  global:\n    - name: MARKER\n      value: none\nsecrets:\n  global:\n    - name: pw{i}\n      kind: ascii\nbuild:\n  name: svc-{i}\n  kind: python\n  to: registry.example.com/big/svc-{i}:1\n  command: python3 app.py\n"
        );
        std::fs::write(t.dir().join(format!("svc{i}.yaml")), service).expect("service");
    }
    std::fs::write(t.dir().join("mesh.yaml"), mesh).expect("mesh");
    std::fs::write(t.dir().join("measurements.yaml"), measurements).expect("measurements");
    trust_files(t, server);
}

fn spawn_apply(dir: &std::path::Path) -> std::process::Child {
    crate::meshfile(dir)
        .args([
            "apply",
            "-n",
            "-f",
            ".",
            "--identity",
            "owner.pem",
            "--cas-ca",
            "ca.pem",
        ])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("apply")
}

#[test]
fn a_cas_stopped_in_the_middle_is_reported_and_a_rerun_converges() {
    use std::io::{BufRead, BufReader, Read};
    let server = Server::start();
    let mut t = Test::new();
    big_mesh(&t, &server, 300, "one");
    let mut apply = spawn_apply(t.dir());
    let mut stderr = BufReader::new(apply.stderr.take().expect("stderr"));
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).expect("read") > 0 {
        seen.push_str(&line);
        if line.starts_with("created") {
            break;
        }
        line.clear();
    }
    let state = server.kill();
    stderr.read_to_string(&mut seen).expect("rest");
    let status = apply.wait().expect("wait");
    assert_eq!(status.code(), Some(3), "{seen}");
    assert!(
        seen.contains("not written: "),
        "lists what was not written: {seen}"
    );
    let written = seen.lines().filter(|l| l.starts_with("created")).count();
    assert!(
        (1..301).contains(&written),
        "{written} written before the stop"
    );

    let server = Server::start_in(state);
    big_mesh(&t, &server, 300, "one");
    let out = t.rerun(&args("apply", &[]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    // A write in flight when the CAS died may have been committed without an answer: such a
    // session is "unchanged" on the rerun. Every acknowledged one is, and nothing is missing.
    let summary = out
        .stderr
        .lines()
        .find(|l| l.ends_with("failed"))
        .expect("summary")
        .to_owned();
    let numbers: Vec<usize> = summary
        .split(", ")
        .map(|part| {
            part.split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("count")
        })
        .collect();
    let (created, unchanged) = (numbers[0], numbers[2]);
    assert_eq!(
        created + unchanged,
        301,
        "the rerun covers every session: {summary}"
    );
    assert!(
        unchanged >= written && unchanged <= written + 8,
        "acknowledged sessions are kept, at most the in-flight ones more: {summary}"
    );
    let out = t.rerun(&args("plan", &["--exit-code"]));
    assert_eq!(out.status, 0, "converged: {}", out.stderr);
}

#[test]
#[ignore = "stress suite: `.ci/run` runs it (cargo test -- --include-ignored)"]
fn racing_applies_lose_nothing() {
    // Both racers read at once, 64 connections each, as one identity: above the default cap.
    let server = Server::start_with(
        tempfile::tempdir().expect("state"),
        &["--max-connections-per-identity", "256"],
    );
    let mut base = Test::new();
    big_mesh(&base, &server, 200, "base");
    let out = base.rerun(&args("apply", &[]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    let owner = server.owner();
    // Each racer reaches CAS through a proxy of its own, and each writes svc-199 with a large
    // marker (a write over 16 KiB): the proxies hold each racer's write until both are about
    // to write, when both have read svc-199's active version, however far apart their
    // processes started. The second write then names a predecessor that is no longer active.
    let racer = |marker: &str, gate: &std::sync::Arc<crate::proxy::Gate>| {
        let far = crate::proxy::Proxy::start(
            server.address.clone(),
            crate::proxy::Behaviour::WriteBarrier(gate.clone()),
        );
        let t = Test::new();
        big_mesh(&t, &server, 200, marker);
        let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
        std::fs::write(
            t.dir().join("mesh.yaml"),
            mesh.replace(&server.address, &far.address),
        )
        .expect("mesh");
        t
    };
    let mut conflicts = 0;
    for round in 0..10 {
        let large = "x".repeat(24 * 1024);
        let (alpha, bravo) = (
            format!("alpha-{round}-{large}"),
            format!("bravo-{round}-{large}"),
        );
        let gate = crate::proxy::Gate::new(2);
        let (a, b) = (racer(&alpha, &gate), racer(&bravo, &gate));
        // Both start together: they read the same active version of big/svc-199.
        let (pa, pb) = (spawn_apply(a.dir()), spawn_apply(b.dir()));
        let runs = [
            (&a, pa.wait_with_output().expect("a")),
            (&b, pb.wait_with_output().expect("b")),
        ];
        let losers: Vec<_> = runs.iter().filter(|(_, o)| !o.status.success()).collect();
        assert!(losers.len() <= 1, "round {round}: at most one apply loses");
        if let Some((loser, out)) = losers.first() {
            conflicts += 1;
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("FAILED     big/svc-199") && err.contains("someone changed it"),
                "the loser names the session: {err}"
            );
            assert!(err.contains("not written: big/svc-199"), "{err}");
            let rerun = spawn_apply(loser.dir()).wait_with_output().expect("rerun");
            assert!(
                rerun.status.success(),
                "the loser's rerun applies cleanly: {}",
                String::from_utf8_lossy(&rerun.stderr)
            );
        }
        // Nothing lost: both changes of the round are in the history, one after the other.
        let active = owner.read("big/svc-199", None).expect("active");
        let previous = owner
            .read("big/svc-199", active.predecessor.as_deref())
            .expect("previous");
        let both = format!("{}{}", active.session, previous.session);
        assert!(
            both.contains(&alpha) && both.contains(&bravo),
            "round {round}: {both}"
        );
        if conflicts >= 2 {
            break;
        }
    }
    assert!(
        conflicts >= 1,
        "the racing applies never overlapped; the conflict path was not exercised"
    );
}

#[test]
fn cas_key_pins_the_server_and_verbose_traces_requests() {
    let server = Server::start();
    let mut t = Test::new();
    example_for(&t, &server);
    let pin = meshfile_cas::pki::key_hash_of_pem(&server.file("server.pem")).expect("server key");
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    let pinned = mesh.replace(
        &format!("cas_url: {}", server.address),
        &format!("cas_url: {}\n    cas_key: {pin}", server.address),
    );
    std::fs::write(t.dir().join("mesh.yaml"), &pinned).expect("write");
    // No --cas-ca: the Meshfile's cas_key is the pin.
    let out = t.rerun(&["apply", "-n", "-v", "-f", ".", "--identity", "owner.pem"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("  read flask-redis-demo -> absent ("),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("  write flask-redis-demo/flask -> hash "),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("BEGIN"), "no bodies in traces");
    let out = t.rerun(&[
        "apply",
        "-n",
        "-f",
        ".",
        "--identity",
        "owner.pem",
        "--cas-pin",
        &"0".repeat(64),
    ]);
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("differs") && out.stderr.contains("--cas-pin"),
        "{}",
        out.stderr
    );
    // A cas_key that the CAS does not present: no connection.
    std::fs::write(
        t.dir().join("mesh.yaml"),
        pinned.replace(&pin, &"1".repeat(64)),
    )
    .expect("write");
    let out = t.rerun(&["plan", "-n", "-f", ".", "--identity", "owner.pem"]);
    assert_eq!(out.status, 3, "{}", out.stderr);
    assert!(out.stderr.contains("pin mismatch"), "{}", out.stderr);
}

#[test]
fn the_users_identity_is_private_and_an_exposed_key_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start();
    let mut t = Test::new();
    example_for(&t, &server);
    let plan = ["plan", "-n", "-f", ".", "--cas-ca", "ca.pem"];
    let out = t.rerun(&plan);
    assert!(
        out.stderr.contains("created the client identity"),
        "{}",
        out.stderr
    );
    let identity = t.dir().join(".home/.config/meshfile/identity.pem");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("mode").permissions().mode() & 0o777;
    assert_eq!(mode(&identity), 0o600);
    assert_eq!(mode(identity.parent().expect("dir")), 0o700);

    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = t.rerun(&plan);
    assert_eq!(out.status, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("accessible to others (mode 0644)")
            && out
                .stderr
                .contains(&format!("chmod 600 {}", identity.display())),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("BEGIN"), "{}", out.stderr);
}

#[test]
fn an_existing_namespace_is_kept_as_cas_holds_it() {
    let server = Server::start();
    let owner = server.owner();
    let other_team = "ab".repeat(32);
    let namespace = owner
        .write(&format!(
            "name: flask-redis-demo\nversion: \"0.3.10\"\naccess_policy:\n  read: [CREATOR, {other_team}]\n  update: [CREATOR]\n  create_sessions: [ANY]\n"
        ))
        .expect("the namespace, made by hand with another team's entries");
    let mut t = Test::new();
    example_for(&t, &server);
    let out = t.rerun(&args("plan", &[]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("unchanged  flask-redis-demo  (exists with another policy and is kept")
            && !out.stderr.contains("access_policy"),
        "{}",
        out.stderr
    );
    let out = t.rerun(&args("apply", &[]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    let active = owner.read("flask-redis-demo", None).expect("namespace");
    assert_eq!(active.hash, namespace.hash, "the namespace was not changed");
    assert!(active.session.contains(&other_team));
    owner
        .read("flask-redis-demo/flask", None)
        .expect("the services are created in it");
}

#[test]
fn cas_key_in_scones_base58check_form_pins_the_server_and_a_mistyped_one_is_located() {
    let server = Server::start();
    let mut t = Test::new();
    example_for(&t, &server);
    let hex = meshfile_cas::pki::key_hash_of_pem(&server.file("server.pem")).expect("server key");
    let scone = meshfile_cas::pki::base58check(&hex).expect("Base58Check");
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    let with_key = |key: &str| {
        mesh.replace(
            &format!("cas_url: {}", server.address),
            &format!("cas_url: {}\n    cas_key: {key}", server.address),
        )
    };
    std::fs::write(t.dir().join("mesh.yaml"), with_key(&scone)).expect("write");
    // No --cas-ca, no --cas-pin: the cas_key as SCONE prints it is the pin.
    let out = t.rerun(&["apply", "-n", "-f", ".", "--identity", "owner.pem"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    // The key of another CAS: stopped, both hashes named, in both forms.
    let other_hex = "ab".repeat(32);
    let other = meshfile_cas::pki::base58check(&other_hex).expect("Base58Check");
    std::fs::write(t.dir().join("mesh.yaml"), with_key(&other)).expect("write");
    let out = t.rerun(&["plan", "-n", "-f", ".", "--identity", "owner.pem"]);
    assert_eq!(out.status, 3, "{}", out.stderr);
    for named in [&hex, &scone, &other_hex, &other] {
        assert!(
            out.stderr.contains(named.as_str()),
            "{named}: {}",
            out.stderr
        );
    }
    // A mistyped character: located, by validate as by plan, before anything is sent.
    let mistyped = format!(
        "{}{}",
        &scone[..49],
        if scone.ends_with('z') { 'y' } else { 'z' }
    );
    std::fs::write(t.dir().join("mesh.yaml"), with_key(&mistyped)).expect("write");
    for verb in [
        &["validate", "-f", "."][..],
        &["plan", "-n", "-f", ".", "--identity", "owner.pem"],
    ] {
        let out = t.rerun(verb);
        assert_eq!(out.status, 1, "{}", out.stderr);
        assert!(
            out.stderr.contains("mesh.yaml:")
                && out.stderr.contains("error[E042]")
                && out.stderr.contains("checksum"),
            "{}",
            out.stderr
        );
    }
}

/// A `repo.key_file` that does not exist is found before any image is copied, located at the
/// key, with the command that makes one.
#[test]
fn a_missing_image_signing_key_is_located_with_how_to_make_it() {
    let mut t = crate::oci::example_with_image("127.0.0.1:9/src/app:1.0");
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    t = t.file(
        "mesh.yaml",
        format!("{mesh}repo:\n  destination: 127.0.0.1:9/dest\n  key_file: cosign.key\n"),
    );
    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    let line = mesh.lines().count() + 3;
    assert!(
        out.stderr.contains(&format!(
            "mesh.yaml:{line}:13: error[E107]: repo.key_file `cosign.key`"
        )) && out
            .stderr
            .contains("help: make it with `meshfile key generate --cosign --out cosign.key`"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("copying"), "{}", out.stderr);
    // Not signing (-n: no registry is asked), the key is not needed.
    assert_eq!(t.rerun(&["apply", "-n", "-f", "."]).status, 0);
}

/// `plan` changes nothing and `apply -p` writes nothing: neither makes `target/` (no
/// descriptor store, no embedded store), and a plan against a store not made yet lists every
/// session as new.
#[test]
fn plan_and_print_defaults_leave_no_target_behind() {
    let dir = workspace().join("examples/hello-world");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("example");
    let mut t = Test::new()
        .file("mesh.yaml", read("mesh.yaml"))
        .file("service.yaml", read("service.yaml"))
        .file("measurements.yaml", read("measurements.yaml"));
    let plan = t.rerun(&["plan", "-n", "-f", "."]);
    assert_eq!(plan.status, 0, "{}", plan.stderr);
    assert!(
        (plan.stdout.clone() + &plan.stderr).contains("2 to create, 0 to update, 0 unchanged"),
        "{}{}",
        plan.stdout,
        plan.stderr
    );
    assert!(!t.dir().join("target").exists(), "plan made target/");
    let print = t.rerun(&["apply", "-p", "-n", "-f", "."]);
    assert_eq!(print.status, 0, "{}", print.stderr);
    assert!(!t.dir().join("target").exists(), "apply -p made target/");
}

/// `target/` is relative to where meshfile runs: a mesh whose output replaces another mesh's
/// there says so; the same mesh again says nothing.
#[test]
fn a_target_holding_another_meshs_output_is_named_when_replaced() {
    let example = |name: &str| workspace().join("examples").join(name);
    let mut t = Test::new();
    for name in ["hello-world", "flask-redis"] {
        let dir = t.dir().join(name);
        std::fs::create_dir(&dir).expect("dir");
        for entry in std::fs::read_dir(example(name)).expect("example") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
            }
        }
    }
    let first = t.rerun(&["template", "-n", "-f", "hello-world"]);
    assert_eq!(first.status, 0, "{}", first.stderr);
    assert!(
        !first.stderr.contains("held the output"),
        "{}",
        first.stderr
    );
    let again = t.rerun(&["template", "-n", "-f", "hello-world"]);
    assert!(
        !again.stderr.contains("held the output"),
        "{}",
        again.stderr
    );
    let other = t.rerun(&["template", "-n", "-f", "flask-redis"]);
    assert_eq!(other.status, 0, "{}", other.stderr);
    assert!(
        other.stderr.contains("warning: target held the output of")
            && other.stderr.contains("hello-world/mesh.yaml; it now holds")
            && other.stderr.contains("--target DIR"),
        "{}",
        other.stderr
    );
}
