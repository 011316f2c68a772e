//! The valid corpus (public SCONE tutorials) passes; each invalid file fails with its code and line.

use meshfile_manifest::{Code, load};

use crate::corpus;

#[test]
fn tutorials_are_valid() {
    for (path, bytes) in corpus("valid") {
        let loaded = load(&bytes);
        let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        assert!(loaded.manifest.is_some(), "{}", path.display());
    }
}

/// `# expect: CODE line N` (or `line any`) headers.
fn expectations(text: &str) -> Vec<(Code, Option<u32>)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|l| {
            let (code, line) = l.split_once(" line ").expect("`# expect: CODE line N`");
            let code = Code::parse(code).unwrap_or_else(|| panic!("unknown code {code}"));
            (code, line.parse().ok())
        })
        .collect()
}

#[test]
fn invalid_files_fail_where_expected() {
    for (path, bytes) in corpus("invalid") {
        let text = String::from_utf8_lossy(&bytes);
        let expected = expectations(&text);
        assert!(
            !expected.is_empty(),
            "{} has no expectation",
            path.display()
        );
        let loaded = load(&bytes);
        assert!(loaded.has_errors(), "{} should be invalid", path.display());
        for (code, line) in expected {
            let found = loaded
                .diagnostics
                .iter()
                .any(|d| d.code == code && line.is_none_or(|l| d.line == l));
            assert!(
                found,
                "{}: expected {} at line {line:?}, got {:#?}",
                path.display(),
                code.as_str(),
                loaded.diagnostics
            );
        }
        for d in &loaded.diagnostics {
            assert!(
                d.line >= 1 && d.column >= 1,
                "{}: unlocated {d:?}",
                path.display()
            );
        }
    }
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let text = "apiVersion: scone/5.7\nkind: mesh\ncas:\n  - name: cas\n    cas_url: c\npolicy:\n  namespace: a b\nenv: []\nservices:\n  - name: x\n    imag: y\n  - name: x\n    image: z\n";
    let loaded = load(text.as_bytes());
    let mut codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    for code in ["E011", "E012", "E020", "E034", "E037"] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
}

#[test]
fn unknown_field_suggests_the_closest() {
    let loaded = load(b"apiVersion: scone/5.8\nkind: mesh\ncas: []\npolicy: {namespace: n}\nenv: []\nservces: []\n");
    let d = loaded
        .diagnostics
        .iter()
        .find(|d| d.code == Code::UnknownField)
        .expect("E012");
    assert_eq!((d.line, d.column), (6, 1));
    assert_eq!(d.hint.as_deref(), Some("did you mean `services`?"));
    assert_eq!(d.path, "servces");
}

#[test]
fn numbers_keep_their_spelling() {
    let loaded = load(b"apiVersion: scone/5.8\nkind: mesh\ncas: [{name: cas, alias: [image, security, access, attestation], cas_url: c}]\npolicy: {namespace: n}\nenv: [{service: global, env: [{name: V, value: 1.10}, {name: P, value: 443}, {name: B, value: NO}]}]\nservices: []\n");
    let Some(meshfile_manifest::Manifest::Mesh(mesh)) = loaded.manifest else {
        panic!("mesh expected: {:?}", loaded.diagnostics)
    };
    let values: Vec<&str> = mesh.env[0]
        .env
        .iter()
        .flatten()
        .map(|kv| kv.value.as_str())
        .collect();
    assert_eq!(values, ["1.10", "443", "NO"]);
}

#[test]
fn hostile_inputs_fail_cleanly() {
    let bomb = {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            doc.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        doc.into_bytes()
    };
    let deep = format!("a: {}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    let huge = vec![b'#'; (meshfile_manifest::limits().max_bytes + 1) as usize];
    let cases: Vec<(&str, Vec<u8>, Code)> = vec![
        ("empty", Vec::new(), Code::Empty),
        (
            "two documents",
            b"a: 1\n---\nb: 2\n".to_vec(),
            Code::MultipleDocuments,
        ),
        (
            "invalid utf-8",
            b"apiVersion: \xc3\x28\n".to_vec(),
            Code::Read,
        ),
        ("alias bomb", bomb, Code::Limit),
        ("deep nesting", deep, Code::Syntax),
        ("huge", huge, Code::Limit),
        ("binary", (0u8..=255).collect(), Code::Read),
    ];
    for (name, bytes, code) in cases {
        let loaded = load(&bytes);
        assert!(loaded.manifest.is_none(), "{name}");
        let codes: Vec<Code> = loaded.diagnostics.iter().map(|d| d.code).collect();
        assert!(
            codes.contains(&code),
            "{name}: expected {}, got {codes:?}",
            code.as_str()
        );
    }
}
