//! `template`/`apply` on the public tutorials' meshes: sessions, charts checked by real Helm
//! and Kubernetes schemas, no secret in the chart, same bytes every time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::tools::{run, tool};
use crate::{Test, workspace};

/// The values the tutorials' run.sh scripts give their `$VAR`s.
const SETS: &[&str] = &[
    "--set",
    "APP_NAMESPACE=demo-ns",
    "--set",
    "APP_IMAGE_REPO=registry.scontain.com/cicd",
    "--set",
    "CAS_URL=cas.default:8081",
    "--set",
    "RELEASE=demo",
    "--set",
    "SCONECTL_REPO=registry.scontain.com/sconectl",
    // examples/signed-board: its approvers' keys and the CAS's session encryption key.
    "--set",
    "ALICE=-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA8Pj9ahoBgjioKcS4iLV4JLuPZ+SSKS/FdyUYG2yUrH8=\n-----END PUBLIC KEY-----\n",
    "--set",
    "BOB=-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEApXCmpP2AChZNKQjo76SZgDP0iCNjFqTrt8YON7z+4lY=\n-----END PUBLIC KEY-----\n",
    "--set",
    "CAROL=-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAfQBeGHBMZnxDUhP9TF5a9Nyl8JngU6hDOkVVgeweIQE=\n-----END PUBLIC KEY-----\n",
    "--set",
    "CAS_ENCRYPTION_KEY=c775d9acb992bc2e023e91cb00a747bea95f1bc5f27580bf9f6ab10802321a6d",
];

/// Every mesh directory that must compile: the examples and the tutorial fixtures.
fn meshes() -> Vec<PathBuf> {
    let root = workspace();
    let mut dirs = vec![
        root.join("examples/hello-world"),
        root.join("examples/flask-redis"),
        root.join("examples/signed-board"),
    ];
    for name in [
        "hello-world-secrets",
        "flask-redis",
        "secure-document-app",
        "java",
        "software-updates/v1",
        "software-updates/v2",
    ] {
        dirs.push(root.join("crates/meshfile/tests/meshes").join(name));
    }
    dirs
}

fn template(dir: &Path) -> (Test, crate::Output) {
    let mut args = vec!["template", "-n", "-f"];
    let dir = dir.display().to_string();
    args.push(&dir);
    args.extend(SETS);
    let t = Test::new();
    t.signing_fixtures();
    let t = t.args(&args);
    let out = t.run();
    (t, out)
}

/// Every file under `dir`, by relative path.
/// Every file under `dir` as raw bytes, by relative path.
pub fn raw_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .expect("prefix")
                    .display()
                    .to_string();
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

/// The files of a packaged sub-chart, as `<archive>:<path inside>`; checks that the archive
/// carries no time, owner or mode of the machine that wrote it.
fn unpack(archive: &str, bytes: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in tar.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        let header = entry.header();
        assert_eq!(header.mtime().expect("mtime"), 0, "{archive}");
        assert_eq!(header.uid().expect("uid"), 0, "{archive}");
        assert_eq!(header.mode().expect("mode"), 0o644, "{archive}");
        let path = entry.path().expect("path").display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("entry");
        out.insert(
            format!("{archive}:{path}"),
            String::from_utf8_lossy(&bytes).into_owned(),
        );
    }
    out
}

/// Every file under `dir` as text, packaged sub-charts unpacked.
fn files(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (rel, bytes) in raw_files(dir) {
        if rel.ends_with(".tgz") {
            out.extend(unpack(&rel, &bytes));
        } else {
            out.insert(rel, String::from_utf8(bytes).expect("text"));
        }
    }
    out
}

#[test]
fn every_tutorial_mesh_compiles_to_sessions_and_a_chart() {
    for dir in meshes() {
        let (t, out) = template(&dir);
        assert_eq!(out.status, 0, "{}:\n{}", dir.display(), out.stderr);
        let policies = files(&t.dir().join("target/policies"));
        // One sub-chart per service: an entry of the umbrella's dependencies.
        let umbrella =
            std::fs::read_to_string(t.dir().join("target/helm/Chart.yaml")).expect("umbrella");
        let services = umbrella
            .lines()
            .filter(|l| l.starts_with("- name: "))
            .count();
        assert_eq!(
            policies.len(),
            services + 1,
            "{}: one session per service plus the namespace",
            dir.display()
        );
        for (name, yaml) in &policies {
            assert!(yaml.contains("version: \"0.3.10\""), "{name}");
            if name.contains('/') {
                assert!(yaml.contains("mrenclave:"), "{name} has no measurement");
            }
        }
    }
}

