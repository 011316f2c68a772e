//! Least-privilege findings (W111-W116): each found where it holds, at its file, line and
//! column, and not found where it does not; the examples' findings are the documented ones.

use crate::{Test, workspace};

/// A mesh `t` of services `a` and `b`, each manifest's body (environment, files, secrets)
/// given, with their measurements.
fn two(a: &str, b: &str) -> Test {
    let manifest = |name: &str, body: &str| {
        let environment = "environment:\n  local:\n    - name: MODE\n      value: test\n";
        let body = if body.contains("environment:") {
            body.to_owned()
        } else {
            format!("{environment}{body}")
        };
        format!(
            "apiVersion: scone/5.8\nkind: genservice\n{body}build:\n  name: {name}\n  kind: python\n  to: registry.example.com/{name}:1\n  pwd: /app\n  command: python3 app.py\n"
        )
    };
    let mesh = "apiVersion: scone/5.8\nkind: mesh\ncas:\n  - name: cas\n    alias: [image, security, access, attestation]\n    cas_url: embedded\npolicy:\n  namespace: t\nenv:\n  - service: global\n    env:\n      - name: APP_SERVICE_PORT\n        value: 8080\nservices:\n  - name: a\n    image: registry.example.com/a:1\n  - name: b\n    image: registry.example.com/b:1\n";
    let measurements = format!(
        "registry.example.com/a:1: [\"{}\"]\nregistry.example.com/b:1: [\"{}\"]\n",
        "a".repeat(64),
        "b".repeat(64)
    );
    Test::new()
        .file("mesh.yaml", mesh)
        .file("a.yaml", manifest("a", a))
        .file("b.yaml", manifest("b", b))
        .file("measurements.yaml", measurements)
}

/// The lines of `lint`'s JSON report with `code`, as `file:line:column`.
fn found(t: &Test, code: &str) -> Vec<String> {
    let out = t.with(&["lint", "-f", ".", "--output", "json"]);
    assert!(out.status == 0, "{}{}", out.stdout, out.stderr);
    let list: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("json");
    list.iter()
        .filter(|d| d["code"] == code)
        .map(|d| {
            format!(
                "{}:{}:{}",
                d["file"].as_str().unwrap_or_default(),
                d["line"],
                d["column"]
            )
        })
        .collect()
}

const A_PASSWORD: &str = "secrets:\n  global:\n    - name: a_pw\n      kind: ascii\n";
const USES_A_PASSWORD: &str =
    "environment:\n  local:\n    - name: PW\n      value: \"$$SCONE::a_pw$$\"\n";

#[test]
fn w111_a_secret_nothing_uses() {
    let t = two(A_PASSWORD, "");
    assert_eq!(found(&t, "W111"), ["./a.yaml:9:13"]);
    let used = two(&format!("{USES_A_PASSWORD}{A_PASSWORD}"), "");
    assert_eq!(found(&used, "W111"), Vec::<String>::new());
    // Imported by another service counts as used.
    let imported = two(
        A_PASSWORD,
        &format!("{USES_A_PASSWORD}secrets:\n  import:\n    - a_pw\n"),
    );
    assert_eq!(found(&imported, "W111"), Vec::<String>::new());
}

#[test]
fn w112_an_import_the_importer_never_uses() {
    let a = format!("{USES_A_PASSWORD}{A_PASSWORD}");
    let t = two(&a, "secrets:\n  import:\n    - a_pw\n");
    assert_eq!(found(&t, "W112"), ["./b.yaml:9:7"]);
    let used = two(
        &a,
        &format!("{USES_A_PASSWORD}secrets:\n  import:\n    - a_pw\n"),
    );
    assert_eq!(found(&used, "W112"), Vec::<String>::new());
}

/// `t` with `text` added to the `build` section of its service manifest `name`.
fn built(t: Test, name: &str, text: &str) -> Test {
    let manifest = std::fs::read_to_string(t.dir().join(name)).expect(name);
    t.file(
        name,
        manifest.replace("build:\n", &format!("build:\n{text}")),
    )
}

#[test]
fn w113_a_volume_exported_to_a_session_that_does_not_import_it() {
    let export =
        "  volumes:\n    - name: data\n      path: /data\n      export:\n        - session: t/b\n";
    let t = built(two("", ""), "a.yaml", export);
    assert_eq!(found(&t, "W113"), ["./a.yaml:12:20"]);
    let import = "  volumes:\n    - name: shared\n      path: /shared\n      import:\n        session: t/a\n        volume: data\n";
    let imported = built(t, "b.yaml", import);
    assert_eq!(found(&imported, "W113"), Vec::<String>::new());
}

