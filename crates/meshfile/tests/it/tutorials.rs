//! The five public SCONE tutorials' `run.sh` sequences, with meshfile in place of sconectl, on
//! fixtures with the shapes of their current manifests (`tests/tutorials/`): the service
//! step(s), the mesh step with the tutorial's flags in `EncryptedManifest` against an
//! in-cluster `cas_url` that does not resolve here, and the chart checked by real Helm,
//! Kubernetes' schemas and the operator's CRDs.

use std::path::Path;

use crate::tools::{run, tool};
use crate::{Output, Test, workspace};

/// What `run.sh` exports before `envsubst` fills the templates (`kubectl provision cas
/// --print-public-keys` gives the CAS's; the images' registry is a closed port on loopback,
/// so that the digest lookup `apply` makes fails at once, as offline).
const EXPORTS: &[(&str, &str)] = &[
    ("APP_IMAGE_REPO", "127.0.0.1:9/cicd"),
    ("SCONECTL_REPO", "127.0.0.1:9/sconectl"),
    ("VERSION", "6.0.0"),
    ("RELEASE", "demo"),
    ("APP_NAMESPACE", "demo-ns"),
    ("NAMESPACE", "default"),
    ("JAVA_VERSION", "java21"),
    ("UPLOAD_MODE", "EncryptedManifest"),
    ("CAS_URL", "cas.scone-system"),
    (
        "CAS_KEY",
        "3HdhuraySjEdFgTpeybz4oaE1TDcnMVqfzFX8Ekk1rnbfhmpPD",
    ),
    (
        "CAS_SESSION_ENCRYPTION_KEY",
        "908bb8d9b7fb0502c22e18c24d6a85bb2d6790133c66fcbe1f6413a45ab7197f",
    ),
];

/// `envsubst` with the exported names: `$NAME` and `${NAME}`; anything else (`$$SCONE::`) stays.
fn envsubst(text: &str) -> String {
    let mut out = text.to_owned();
    for (name, value) in EXPORTS {
        out = out.replace(&format!("${{{name}}}", name = name), value);
        let mut replaced = String::with_capacity(out.len());
        let mut rest = out.as_str();
        let pattern = format!("${name}");
        while let Some(at) = rest.find(&pattern) {
            let after = &rest[at + pattern.len()..];
            let continues = after
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            let escaped = rest[..at].ends_with('$');
            replaced.push_str(&rest[..at]);
            if continues || escaped {
                replaced.push_str(&pattern);
            } else {
                replaced.push_str(value);
            }
            rest = after;
        }
        replaced.push_str(rest);
        out = replaced;
    }
    out
}

/// A test directory holding the tutorial's files, each `*.template` filled as `run.sh` does.
fn tutorial(name: &str) -> Test {
    tutorial_filled(name, envsubst)
}

/// The tutorial's files, each `*.yaml.template` through `fill` into its `*.yaml`.
fn tutorial_filled(name: &str, fill: fn(&str) -> String) -> Test {
    let t = Test::new();
    let root = workspace()
        .join("crates/meshfile/tests/tutorials")
        .join(name);
    copy(&root, t.dir(), fill);
    t
}

fn copy(from: &Path, to: &Path, fill: fn(&str) -> String) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("fixture") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            copy(&path, &to.join(&name), fill);
        } else if let Some(filled) = name.strip_suffix(".yaml.template") {
            let text = std::fs::read_to_string(&path).expect("template");
            std::fs::write(to.join(format!("{filled}.yaml")), fill(&text)).expect("write");
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy");
        }
    }
}

fn ok(what: &str, out: &Output) {
    assert_eq!(out.status, 0, "{what}:\n{}", out.stderr);
}

/// `sconectl apply -f FILE $verbose $debug --set-version $VERSION` and what the tutorial adds.
fn service_step(t: &mut Test, file: &str, extra: &[&str]) {
    let mut args = vec!["apply", "-f", file, "--set-version", "6.0.0"];
    args.extend(extra);
    let out = t.rerun(&args);
    ok(file, &out);
    assert!(
        out.stderr.contains(&format!("recorded {file}")),
        "{}",
        out.stderr
    );
}

