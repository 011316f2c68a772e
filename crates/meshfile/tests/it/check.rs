//! `validate`, `lint`, `schema`, `completions`, `explain`: output format and exit statuses.

use crate::{Test, corpus};

const TYPO: &str = "apiVersion: scone/5.8\nkind: mesh\ncas:\n  - name: cas\n    alias: [image, security, access, attestation]\n    cas_url: c\npolicy:\n  namespace: n\nenv: []\nservces: []\n";

#[test]
fn valid_directory_exits_zero() {
    let dir = crate::workspace().join("examples/flask-redis");
    let out = Test::new()
        .args(&["validate", "-f", &dir.display().to_string()])
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("mesh.yaml: valid (mesh") && !out.stderr.contains("note:"),
        "every check template makes across the files was made: {}",
        out.stderr
    );
    // Without the values of its $VARs, validate says what it could not check.
    let dir = crate::workspace().join("crates/meshfile/tests/meshes/flask-redis");
    let out = Test::new()
        .args(&["validate", "-f", &dir.display().to_string()])
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("was not checked: environment variable `$CAS_URL` is not set"),
        "{}",
        out.stderr
    );
}

#[test]
fn invalid_file_is_located_and_exits_one() {
    let t = Test::new().file("mesh.yaml", TYPO);
    let out = t.args(&["validate", "-f", "mesh.yaml"]).run();
    assert_eq!(out.status, 1);
    assert!(
        out.stderr
            .contains("mesh.yaml:10:1: error[E012]: unknown field `servces` in the mesh manifest"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("10 | servces: []"), "{}", out.stderr);
    assert!(
        out.stderr.contains("= help: did you mean `services`?"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("error[E011]"), "{}", out.stderr);
}

#[test]
fn json_output_is_an_array_of_located_diagnostics() {
    let out = Test::new()
        .stdin(TYPO)
        .args(&["validate", "-f", "-", "--output", "json"])
        .run();
    assert_eq!(out.status, 1);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let first = list
        .as_array()
        .and_then(|a| a.iter().find(|d| d["code"] == "E012"))
        .expect("E012");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["path"], "servces");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(10), Some(1))
    );
    assert_eq!(first["file"], "<stdin>");
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(Test::new().args(&["validate"]).run().status, 2);
    let out = Test::new().args(&["validate", "-f", "missing.yaml"]).run();
    assert_eq!(out.status, 2);
    assert!(
        out.stderr.contains("cannot read `missing.yaml`"),
        "{}",
        out.stderr
    );
    assert_eq!(Test::new().args(&["frobnicate"]).run().status, 2);
}

#[test]
fn lint_says_which_working_directory_a_manifest_without_pwd_gets() {
    let redis = crate::workspace().join("examples/flask-redis/redis.yaml");
    let out = Test::new()
        .args(&["lint", "-f", &redis.display().to_string()])
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("warning[W107]") && out.stderr.contains("names `/`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_warning_is_said_once_whether_its_variables_are_filled_in_or_not() {
    let t = hello_world();
    for file in ["mesh.yaml", "service.yaml"] {
        let text = std::fs::read_to_string(t.dir().join(file)).expect("example");
        let text = text.replace("registry.example.com", "$REGISTRY");
        std::fs::write(t.dir().join(file), text).expect("write");
    }
    // Each file as written, then across the files with `$REGISTRY` filled in: W009 names the
    // image both times, in two spellings, for one place.
    let out = crate::meshfile(t.dir())
        .args(["lint", "-f", "."])
        .env("REGISTRY", "registry.example.com")
        .output()
        .expect("run meshfile");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches("warning[W009]").count(), 1, "{stderr}");
    assert!(!stderr.contains("was not checked"), "{stderr}");
}

