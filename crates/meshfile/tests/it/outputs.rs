//! What each command prints for its main outcome, asserted whole: exit status, standard output
//! and standard error together, as snapshots (`tests/it/snapshots/it__outputs__*.snap`; a
//! changed output fails until the snapshot is reviewed and accepted with `cargo insta review`
//! or `INSTA_UPDATE=always`). The test's directory is shown as `[DIR]`.

use crate::{Output, Test, workspace};

/// A command's whole outcome, as the snapshot holds it.
fn whole(t: &Test, out: &Output) -> String {
    let dir = t.dir().display().to_string();
    format!(
        "exit status: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        out.stdout.replace(&dir, "[DIR]"),
        out.stderr.replace(&dir, "[DIR]")
    )
}

/// The hello-world example in a fresh test directory, with the fixture keys as the user's.
fn hello_world() -> Test {
    let dir = workspace().join("examples/hello-world");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("example");
    let t = Test::new()
        .file("mesh.yaml", read("mesh.yaml"))
        .file("service.yaml", read("service.yaml"))
        .file("measurements.yaml", read("measurements.yaml"));
    t.signing_fixtures();
    t
}

#[test]
fn explain() {
    let mut t = Test::new();
    let out = t.rerun(&["explain", "E012"]);
    insta::assert_snapshot!("explain", whole(&t, &out));
}

#[test]
fn validate_a_mistake() {
    let mut t = hello_world();
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    t = t.file("mesh.yaml", mesh.replace("\nservices:", "\nservces:"));
    let out = t.rerun(&["validate", "-f", "mesh.yaml"]);
    insta::assert_snapshot!("validate-mistake", whole(&t, &out));
}

#[test]
fn lint() {
    let mut t = hello_world();
    let out = t.rerun(&["lint", "-f", "."]);
    insta::assert_snapshot!("lint", whole(&t, &out));
}

#[test]
fn template_apply_plan() {
    let mut t = hello_world();
    let template = t.rerun(&["template", "-n", "-f", "."]);
    insta::assert_snapshot!("template", whole(&t, &template));
    let apply = t.rerun(&["apply", "-n", "-f", "."]);
    insta::assert_snapshot!("apply", whole(&t, &apply));
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    t = t.file("mesh.yaml", mesh.replace("value: myself", "value: bob"));
    let plan = t.rerun(&["plan", "-n", "-f", "."]);
    insta::assert_snapshot!("plan", whole(&t, &plan));
}

#[test]
fn key_show() {
    let mut t = hello_world();
    let out = t.rerun(&["key", "show"]);
    insta::assert_snapshot!("key-show", whole(&t, &out));
}

/// hello-world whose CAS signs its sessions (`mode: SignedManifest`): `template` signs with
/// the user's key; `sign` with a second signer's shows what changed and asks first (refused
/// without a terminal, done with `--yes`); a new version is reviewed against the one it
/// replaces; `--export-message` hands out the message and that review beside it.
#[test]
fn sign() {
    let mut t = hello_world();
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    let mesh = mesh.replace(
        "    cas_url: embedded",
        "    cas_url: cas.example.com\n    mode: SignedManifest",
    );
    t = t.file("mesh.yaml", &mesh);
    let second = std::fs::read(crate::fixture("keys/second-signer.pem")).expect("fixture");
    t.private_file("second.pem", second);
    let template = t.rerun(&["template", "-n", "-f", "."]);
    assert_eq!(template.status, 0, "{}", template.stderr);
    let unconfirmed = t.rerun(&["sign", "--signing-key", "second.pem"]);
    insta::assert_snapshot!("sign-unconfirmed", whole(&t, &unconfirmed));
    let sign = t.rerun(&["sign", "--signing-key", "second.pem", "--yes"]);
    insta::assert_snapshot!("sign", whole(&t, &sign));
    let again = t.rerun(&["sign", "--signing-key", "second.pem", "--yes", "-q"]);
    insta::assert_snapshot!("sign-again", whole(&t, &again));
    t = t.file("mesh.yaml", mesh.replace("value: myself", "value: bob"));
    let template = t.rerun(&["template", "-n", "-f", "."]);
    assert_eq!(template.status, 0, "{}", template.stderr);
    let changed = t.rerun(&["sign", "--signing-key", "second.pem", "--yes"]);
    insta::assert_snapshot!("sign-changed", whole(&t, &changed));
    let export = t.rerun(&[
        "sign",
        "--session",
        "hello-world-demo/pythonservice",
        "--export-message",
        "message.bin",
    ]);
    let diff = std::fs::read_to_string(t.dir().join("message.bin.diff")).expect("diff");
    insta::assert_snapshot!(
        "sign-export-message",
        format!("{}--- message.bin.diff\n{diff}", whole(&t, &export))
    );
}