#[test]
fn charts_pass_helm_lint_and_kubernetes_schemas() {
    let (Some(helm4), Some(helm3), Some(kval)) = (
        tool("bin/helm4"),
        tool("bin/helm3"),
        tool("kval/bin/kubernetes-validate"),
    ) else {
        return;
    };
    for dir in meshes() {
        let (t, out) = template(&dir);
        assert_eq!(out.status, 0, "{}", out.stderr);
        let chart = t.dir().join("target/helm").display().to_string();
        for helm in [&helm4, &helm3] {
            let (ok, text) = run(
                helm,
                &["lint", "--strict", "--with-subcharts", &chart],
                t.dir(),
            );
            assert!(ok, "{} lint {}:\n{text}", helm.display(), dir.display());
        }
        let mesh = std::fs::read_to_string(dir.join("mesh.yaml")).expect("mesh");
        let embedded = mesh.contains("cas_url: embedded");
        // The host pods get: the install's for the embedded store, else the cas_url's host.
        let expected = if embedded {
            Some("cas.example")
        } else {
            mesh.contains("cas_url: $CAS_URL").then_some("cas.default")
        };
        let install = ["template", "release", &chart, "--kube-version", "1.35.0"];
        if embedded {
            // No pod reaches the embedded store: the install must name the CAS.
            let (ok, text) = run(&helm4, &install, t.dir());
            assert!(
                !ok && text.contains("no CAS address for SCONE_CAS_ADDR")
                    && text.contains("--set global.casAddr=HOST"),
                "{}:\n{text}",
                dir.display()
            );
        }
        let (ok, rendered) = run(
            &helm4,
            &[&install[..], &["--set", "global.casAddr=cas.example"]].concat(),
            t.dir(),
        );
        assert!(ok, "helm template {}:\n{rendered}", dir.display());
        let addresses: Vec<&str> = rendered
            .split("- name: SCONE_CAS_ADDR\n")
            .skip(1)
            .filter_map(|rest| rest.lines().next())
            .collect();
        assert!(!addresses.is_empty(), "{}", dir.display());
        for address in addresses {
            let host = address
                .trim()
                .trim_start_matches("value: ")
                .trim_matches('"');
            assert!(
                expected.map_or(!host.is_empty() && !host.contains(':'), |e| host == e)
                    && host != "embedded",
                "{}: pods get the CAS host, never the client port or `embedded`: {host}",
                dir.display()
            );
        }
        // The shared service chart's schema checks each service's values.
        let umbrella =
            std::fs::read_to_string(t.dir().join("target/helm/Chart.yaml")).expect("umbrella");
        if let Some(alias) = umbrella.lines().find_map(|l| l.strip_prefix("  alias: ")) {
            let unset = format!("{alias}.image=");
            let (ok, text) = run(
                &helm4,
                &[
                    "template",
                    "release",
                    &chart,
                    "--set",
                    &unset,
                    "--set",
                    "global.casAddr=cas.example",
                ],
                t.dir(),
            );
            assert!(
                !ok && text.contains(&format!("{alias}:")),
                "{}:\n{text}",
                dir.display()
            );
        }
        let manifests = t.dir().join("rendered.yaml");
        std::fs::write(&manifests, &rendered).expect("write rendered");
        let (ok, text) = run(
            &kval,
            &["--strict", "-k", "1.35", &manifests.display().to_string()],
            t.dir(),
        );
        assert!(ok, "kubernetes-validate {}:\n{text}", dir.display());
        assert!(
            !rendered.contains("$$SCONE::"),
            "{}: a run-time secret reference reached the pod spec",
            dir.display()
        );
    }
}

/// Every explicit secret value and every environment value the sessions carry.
fn confidential(policies: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut plumbing = Vec::new();
    for yaml in policies.values() {
        let mut in_env = false;
        for line in yaml.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("environment:") {
                in_env = true;
                continue;
            }
            if in_env && !line.starts_with("    ") {
                in_env = false;
            }
            let value = |l: &str| {
                l.split_once(": ")
                    .map(|(_, v)| v.trim_matches('"').to_owned())
            };
            // A host to wait for (INIT_CONTAINER<N>) is chart plumbing, as genservice has it.
            if trimmed.starts_with("INIT_CONTAINER")
                && let Some(v) = value(trimmed)
            {
                plumbing.push(v);
                continue;
            }
            if (trimmed.starts_with("value:") || in_env)
                && let Some(v) = value(trimmed)
            {
                // Short words (`info`, `1`) also occur in chart plumbing; they are not secrets.
                if v.len() >= 8 {
                    out.push(v);
                }
            }
        }
    }
    out.retain(|v| !plumbing.contains(v));
    out
}

#[test]
fn no_secret_or_session_environment_reaches_the_chart() {
    for dir in meshes() {
        let (t, out) = template(&dir);
        assert_eq!(out.status, 0, "{}", out.stderr);
        let policies = files(&t.dir().join("target/policies"));
        let chart = files(&t.dir().join("target/helm"));
        let secrets = confidential(&policies);
        assert!(
            !secrets.is_empty(),
            "{}: the check must have values to look for",
            dir.display()
        );
        for (path, text) in &chart {
            assert!(
                !text.contains("$$SCONE::"),
                "{path} holds a $$SCONE:: reference"
            );
            // Whole values are compared; long ones also as substrings (embedded in a string).
            let values: Vec<&str> = text
                .lines()
                .filter_map(|l| {
                    l.trim_start()
                        .trim_start_matches("- ")
                        .split_once(": ")
                        .map(|(_, v)| v.trim().trim_matches('"'))
                })
                .collect();
            for secret in &secrets {
                let found = values.contains(&secret.as_str())
                    || (secret.len() >= 16 && text.contains(secret.as_str()));
                assert!(
                    !found,
                    "{}: {path} holds `{secret}`, which belongs in the session",
                    dir.display()
                );
            }
        }
    }
}

#[test]
fn output_is_deterministic() {
    let dir = workspace().join("crates/meshfile/tests/meshes/secure-document-app");
    let (a, _) = template(&dir);
    let (b, _) = template(&dir);
    for sub in ["target/policies", "target/helm"] {
        assert_eq!(
            raw_files(&a.dir().join(sub)),
            raw_files(&b.dir().join(sub)),
            "{sub} differs between runs"
        );
    }
}

/// Every file `template` writes for the examples and the tutorial meshes, byte for byte as
/// the compiler wrote them last (SHA-256 per file in `target-bytes.txt`): restructuring the
/// code changes no output. A deliberate output change updates the list
/// (`MESHFILE_UPDATE_BYTES=1`), and the diff shows which files it changed.
#[test]
fn tutorial_meshes_write_the_bytes_they_always_did() {
    use sha2::Digest;
    let root = workspace();
    let mut got = String::new();
    for dir in meshes() {
        let (t, out) = template(&dir);
        assert_eq!(out.status, 0, "{}", out.stderr);
        let name = dir
            .strip_prefix(&root)
            .expect("in the workspace")
            .display()
            .to_string();
        let target = t.dir().join("target");
        let mut written: Vec<(String, Vec<u8>)> = ["policies", "helm", "session_files"]
            .iter()
            .filter(|sub| target.join(sub).is_dir())
            .flat_map(|sub| {
                raw_files(&target.join(sub))
                    .into_iter()
                    .map(move |(rel, bytes)| (format!("{sub}/{rel}"), bytes))
            })
            .collect();
        written.sort();
        for (file, bytes) in written {
            let hash = hex::encode(sha2::Sha256::digest(&bytes));
            got.push_str(&format!("{name} {file} {hash}\n"));
        }
    }
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/target-bytes.txt");
    if std::env::var("MESHFILE_UPDATE_BYTES").as_deref() == Ok("1") {
        std::fs::write(&list, &got).expect("write target-bytes.txt");
    }
    let expected = std::fs::read_to_string(&list).expect("target-bytes.txt");
    assert_eq!(
        got, expected,
        "the output changed; if deliberately, MESHFILE_UPDATE_BYTES=1 writes the new list"
    );
}

