//! `$VAR`s in typed fields (a closed set, a boolean): left unchecked while their value is
//! unknown, checked once it is, never reported twice.

use meshfile_manifest::{Code, load, load_with_env};

const MESH: &str = "apiVersion: scone/5.8\nkind: mesh\ncas:\n  - name: cas\n    alias: [image, security, access, attestation]\n    cas_url: embedded\n    mode: $UPLOAD_MODE\npolicy:\n  namespace: demo\nenv:\n  - service: global\n    env: []\nrepo:\n  destination: registry.example.com/copies\n  push: $PUSH\nservices:\n  - name: a\n    image: registry.example.com/a:1\n";

/// A variable's value, as the environment gives it.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn codes(bytes: &[u8], env: Option<Lookup<'_>>) -> Vec<Code> {
    let loaded = match env {
        None => load(bytes),
        Some(lookup) => load_with_env(bytes, Some(lookup)),
    };
    let mut codes: Vec<Code> = (loaded.diagnostics.iter())
        .filter(|d| d.is_error())
        .map(|d| d.code)
        .collect();
    codes.dedup();
    codes
}

#[test]
fn as_written_a_typed_field_holding_a_variable_is_left_to_the_run_that_has_its_value() {
    assert_eq!(codes(MESH.as_bytes(), None), Vec::<Code>::new());
}

#[test]
fn a_variable_without_a_value_is_reported_once_as_such_not_as_a_bad_value() {
    let nothing = |_: &str| None;
    assert_eq!(
        codes(MESH.as_bytes(), Some(&nothing)),
        vec![Code::UndefinedVariable]
    );
}

#[test]
fn the_value_a_variable_gives_is_checked() {
    let given = |name: &str| {
        Some(match name {
            "UPLOAD_MODE" => "Uplod".to_owned(),
            _ => "maybe".to_owned(),
        })
    };
    assert_eq!(
        codes(MESH.as_bytes(), Some(&given)),
        vec![Code::InvalidEnum, Code::WrongType]
    );
    // A value that itself looks like a variable is a value, and a wrong one.
    let dollar = |_: &str| Some("$OTHER".to_owned());
    assert_eq!(
        codes(MESH.as_bytes(), Some(&dollar)),
        vec![Code::InvalidEnum, Code::WrongType]
    );
    let right = |name: &str| {
        Some(match name {
            "UPLOAD_MODE" => "Upload".to_owned(),
            _ => "true".to_owned(),
        })
    };
    assert_eq!(codes(MESH.as_bytes(), Some(&right)), Vec::<Code>::new());
}

#[test]
fn a_secrets_kind_cannot_wait_for_a_variable_and_says_so() {
    let service = "apiVersion: scone/5.8\nkind: genservice\nenvironment: {}\nsecrets:\n  global:\n    - name: password\n      kind: $KIND\nbuild:\n  name: a\n  to: registry.example.com/a:1\n  command: python3 app.py\n";
    let loaded = load(service.as_bytes());
    let kind = (loaded.diagnostics.iter())
        .find(|d| d.code == Code::UnknownSecretKind)
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
    let hint = kind.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("cannot wait for a `$VAR`"), "{hint}");
}
