//! Nothing silent: every field of both specifications (the OpenAPI schemas in `spec/`, copies
//! of the Meshfile and service-manifest specifications 0.2.1), set on a small mesh, changes
//! what meshfile writes or says, gets a warning that names it, or is refused.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::Test;

const MESH_SPEC: &str = include_str!("spec/mesh-manifest-openapi-0.2.1.json");
const SERVICE_SPEC: &str = include_str!("spec/service-manifest-openapi-0.2.1.json");

/// The leaf fields of a specification's `Manifest`, as `a.b[].c`: a field holding a value or a
/// list of values, not a mapping or a list of mappings (their fields are listed instead).
fn leaves(spec: &str) -> BTreeSet<String> {
    let spec: Value = serde_json::from_str(spec).expect("spec JSON");
    let schemas = &spec["components"]["schemas"];
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(r) => schemas[r.rsplit('/').next().expect("ref")].clone(),
            None => schema.clone(),
        }
    };
    let mut out = BTreeSet::new();
    let mut todo = vec![(String::new(), resolve(&schemas["Manifest"]))];
    while let Some((path, schema)) = todo.pop() {
        let Some(properties) = schema["properties"].as_object() else {
            continue;
        };
        for (name, field) in properties {
            let field = resolve(field);
            let at = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            let items = resolve(&field["items"]);
            if field["properties"].is_object() {
                todo.push((at, field));
            } else if field["type"] == "array" && items["properties"].is_object() {
                todo.push((format!("{at}[]"), items));
            } else {
                out.insert(at);
            }
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Doc {
    Mesh,
    Service,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// What `template` (or, for delivery fields, `apply`) writes or prints changes.
    Acts,
    /// A warning names the field.
    Warns,
    /// This value is refused with an error.
    Refused,
}

/// A field, where to set it, the value, what must follow, and files the value names.
struct Sample {
    field: &'static str,
    doc: Doc,
    pointer: &'static str,
    value: Value,
    expect: Expect,
    files: &'static [(&'static str, &'static str)],
}

fn sample(
    field: &'static str,
    doc: Doc,
    pointer: &'static str,
    value: Value,
    expect: Expect,
) -> Sample {
    Sample {
        field,
        doc,
        pointer,
        value,
        expect,
        files: &[],
    }
}

const IMAGE: &str = "registry.example.com/walk/app:1";
const PEER_IMAGE: &str = "registry.example.com/walk/peer:1";

fn base_mesh() -> Value {
    json!({
        "apiVersion": "scone/5.8",
        "kind": "mesh",
        "cas": [{"name": "cas", "alias": ["image", "security", "access", "attestation"], "cas_url": "embedded"}],
        "policy": {"namespace": "walk"},
        "env": [{"service": "global", "env": [{"name": "GREETING", "value": "hi"}]}],
        "services": [{"name": "app", "image": IMAGE}, {"name": "peer", "image": PEER_IMAGE}],
    })
}

fn base_service() -> Value {
    json!({
        "apiVersion": "scone/5.8",
        "kind": "genservice",
        "environment": {
            "local": [{"name": "MODE", "value": "1"}],
            "global": [{"name": "GREETING"}],
        },
        "secrets": {"global": [{"name": "pw", "kind": "ascii", "size": "16"}]},
        "build": {"name": "app", "kind": "python", "to": IMAGE, "command": "python3 app.py"},
    })
}

const PEER: &str = "{\"apiVersion\": \"scone/5.8\", \"kind\": \"genservice\", \"environment\": {}, \"secrets\": {\"global\": [{\"name\": \"peer_pw\", \"kind\": \"ascii\"}]}, \"build\": {\"name\": \"peer\", \"kind\": \"python\", \"to\": \"registry.example.com/walk/peer:1\", \"command\": \"python3 peer.py\"}}\n";

fn measurements() -> String {
    format!(
        "{IMAGE}: [\"{}\"]\n{PEER_IMAGE}: [\"{}\"]\n",
        "ab".repeat(32),
        "cd".repeat(32)
    )
}

const CHART: &[(&str, &str)] = &[(
    "chart/Chart.yaml",
    "apiVersion: v2\nname: walk-chart\nversion: 1.0.0\n",
)];
const POLICY: &[(&str, &str)] = &[(
    "policy.yaml",
    "name: x\nversion: \"0.3.10\"\nservices:\n  - name: app\n    image_name: img\n    command: python3 app.py\nimages:\n  - name: img\n",
)];
const SECRETS: &[(&str, &str)] = &[("secrets.yaml", "- name: pw\n  kind: ascii\n  size: 32\n")];
const ENV: &[(&str, &str)] = &[(
    "env.yaml",
    "local:\n  - name: MODE\n    value: \"2\"\nglobal:\n  - name: GREETING\n",
)];

/// The base manifest's secrets, a private key `key` for certificates, and `extra`.
fn secrets(extra: Value) -> Value {
    json!([
        {"name": "pw", "kind": "ascii", "size": "16"},
        {"name": "key", "kind": "private-key"},
        extra,
    ])
}

fn samples() -> Vec<Sample> {
    use Doc::{Mesh, Service};
    use Expect::{Acts, Refused, Warns};
    let repo = |field: &'static str, value: Value, expect: Expect| {
        let mut repo = json!({"destination": "registry.example.com/walk/out"});
        repo[field.trim_start_matches("repo.")] = value;
        sample(field, Mesh, "/repo", repo, expect)
    };
    let volume = |value: Value| json!([{"name": "data", "path": "/data", "export": [value]}]);
    let mut all = vec![
        sample(
            "apiVersion",
            Mesh,
            "/apiVersion",
            json!("scone/4.0"),
            Refused,
        ),
        sample("kind", Mesh, "/kind", json!("meshes"), Refused),
        sample(
            "cas[].alias",
            Mesh,
            "/cas",
            json!([
            {"name": "cas", "alias": ["image", "access", "attestation"], "cas_url": "embedded"},
            {"name": "security", "cas_url": "127.0.0.1:18081"}]),
            Acts,
        ),
        sample(
            "cas[].cas_encryption_key",
            Mesh,
            "/cas/0/cas_encryption_key",
            json!("7b".repeat(32)),
            Warns,
        ),
        sample(
            "cas[].cas_key",
            Mesh,
            "/cas/0/cas_key",
            json!("46YyxrywJ8PFRruWX8YLxa9q4axxYJgTbA81tv7NBcJfn43DQt"),
            Warns,
        ),
        sample(
            "cas[].cas_url",
            Mesh,
            "/cas/0/cas_url",
            json!("127.0.0.1:18081"),
            Acts,
        ),
        sample("cas[].mode", Mesh, "/cas/0/mode", json!("NoUpload"), Acts),
        sample("cas[].name", Mesh, "/cas/0/name", json!("main"), Refused),
        sample(
            "cas[].tolerance",
            Mesh,
            "/cas/0/tolerance",
            json!("-C -G"),
            Warns,
        ),
        sample(
            "env[].env[].name",
            Mesh,
            "/env/0/env/1",
            json!({"name": "APP_SERVICE_PORT", "value": "8080"}),
            Acts,
        ),
        sample(
            "env[].env[].value",
            Mesh,
            "/env/0/env/0/value",
            json!("hello"),
            Acts,
        ),
        sample(
            "env[].service",
            Mesh,
            "/env/1",
            json!({"service": "app", "env": [{"name": "GREETING", "value": "app's own"}]}),
            Acts,
        ),
        sample(
            "extra_policies[].mode",
            Mesh,
            "/extra_policies",
            json!([{"mode": "Upload"}]),
            Warns,
        ),
        sample(
            "extra_policies[].name",
            Mesh,
            "/extra_policies",
            json!([{"name": "x"}]),
            Warns,
        ),
        sample(
            "helm_extra_values",
            Mesh,
            "/helm_extra_values",
            json!({"app": {"replicaCount": 3}}),
            Acts,
        ),
        sample(
            "policy.access_policy_name",
            Mesh,
            "/policy/access_policy_name",
            json!("security/policies/access"),
            Warns,
        ),
        sample(
            "policy.attestation_policy_name",
            Mesh,
            "/policy/attestation_policy_name",
            json!("security/policies/attestation"),
            Warns,
        ),
        sample(
            "policy.image_policy_namespace",
            Mesh,
            "/policy/image_policy_namespace",
            json!("images"),
            Warns,
        ),
        sample(
            "policy.maa",
            Mesh,
            "/policy/maa",
            json!("https://sharedweu.weu.attest.azure.net"),
            Acts,
        ),
        sample(
            "policy.namespace",
            Mesh,
            "/policy/namespace",
            json!("walk-two"),
            Acts,
        ),
        sample(
            "policy.security_policy_name",
            Mesh,
            "/policy/security_policy_name",
            json!("security/policies/security"),
            Warns,
        ),
        sample(
            "policy.tolerate",
            Mesh,
            "/policy/tolerate",
            json!("outdated-tcb"),
            Acts,
        ),
        repo("repo.config_id", json!("walk/config"), Warns),
        sample(
            "repo.destination",
            Mesh,
            "/repo",
            json!({"destination": "registry.example.com/walk/out"}),
            Acts,
        ),
        repo("repo.key_file", json!("key.pem"), Acts),
        // What apply does with these shows in what template says it would do.
        repo("repo.push", json!(false), Acts),
        repo("repo.squash", json!(true), Acts),
        repo("repo.strip", json!(false), Acts),
        Sample {
            files: ENV,
            ..sample(
                "services[].env",
                Mesh,
                "/services/0/env",
                json!("env.yaml"),
                Acts,
            )
        },
        Sample {
            files: CHART,
            ..sample(
                "services[].helm_chart",
                Mesh,
                "/services/0/helm_chart",
                json!("chart"),
                Acts,
            )
        },
        sample(
            "services[].image",
            Mesh,
            "/services/0/image",
            json!("registry.example.com/walk/other:1"),
            Refused,
        ),
        Sample {
            files: POLICY,
            ..sample(
                "services[].image_policy",
                Mesh,
                "/services/0/image_policy",
                json!("policy.yaml"),
                Acts,
            )
        },
        Sample {
            files: SECRETS,
            ..sample(
                "services[].image_secrets",
                Mesh,
                "/services/0/image_secrets",
                json!("secrets.yaml"),
                Acts,
            )
        },
        sample(
            "services[].name",
            Mesh,
            "/services/0/name",
            json!("app-two"),
            Acts,
        ),
        sample(
            "apiVersion",
            Service,
            "/apiVersion",
            json!("scone/4.0"),
            Refused,
        ),
        sample("kind", Service, "/kind", json!("service"), Refused),
        sample(
            "build.command",
            Service,
            "/build/command",
            json!("python3 other.py"),
            Acts,
        ),
        sample(
            "build.gen_policy.policy",
            Service,
            "/build/gen_policy",
            json!({"policy": "policy.yaml"}),
            Warns,
        ),
        sample("build.name", Service, "/build/name", json!("renamed"), Acts),
        sample("build.pwd", Service, "/build/pwd", json!("/app"), Acts),
        sample(
            "build.signature.key",
            Service,
            "/build/signature",
            json!({"key": "identity.pem"}),
            Warns,
        ),
        sample(
            "build.signature.sign",
            Service,
            "/build/signature",
            json!({"sign": true}),
            Warns,
        ),
        sample(
            "build.to",
            Service,
            "/build/to",
            json!("registry.example.com/walk/other:1"),
            Refused,
        ),
        sample(
            "build.volumes[].export[].session",
            Service,
            "/build/volumes",
            volume(json!({"session": "walk/peer"})),
            Acts,
        ),
        sample(
            "build.volumes[].export[].session_hash",
            Service,
            "/build/volumes",
            volume(json!({"session": "walk/peer", "session_hash": "ab".repeat(32)})),
            Acts,
        ),
        sample(
            "build.volumes[].export[].update_policy",
            Service,
            "/build/volumes",
            volume(json!({"session": "walk/peer", "update_policy": "ephemeral"})),
            Acts,
        ),
        sample(
            "build.volumes[].export[].volume_alias",
            Service,
            "/build/volumes",
            volume(json!({"session": "walk/peer", "volume_alias": "shared"})),
            Acts,
        ),
        sample(
            "build.volumes[].import.session",
            Service,
            "/build/volumes",
            json!([{"name": "data", "path": "/data", "import": {"session": "walk/peer", "volume": "data"}}]),
            Acts,
        ),
        sample(
            "build.volumes[].import.volume",
            Service,
            "/build/volumes",
            json!([{"name": "data", "path": "/data", "import": {"session": "walk/peer", "volume": "data"}}]),
            Acts,
        ),
        sample(
            "build.volumes[].name",
            Service,
            "/build/volumes",
            json!([{"name": "data", "path": "/data"}]),
            Acts,
        ),
        sample(
            "build.volumes[].path",
            Service,
            "/build/volumes",
            json!([{"name": "data", "path": "/data"}]),
            Acts,
        ),
        sample(
            "environment.global[].name",
            Service,
            "/environment/global/1",
            json!({"name": "EXTRA", "value": "d"}),
            Acts,
        ),
        sample(
            "environment.global[].value",
            Service,
            "/environment/global/1",
            json!({"name": "EXTRA", "value": "d"}),
            Acts,
        ),
        sample(
            "environment.local[].name",
            Service,
            "/environment/local/0/name",
            json!("OTHER"),
            Acts,
        ),
        sample(
            "environment.local[].value",
            Service,
            "/environment/local/0/value",
            json!("2"),
            Acts,
        ),
        sample(
            "injection_files[].content",
            Service,
            "/injection_files",
            json!([{"path": "/etc/app.conf", "content": "x"}]),
            Acts,
        ),
        sample(
            "injection_files[].path",
            Service,
            "/injection_files",
            json!([{"path": "/etc/other.conf", "content": ""}]),
            Acts,
        ),
        sample(
            "secrets.global[].application_secret",
            Service,
            "/secrets/global",
            secrets(
                json!({"name": "aad", "kind": "aad-token", "application_secret": "s", "client_id": "c", "tenant_id": "t", "endpoint": "server"}),
            ),
            Acts,
        ),
        sample(
            "secrets.global[].client_id",
            Service,
            "/secrets/global",
            secrets(json!({"name": "aad", "kind": "aad-token", "client_id": "c"})),
            Acts,
        ),
        sample(
            "secrets.global[].common_name",
            Service,
            "/secrets/global",
            secrets(
                json!({"name": "cert", "kind": "x509-ca", "private_key": "key", "common_name": "walk"}),
            ),
            Acts,
        ),
        sample(
            "secrets.global[].dns",
            Service,
            "/secrets/global",
            secrets(
                json!({"name": "cert", "kind": "x509", "private_key": "key", "dns": ["walk.example"]}),
            ),
            Acts,
        ),
        sample(
            "secrets.global[].endpoint",
            Service,
            "/secrets/global",
            secrets(json!({"name": "aad", "kind": "aad-token", "endpoint": "server"})),
            Acts,
        ),
        sample(
            "secrets.global[].export_public",
            Service,
            "/secrets/global/0/export_public",
            json!("true"),
            Acts,
        ),
        sample(
            "secrets.global[].issuer",
            Service,
            "/secrets/global",
            json!([
                {"name": "pw", "kind": "ascii", "size": "16"},
                {"name": "key", "kind": "private-key"},
                {"name": "ca", "kind": "x509-ca", "private_key": "key"},
                {"name": "cert", "kind": "x509", "private_key": "key", "issuer": "ca"},
            ]),
            Acts,
        ),
        sample(
            "secrets.global[].key_type",
            Service,
            "/secrets/global",
            secrets(json!({"name": "other", "kind": "private-key", "key_type": "Ed25519"})),
            Acts,
        ),
        sample(
            "secrets.global[].kind",
            Service,
            "/secrets/global/0/kind",
            json!("binary"),
            Acts,
        ),
        sample(
            "secrets.global[].migrate",
            Service,
            "/secrets/global",
            secrets(json!({"name": "other", "kind": "private-key", "migrate": "true"})),
            Acts,
        ),
        sample(
            "secrets.global[].name",
            Service,
            "/secrets/global/0/name",
            json!("password"),
            Acts,
        ),
        sample(
            "secrets.global[].private_key",
            Service,
            "/secrets/global",
            secrets(json!({"name": "cert", "kind": "x509-ca", "private_key": "key"})),
            Acts,
        ),
        sample(
            "secrets.global[].size",
            Service,
            "/secrets/global/0/size",
            json!("32"),
            Acts,
        ),
        sample(
            "secrets.global[].tenant_id",
            Service,
            "/secrets/global",
            secrets(json!({"name": "aad", "kind": "aad-token", "tenant_id": "t"})),
            Acts,
        ),
        sample(
            "secrets.global[].valid_for",
            Service,
            "/secrets/global",
            secrets(
                json!({"name": "ca", "kind": "x509-ca", "private_key": "key", "valid_for": "30 days"}),
            ),
            Acts,
        ),
        sample(
            "secrets.global[].value",
            Service,
            "/secrets/global/0/value",
            json!("given"),
            Acts,
        ),
        sample(
            "secrets.import",
            Service,
            "/secrets/import",
            json!(["peer_pw"]),
            Acts,
        ),
    ];
    for field in IMAGE_BUILDING_SAMPLES {
        all.push(sample(field.0, Service, field.1, field.2(), Warns));
    }
    all
}

type Building = (&'static str, &'static str, fn() -> Value);

/// The image-building fields of `build`: each warns (W009).
pub const IMAGE_BUILDING_SAMPLES: &[Building] = &[
    ("build.binaries", "/build/binaries", || {
        json!(["/usr/bin/python3"])
    }),
    ("build.copy", "/build/copy", || json!(["app.py"])),
    ("build.dirs", "/build/dirs", || json!(["/app"])),
    ("build.from", "/build/from", || json!("python:3.11")),
    ("build.fs_dirs", "/build/fs_dirs", || json!(["/app"])),
    ("build.fs_files", "/build/fs_files", || {
        json!(["/app/app.py"])
    }),
    ("build.host_paths", "/build/host_paths", || {
        json!(["/etc/hosts"])
    }),
    ("build.kind", "/build/kind", || json!("java")),
    ("build.plain_files", "/build/plain_files", || {
        json!(["/app/README"])
    }),
    ("build.plains", "/build/plains", || json!(["/app/static"])),
    ("build.requirements", "/build/requirements", || {
        json!("requirements.txt")
    }),
    ("build.run", "/build/run", || json!(["pip install x"])),
    ("build.stable", "/build/stable", || {
        json!("registry.example.com/walk/app:0")
    }),
];

/// `value` without the field `key` wherever it stands in it; `None` when it holds no such field.
fn without(value: &Value, key: &str) -> Option<Value> {
    fn strip(v: &mut Value, key: &str) -> bool {
        match v {
            Value::Object(map) => {
                let mut found = map.remove(key).is_some();
                for child in map.values_mut() {
                    found |= strip(child, key);
                }
                found
            }
            Value::Array(items) => items.iter_mut().fold(false, |f, i| strip(i, key) | f),
            _ => false,
        }
    }
    let mut stripped = value.clone();
    strip(&mut stripped, key).then_some(stripped)
}

/// Sets `value` at `pointer`, making its last step: a key of a mapping, or the next item of
/// a list.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer.rsplit_once('/').expect("pointer");
    match doc
        .pointer_mut(parent)
        .expect("the parent exists in the base")
    {
        Value::Object(map) => {
            map.insert(last.to_owned(), value);
        }
        Value::Array(items) => {
            let i: usize = last.parse().expect("an index");
            if i < items.len() {
                items[i] = value;
            } else {
                items.push(value);
            }
        }
        other => panic!("{pointer}: cannot set inside {other}"),
    }
}