#[test]
fn golden_sessions_and_charts_of_the_examples() {
    for example in ["hello-world", "flask-redis"] {
        let (t, out) = template(&workspace().join("examples").join(example));
        assert_eq!(out.status, 0, "{}", out.stderr);
        for (kind, sub) in [("policies", "target/policies"), ("helm", "target/helm")] {
            let all: String = files(&t.dir().join(sub))
                .iter()
                .map(|(p, c)| format!("--- {p}\n{c}"))
                .collect();
            insta::assert_snapshot!(format!("{example}-{kind}"), all);
        }
    }
}

#[test]
fn secret_imports_resolve_to_the_defining_session() {
    let (t, out) = template(&workspace().join("crates/meshfile/tests/meshes/secure-document-app"));
    assert_eq!(out.status, 0, "{}", out.stderr);
    let nginx = std::fs::read_to_string(t.dir().join("target/policies/demo-ns/nginx.yaml"))
        .expect("nginx session");
    // nginx imports `{{NGINX_BACKEND_CLIENT_CERT}}`, which the Meshfile maps to fastapi's certificate.
    assert!(nginx.contains("- name: FASTAPI_CLIENT_CERT\n  import:\n    session: demo-ns/fastapi-scone\n    secret: FASTAPI_CLIENT_CERT"), "{nginx}");
    assert!(
        nginx.contains("content: $$SCONE::FASTAPI_CLIENT_CERT:crt$$"),
        "{nginx}"
    );
}

#[test]
fn debug_mode_tolerates_debug_enclaves() {
    let dir = workspace()
        .join("examples/hello-world")
        .display()
        .to_string();
    let t = Test::new().args(&["template", "-n", "--mode", "debug", "-f", &dir]);
    let out = t.run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let session = std::fs::read_to_string(
        t.dir()
            .join("target/policies/hello-world-demo/pythonservice.yaml"),
    )
    .expect("session");
    assert!(session.contains("tolerate:\n    - debug-mode"), "{session}");
}

const SERVICE: &str = "apiVersion: scone/5.8\nkind: genservice\nenvironment:\n  local:\n    - name: GREETING\n      value: \"{{greeting}}\"\n  global:\n    - name: USER_NAME\nsecrets:\n  import:\n    - shared_key\nbuild:\n  name: svc\n  kind: python\n  to: registry.example.com/svc:1\n  command: python3 app.py\n";
const MESH: &str = "apiVersion: scone/5.8\nkind: mesh\ncas:\n  - name: cas\n    alias: [image, security, access, attestation]\n    cas_url: $CAS_HOST\npolicy:\n  namespace: ns\nenv: []\nservices:\n  - name: svc\n    image: registry.example.com/svc:1\n  - name: other\n    image: registry.example.com/other:1\n";

/// `template` of SERVICE and MESH with a measurement and `extra` arguments.
fn template_service_and_mesh(extra: &[&str]) -> crate::Output {
    let mrenclave = "ab".repeat(32);
    let mut args = vec![
        "template",
        "-n",
        "-f",
        "service.yaml",
        "-f",
        "mesh.yaml",
        "--mrenclave",
        &mrenclave,
    ];
    args.extend(extra);
    Test::new()
        .file("service.yaml", SERVICE)
        .file("mesh.yaml", MESH)
        .args(&args)
        .run()
}

#[test]
fn compile_errors_are_located_and_say_what_to_do() {
    let out = template_service_and_mesh(&[]);
    assert_eq!(out.status, 1);
    assert!(
        out.stderr
            .contains("mesh.yaml:6:14: error[E100]: environment variable `$CAS_HOST` is not set"),
        "{}",
        out.stderr
    );

    let out = template_service_and_mesh(&["--set", "CAS_HOST=cas.example"]);
    assert_eq!(out.status, 1);
    for expected in [
        "mesh.yaml:14:12: error[E102]: service `other`: no service descriptor for image `registry.example.com/other:1`",
        "service.yaml:6:14: error[E101]: `{{greeting}}` is not defined for service `svc`",
        "service.yaml:8:13: error[E103]: service `svc` needs `USER_NAME`",
        "service.yaml:11:7: error[E104]: service `svc` imports secret `shared_key`, which no service of the mesh defines",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing `{expected}` in:\n{}",
            out.stderr
        );
    }
}