/// `sconectl apply -f mesh.yaml --release $RELEASE $verbose --set-version $VERSION`.
fn mesh_step(t: &mut Test, file: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "apply",
        "-f",
        file,
        "--release",
        "demo",
        "-vvvvvvvv",
        "--set-version",
        "6.0.0",
    ];
    args.extend(extra);
    let out = t.rerun(&args);
    ok(file, &out);
    assert!(
        out.stderr
            .contains("EncryptedPolicy resources in the chart deliver the sessions")
            && out.stderr.contains("no connection to CAS was made"),
        "{}",
        out.stderr
    );
    out
}

/// The chart passes `helm lint --strict` (3 and 4), renders, its manifests pass
/// kubernetes-validate and its policy resources the operator's CRDs; the rendered manifests.
fn checked_chart(t: &Test, policies: usize) -> String {
    let (Some(helm4), Some(helm3), Some(kval)) = (
        tool("bin/helm4"),
        tool("bin/helm3"),
        tool("kval/bin/kubernetes-validate"),
    ) else {
        return String::new();
    };
    let chart = t.dir().join("target/helm").display().to_string();
    for helm in [&helm4, &helm3] {
        let (linted, text) = run(
            helm,
            &["lint", "--strict", "--with-subcharts", &chart],
            t.dir(),
        );
        assert!(linted, "{} lint:\n{text}", helm.display());
    }
    let (rendered, manifests) = run(
        &helm4,
        &["template", "demo", &chart, "--kube-version", "1.35.0"],
        t.dir(),
    );
    assert!(rendered, "helm template:\n{manifests}");
    let file = t.dir().join("rendered.yaml");
    std::fs::write(&file, &manifests).expect("rendered");
    let file = file.display().to_string();
    let (valid, text) = run(&kval, &["--strict", "-k", "1.35", &file], t.dir());
    assert!(valid, "kubernetes-validate:\n{text}");
    let crds = workspace().join("docs/src/reference/crds");
    let crd = |kind: &str| {
        crds.join(format!("{kind}.cas.scone.cloud.yaml"))
            .display()
            .to_string()
    };
    let checker = workspace().join("crates/meshfile/tests/it/check_policy_resources.py");
    let (checked, text) = run(
        &kval.with_file_name("python"),
        &[
            &checker.display().to_string(),
            &crd("signedpolicies"),
            &crd("encryptedpolicies"),
            &file,
        ],
        t.dir(),
    );
    assert!(
        checked && text.trim() == policies.to_string(),
        "CRDs: {text}"
    );
    assert_eq!(manifests.matches("kind: EncryptedPolicy").count(), policies);
    assert!(
        !manifests.contains("$$SCONE::"),
        "a secret reference reached the chart"
    );
    manifests
}

/// The text of a rendered resource of `kind` named `name`.
fn resource<'a>(manifests: &'a str, kind: &str, name: &str) -> &'a str {
    manifests
        .split("\n---")
        .find(|doc| {
            doc.contains(&format!("kind: {kind}\n")) && doc.contains(&format!("name: {name}\n"))
        })
        .unwrap_or_else(|| panic!("no {kind} {name} in:\n{manifests}"))
}

/// Each tutorial's manifests as an editor opens them, before `envsubst` (`mode:
/// $UPLOAD_MODE` among them): `lint` finds no error, since a `$VAR` in a typed field is left to
/// the run that has its value, and says that the checks across files wait for the values.
#[test]
fn each_tutorials_manifests_lint_without_error_as_written_before_envsubst() {
    for name in [
        "scone_mesh_tutorial",
        "java_sconectl_tutorial",
        "scone_flask_redis_tutorial",
        "SecureDocumentApp",
        "scone_software_updates_tutorial",
    ] {
        let t = tutorial_filled(name, str::to_owned);
        let out = t.with(&["lint", "-f", "."]);
        assert_eq!(out.status, 0, "{name}:\n{}", out.stderr);
        assert!(!out.stderr.contains("error["), "{name}:\n{}", out.stderr);
        assert!(
            out.stderr
                .contains("was not checked: environment variable `$"),
            "{name}:\n{}",
            out.stderr
        );
    }
}

