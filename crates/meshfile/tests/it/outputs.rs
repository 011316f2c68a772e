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