#[test]
fn a_directory_of_templates_says_it_holds_no_manifest_and_names_them() {
    let tutorial = crate::workspace().join("crates/meshfile/tests/tutorials/scone_mesh_tutorial");
    let read = |name: &str| std::fs::read_to_string(tutorial.join(name)).expect("tutorial");
    let t = Test::new()
        .file("mesh.yaml.template", read("mesh.yaml.template"))
        .file("secrets_example.yaml", read("secrets_example.yaml"));
    let out = t.with(&["lint", "-f", "."]);
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error[E201]: `.` holds no manifest (its one YAML file is not a manifest)")
            && out
                .stderr
                .contains("mesh.yaml.template is a template filled by a script")
            && out.stderr.contains("`-f ./mesh.yaml.template`"),
        "{}",
        out.stderr
    );
    // Named, it is checked as written.
    let out = t.with(&["lint", "-f", "mesh.yaml.template"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
}

#[test]
fn lint_warns_and_deny_warnings_fails() {
    let file = corpus("valid")
        .join("software-updates-meshfile2.yaml")
        .display()
        .to_string();
    let out = Test::new().args(&["lint", "-f", &file]).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    for code in ["W102", "W106"] {
        assert!(
            out.stderr.contains(&format!("warning[{code}]")),
            "{code}: {}",
            out.stderr
        );
    }
    assert_eq!(
        Test::new()
            .args(&["lint", "--deny-warnings", "-f", &file])
            .run()
            .status,
        1
    );
}

#[test]
fn hostile_inputs_never_panic() {
    let deep = format!("a: {}", "[".repeat(200_000));
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\xff\xfe\x00".to_vec(),
        deep.into_bytes(),
        b"a: &a [*a]\n".to_vec(),
        b"---\n---\n".to_vec(),
    ];
    for input in inputs {
        let out = Test::new()
            .stdin(input)
            .args(&["validate", "-f", "-"])
            .run();
        assert_eq!(out.status, 1, "{}", out.stderr);
        assert!(out.stderr.contains("<stdin>:"), "{}", out.stderr);
    }
}

#[test]
fn oversized_input_is_refused_without_reading_it_all() {
    let big = vec![b'#'; 65 * 1024 * 1024];
    let out = Test::new().stdin(big).args(&["validate", "-f", "-"]).run();
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("error[E006]"), "{}", out.stderr);
}

#[test]
fn dump_prints_canonical_yaml_that_validates() {
    let file = corpus("valid")
        .join("secure-document-app-mesh.yaml")
        .display()
        .to_string();
    let out = Test::new()
        .args(&["validate", "-q", "--dump", "-f", &file])
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let again = Test::new()
        .stdin(out.stdout.clone())
        .args(&["validate", "-q", "--dump", "-f", "-"])
        .run();
    assert_eq!(again.status, 0, "{}", again.stderr);
    assert_eq!(again.stdout, out.stdout, "dump is not a fixpoint");
}

#[test]
fn schema_completions_and_explain() {
    for kind in ["mesh", "service"] {
        let out = Test::new().args(&["schema", kind]).run();
        assert_eq!(out.status, 0);
        let schema: serde_json::Value = serde_json::from_str(&out.stdout).expect("schema is JSON");
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }
    let out = Test::new().args(&["completions", "bash"]).run();
    assert!(
        out.status == 0 && out.stdout.contains("meshfile"),
        "{}",
        out.stderr
    );
    let out = Test::new().args(&["explain", "e012"]).run();
    assert_eq!(out.status, 0);
    assert!(
        out.stdout.contains("E012  error")
            && out.stdout.contains("Example:\n    servces:")
            && out.stdout.contains("Fix: correct the name"),
        "the full explanation with an example: {}",
        out.stdout
    );
    assert_eq!(Test::new().args(&["explain", "E999"]).run().status, 2);
}

#[test]
fn secret_sizes_and_lifetimes_beyond_what_a_cas_generates_do_not_validate() {
    let service = "apiVersion: scone/5.8\nkind: genservice\nenvironment: {}\nsecrets:\n  global:\n    - name: big\n      kind: ascii\n      size: 4294967295\n    - name: cert\n      kind: x509-ca\n      valid_for: 99999999999 years\n    - name: fine\n      kind: binary\n      size: 65536\nbuild:\n  name: svc\n  kind: python\n  to: registry.example.com/svc:1\n  command: python3 app.py\n";
    let out = Test::new()
        .file("service.yaml", service)
        .args(&["validate", "-f", "service.yaml"])
        .run();
    assert_eq!(out.status, 1, "{}", out.stderr);
    for expected in [
        "service.yaml:8:13: error[",
        "size `4294967295` is larger than the 65536 bytes a CAS generates",
        "service.yaml:11:18: error[",
        "valid_for `99999999999 years` is longer than 100 years",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing `{expected}`:\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("`65536`"), "{}", out.stderr);
}