/// Every file below `dir` of the test, by its path there.
fn files_below(t: &Test, dir: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let root = t.dir().join(dir);
    walkdir::WalkDir::new(&root)
        .into_iter()
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let name = e
                .path()
                .strip_prefix(&root)
                .expect("below")
                .display()
                .to_string();
            (name, std::fs::read(e.path()).expect("read"))
        })
        .collect()
}

/// `run.sh` without `envsubst`: the templates as written, the exports in meshfile's own
/// environment. The sessions and the chart's values are byte for byte those of the run with
/// `envsubst` (`mode: $UPLOAD_MODE`, `cas_key: $CAS_KEY` and the rest filled by meshfile).
#[test]
fn scone_mesh_tutorial_runs_without_envsubst_on_the_same_exports() {
    let with_envsubst = tutorial("scone_mesh_tutorial");
    let without = (EXPORTS.iter()).fold(
        tutorial_filled("scone_mesh_tutorial", str::to_owned),
        |t, (name, value)| t.env(name, value),
    );
    let mut runs = [with_envsubst, without];
    for t in &mut runs {
        t.signing_fixtures();
        service_step(t, "service.yaml", &[]);
        mesh_step(t, "mesh.yaml", &[]);
    }
    let [with_envsubst, without] = &runs;
    for dir in ["target/policies", "target/helm/values.yaml"] {
        let (a, b) = (files_below(with_envsubst, dir), files_below(without, dir));
        assert!(!a.is_empty(), "{dir} is empty");
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{dir}"
        );
        for (name, bytes) in &a {
            assert!(
                b[name] == *bytes,
                "{dir}/{name} differs:\n{}\n---\n{}",
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(&b[name])
            );
        }
    }
}

#[test]
fn scone_mesh_tutorial_runs_as_run_sh_runs_it() {
    let mut t = tutorial("scone_mesh_tutorial");
    service_step(&mut t, "service.yaml", &[]);
    let out = mesh_step(&mut t, "mesh.yaml", &[]);
    // Its tolerance words are SCONE's own, not `scone cas attest`'s: a warning, not an error.
    assert!(out.stderr.contains("warning[W011]"), "{}", out.stderr);
    assert!(
        out.stderr.contains("made your session signing key"),
        "{}",
        out.stderr
    );
    checked_chart(&t, 2);
}