#[test]
fn two_meshes_cannot_share_one_target_directory() {
    let mesh = MESH.replace("$CAS_HOST", "cas.example");
    let out = Test::new()
        .file("a.yaml", &mesh)
        .file("b.yaml", &mesh)
        .args(&["template", "-n", "-f", "a.yaml", "-f", "b.yaml"])
        .run();
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("2 meshes were given (a.yaml, b.yaml)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("with its own `-t DIR`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_service_without_a_measurement_is_recorded_and_the_mesh_says_how_to_give_one() {
    let mut t = Test::new().file("service.yaml", SERVICE).file(
        "mesh.yaml",
        MESH.replace("$CAS_HOST", "cas.example").replace(
            "  - name: other\n    image: registry.example.com/other:1\n",
            "",
        ),
    );
    // As sconectl records what it built, the service step records it, and says how.
    let out = t.rerun(&["apply", "-n", "-f", "service.yaml"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("recorded service.yaml (image registry.example.com/svc:1) without an MRENCLAVE: give it with `--mrenclave HEX`, in a measurements.yaml beside it, or publish a descriptor"),
        "{}",
        out.stderr
    );
    // The mesh step stops at the service, naming the three ways.
    let out = t.rerun(&["template", "-n", "-f", "mesh.yaml"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    for expected in [
        "mesh.yaml:12:12: error[E106]: service `svc`: no MRENCLAVE is known for image `registry.example.com/svc:1`",
        "--mrenclave HEX",
        "measurements.yaml",
        "`meshfile publish`",
    ] {
        assert!(out.stderr.contains(expected), "{expected}:\n{}", out.stderr);
    }
    // Given one, the same mesh compiles.
    let mrenclave = "ab".repeat(32);
    let out = t.rerun(&[
        "apply",
        "-n",
        "-f",
        "service.yaml",
        "--mrenclave",
        &mrenclave,
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let out = t.rerun(&["template", "-n", "-f", "mesh.yaml", "--set", "x=1"]);
    assert!(!out.stderr.contains("E106"), "{}", out.stderr);
}

#[test]
fn descriptors_recorded_by_apply_serve_a_later_compile() {
    let t = Test::new().file("service.yaml", SERVICE.replace("secrets:\n  import:\n    - shared_key\n", "")).file(
        "mesh.yaml",
        MESH.replace("$CAS_HOST", "cas.example").replace("  - name: other\n    image: registry.example.com/other:1\n", "").replace("env: []", "env:\n  - service: global\n    env:\n      - name: USER_NAME\n        value: alice\n      - name: greeting\n        value: hi"),
    );
    let mut t = t;
    let out = t.rerun(&[
        "apply",
        "-n",
        "-f",
        "service.yaml",
        "--mrenclave",
        &"CD".repeat(32),
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let recorded =
        std::fs::read_to_string(t.dir().join("target/descriptors.json")).expect("descriptors");
    assert!(
        recorded.contains("\"image\": \"registry.example.com/svc:1\""),
        "{recorded}"
    );
    let out = t.rerun(&["template", "-n", "-f", "mesh.yaml"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let session =
        std::fs::read_to_string(t.dir().join("target/policies/ns/svc.yaml")).expect("session");
    assert!(session.contains(&"cd".repeat(32)), "{session}");
    assert!(
        session.contains("GREETING: hi") && session.contains("USER_NAME: alice"),
        "{session}"
    );
}

#[test]
fn print_defaults_lists_every_variable_and_its_origin() {
    let dir = workspace()
        .join("examples/flask-redis")
        .display()
        .to_string();
    let t = Test::new().args(&["apply", "-n", "-p", "-f", &dir]);
    let out = t.run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("  - service: flask\n    env:\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "      - name: REDIS_HOST\n        value: flaskapp-redis    # the `global` env section"
        ),
        "{}",
        out.stdout
    );
    assert!(
        !t.dir().join("target/policies").exists(),
        "-p must not write"
    );
}

/// The hello-world example in `t`'s directory, its one service given `field: value`.
fn hello_world_with(t: Test, field: &str, value: &str) -> Test {
    let src = workspace().join("examples/hello-world");
    let read = |name: &str| std::fs::read_to_string(src.join(name)).expect("example file");
    t.file("service.yaml", read("service.yaml"))
        .file("measurements.yaml", read("measurements.yaml"))
        .file(
            "mesh.yaml",
            read("mesh.yaml").replace(
                "    image: registry.example.com/meshfile/python_hello_user:1\n",
                &format!("    image: registry.example.com/meshfile/python_hello_user:1\n    {field}: {value}\n"),
            ),
        )
}

/// A minimal chart named `name` in `dir`.
fn chart_in(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir.join("templates")).expect("dirs");
    std::fs::write(
        dir.join("Chart.yaml"),
        format!("apiVersion: v2\nname: {name}\ndescription: a user's chart\nversion: 1.2.3\n"),
    )
    .expect("chart");
}

#[test]
fn helm_chart_replaces_the_generated_sub_chart() {
    let t = hello_world_with(Test::new(), "helm_chart", "charts/custom");
    chart_in(&t.dir().join("charts/custom"), "custom-python");
    std::fs::write(
        t.dir().join("charts/custom/values.yaml"),
        "greeting: hello\n# Given by meshfile in the mesh; defaults so that the chart lints alone.\nscone:\n  api_session: \"\"\n  cas: \"\"\n",
    )
    .expect("values");
    std::fs::write(
        t.dir().join("charts/custom/templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-custom\ndata:\n  greeting: {{ .Values.greeting | quote }}\n  configId: {{ .Values.scone.api_session | quote }}\n  cas: {{ .Values.scone.cas | default (dig \"casAddr\" \"\" (.Values.global | default dict)) | quote }}\n",
    )
    .expect("template");
    // What `helm package` would leave out stays out; binary files go in as they are.
    std::fs::write(
        t.dir().join("charts/custom/.helmignore"),
        "# as helm create writes\n.git/\n*.bak\n",
    )
    .expect("ignore");
    std::fs::write(t.dir().join("charts/custom/notes.bak"), "old").expect("bak");
    std::fs::create_dir_all(t.dir().join("charts/custom/.git")).expect("git");
    std::fs::write(t.dir().join("charts/custom/.git/config"), [0xff, 0xfe]).expect("git config");
    std::fs::create_dir_all(t.dir().join("charts/custom/files")).expect("files");
    std::fs::write(
        t.dir().join("charts/custom/files/icon.bin"),
        [0u8, 0xff, 0x10],
    )
    .expect("binary");
    let mut t = t;
    let out = t.rerun(&["template", "-n", "-f", "service.yaml", "-f", "mesh.yaml"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let helm = t.dir().join("target/helm");
    let chart = files(&helm);
    let sub = &chart["charts/custom-python-1.2.3.tgz:custom-python/Chart.yaml"];
    assert!(sub.contains("name: custom-python"), "{sub}");
    assert!(
        chart.contains_key("charts/custom-python-1.2.3.tgz:custom-python/templates/configmap.yaml")
    );
    assert!(chart.contains_key("charts/custom-python-1.2.3.tgz:custom-python/files/icon.bin"));
    assert!(chart.contains_key("charts/custom-python-1.2.3.tgz:custom-python/.helmignore"));
    assert!(
        !chart
            .keys()
            .any(|k| k.ends_with(".bak") || k.contains("/.git")),
        "{:?}",
        chart.keys()
    );
    let umbrella = std::fs::read_to_string(helm.join("Chart.yaml")).expect("umbrella");
    assert!(
        umbrella.contains("- name: custom-python\n  version: \"1.2.3\""),
        "{umbrella}"
    );
    // The user's chart gets the scone values a generated service gets.
    let values = std::fs::read_to_string(helm.join("values.yaml")).expect("values");
    assert!(
        values.contains("custom-python:\n  scone:\n")
            && values.contains("    api_session: hello-world-demo/pythonservice/python3\n"),
        "{values}"
    );
    if let Some(helm4) = tool("bin/helm4") {
        let (ok, rendered) = run(
            &helm4,
            &[
                "template",
                "r",
                &helm.display().to_string(),
                "--set",
                "global.casAddr=cas.example",
            ],
            t.dir(),
        );
        assert!(
            ok && rendered.contains("configId: \"hello-world-demo/pythonservice/python3\"")
                && rendered.contains("cas: \"cas.example\""),
            "{rendered}"
        );
    }
    if let Some(helm4) = tool("bin/helm4") {
        let (ok, text) = run(
            &helm4,
            &[
                "lint",
                "--strict",
                "--with-subcharts",
                &helm.display().to_string(),
            ],
            t.dir(),
        );
        assert!(ok, "{text}");
    }
    std::fs::remove_dir_all(t.dir().join("charts/custom")).expect("remove");
    let out = t.run();
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("helm_chart `charts/custom` of service `pythonservice`"),
        "{}",
        out.stderr
    );
}

#[test]
fn files_a_meshfile_names_stay_in_its_directory_and_charts_hold_only_their_own_files() {
    const SECRET: &str = "-----BEGIN OPENSSH PRIVATE KEY----- not for a chart";
    let t = Test::new();
    let secret = t.dir().join("id_rsa");
    std::fs::write(&secret, SECRET).expect("secret");
    std::fs::create_dir_all(t.dir().join("mesh")).expect("mesh dir");
    let in_mesh = |name: &str| format!("mesh/{name}");
    let compile = |t: &mut Test, extra: &[&str]| {
        let mut args = vec!["template", "-n", "-f", "mesh"];
        args.extend(extra);
        t.rerun(&args)
    };
    let located = |out: &crate::Output, what: &str| {
        assert_eq!(out.status, 1, "{}", out.stderr);
        assert!(out.stderr.contains(what), "{}", out.stderr);
        assert!(!out.stderr.contains(SECRET), "{}", out.stderr);
    };
    let no_secret_written = |t: &Test| {
        for (path, bytes) in raw_files(&t.dir().join("target")) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(SECRET),
                "{path} holds the secret"
            );
        }
    };

    // A chart beside the mesh's directory, and one at an absolute path, are refused, located,
    // by validate as by template; the flag lets the owner of the Meshfile allow them.
    let mut t = hello_world_with(t, "helm_chart", "../charts/custom");
    for name in ["service.yaml", "measurements.yaml", "mesh.yaml"] {
        std::fs::rename(t.dir().join(name), t.dir().join(in_mesh(name))).expect("move");
    }
    chart_in(&t.dir().join("charts/custom"), "custom-python");
    let out = compile(&mut t, &[]);
    located(&out, "mesh.yaml:");
    assert!(
        out.stderr.contains("error[E107]")
            && out.stderr.contains("outside the Meshfile's directory")
            && out.stderr.contains("--allow-outside-mesh-dir"),
        "{}",
        out.stderr
    );
    let out = t.rerun(&["validate", "-f", "mesh"]);
    located(&out, "outside the Meshfile's directory");
    let out = compile(&mut t, &["--allow-outside-mesh-dir"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let mesh_yaml = std::fs::read_to_string(t.dir().join("mesh/mesh.yaml")).expect("mesh");
    std::fs::write(
        t.dir().join("mesh/mesh.yaml"),
        mesh_yaml.replace("../charts/custom", "/etc"),
    )
    .expect("mesh");
    located(&compile(&mut t, &[]), "leads to /etc, outside");

    // Inside the directory, a chart's link that leaves the chart is refused (as helm package
    // refuses it): the key it points at is never read into the chart.
    let chart = t.dir().join("mesh/charts/custom");
    chart_in(&chart, "custom-python");
    std::fs::write(
        t.dir().join("mesh/mesh.yaml"),
        mesh_yaml.replace("../charts/custom", "charts/custom"),
    )
    .expect("mesh");
    assert_eq!(compile(&mut t, &[]).status, 0);
    std::os::unix::fs::symlink(&secret, chart.join("templates/leak.txt")).expect("link");
    located(&compile(&mut t, &[]), "`templates/leak.txt` is a link to");
    no_secret_written(&t);
    std::fs::remove_file(chart.join("templates/leak.txt")).expect("unlink");
    std::os::unix::fs::symlink("/dev/zero", chart.join("zero")).expect("link");
    located(
        &compile(&mut t, &["--allow-outside-mesh-dir"]),
        "`zero` is a link to /dev/zero, outside the chart",
    );
    std::fs::remove_file(chart.join("zero")).expect("unlink");
    // Only regular files, each within Helm's own size limit.
    let fifo = std::process::Command::new("mkfifo")
        .arg(chart.join("pipe"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    located(&compile(&mut t, &[]), "`pipe`: it is not a regular file");
    std::fs::remove_file(chart.join("pipe")).expect("unlink");
    std::fs::write(chart.join("big.bin"), vec![0u8; (5 << 20) + 1]).expect("big");
    located(
        &compile(&mut t, &[]),
        "`big.bin`: it holds 5242881 bytes, more than the limit",
    );
    std::fs::remove_file(chart.join("big.bin")).expect("remove");
    // A link inside the chart to another of its files is followed, as helm package does.
    std::os::unix::fs::symlink("../Chart.yaml", chart.join("templates/chart-copy.txt"))
        .expect("link");
    assert_eq!(compile(&mut t, &[]).status, 0);

    // A session's files too: image_secrets that is a link to the key is refused.
    std::os::unix::fs::symlink(&secret, t.dir().join("mesh/secrets.yaml")).expect("link");
    std::fs::write(
        t.dir().join("mesh/mesh.yaml"),
        mesh_yaml.replace(
            "helm_chart: ../charts/custom",
            "image_secrets: secrets.yaml",
        ),
    )
    .expect("mesh");
    located(&compile(&mut t, &[]), "outside the Meshfile's directory");
    no_secret_written(&t);
}

#[test]
fn services_may_share_an_image_and_only_an_import_with_two_sources_is_ambiguous() {
    let src = workspace().join("examples/flask-redis");
    let read = |name: &str| std::fs::read_to_string(src.join(name)).expect("example file");
    let mesh = read("mesh.yaml");
    let replica = "  - name: redis-replica\n    image: registry.example.com/meshfile/redis:1.0\n";
    let t = Test::new()
        .file("redis.yaml", read("redis.yaml"))
        .file("flask.yaml", read("flask.yaml"))
        .file("measurements.yaml", read("measurements.yaml"));
    // redis twice, no importer: each session defines its own secrets.
    let alone = mesh.replace(
        "  - name: flask\n    image: registry.example.com/meshfile/python_flask_redis:1.0\n",
        replica,
    );
    let mut t = t.file("mesh.yaml", &alone);
    let out = t.rerun(&["template", "-n", "-f", "redis.yaml", "-f", "mesh.yaml"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    for session in ["redis", "redis-replica"] {
        let policy = std::fs::read_to_string(
            t.dir()
                .join(format!("target/policies/flask-redis-demo/{session}.yaml")),
        )
        .expect("policy");
        assert!(policy.contains("- name: redis_ca_cert"), "{policy}");
        // redis.yaml names no pwd; SCONE requires one: `/`.
        assert!(policy.contains("\n  pwd: /\n"), "{policy}");
    }
    // flask imports redis_ca_cert, which both define: located at the import, both named, by
    // validate of the directory as by template.
    std::fs::write(t.dir().join("mesh.yaml"), format!("{mesh}{replica}")).expect("mesh");
    for verb in [&["template", "-n", "-f", "."][..], &["validate", "-f", "."]] {
        let out = t.rerun(verb);
        assert_eq!(out.status, 1, "{verb:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("flask.yaml:59:7: error[E105]")
                && out.stderr.contains("`redis` and `redis-replica`")
                && out.stderr.contains("image_secrets"),
            "{verb:?}: {}",
            out.stderr
        );
    }
    // As the hint says: an image_secrets file choosing the source settles it.
    std::fs::write(
        t.dir().join("flask-secrets.yaml"),
        "- name: api_ca_key\n  kind: private-key\n- name: api_ca_cert\n  kind: x509-ca\n  private_key: api_ca_key\n- name: flask_key\n  kind: private-key\n- name: flask\n  kind: x509\n  private_key: flask_key\n  issuer: api_ca_cert\n  dns: [api]\n- name: redis_ca_cert\n  import:\n    session: flask-redis-demo/redis\n    secret: redis_ca_cert\n- name: redis_client_cert\n  import:\n    session: flask-redis-demo/redis\n    secret: redis_client_cert\n",
    )
    .expect("secrets file");
    std::fs::write(
        t.dir().join("mesh.yaml"),
        format!("{mesh}{replica}").replace(
            "python_flask_redis:1.0\n",
            "python_flask_redis:1.0\n    image_secrets: flask-secrets.yaml\n",
        ),
    )
    .expect("mesh");
    let out = t.rerun(&["template", "-n", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let flask =
        std::fs::read_to_string(t.dir().join("target/policies/flask-redis-demo/flask.yaml"))
            .expect("flask");
    assert!(
        flask.contains(
            "  import:\n    session: flask-redis-demo/redis\n    secret: redis_ca_cert\n"
        ),
        "{flask}"
    );
}

#[test]
fn a_problem_in_a_file_the_meshfile_names_is_located_beside_the_meshfile() {
    let t = hello_world_with(Test::new(), "env", "over/e.yaml");
    std::fs::create_dir(t.dir().join("over")).expect("dir");
    let t = t.file("over/e.yaml", "local: 5\n");
    // Named from elsewhere: the file is where the Meshfile is, not where meshfile runs.
    let out = t.with(&["lint", "-f", t.dir().to_str().expect("utf-8")]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    let at = format!("{}:1:8: error[E010]", t.path("over/e.yaml"));
    assert!(
        out.stderr.contains(&at) && out.stderr.contains("1 | local: 5"),
        "{}",
        out.stderr
    );
    // A run that stops at the mistake leaves nothing half made in target/ (the policy files
    // it made ahead, while it compiled, are removed).
    let out = t.with(&["template", "-n", "-f", t.dir().to_str().expect("utf-8")]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    let target: Vec<String> = std::fs::read_dir(t.dir().join("target"))
        .expect("target")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        target.iter().all(|name| !name.contains("staging")),
        "{target:?}"
    );
}

#[test]
fn an_image_policy_session_is_checked_and_names_the_pods_config_id() {
    const POLICY: &str = "name: anything\nversion: \"0.3.10\"\nservices:\n  - name: hello\n    image_name: img\n    mrenclaves: [\"0000000000000000000000000000000000000000000000000000000000000000\"]\n    command: python3 hello.py\n    environment:\n      PASSWORD: \"$$SCONE::pw$$\"\nimages:\n  - name: img\n";
    let mut t =
        hello_world_with(Test::new(), "image_policy", "policy.yaml").file("policy.yaml", POLICY);
    let out = t.rerun(&["template", "-n", "-f", "."]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("policy.yaml:9:")
            && out.stderr.contains("error[E053]")
            && out.stderr.contains("`$$SCONE::pw$$`"),
        "{}",
        out.stderr
    );
    std::fs::write(
        t.dir().join("policy.yaml"),
        format!("{POLICY}secrets:\n  - name: pw\n    kind: ascii\n"),
    )
    .expect("policy");
    let out = t.rerun(&["template", "-n", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let values = std::fs::read_to_string(t.dir().join("target/helm/values.yaml")).expect("values");
    assert!(
        values.contains("api_session: hello-world-demo/pythonservice/hello\n"),
        "the pods name the template's service: {values}"
    );
    // A session that declares no service gives pods nothing to name.
    std::fs::write(
        t.dir().join("policy.yaml"),
        "name: x\nversion: \"0.3.10\"\n",
    )
    .expect("policy");
    let out = t.rerun(&["template", "-n", "-f", "."]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(out.stderr.contains("declares no service"), "{}", out.stderr);
}

#[test]
fn what_the_scone_runtime_reads_goes_to_the_pod_not_the_session() {
    let src = workspace().join("examples/flask-redis");
    let read = |name: &str| std::fs::read_to_string(src.join(name)).expect("example file");
    // SCONE_LOG is flask's own (environment.local); the mesh gives SCONE_VERSION to every
    // service and flask a CAS address with another enclave port.
    let mesh = read("mesh.yaml").replace(
        "    - name: sgxEpcMem\n      value: 128\n",
        "    - name: sgxEpcMem\n      value: 128\n    - name: SCONE_VERSION\n      value: \"5.9.0\"\n  - service: flask\n    env:\n    - name: SCONE_CAS_ADDR\n      value: cas.example:19000\n",
    );
    let mut t = Test::new()
        .file("redis.yaml", read("redis.yaml"))
        .file("flask.yaml", read("flask.yaml"))
        .file("measurements.yaml", read("measurements.yaml"))
        .file("mesh.yaml", mesh);
    let out = t.rerun(&["template", "-n", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let policies = files(&t.dir().join("target/policies"));
    for (file, policy) in &policies {
        for name in ["SCONE_LOG", "SCONE_VERSION", "SCONE_CAS_ADDR"] {
            assert!(!policy.contains(name), "{file} holds {name}: {policy}");
        }
    }
    let values = std::fs::read_to_string(t.dir().join("target/helm/values.yaml")).expect("values");
    assert!(
        values.contains("    cas: cas.example:19000\n    command:\n    - python3\n    scone_log: debug\n    scone_version: \"5.9.0\"\n"),
        "{values}"
    );
    assert!(
        values.contains("    command:\n    - redis-server\n    scone_version: \"5.9.0\"\n"),
        "redis gets the mesh's SCONE_VERSION (its CAS address and SCONE_LOG are the service chart's defaults): {values}"
    );
    if let Some(helm4) = tool("bin/helm4") {
        let chart = t.dir().join("target/helm").display().to_string();
        let (ok, rendered) = run(
            &helm4,
            &["template", "r", &chart, "--set", "global.casAddr=cas"],
            t.dir(),
        );
        assert!(ok, "{rendered}");
        assert!(
            rendered.contains("- name: SCONE_LOG\n              value: \"debug\"")
                && rendered
                    .contains("- name: SCONE_CAS_ADDR\n              value: \"cas.example:19000\""),
            "{rendered}"
        );
    }
}

/// The hello-world example with `service` as its service manifest, templated: the test (for
/// further runs) and the service's session policy.
fn hello_world_policy(service: &str) -> (Test, String) {
    let src = workspace().join("examples/hello-world");
    let read = |name: &str| std::fs::read_to_string(src.join(name)).expect("example file");
    let mut t = Test::new()
        .file("service.yaml", service)
        .file("measurements.yaml", read("measurements.yaml"))
        .file("mesh.yaml", read("mesh.yaml"));
    let out = t.rerun(&["template", "-n", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let policy = std::fs::read_to_string(
        t.dir()
            .join("target/policies/hello-world-demo/pythonservice.yaml"),
    )
    .expect("policy");
    (t, policy)
}

/// The hello-world example's service manifest.
fn hello_world_service() -> String {
    std::fs::read_to_string(workspace().join("examples/hello-world/service.yaml"))
        .expect("example service")
}

#[test]
fn volumes_are_written_in_the_session_languages_shape() {
    let volumes = "  volumes:\n    - name: data\n      path: /data\n      export:\n        - session: hello-world-demo/reader\n          update_policy: ephemeral\n          volume_alias: shared\n    - name: config\n      path: /config\n      import:\n        session: hello-world-demo/writer\n        volume: config\n";
    let service = hello_world_service().replace("build:\n", &format!("build:\n{volumes}"));
    let (mut t, policy) = hello_world_policy(&service);
    assert!(
        policy.contains("  volumes:\n  - name: data\n    path: /data\n  - name: config\n    path: /config\n")
            && policy.contains("volumes:\n- name: data\n  export:\n  - session: hello-world-demo/reader\n    to:\n      update_policy: ephemeral\n      volume_alias: shared\n- name: config\n  import:\n    session: hello-world-demo/writer\n    volume: config\n"),
        "{policy}"
    );
    // An imported volume exported again, and an unknown update policy: located.
    let bad = service
        .replace(
            "        volume: config\n",
            "        volume: config\n      export:\n        - session: x\n",
        )
        .replace("update_policy: ephemeral", "update_policy: sometimes");
    std::fs::write(t.dir().join("service.yaml"), bad).expect("service");
    let out = t.rerun(&["validate", "-f", "service.yaml"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error[E059]: `sometimes` is not an update policy")
            && out
                .stderr
                .contains("error[E059]: a volume that is imported cannot be exported again"),
        "{}",
        out.stderr
    );
}

#[test]
fn sgx_plugin_epc_memory_and_services_to_wait_for_reach_the_pods() {
    let src = workspace().join("examples/flask-redis");
    let read = |name: &str| std::fs::read_to_string(src.join(name)).expect("example file");
    let mesh = |plugin: &str, extra: &str| {
        read("mesh.yaml")
            .replace("      value: scone\n", &format!("      value: {plugin}\n"))
            .replace("\nservices:\n", &format!("{extra}\nservices:\n"))
            + "helm_extra_values:\n  flask:\n    tolerations:\n      - key: sgx\n        operator: Exists\n"
    };
    // flask's manifest waits for redis (INIT_CONTAINER1 = {{REDIS_HOST}}:{{REDIS_PORT}}), the
    // Meshfile gives those; a second wait the manifest does not name comes from the Meshfile.
    let flask = read("flask.yaml").replace("      value: \"false\"", "      value: \"true\"");
    let wait = "  - service: flask\n    env:\n    - name: INIT_CONTAINER2\n      value: other-host\n    - name: INIT_CONTAINER2_PORT\n      value: 8080\n";
    let mut t = Test::new()
        .file("redis.yaml", read("redis.yaml"))
        .file("flask.yaml", flask)
        .file("measurements.yaml", read("measurements.yaml"))
        .file("mesh.yaml", mesh("azure", wait));
    let out = t.rerun(&["template", "-n", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let values = std::fs::read_to_string(t.dir().join("target/helm/values.yaml")).expect("values");
    assert!(
        values.contains(
            "  resources:\n    limits:\n      kubernetes.azure.com/sgx_epc_mem_in_MiB: 128\n"
        ) && values.contains("  initContainers:\n    container1:\n      enabled: true\n      host: flaskapp-redis\n      port: 6379\n    container2:\n      enabled: true\n      host: other-host\n      port: 8080\n")
            && !values.contains("sgx.k8s.io/sgx"),
        "{values}"
    );
    if let (Some(helm4), Some(kval)) = (tool("bin/helm4"), tool("kval/bin/kubernetes-validate")) {
        let chart = t.dir().join("target/helm").display().to_string();
        let (ok, rendered) = run(
            &helm4,
            &[
                "template",
                "r",
                &chart,
                "--set",
                "global.casAddr=cas",
                "--kube-version",
                "1.35.0",
            ],
            t.dir(),
        );
        assert!(ok, "{rendered}");
        assert!(
            rendered.contains("- 'until nc -z \"$0\" \"$1\"; do echo \"waiting for $0:$1\"; sleep 2; done'\n            - \"flaskapp-redis\"\n            - \"6379\"")
                && rendered.contains("tolerations:\n        - key: sgx\n          operator: Exists")
                && !rendered.contains("sgx.k8s.io/sgx"),
            "{rendered}"
        );
        let manifests = t.dir().join("target/rendered.yaml");
        std::fs::write(&manifests, &rendered).expect("rendered");
        let (ok, text) = run(
            &kval,
            &["--strict", "-k", "1.35", &manifests.display().to_string()],
            t.dir(),
        );
        assert!(ok, "{text}");
    }
    for (plugin, limit) in [
        ("intel", Some("sgx.intel.com/epc: \"128Mi\"")),
        // No resource: the service chart's default (`resources: {}`), left to it.
        ("disabled", None),
    ] {
        std::fs::write(t.dir().join("mesh.yaml"), mesh(plugin, "")).expect("mesh");
        let out = t.rerun(&["template", "-n", "-f", "."]);
        assert_eq!(out.status, 0, "{}", out.stderr);
        let values =
            std::fs::read_to_string(t.dir().join("target/helm/values.yaml")).expect("values");
        match limit {
            Some(limit) => assert!(values.contains(limit), "{plugin}: {values}"),
            None => assert!(!values.contains("resources"), "{plugin}: {values}"),
        }
        if let Some(helm4) = tool("bin/helm4") {
            let chart = t.dir().join("target/helm").display().to_string();
            let args = ["template", "r", &chart, "--set", "global.casAddr=cas"];
            let (ok, rendered) = run(&helm4, &args, t.dir());
            assert!(ok, "{rendered}");
            let epc = ["sgx.k8s.io/sgx", "sgx.intel.com/epc", "sgx_epc_mem_in_MiB"];
            let asked: Vec<&str> = epc.into_iter().filter(|r| rendered.contains(r)).collect();
            let expected: Vec<&str> = limit.map(|_| "sgx.intel.com/epc").into_iter().collect();
            assert_eq!(asked, expected, "{plugin}: {rendered}");
        }
    }
    // A plugin no chart knows, and a service to wait for without a port: located.
    std::fs::write(
        t.dir().join("mesh.yaml"),
        mesh(
            "gramine",
            &wait.replace("    - name: INIT_CONTAINER2_PORT\n      value: 8080\n", ""),
        ),
    )
    .expect("mesh");
    let out = t.rerun(&["template", "-n", "-f", "."]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("mesh.yaml:29:14: error[E109]: useSGXDevPlugin `gramine` is none of scone, azure, intel, disabled")
            && out.stderr.contains("error[E109]: INIT_CONTAINER2 names no port")
            && out.stderr.matches("`gramine`").count() == 1,
        "{}",
        out.stderr
    );
}

#[test]
fn session_language_forms_beyond_the_specification_pass_through_checked() {
    let service = hello_world_service()
        .replace("  command: python3 print_env.py\n", "  command: [python3, print_env.py, \"two words\"]\n")
        .replace(
            "      size: 10\n",
            "      size: 10\n    - name: key\n      kind: private-key\n    - name: cert\n      kind: x509\n      private_key: key\n      san: [\"dns:api.example\", \"ip:10.0.0.7\"]\n",
        )
        + "injection_files:\n  - path: /etc/app.conf\n    content: hello\n    permission: 0o600\n";
    let (mut t, policy) = hello_world_policy(&service);
    assert!(
        policy.contains("  command:\n  - python3\n  - print_env.py\n  - two words\n")
            && policy.contains("    permission: 0o600\n")
            && policy.contains("  san:\n  - dns:api.example\n  - ip:10.0.0.7\n"),
        "{policy}"
    );
    let values = std::fs::read_to_string(t.dir().join("target/helm/values.yaml")).expect("values");
    assert!(
        values.contains("api_session: hello-world-demo/pythonservice/python3"),
        "{values}"
    );
    let bad = service
        .replace("dns:api.example", "api.example")
        .replace("permission: 0o600", "permission: rw");
    std::fs::write(t.dir().join("service.yaml"), bad).expect("service");
    let out = t.rerun(&["validate", "-f", "service.yaml"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`api.example` is no subject alternative name")
            && out.stderr.contains("`rw` is no file mode"),
        "{}",
        out.stderr
    );
}