#[test]
fn image_references_are_checked_against_the_oci_grammar() {
    let mesh = "apiVersion: scone/5.8\nkind: mesh\ncas:\n  - name: cas\n    alias: [image, security, access, attestation]\n    cas_url: embedded\npolicy:\n  namespace: n\nenv: []\nservices:\n  - name: a\n    image: \"registry.example.com/a:1\\n\"\n  - name: b\n    image: \";rm -rf /\"\n  - name: c\n    image: $(id)\n  - name: d\n    image: registry.example.com/d:1\n";
    let out = Test::new()
        .file("mesh.yaml", mesh)
        .args(&["validate", "-f", "mesh.yaml"])
        .run();
    assert_eq!(out.status, 1, "{}", out.stderr);
    for expected in [
        "mesh.yaml:12:12: error[E058]: \"registry.example.com/a:1\\n\" is not an image reference: it contains '\\n'",
        "mesh.yaml:14:12: error[E058]: \";rm -rf /\" is not an image reference",
        "mesh.yaml:16:12: error[E058]: \"$(id)\" is not an image reference",
        "= help: write `[registry/]repository[:tag][@sha256:digest]`",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing `{expected}`:\n{}",
            out.stderr
        );
    }
    assert_eq!(
        out.stderr.matches("error[E058]").count(),
        3,
        "{}",
        out.stderr
    );
}

#[test]
fn a_flood_of_diagnostics_shows_the_first_hundred_and_counts_the_rest() {
    let mut mesh = TYPO.replace("servces: []\n", "services: []\n");
    for i in 0..40_000 {
        mesh.push_str(&format!("unknown{i}: 1\n"));
    }
    let t = Test::new().file("mesh.yaml", &mesh);
    let out = t.args(&["validate", "-f", "mesh.yaml"]).run();
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr.matches("error[E012]").count(),
        100,
        "{}",
        &out.stderr[..2000]
    );
    assert!(
        out.stderr.contains("... and 39900 more not shown")
            && out.stderr.contains("40000 errors, 0 warnings in 1 file"),
        "{}",
        &out.stderr[out.stderr.len() - 500..]
    );
    let json = Test::new()
        .file("mesh.yaml", &mesh)
        .args(&["validate", "-f", "mesh.yaml", "--output", "json"])
        .run();
    let list: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(40_000));
}

#[test]
fn sconectls_flags_work_or_say_what_to_use_instead() {
    // Without -f: SCONE's default file names.
    let mesh = std::fs::read_to_string(crate::workspace().join("examples/hello-world/mesh.yaml"))
        .expect("mesh");
    let mut t = Test::new().args(&["validate"]);
    let out = t.run();
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("Meshfile.yaml, Manifest.yaml"),
        "{}",
        out.stderr
    );
    std::fs::write(t.dir().join("Meshfile.yaml"), mesh).expect("mesh");
    let out = t.run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("Meshfile.yaml: valid"),
        "{}",
        out.stderr
    );
    // Refused, each naming what to use instead.
    for (flags, instead) in [
        (&["--cas-config", "."][..], "--identity FILE"),
        (&["-o", "yaml"], "helm template RELEASE target/helm"),
        (&["--otp", "123456"], "not implemented"),
        (&["--signing-online"], "mode: SignedManifest"),
        (
            &["--helm-template", "templates"],
            "apply -f service.yaml --helm-template DIR",
        ),
        (&["--policy-namespace", "no/such"], "letters, digits"),
    ] {
        let mut args = vec!["apply", "-n"];
        args.extend(flags);
        let out = t.rerun(&args);
        assert_eq!(out.status, 2, "{flags:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("error[E202]") && out.stderr.contains(instead),
            "{flags:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn a_cas_tolerance_word_scone_cas_attest_does_not_document_warns() {
    let mesh = std::fs::read_to_string(crate::workspace().join("examples/hello-world/mesh.yaml"))
        .expect("mesh");
    let with = |tolerance: &str| {
        mesh.replace(
            "    cas_url: embedded",
            &format!("    tolerance: \"{tolerance}\"\n    cas_url: embedded"),
        )
    };
    // scone_mesh_tutorial's words since 2023, and a value missing: warnings, not errors.
    let t = Test::new().file(
        "mesh.yaml",
        with("--software-hardening-needed --insecure-configuration --mrenclave"),
    );
    let out = t.args(&["validate", "-f", "mesh.yaml"]).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "warning[W011]: `--software-hardening-needed` is no option of `scone cas attest`"
        ) && out
            .stderr
            .contains("warning[W011]: `--mrenclave` needs a value"),
        "{}",
        out.stderr
    );
    let t = Test::new().file(
        "mesh.yaml",
        with("--only_for_testing-debug -S -c 46YyxrywJ8PFRruWX8YLxa9q4axxYJgTbA81tv7NBcJfn43DQt"),
    );
    let out = t.args(&["validate", "-f", "mesh.yaml"]).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
}