const A_CERTIFICATE: &str = "environment:\n  local:\n    - name: CERT\n      value: \"$$SCONE::a_cert:crt$$\"\nsecrets:\n  global:\n    - name: a_key\n      kind: private-key\n    - name: a_cert\n      kind: x509\n      private_key: a_key\n";

#[test]
fn w114_a_certificate_imported_for_itself_whose_key_comes_along() {
    let verifier = "injection_files:\n  - path: /tls/ca.crt\n    content: $$SCONE::a_cert:crt$$\nsecrets:\n  import:\n    - a_cert\n";
    let t = two(A_CERTIFICATE, verifier);
    assert_eq!(found(&t, "W114"), ["./b.yaml:12:7"]);
    // A client that uses the key too needs it.
    let client = "injection_files:\n  - path: /tls/c.crt\n    content: $$SCONE::a_cert:crt$$\n  - path: /tls/c.key\n    content: $$SCONE::a_cert:privatekey$$\nsecrets:\n  import:\n    - a_cert\n";
    assert_eq!(
        found(&two(A_CERTIFICATE, client), "W114"),
        Vec::<String>::new()
    );
}

#[test]
fn w115_the_same_value_in_services_that_share_nothing() {
    let token = |service: &str| {
        format!(
            "environment:\n  local:\n    - name: TOKEN\n      value: \"$$SCONE::{service}_token$$\"\nsecrets:\n  global:\n    - name: {service}_token\n      kind: ascii\n      value: not-so-secret-0123\n"
        )
    };
    let t = two(&token("a"), &token("b"));
    assert_eq!(found(&t, "W115"), ["./b.yaml:11:14"]);
    let out = t.with(&["lint", "-f", ".", "--output", "json"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("json");
    let finding = list.iter().find(|d| d["code"] == "W115").expect("W115");
    assert!(
        !finding.to_string().contains("not-so-secret-0123"),
        "the value is shown: {finding}"
    );
    let other = token("b").replace("not-so-secret-0123", "another-value-4567");
    assert_eq!(
        found(&two(&token("a"), &other), "W115"),
        Vec::<String>::new()
    );
}

#[test]
fn w116_a_policy_template_that_tolerates_debug_enclaves() {
    let policy = |tolerate: &str| {
        format!(
            "name: anything\nversion: \"0.3.10\"\nservices:\n  - name: a\n    image_name: img\n    mrenclaves: [\"{}\"]\n    command: python3 app.py\n    pwd: /app\nimages:\n  - name: img\nsecurity:\n  tolerate: [{tolerate}]\n",
            "a".repeat(64)
        )
    };
    let with_policy = |tolerate: &str| {
        let t = two("", "");
        let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
        t.file(
            "mesh.yaml",
            mesh.replace(
                "image: registry.example.com/a:1\n",
                "image: registry.example.com/a:1\n    image_policy: policy.yaml\n",
            ),
        )
        .file("policy.yaml", policy(tolerate))
    };
    assert_eq!(
        found(&with_policy("debug-mode, outdated-tcb"), "W116"),
        ["./mesh.yaml:17:19"]
    );
    assert_eq!(
        found(&with_policy("outdated-tcb"), "W116"),
        Vec::<String>::new()
    );
}

/// The examples' findings are the ones their guide page explains: flask-redis's (and the
/// signed board's, the same services) W114, which `secrets.global` makes inherent.
#[test]
fn the_examples_findings_are_the_documented_ones() {
    let codes = ["W111", "W112", "W113", "W114", "W115", "W116"];
    for (example, expected) in [
        ("hello-world", vec![]),
        ("flask-redis", vec!["W114 flask.yaml:60:7"]),
    ] {
        let mut command = crate::meshfile(&workspace());
        let home = tempfile::tempdir().expect("home");
        crate::isolate(&mut command, home.path());
        let out = command
            .args([
                "lint",
                "--output",
                "json",
                "-f",
                &format!("examples/{example}"),
            ])
            .output()
            .expect("lint");
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
        let found: Vec<String> = (list.iter())
            .filter(|d| codes.iter().any(|c| d["code"] == *c))
            .map(|d| {
                let file = d["file"]
                    .as_str()
                    .unwrap_or_default()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                format!(
                    "{} {file}:{}:{}",
                    d["code"].as_str().unwrap_or_default(),
                    d["line"],
                    d["column"]
                )
            })
            .collect();
        assert_eq!(found, expected, "{example}");
    }
    let guide =
        std::fs::read_to_string(workspace().join("docs/src/guide/graph.md")).expect("guide");
    assert!(
        guide.contains("W114") && guide.contains("flask-redis"),
        "the guide explains the example's W114"
    );
}
