//! `meshfile lsp` at the protocol level: every request it answers, against the three-service
//! mesh (b and c import a's certificate) and a Meshfile with three known mistakes.

use serde_json::{Value, json};

use crate::Test;
use crate::language::{Client, uri};
use crate::mesh::three_services;

/// Line and character (from 0) where `needle` starts in `file` of `t`, past `skip` characters.
fn find(t: &Test, file: &str, needle: &str, skip: u32) -> (u32, u32) {
    let text = std::fs::read_to_string(t.dir().join(file)).expect(file);
    for (n, line) in text.lines().enumerate() {
        if let Some(at) = line.find(needle) {
            return (n as u32, at as u32 + skip);
        }
    }
    panic!("{needle:?} is not in {file}");
}

/// Replaces `from` with `to` in the file `path` on disk.
fn rewrite(path: &std::path::Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("fixture");
    assert!(text.contains(from), "{from:?} is not in {}", path.display());
    std::fs::write(path, text.replace(from, to)).expect("fixture");
}

/// The labels of a completion answer.
fn labels(answer: Value) -> Vec<String> {
    (answer.as_array().expect("items").iter())
        .map(|i| i["label"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn markdown(hover: &Value) -> String {
    hover["contents"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The codes and start positions (line, character) of diagnostics.
fn codes(diagnostics: &Value) -> Vec<(String, u64, u64)> {
    (diagnostics.as_array().expect("diagnostics").iter())
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_owned(),
                d["range"]["start"]["line"].as_u64().unwrap_or_default(),
                d["range"]["start"]["character"]
                    .as_u64()
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The three-service mesh with three mistakes in its Meshfile: a misspelt field, a mode that
/// is no mode, an env section for a service that does not exist.
fn three_mistakes() -> Test {
    let t = three_services();
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    let mesh = mesh
        .replace(
            "  namespace: review\n",
            "  namespace: review\n  tolerat: outdated-tcb\n",
        )
        .replace(
            "    cas_url: embedded\n",
            "    cas_url: embedded\n    mode: Uplod\n",
        )
        .replace("  - service: b\n", "  - service: bb\n");
    t.file("mesh.yaml", mesh)
}

#[test]
fn diagnostics_come_with_codes_positions_and_quick_fixes() {
    let t = three_mistakes();
    let mesh = t.dir().join("mesh.yaml");
    let mut lsp = Client::start(t.dir());
    lsp.open(&mesh);
    let found = lsp.diagnostics_after(&uri(&mesh), 1);
    let (tolerat, mode, section) = (
        find(&t, "mesh.yaml", "tolerat", 0),
        find(&t, "mesh.yaml", "Uplod", 0),
        find(&t, "mesh.yaml", "bb", 0),
    );
    let codes = codes(&found);
    for (code, (line, character)) in [("E012", tolerat), ("E013", mode), ("E032", section)] {
        assert!(
            codes.contains(&(code.to_owned(), line as u64, character as u64)),
            "{code} at {line}:{character} not in {codes:?}"
        );
    }
    // Each is a near miss: the quick fix writes the name meant.
    let params = json!({
        "textDocument": {"uri": uri(&mesh)},
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 40, "character": 0}},
        "context": {"diagnostics": found},
    });
    let actions = lsp.request("textDocument/codeAction", params);
    let edits: Vec<String> = (actions.as_array().expect("actions").iter())
        .map(|a| {
            a["edit"]["changes"][uri(&mesh)][0]["newText"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    for meant in ["tolerate", "Upload", "b"] {
        assert!(
            edits.contains(&meant.to_owned()),
            "no fix to {meant}: {edits:?}"
        );
    }
    // Fixed as the quick fixes say, the Meshfile's diagnostics are gone.
    let fixed = std::fs::read_to_string(&mesh)
        .expect("mesh")
        .replace("tolerat:", "tolerate:")
        .replace("Uplod", "Upload")
        .replace("service: bb", "service: b");
    lsp.change(&mesh, 2, &fixed);
    let after = lsp.diagnostics_after(&uri(&mesh), 2);
    assert!(codes_of_errors(&after).is_empty(), "{after}");
    assert_eq!(lsp.shut_down(), 0);
}

fn codes_of_errors(diagnostics: &Value) -> Vec<String> {
    (diagnostics.as_array().expect("diagnostics").iter())
        .filter(|d| d["severity"] == 1)
        .map(|d| d["code"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_change_in_a_service_manifest_rechecks_the_files_that_depend_on_it() {
    let t = three_services();
    let (a, b) = (t.dir().join("a.yaml"), t.dir().join("b.yaml"));
    let mut lsp = Client::start(t.dir());
    lsp.open(&a);
    let before = lsp.diagnostics_after(&uri(&b), 1);
    assert!(codes_of_errors(&before).is_empty(), "{before}");
    // a renames its certificate: b, which imports it by its old name, is wrong now, unopened.
    let text = std::fs::read_to_string(&a)
        .expect("a")
        .replace("a_cert", "a_certificate");
    lsp.change(&a, 2, &text);
    let after = lsp.diagnostics_after(&uri(&b), 2);
    assert!(
        !codes_of_errors(&after).is_empty(),
        "b's diagnostics: {after}"
    );
    assert_eq!(lsp.shut_down(), 0);
}

#[test]
fn a_file_the_meshfile_names_is_checked_as_typed_before_it_is_saved() {
    let t = three_services();
    // c's environment comes from a file in a subdirectory, which the Meshfile names.
    let mesh = t.dir().join("mesh.yaml");
    rewrite(
        &mesh,
        "    image: registry.example.com/c:1\n",
        "    image: registry.example.com/c:1\n    env: overrides/c.yaml\n",
    );
    let env = t.dir().join("overrides/c.yaml");
    std::fs::create_dir(t.dir().join("overrides")).expect("dir");
    let saved = "local:\n  - name: GREETING\n    value: hey\n";
    std::fs::write(&env, saved).expect("env");
    let mut lsp = Client::start(t.dir());
    lsp.open(&mesh);
    let clean = lsp.diagnostics_after(&uri(&mesh), 1);
    assert!(codes_of_errors(&clean).is_empty(), "{clean}");
    lsp.open(&env);
    // Typed, not saved: `local` is no list now; the error is in the buffer, where it is.
    lsp.change(&env, 2, "local: 5\n");
    let typed = lsp.diagnostics_after(&uri(&env), 1);
    let errors = (typed.as_array().expect("list").iter()).find(|d| d["severity"] == 1);
    let error = errors.unwrap_or_else(|| panic!("no error in the buffer: {typed}"));
    assert_eq!(error["range"]["start"]["line"], 0, "{error}");
    assert_eq!(error["range"]["start"]["character"], 7, "{error}");
    assert_eq!(std::fs::read_to_string(&env).expect("env"), saved);
    lsp.change(&env, 3, saved);
    let fixed = lsp.diagnostics_after(&uri(&env), 2);
    assert!(codes_of_errors(&fixed).is_empty(), "{fixed}");
    assert_eq!(lsp.shut_down(), 0);
}

#[test]
fn a_variable_without_a_value_in_the_editors_environment_says_what_is_not_checked() {
    let t = three_services();
    let mesh = t.dir().join("mesh.yaml");
    rewrite(&mesh, "namespace: review", "namespace: $REVIEW_NAMESPACE");
    let mut lsp = Client::start(t.dir());
    lsp.open(&mesh);
    let published = lsp.diagnostics_after(&uri(&mesh), 1);
    let notes: Vec<&Value> = (published.as_array().expect("list").iter())
        .filter(|d| d["severity"] == 3)
        .collect();
    assert_eq!(notes.len(), 1, "{published}");
    let note = notes[0];
    assert_eq!(note["range"]["start"]["line"], 7, "{note}");
    assert_eq!(note["range"]["start"]["character"], 13, "{note}");
    let message = note["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`$REVIEW_NAMESPACE` is not set")
            && message.contains("across the files")
            && message.contains("is not checked"),
        "{message}"
    );
    assert!(codes_of_errors(&published).is_empty(), "{published}");
    assert_eq!(lsp.shut_down(), 0);
}

#[test]
fn a_tutorials_envsubst_template_is_checked_as_written() {
    let t = Test::new().file(
        "mesh.yaml.template",
        "apiVersion: scone/5.8\nkind: mesh\ncas:\n  - name: cas\n    alias: [image, security, access, attestation]\n    cas_url: $CAS_URL\n    mode: $UPLOAD_MODE\npolicy:\n  namespace: $APP_NAMESPACE\nenv: []\nservices:\n  - name: a\n    imag: $APP_IMAGE_REPO/a:1\n",
    );
    let template = t.dir().join("mesh.yaml.template");
    let mut lsp = Client::start(t.dir());
    lsp.open(&template);
    // The misspelt field is found; the `$VAR`s, `mode` among them, wait for `envsubst`.
    let published = lsp.diagnostics_after(&uri(&template), 1);
    assert_eq!(codes_of_errors(&published), ["E011", "E012"], "{published}");
    assert_eq!(lsp.shut_down(), 0);
}

#[test]
fn hover_tells_fields_variables_and_secrets() {
    let t = three_services();
    let (mesh, b) = (t.dir().join("mesh.yaml"), t.dir().join("b.yaml"));
    let mut lsp = Client::start(t.dir());
    lsp.open(&b);
    // A field: the specification's documentation.
    let (line, character) = find(&t, "mesh.yaml", "image:", 1);
    let field = markdown(&lsp.at("textDocument/hover", &mesh, line, character));
    assert!(
        field.contains("**`image`**") && field.contains("The service's container image"),
        "{field}"
    );
    // A variable: its effective value for this service, and where it comes from.
    let (line, character) = find(&t, "b.yaml", "{{greeting}}", 3);
    let variable = markdown(&lsp.at("textDocument/hover", &b, line, character));
    assert!(
        variable.contains("`{{greeting}}`** in service `b`: `hi`, from the service's env section"),
        "{variable}"
    );
    // A variable a manifest takes from the mesh (`global`): the same.
    let (line, character) = find(&t, "b.yaml", "name: greeting", 8);
    let global = markdown(&lsp.at("textDocument/hover", &b, line, character));
    assert!(
        global.contains("`{{greeting}}`** in service `b`: `hi`, from the service's env section"),
        "{global}"
    );
    // A Meshfile's value: what each service that takes it gets, overrides shown.
    let (line, character) = find(&t, "mesh.yaml", "name: greeting", 8);
    let given = markdown(&lsp.at("textDocument/hover", &mesh, line, character));
    for each in [
        "in service `a`: `hello`, from the `global` env section",
        "in service `b`: `hi`, from the service's env section",
        "in service `c`: `hello`, from the `global` env section",
    ] {
        assert!(given.contains(each), "{each}: {given}");
    }
    // An import: the exporting service and the secret's kind.
    let (line, character) = find(&t, "b.yaml", "- a_cert", 3);
    let import = markdown(&lsp.at("textDocument/hover", &b, line, character));
    assert!(
        import.contains("**secret `a_cert`** (x509), imported by `b` from `a`"),
        "{import}"
    );
    assert!(import.contains("imported by: b, c"), "{import}");
    // Nothing there: no hover, no error.
    let nothing = lsp.at("textDocument/hover", &b, 200, 0);
    assert_eq!(nothing, Value::Null);
    assert_eq!(lsp.shut_down(), 0);
}

#[test]
fn definitions_lead_to_secrets_variables_and_manifests() {
    let t = three_services();
    let (mesh, b) = (t.dir().join("mesh.yaml"), t.dir().join("b.yaml"));
    let mut lsp = Client::start(t.dir());
    let target = |found: &Value| {
        (
            found["uri"]
                .as_str()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            found["range"]["start"]["line"].as_u64().unwrap_or(999) as u32,
            found["range"]["start"]["character"].as_u64().unwrap_or(999) as u32,
        )
    };
    // An import to the secret's definition in the exporter's manifest.
    let (line, character) = find(&t, "b.yaml", "- a_cert", 3);
    let (file, l, c) = target(&lsp.at("textDocument/definition", &b, line, character));
    assert_eq!(
        (file.as_str(), (l, c)),
        ("a.yaml", find(&t, "a.yaml", "name: a_cert", 6))
    );
    // A `$$SCONE::...$$` reference to its secret.
    let (line, character) = find(&t, "b.yaml", "$$SCONE::b_cert", 12);
    let (file, l, c) = target(&lsp.at("textDocument/definition", &b, line, character));
    assert_eq!(
        (file.as_str(), (l, c)),
        ("b.yaml", find(&t, "b.yaml", "name: b_cert", 6))
    );
    // A variable to the Meshfile's entry that gives it its value for this service.
    let (line, character) = find(&t, "b.yaml", "{{greeting}}", 3);
    let (file, l, _) = target(&lsp.at("textDocument/definition", &b, line, character));
    let hi = find(&t, "mesh.yaml", "value: hi", 0);
    assert_eq!((file.as_str(), l), ("mesh.yaml", hi.0 - 1));
    // A service of the Meshfile to its manifest.
    let (line, character) = find(&t, "mesh.yaml", "- name: a", 8);
    let (file, _, _) = target(&lsp.at("textDocument/definition", &mesh, line, character));
    assert_eq!(file, "a.yaml");
    assert_eq!(lsp.shut_down(), 0);
}

#[test]
fn completion_offers_the_fields_not_written_and_a_fields_values() {
    let t = three_services();
    let mesh = t.dir().join("mesh.yaml");
    let text = std::fs::read_to_string(&mesh).expect("mesh");
    let typing = text
        .replace("  namespace: review\n", "  namespace: review\n  \n")
        .replace(
            "    cas_url: embedded\n",
            "    cas_url: embedded\n    mode: \n",
        );
    let mut lsp = Client::start(t.dir());
    lsp.change(&mesh, 1, &typing);
    std::fs::write(&mesh, &typing).expect("typing");
    let (line, _) = find(&t, "mesh.yaml", "namespace: review", 0);
    let fields = labels(lsp.at("textDocument/completion", &mesh, line + 1, 2));
    assert!(
        fields.contains(&"tolerate".into()) && fields.contains(&"ignore_advisories".into()),
        "{fields:?}"
    );
    assert!(
        !fields.contains(&"namespace".into()),
        "namespace is written already: {fields:?}"
    );
    let (line, character) = find(&t, "mesh.yaml", "mode: ", 6);
    let values = labels(lsp.at("textDocument/completion", &mesh, line, character));
    for mode in ["Upload", "SignedManifest", "EncryptedManifest"] {
        assert!(values.contains(&mode.into()), "{mode} not in {values:?}");
    }
    // An unknown request is refused, named.
    let refused = lsp.request_raw("textDocument/rename", json!({}));
    assert_eq!(refused["error"]["code"], -32601, "{refused}");
    assert_eq!(lsp.shut_down(), 0);
}

/// The server with a real client: Neovim (Debian's, headless) opens the Meshfile with three
/// mistakes, shows their diagnostics where they are, loses them as the buffer is fixed, and
/// gets a hover and a definition (`editor/neovim.lua` drives it).
#[test]
fn neovim_shows_the_diagnostics_a_hover_and_a_definition() {
    let Some(nvim) = crate::tools::tool("bin/nvim") else {
        return;
    };
    let t = three_mistakes();
    let script = crate::workspace().join("crates/meshfile/tests/it/editor/neovim.lua");
    let result = t.dir().join("neovim.json");
    let binary =
        std::env::var_os("MESHFILE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_meshfile").into());
    let mut command = std::process::Command::new(&nvim);
    crate::isolate(&mut command, t.dir());
    let out = command
        .current_dir(t.dir())
        .args(["--headless", "-u", "NONE", "-i", "NONE", "-n", "-c"])
        .arg(format!("luafile {}", script.display()))
        .env("MESH_DIR", t.dir())
        .env("MESHFILE_RESULT", &result)
        .env("MESHFILE_BIN_PATH", binary)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run nvim");
    assert!(
        out.status.success(),
        "nvim: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&result).expect("neovim's result");
    let got: Value = serde_json::from_str(&text).expect("json");
    let seen: Vec<(String, u64, u64)> =
        (got["diagnostics"].as_array().expect("diagnostics").iter())
            .map(|d| {
                (
                    d["code"].as_str().unwrap_or_default().to_owned(),
                    d["line"].as_u64().unwrap_or_default(),
                    d["col"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
    for (code, needle) in [("E012", "tolerat"), ("E013", "Uplod"), ("E032", "bb")] {
        let (line, character) = find(&t, "mesh.yaml", needle, 0);
        assert!(
            seen.contains(&(code.to_owned(), line as u64, character as u64)),
            "{code} at {line}:{character} not in {seen:?}"
        );
    }
    assert_eq!(got["after_fix"], 0, "{text}");
    let hover = got["hover"]["contents"]["value"]
        .as_str()
        .unwrap_or_default();
    assert!(hover.contains("**`image`**"), "{text}");
    let definition = got["definition"]["uri"].as_str().unwrap_or_default();
    assert!(definition.ends_with("/a.yaml"), "{text}");
}

#[test]
fn a_message_that_is_not_json_rpc_is_dropped_and_one_too_large_ends_the_server() {
    let t = three_services();
    let mut lsp = Client::start(t.dir());
    lsp.send_raw(b"Content-Length: 9\r\n\r\nnot json!");
    let mesh = t.dir().join("mesh.yaml");
    let (line, character) = find(&t, "mesh.yaml", "image:", 1);
    let hover = markdown(&lsp.at("textDocument/hover", &mesh, line, character));
    assert!(
        hover.contains("**`image`**"),
        "the server stopped answering: {hover}"
    );
    assert_eq!(lsp.shut_down(), 0);
    // A length no manifest needs is refused before anything is allocated.
    let mut child = crate::meshfile(t.dir())
        .arg("lsp")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        let _ = stdin.write_all(b"Content-Length: 99999999999\r\n\r\n");
    }
    let out = child.wait_with_output().expect("wait");
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("over the 67108864-byte limit") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn completion_offers_the_secrets_and_variables_a_service_has() {
    let t = three_services();
    let b = t.dir().join("b.yaml");
    let text = std::fs::read_to_string(&b).expect("b");
    let mut lsp = Client::start(t.dir());
    lsp.open(&b);
    lsp.diagnostics_after(&uri(&b), 1);
    // Typing a reference: the file does not parse meanwhile; names come from the last state
    // that did.
    let typing = text.replace(
        "    - name: CERT\n",
        "    - name: NEW\n      value: \"$$SCONE::\n    - name: CERT\n",
    );
    lsp.change(&b, 2, &typing);
    std::fs::write(&b, &typing).expect("typing");
    let (l, c) = find(&t, "b.yaml", "value: \"$$SCONE::", 17);
    let secrets = labels(lsp.at("textDocument/completion", &b, l, c));
    for name in ["b_key", "b_cert", "a_cert"] {
        assert!(secrets.contains(&name.into()), "{name} not in {secrets:?}");
    }
    assert!(
        !secrets.contains(&"c_cert".into()),
        "b neither defines nor imports c_cert: {secrets:?}"
    );
    let typing = text.replace(
        "    - name: CERT\n",
        "    - name: NEW\n      value: \"{{gre\n    - name: CERT\n",
    );
    lsp.change(&b, 3, &typing);
    std::fs::write(&b, &typing).expect("typing");
    let (l, c) = find(&t, "b.yaml", "value: \"{{gre", 13);
    let variables = labels(lsp.at("textDocument/completion", &b, l, c));
    assert!(variables.contains(&"greeting".into()), "{variables:?}");
    // An import being written: what the other services define.
    let typing = text.replace("    - a_cert\n", "    - a_cert\n    - \n");
    lsp.change(&b, 4, &typing);
    std::fs::write(&b, &typing).expect("typing");
    let (l, _) = find(&t, "b.yaml", "- a_cert", 0);
    let importable = labels(lsp.at("textDocument/completion", &b, l + 1, 6));
    assert!(
        importable.contains(&"c_cert".into()) && !importable.contains(&"b_cert".into()),
        "{importable:?}"
    );
    assert_eq!(lsp.shut_down(), 0);
}