/// What a run wrote and said, less its warnings: what a field that acts changes.
struct Run {
    status: i32,
    written: String,
    stderr: String,
}

fn run(mesh: &Value, service: &Value, files: &[(&str, &str)], verb: &str) -> Run {
    let t = Test::new()
        .file("mesh.yaml", mesh.to_string())
        .file("service.yaml", service.to_string())
        .file("peer.yaml", PEER)
        .file("measurements.yaml", measurements());
    for (name, text) in files {
        let path = t.dir().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::fs::write(path, text).expect("file");
    }
    let mut t = t;
    // lint asks no registry anyway, and takes no `-n`.
    let out = if verb == "lint" {
        t.rerun(&[verb, "-f", "."])
    } else {
        t.rerun(&[verb, "-n", "-f", "."])
    };
    let target = t.dir().join("target");
    let files = if target.exists() {
        crate::compile::raw_files(&target)
    } else {
        Default::default()
    };
    let mut written: String = files
        .into_iter()
        .filter(|(path, _)| path.starts_with("policies/") || path.starts_with("helm/"))
        .map(|(path, bytes)| format!("--- {path}\n{}\n", String::from_utf8_lossy(&bytes)))
        .collect();
    written.push_str(&out.stdout);
    // What it said, less its warnings and the snippets, hints and notes under them.
    let under_a_diagnostic = |l: &str| {
        let rest = l
            .trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
        rest.starts_with('|') || rest.starts_with('=')
    };
    written.extend(
        (out.stderr.lines())
            .filter(|l| !l.contains("warning[") && !under_a_diagnostic(l))
            .map(|l| format!("{l}\n")),
    );
    Run {
        status: out.status,
        written,
        stderr: out.stderr,
    }
}