#[test]
fn a_restart_policy_deployments_cannot_take_is_named() {
    let mesh = std::fs::read_to_string(crate::workspace().join("examples/flask-redis/mesh.yaml"))
        .expect("example")
        .replace(
            "    - name: APP_SERVICE_PORT\n",
            "    - name:  restartPolicy\n      value: OnFailure\n    - name: APP_SERVICE_PORT\n",
        );
    let out = Test::new()
        .file("mesh.yaml", mesh)
        .args(&["validate", "-f", "mesh.yaml"])
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("warning[W008]")
            && out.stderr.contains("restartPolicy `OnFailure` is not used"),
        "{}",
        out.stderr
    );
}

/// The hello-world example with its service recorded, in a fresh test directory.
fn hello_world() -> Test {
    let dir = crate::workspace().join("examples/hello-world");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("example");
    let mut t = Test::new()
        .file("mesh.yaml", read("mesh.yaml"))
        .file("service.yaml", read("service.yaml"))
        .file("measurements.yaml", read("measurements.yaml"));
    let out = t.rerun(&["apply", "-n", "-q", "-f", "service.yaml"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    t
}

/// What one row of `reference/sconectl.md` says, checked: the row's first column names it.
fn sconectl_row(row: &str) {
    let mut t = hello_world();
    let mut run = |args: &[&str]| t.rerun(args);
    let passes = |out: &crate::Output, what: &str| {
        assert_eq!(out.status, 0, "{row}: {}", out.stderr);
        assert!(
            out.stderr.contains(what) || out.stdout.contains(what),
            "{row}: `{what}` in:\n{}{}",
            out.stdout,
            out.stderr
        );
    };
    let noted = |out: &crate::Output, flag: &str| {
        passes(out, &format!("note: {flag}"));
    };
    let refused = |out: &crate::Output, instead: &str| {
        assert_eq!(out.status, 2, "{row}: {}", out.stderr);
        assert!(
            out.stderr.contains("error[E202]") && out.stderr.contains(instead),
            "{row}: {}",
            out.stderr
        );
    };
    fn apply<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        [&["apply", "-n", "-f", "."][..], extra].concat()
    }
    match row {
        "`-f, --filename FILE`" => passes(
            &run(&["validate", "--filename", "mesh.yaml"]),
            "mesh.yaml: valid",
        ),
        "`-d, --dry-run`" => passes(&run(&apply(&["-d"])), "dry run: nothing changed"),
        "`--mode production\\|debug`" => {
            passes(&run(&apply(&["--mode", "debug"])), "created");
            let out = run(&["template", "-n", "-f", "mesh.yaml", "--mode", "debug"]);
            passes(&out, "wrote");
            let session = std::fs::read_to_string(
                t.dir()
                    .join("target/policies/hello-world-demo/pythonservice.yaml"),
            )
            .expect("session");
            assert!(session.contains("debug-mode"), "{session}");
        }
        "`-m, --maa URL`" => {
            passes(
                &run(&[
                    "template",
                    "-n",
                    "-f",
                    "mesh.yaml",
                    "-m",
                    "https://maa.example",
                ]),
                "wrote",
            );
            let session = std::fs::read_to_string(
                t.dir()
                    .join("target/policies/hello-world-demo/pythonservice.yaml"),
            )
            .expect("session");
            assert!(session.contains("https://maa.example"), "{session}");
        }
        "`--policy-namespace NS`" => {
            passes(&run(&apply(&["--policy-namespace", "other-ns"])), "created");
            assert!(t.dir().join("target/policies/other-ns.yaml").is_file());
        }
        "`-p, --print-defaults`" => passes(&run(&apply(&["-p"])), "API_USER"),
        "`-t, --target-directory DIR`" => {
            passes(&run(&apply(&["-t", "out"])), "created");
            assert!(t.dir().join("out/helm/Chart.yaml").is_file());
        }
        "`--release NAME`" => {
            passes(&run(&apply(&["--release", "rel"])), "Helm chart `rel`");
        }
        "`-q`, `-v` (repeatable, `-vvvvvvvv`)" => {
            let quiet = run(&apply(&["-q"]));
            assert!(
                quiet.status == 0 && !quiet.stderr.contains("wrote"),
                "{}",
                quiet.stderr
            );
            passes(&run(&apply(&["-vvvvvvvv"])), "unchanged");
        }
        "`-V`, `--help`" => {
            passes(&run(&["-V"]), "meshfile");
            passes(&run(&["apply", "--help"]), "--helm-template");
        }
        "`--helm-template DIR` (genservice's `-h DIR`)" => {
            // Honoured with the service step (the tutorials' test renders a chart with it);
            // `-h` alone stays the help.
            let templates = crate::workspace().join(
                "crates/meshfile/tests/tutorials/java_sconectl_tutorial/templates-genservice",
            );
            let templates = templates.display().to_string();
            passes(
                &run(&["apply", "-n", "-f", "service.yaml", "-h", &templates]),
                "recorded service.yaml",
            );
            refused(
                &run(&["apply", "-n", "-f", "mesh.yaml", "-h", &templates]),
                "apply -f service.yaml --helm-template DIR",
            );
            passes(&run(&["apply", "-h"]), "Usage:");
        }
        "`-n, --no-pull`" => {
            let out = run(&apply(&[]));
            assert!(
                out.status == 0 && !out.stderr.contains("cannot reach registry"),
                "{}",
                out.stderr
            );
        }
        "`-o helm_chart`" => passes(&run(&apply(&["-o", "helm_chart"])), "wrote"),
        "`-o yaml`" => refused(
            &run(&apply(&["-o", "yaml"])),
            "helm template RELEASE target/helm",
        ),
        "`--set-version VERSION`" => {
            noted(&run(&apply(&["--set-version", "6.0.0"])), "--set-version")
        }
        "`--no-push`" => noted(&run(&apply(&["--no-push"])), "--no-push"),
        "`--release-version N`" => noted(
            &run(&apply(&["--release-version", "2"])),
            "--release-version",
        ),
        "`--host-pwd DIR`" => noted(&run(&apply(&["--host-pwd", "/tmp"])), "--host-pwd"),
        "`--cas-config DIR`" => refused(&run(&apply(&["--cas-config", "."])), "--identity FILE"),
        "`--otp OTP`" => refused(&run(&apply(&["--otp", "1"])), "not implemented"),
        "`--signing-url`, `--signing-online`" => {
            refused(&run(&apply(&["--signing-online"])), "mode: SignedManifest");
            refused(
                &run(&apply(&["--signing-url", "h:1"])),
                "mode: SignedManifest",
            );
        }
        "`SCONECTL_REPO`, `SCONECTL_VERSION`, `VERSION`, `SCONECTL_NOPULL`, `DOCKER_HOST`, `KUBECONFIG`" =>
        {
            // They run sconectl's image; meshfile's output does not change with them.
            let template = |t: &Test, env: &[(&str, &str)]| {
                let mut command = crate::meshfile(t.dir());
                command.args(["template", "-n", "-q", "-f", ".", "-t", "env-out"]);
                for (name, value) in env {
                    command.env(name, value);
                }
                assert!(command.status().expect("run").success());
                crate::compile::raw_files(&t.dir().join("env-out"))
            };
            let plain = template(&t, &[]);
            let set = template(
                &t,
                &[
                    ("SCONECTL_REPO", "elsewhere/sconectl"),
                    ("SCONECTL_VERSION", "9"),
                    ("VERSION", "9"),
                    ("SCONECTL_NOPULL", "1"),
                    ("DOCKER_HOST", "tcp://192.0.2.1:2375"),
                    ("KUBECONFIG", "/nonexistent"),
                ],
            );
            assert_eq!(plain, set, "{row}");
        }
        other => panic!("reference/sconectl.md has a row no test checks: {other}"),
    }
}

#[test]
fn every_row_of_the_sconectl_page_holds() {
    let page = std::fs::read_to_string(crate::workspace().join("docs/src/reference/sconectl.md"))
        .expect("page");
    let table = page
        .split("\n\n")
        .find(|block| block.starts_with("| sconectl | meshfile | how |"))
        .expect("the flag table");
    let rows: Vec<&str> = table
        .lines()
        .skip(2)
        .filter_map(|line| line.strip_prefix("| ")?.split(" | ").next())
        .collect();
    assert!(rows.len() >= 20, "{rows:?}");
    for row in rows {
        sconectl_row(row);
    }
}

#[test]
fn control_characters_of_a_hostile_manifest_are_shown_escaped() {
    // A key and a value that would retitle (OSC 0 ... BEL) and clear (CSI 2 J) the terminal.
    let mesh = "apiVersion: scone/5.8\nkind: mesh\n\"\u{1b}]0;owned\u{7}\": 1\ncas: []\npolicy:\n  namespace: \"ns\u{1b}[2J\"\nservices: []\n";
    let t = Test::new().file("mesh.yaml", mesh);
    let out = t.args(&["validate", "-f", "mesh.yaml"]).run();
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        !out.stderr.contains('\u{1b}') && !out.stderr.contains('\u{7}'),
        "raw control characters reached the terminal: {:?}",
        out.stderr
    );
    assert!(
        out.stderr.contains("\\u{1b}]0;owned\\u{7}"),
        "{}",
        out.stderr
    );
}