#[test]
fn java_tutorial_renders_its_genservice_templates() {
    let mut t = tutorial("java_sconectl_tutorial");
    service_step(
        &mut t,
        "service.yaml",
        &["--helm-template", "templates-genservice"],
    );
    mesh_step(&mut t, "mesh.yaml", &[]);
    let session = std::fs::read_to_string(t.dir().join("target/policies/demo-ns/javaapp.yaml"))
        .expect("session");
    assert!(
        session.contains("command: java -cp /java PrintEnv\n"),
        "{session}"
    );
    let manifests = checked_chart(&t, 2);
    if manifests.is_empty() {
        return;
    }
    // The tutorial's own chart, its values from the service manifest and the Meshfile.
    let deployment = resource(&manifests, "Deployment", "demo-javaapp");
    for line in [
        "image: \"127.0.0.1:9/cicd/java_hello_user:1\"",
        "value: \"demo-ns/javaapp/java\"",
        "value: \"cas.scone-system\"",
        "containerPort: 443",
        "command: [\"java\"]",
    ] {
        assert!(deployment.contains(line), "{line}:\n{deployment}");
    }
    // genservice's `-h DIR` spelling is the same flag, never a help screen.
    let out = t.rerun(&["apply", "-f", "service.yaml", "-h", "templates-genservice"]);
    ok("-h DIR", &out);
    assert!(!out.stdout.contains("Usage:"), "{}", out.stdout);
    // A variable the Meshfile does not give is named, located at the service.
    let values = t.dir().join("templates-genservice/values.template");
    let text = std::fs::read_to_string(&values).expect("values");
    std::fs::write(
        &values,
        text.replace("{{imagePullSecrets}}", "{{pullSecretz}}"),
    )
    .expect("w");
    ok(
        "service",
        &t.rerun(&[
            "apply",
            "-f",
            "service.yaml",
            "--helm-template",
            "templates-genservice",
        ]),
    );
    let out = t.rerun(&["apply", "-f", "mesh.yaml", "--release", "demo"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("mesh.yaml:")
            && out
                .stderr
                .contains("`{{pullSecretz}}` is no variable of the Meshfile"),
        "{}",
        out.stderr
    );
}

#[test]
fn flask_redis_tutorial_runs_with_a_curated_redis_of_our_own() {
    let mut t = tutorial("scone_flask_redis_tutorial");
    service_step(&mut t, "service.yaml", &[]);
    service_step(&mut t, "redis.yaml", &[]);
    mesh_step(&mut t, "mesh.yaml", &[]);
    let manifests = checked_chart(&t, 3);
    if manifests.is_empty() {
        return;
    }
    // redis listens where its manifest says, not on the Meshfile's APP_SERVICE_PORT.
    assert!(resource(&manifests, "Service", "demo-redis").contains("port: 6379"));
    assert!(resource(&manifests, "Service", "demo-flask").contains("port: 4996"));
    // flask's INIT_CONTAINER1_ENABLE: "false" waits for nothing.
    assert!(!resource(&manifests, "Deployment", "demo-flask").contains("initContainers"));
    // A --set with a key the chart does not have fails instead of being dropped.
    let helm = tool("bin/helm4").expect("helm");
    let chart = t.dir().join("target/helm").display().to_string();
    let (rendered, text) = run(
        &helm,
        &[
            "template",
            "demo",
            &chart,
            "--set",
            "redis.scone.cass=other",
        ],
        t.dir(),
    );
    assert!(!rendered && text.contains("cass"), "{text}");
}

#[test]
fn secure_document_app_runs_with_its_ports_and_init_containers() {
    let mut t = tutorial("SecureDocumentApp");
    for file in [
        "service.yaml",
        "clientService.yaml",
        "nginx.yaml",
        "memcached.yaml",
        "mariadb.yaml",
    ] {
        service_step(&mut t, file, &[]);
    }
    let out = mesh_step(&mut t, "mesh.yaml", &[]);
    // The sqlInitScript's `|` first line is scone_mesh's paste workaround: the text after it.
    let mariadb = std::fs::read_to_string(t.dir().join("target/policies/demo-ns/mariadb.yaml"))
        .expect("session");
    assert!(
        mariadb.contains("\n      CREATE USER 'scontain'@'%'\n        REQUIRE SUBJECT")
            && !mariadb.contains("\n      |\n"),
        "{mariadb}"
    );
    assert!(
        out.stderr.contains("warning[W010]: `mariadb-scone`"),
        "{}",
        out.stderr
    );
    // lint names the paste workaround, located at the value.
    let lint = t.rerun(&["lint", "-f", "mesh.yaml"]);
    assert!(
        lint.stderr
            .contains("warning[W110]: `sqlInitScript` starts with a line holding only `|`"),
        "{}",
        lint.stderr
    );
    let manifests = checked_chart(&t, 6);
    if manifests.is_empty() {
        return;
    }
    let fastapi = resource(&manifests, "Deployment", "demo-fastapi-scone");
    assert!(fastapi.contains("containerPort: 8000"), "{fastapi}");
    for wait in [
        "- \"demo-mariadb\"\n            - \"3306\"",
        "- \"demo-memcached\"\n            - \"11211\"",
    ] {
        assert!(fastapi.contains(wait), "{wait}:\n{fastapi}");
    }
    assert!(resource(&manifests, "Service", "demo-fastapi-scone").contains("port: 8000"));
    assert!(resource(&manifests, "Service", "demo-mariadb").contains("port: 3306"));
}

#[test]
fn software_updates_v2_names_v1s_hashes_as_predecessors() {
    let mut t = tutorial("scone_software_updates_tutorial");
    service_step(&mut t, "service1.yaml", &[]);
    mesh_step(&mut t, "mesh1.yaml", &["--release-version", "1"]);
    checked_chart(&t, 2);
    let files = t.dir().join("target/session_files");
    let hash = |name: &str| {
        std::fs::read_to_string(files.join(format!("signed_{name}.predecessor")))
            .expect("hash")
            .trim()
            .to_owned()
    };
    let v1 = hash("demo-ns-pythonservice");
    service_step(&mut t, "service2.yaml", &[]);
    mesh_step(&mut t, "mesh2.yaml", &["--release-version", "2"]);
    checked_chart(&t, 2);
    let signed =
        std::fs::read_to_string(files.join("signed_demo-ns-pythonservice.json")).expect("signed");
    let signed: serde_json::Value = serde_json::from_str(&signed).expect("json");
    let session = signed["session"].as_str().expect("session");
    assert!(
        session.starts_with(&format!("predecessor: {v1}\n")),
        "{session}"
    );
    assert_ne!(hash("demo-ns-pythonservice"), v1);
    // The namespace did not change: the same version, no predecessor of its own.
    let namespace = std::fs::read_to_string(files.join("signed_demo-ns.json")).expect("ns");
    assert!(!namespace.contains("predecessor"), "{namespace}");
    // Signers are written in SCONE's Base58Check form.
    let signer = signed["signatures"][0]["signer"].as_str().expect("signer");
    assert!(signer.len() == 50 && !signer.contains("BEGIN"), "{signer}");
    // As SCONE's CLI does, the signer is set as the creator before signing.
    assert!(
        session.ends_with(&format!("\ncreator:\n  signer: {signer}\n")),
        "{session}"
    );
    // The resources for a later `kubectl apply`, named as sconectl names them.
    let manifest =
        std::fs::read_to_string(files.join("encrypted_manifest_demo-ns-pythonservice.yaml"))
            .expect("manifest");
    assert!(
        manifest.contains("kind: EncryptedPolicy")
            && manifest.contains("name: demo-ns-pythonservice")
    );
}

/// A value pasted into a genservice template stays one YAML value: a service manifest's
/// variable or a Meshfile's value that would add keys, documents or tags to the chart's values
/// (as a plain paste would) is refused, named and located, at the step that pastes it.
#[test]
fn values_pasted_into_genservice_templates_add_no_yaml_of_their_own() {
    let service_step_args = [
        "apply",
        "-f",
        "service.yaml",
        "--helm-template",
        "templates-genservice",
    ];
    // The service step: the manifest's SCONE_LOG, pasted at values.template line 38.
    for hostile in [
        "error\\nsecurityContext:\\n  privileged: true",
        "error\\n---\\nkind: Pod",
        "!!binary ZXJyb3I=",
        "error # and more",
    ] {
        let mut t = tutorial("java_sconectl_tutorial");
        let manifest = std::fs::read_to_string(t.dir().join("service.yaml")).expect("manifest");
        let manifest = manifest.replace(
            "    - name: SCONE_LOG\n      value: error",
            &format!("    - name: SCONE_LOG\n      value: \"{hostile}\""),
        );
        t = t.file("service.yaml", manifest);
        let out = t.rerun(&service_step_args);
        assert_eq!(out.status, 1, "{hostile}: {}", out.stderr);
        assert!(
            out.stderr.contains(
                "values.template line 38: the value of `SCONE_LOG` would not stay one YAML value there"
            ),
            "{hostile}: {}",
            out.stderr
        );
    }
    // The mesh step: the Meshfile's imagePullSecrets, pasted at values.template line 9.
    let mut t = tutorial("java_sconectl_tutorial");
    ok("service", &t.rerun(&service_step_args));
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    t = t.file(
        "mesh.yaml",
        mesh.replace(
            "value: sconeapps",
            "value: \"sconeapps\\n  - name: stolen\\nhostNetwork: true\"",
        ),
    );
    let out = t.rerun(&["apply", "-f", "mesh.yaml", "--release", "demo"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("mesh.yaml:")
            && out.stderr.contains(
                "values.template line 9: the value of `imagePullSecrets` would not stay one YAML value there"
            ),
        "{}",
        out.stderr
    );
    assert!(!t.dir().join("target/helm").exists(), "no chart written");
}