#[test]
fn every_field_of_both_specifications_acts_warns_or_is_refused() {
    let samples = samples();
    // Every leaf field of each specification has a sample, and no sample names another.
    for (doc, spec) in [(Doc::Mesh, MESH_SPEC), (Doc::Service, SERVICE_SPEC)] {
        let sampled: BTreeSet<String> = (samples.iter())
            .filter(|s| s.doc == doc)
            .map(|s| s.field.to_owned())
            .collect();
        assert_eq!(
            sampled,
            leaves(spec),
            "{doc:?}: fields without a sample, or samples of no field"
        );
    }
    let verb = |s: &Sample| {
        if s.field == "cas[].mode" {
            "apply"
        } else {
            "template"
        }
    };
    let base = |verb: &str| run(&base_mesh(), &base_service(), &[], verb);
    let (template, apply) = (base("template"), base("apply"));
    for (name, b) in [("template", &template), ("apply", &apply)] {
        assert_eq!(b.status, 0, "the base mesh {name}s: {}", b.stderr);
    }
    let mut failed = Vec::new();
    for s in &samples {
        let (mut mesh, mut service) = (base_mesh(), base_service());
        match s.doc {
            Doc::Mesh => set(&mut mesh, s.pointer, s.value.clone()),
            Doc::Service => set(&mut service, s.pointer, s.value.clone()),
        }
        let verb = verb(s);
        let key = s.field.rsplit(['.', ']']).next().unwrap_or(s.field);
        // A field set inside a new item is compared with the item without it (when that is
        // valid): the change must be the field's, not the item's.
        let item_alone = (s.expect == Expect::Acts)
            .then(|| without(&s.value, key))
            .flatten()
            .map(|alone| {
                let (mut mesh, mut service) = (base_mesh(), base_service());
                match s.doc {
                    Doc::Mesh => set(&mut mesh, s.pointer, alone),
                    Doc::Service => set(&mut service, s.pointer, alone),
                }
                run(&mesh, &service, s.files, verb)
            });
        let before = match &item_alone {
            Some(alone) if alone.status == 0 => alone,
            _ if verb == "apply" => &apply,
            _ => &template,
        };
        let after = run(&mesh, &service, s.files, verb);
        // A warning naming the field, or one the base run did not give naming a field it is
        // part of.
        let names: Vec<&str> = (s.field.split(['.', '[', ']']))
            .filter(|n| !n.is_empty())
            .collect();
        let warned = after.stderr.lines().any(|l| {
            l.contains("warning[")
                && (l.contains(s.field)
                    || (!before.stderr.contains(l) && names.iter().any(|n| l.contains(n))))
        });
        // Image-building fields: a run that compiles notes them once for all manifests;
        // `lint` (and `validate`) warn at each (W009), naming the field.
        let building = s.field.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
        let warned = warned
            || (s.field.starts_with("build.")
                && after.stderr.contains("say how to build")
                && run(&mesh, &service, s.files, "lint")
                    .stderr
                    .lines()
                    .any(|l| l.contains("warning[W009]") && l.contains(&building)));
        let held = match s.expect {
            Expect::Acts => after.status == 0 && after.written != before.written,
            Expect::Warns => after.status == 0 && warned,
            Expect::Refused => after.status == 1 && after.stderr.contains("error["),
        };
        if !held {
            failed.push(format!(
                "{:?} {} ({:?}):\n{}",
                s.doc, s.field, s.expect, after.stderr
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} fields:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