/// Every code of the diagnostics page has its own explanation through `explain`, distinct from
/// every other's, and the page's exit statuses follow the contract: usage errors 2, the
/// environment failing (files, network, CAS, registry, other tools) 3, every refusal 1.
#[test]
fn every_code_is_explained_once_and_exits_as_the_contract_says() {
    let page =
        std::fs::read_to_string(crate::workspace().join("docs/src/reference/diagnostics.md"))
            .expect("diagnostics page");
    let rows: Vec<Vec<&str>> = page
        .lines()
        .filter(|l| l.starts_with("| E") || l.starts_with("| W"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    assert!(rows.len() > 80, "{} codes", rows.len());
    let environment = [
        "E200", "E203", "E210", "E211", "E215", "E216", "E217", "E219", "E221", "E226",
    ];
    let usage = ["E201", "E202", "E205"];
    let mut explanations = std::collections::BTreeSet::new();
    for row in &rows {
        let (code, severity, status) = (row[0], row[1], row[3]);
        let out = Test::new().args(&["explain", code]).run();
        assert_eq!(out.status, 0, "{code}: {}", out.stderr);
        assert!(out.stdout.starts_with(code), "{code}: {}", out.stdout);
        let text = out
            .stdout
            .split_once('\n')
            .map_or("", |(_, rest)| rest)
            .to_owned();
        assert!(text.contains("Fix:"), "{code} says what to do: {text}");
        assert!(explanations.insert(text), "{code} shares its explanation");
        let expected = match (severity, code) {
            ("warning", _) => "-",
            (_, c) if usage.contains(&c) => "2",
            (_, c) if environment.contains(&c) => "3",
            _ => "1",
        };
        assert_eq!(status, expected, "{code}'s exit status");
    }
}