/// `cas serve`'s banner, `cas probe` of it, and `cas check` of its state once stopped, with
/// what differs from run to run (the port, the keys it made) as placeholders.
#[test]
fn cas_serve_probe_check() {
    use std::io::BufRead;
    let mut t = Test::new();
    t.signing_fixtures();
    let mut serve = crate::meshfile(t.dir())
        .args([
            "cas",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state",
            "state",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("cas serve");
    let stdout = serve.stdout.take().expect("stdout");
    let mut banner = String::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("banner");
        let last = line.starts_with("  try: curl");
        banner.push_str(&line);
        banner.push('\n');
        if last {
            break;
        }
    }
    let address = (banner.lines().next())
        .and_then(|l| l.rsplit("https://").next())
        .expect("address")
        .to_owned();
    let probe = t.rerun(&["cas", "probe", &address, "--cas-ca", "state/ca.pem"]);
    let _ = serve.kill();
    let _ = serve.wait();
    let check = t.rerun(&["cas", "check", "--state", "state"]);
    // The values of this run: the port, and each key hash and key the server made.
    let mut made: Vec<(String, &str)> = vec![(address.clone(), "127.0.0.1:[PORT]")];
    for (marker, placeholder) in [
        ("server key hash:        ", "[SERVER KEY HASH]"),
        ("(Base58Check ", "[SERVER KEY HASH B58]"),
        ("session encryption key: ", "[ENCRYPTION KEY]"),
        ("(key hash ", "[OWNER KEY HASH]"),
    ] {
        let value = (banner.split(marker).nth(1))
            .and_then(|rest| rest.split([' ', ';', ')']).next())
            .expect(marker);
        made.push((value.to_owned(), placeholder));
    }
    let redact = |text: String| {
        (made.iter()).fold(text, |text, (value, placeholder)| {
            text.replace(value.as_str(), placeholder)
        })
    };
    let dir = t.dir().display().to_string();
    let serve_whole = format!("--- stdout\n{}", banner.replace(&dir, "[DIR]"));
    insta::assert_snapshot!("cas-serve", redact(serve_whole));
    insta::assert_snapshot!("cas-probe", redact(whole(&t, &probe)));
    insta::assert_snapshot!("cas-check", redact(whole(&t, &check)));
}

/// One mistake of each family of diagnostics, shown as `validate` or `template` shows it:
/// reading (E00x), shape (E01x), version and kind (E02x), the mesh's rules (E03x), secrets and
/// references (E05x), across the mesh's files (E10x), the environment (E2xx), and a warning.
#[test]
fn one_diagnostic_of_each_family() {
    let service = |secrets: &str| {
        format!(
            "apiVersion: scone/5.8\nkind: genservice\nenvironment:\n  local:\n    - name: PASSWORD\n      value: \"$$SCONE::{secrets}$$\"\nsecrets:\n  global:\n    - name: password\n      kind: ascii\nbuild:\n  name: app\n  kind: python\n  to: registry.example.com/app:1\n  command: python3 app.py\n"
        )
    };
    let mesh = |services: &str, extra: &str| {
        format!(
            "apiVersion: scone/5.8\nkind: mesh\ncas:\n  - name: cas\n    alias: [image, security, access, attestation]\n    cas_url: embedded{extra}\npolicy:\n  namespace: demo\nenv:\n  - service: global\n    env:\n      - name: API_USER\n        value: me\nservices:\n{services}"
        )
    };
    let one = "  - name: app\n    image: registry.example.com/app:1\n";
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a [&'a str]);
    let pin = "ab".repeat(32);
    let mrenclave = "cd".repeat(32);
    let cases: [Case<'_>; 9] = [
        (
            "family-reading",
            vec![("mesh.yaml", "services: [unclosed\n".to_owned())],
            &["validate", "-f", "mesh.yaml"],
        ),
        (
            "family-version",
            vec![("mesh.yaml", mesh(one, "").replace("scone/5.8", "scone/5.7"))],
            &["validate", "-f", "mesh.yaml"],
        ),
        (
            "family-mesh-rules",
            vec![("mesh.yaml", mesh(&format!("{one}{one}"), ""))],
            &["validate", "-f", "mesh.yaml"],
        ),
        (
            "family-secrets",
            vec![("service.yaml", service("pasword"))],
            &["validate", "-f", "service.yaml"],
        ),
        (
            "family-across-files",
            vec![
                ("mesh.yaml", mesh(one, "").replace("embedded", "$CAS_HOST")),
                ("service.yaml", service("password")),
            ],
            &["template", "-n", "-f", ".", "--mrenclave", &mrenclave],
        ),
        (
            "family-environment",
            vec![("mesh.yaml", mesh(one, ""))],
            &["template", "-n", "-f", "missing-directory"],
        ),
        (
            "family-warning",
            vec![("mesh.yaml", mesh(one, "\n    tolerance: --sunshine"))],
            &["validate", "-f", "mesh.yaml"],
        ),
        (
            "family-cas-unreachable",
            vec![
                (
                    "mesh.yaml",
                    mesh(one, "").replace("embedded", "127.0.0.1:9"),
                ),
                ("service.yaml", service("password")),
                (
                    "measurements.yaml",
                    format!("registry.example.com/app:1: [{mrenclave}]\n"),
                ),
            ],
            &[
                "plan",
                "-n",
                "-f",
                ".",
                "--cas-pin",
                &pin,
                "--cas-timeout",
                "5",
            ],
        ),
        (
            "family-arguments",
            vec![("mesh.yaml", mesh(one, ""))],
            &[
                "template",
                "-n",
                "-f",
                "mesh.yaml",
                "--set",
                "NO_EQUALS_SIGN",
            ],
        ),
    ];
    for (name, files, args) in cases {
        let mut t = Test::new();
        t.signing_fixtures();
        for (file, text) in files {
            t = t.file(file, text);
        }
        let out = t.rerun(args);
        insta::assert_snapshot!(name, whole(&t, &out));
    }
}

/// `plan` for review: Markdown for a pull request (asserted whole), JSON valid against
/// `meshfile schema plan`, and the exit statuses of `--exit-code` and `--detailed-exitcode`.
#[test]
fn plan_for_review() {
    let Some(python) = crate::tools::tool("kval/bin/python") else {
        return;
    };
    let mut t = crate::mesh::three_services();
    let first = t.rerun(&["plan", "-n", "-f", ".", "--detailed-exitcode"]);
    assert_eq!(first.status, 2, "{}", first.stderr);
    let apply = t.rerun(&["apply", "-n", "-f", "."]);
    assert_eq!(apply.status, 0, "{}", apply.stderr);
    let none = t.rerun(&["plan", "-n", "-f", ".", "--detailed-exitcode", "-q"]);
    assert_eq!(none.status, 0, "{}", none.stderr);
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    t = t.file(
        "mesh.yaml",
        mesh.replace("value: hi", "value: \"hi | <b>`there`</b>\""),
    );
    let markdown = t.rerun(&["plan", "-n", "-f", ".", "-o", "markdown", "-q"]);
    insta::assert_snapshot!("plan-markdown", whole(&t, &markdown));
    let json = t.rerun(&["plan", "-n", "-f", ".", "-o", "json", "-q", "--exit-code"]);
    assert_eq!(json.status, 1, "{}", json.stderr);
    let schema = t.rerun(&["schema", "plan"]);
    assert_eq!(schema.status, 0, "{}", schema.stderr);
    std::fs::write(t.dir().join("plan.json"), &json.stdout).expect("plan");
    std::fs::write(t.dir().join("plan.schema.json"), &schema.stdout).expect("schema");
    let check = "import json, sys, jsonschema\nplan = json.load(open(sys.argv[1]))\njsonschema.validate(plan, json.load(open(sys.argv[2])))\nassert plan['format'] == 'meshfile-plan/1' and plan['changes'] == 1, plan\n";
    let (plan, schema) = (t.path("plan.json"), t.path("plan.schema.json"));
    let (valid, text) = crate::tools::run(&python, &["-c", check, &plan, &schema], t.dir());
    assert!(valid, "{text}\n{}", json.stdout);
    // An error is 1 with --detailed-exitcode, whatever the contract's status (here 2, usage).
    let broken = t.rerun(&["plan", "-n", "-f", "nothing-here", "--detailed-exitcode"]);
    assert_eq!(broken.status, 1, "{}", broken.stderr);
}
