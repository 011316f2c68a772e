//! `apply` and `plan` end to end against `meshfile cas serve` over mTLS, and on the embedded store.

use crate::cas::Server;
use crate::{Test, workspace};

/// The multi-service example, pointed at `server`.
fn example_for(t: &Test, server: &Server) {
    let src = workspace().join("examples/flask-redis");
    for entry in std::fs::read_dir(&src).expect("example") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let text = text.replace("cas_url: embedded", &format!("cas_url: {}", server.address));
        std::fs::write(t.dir().join(path.file_name().expect("name")), text).expect("write");
    }
    std::fs::write(t.dir().join("ca.pem"), server.file("ca.pem")).expect("ca");
    std::fs::write(t.dir().join("owner.pem"), server.file("owner.pem")).expect("owner");
}

const CAS: &[&str] = &["--identity", "owner.pem", "--cas-ca", "ca.pem"];

fn args<'a>(verb: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![verb, "-f", "."];
    v.extend(CAS);
    v.extend(extra);
    v
}

#[test]
fn apply_converges_and_updates_exactly_what_changed() {
    let server = Server::start();
    // The namespace is owned by whoever creates it: here, the server's owner identity.
    let mut t = Test::new();
    example_for(&t, &server);
    let out = t.rerun(&args("apply", &[]));
    assert_eq!(out.status, 0, "{}", out.stderr);
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
    let server = Server::start();
    let mut t = Test::new();
    example_for(&t, &server);
    let out = t.rerun(&args("apply", &[]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    let stranger = meshfile_cas::pki::client_identity("stranger", None).expect("identity");
    let hash = meshfile_cas::pki::key_hash_of_pem(&stranger).expect("hash");
    std::fs::write(t.dir().join("stranger.pem"), stranger).expect("write");
    let out = t.rerun(&[
        "apply",
        "-f",
        ".",
        "--identity",
        "stranger.pem",
        "--cas-ca",
        "ca.pem",
    ]);
    assert_eq!(
        out.status, 3,
        "reading is refused before anything is written: {}",
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
    let out = t.rerun(&["apply", "-f", &dir]);
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
    let out = t.rerun(&["apply", "-f", &dir]);
    assert!(
        out.stderr.contains("0 created, 0 updated, 3 unchanged"),
        "{}",
        out.stderr
    );
    let out = t.rerun(&["plan", "--exit-code", "-f", &dir]);
    assert_eq!(out.status, 0, "{}", out.stderr);
}

#[test]
fn no_trust_no_connection() {
    let server = Server::start();
    let mut t = Test::new();
    example_for(&t, &server);
    let out = t.rerun(&["apply", "-f", ".", "--identity", "owner.pem"]);
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--cas-ca"), "{}", out.stderr);
}
