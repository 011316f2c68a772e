//! Rollouts that follow sessions: the pod template of each generated service carries the hash
//! of its session and the sessions it imports from, so `helm upgrade` restarts exactly the
//! services whose configuration changed; `plan` names them.

use crate::Test;
use crate::mesh::three_services;

/// `t` with `from` replaced by `to` in its file `name`.
fn edited(t: Test, name: &str, from: &str, to: &str) -> Test {
    let text = std::fs::read_to_string(t.dir().join(name)).expect(name);
    assert!(text.contains(from), "{name} holds no {from:?}");
    t.file(name, text.replace(from, to))
}
use crate::tools::{run, tool};

/// `helm template` of the target's chart, one document per resource.
fn rendered(helm: &std::path::PathBuf, t: &Test) -> Vec<String> {
    let chart = t.dir().join("target/helm").display().to_string();
    let args = ["template", "r", &chart, "--set", "global.casAddr=cas"];
    let (ok, text) = run(helm, &args, t.dir());
    assert!(ok, "{text}");
    text.split("\n---\n").map(str::to_owned).collect()
}

/// The documents that differ between two renderings, each as its changed lines.
fn differing(before: &[String], after: &[String]) -> Vec<(String, Vec<String>)> {
    assert_eq!(before.len(), after.len());
    let name = |doc: &str| {
        (doc.lines())
            .find(|l| l.starts_with("# Source:"))
            .unwrap_or_default()
            .to_owned()
    };
    before
        .iter()
        .zip(after)
        .filter(|(b, a)| b != a)
        .map(|(b, a)| {
            let changed = (a.lines().zip(b.lines()))
                .filter(|(x, y)| x != y)
                .map(|(x, _)| x.trim().to_owned())
                .collect();
            (name(a), changed)
        })
        .collect()
}

#[test]
fn a_changed_session_changes_its_deployments_annotation_only() {
    let Some(helm) = tool("bin/helm4") else {
        return;
    };
    let mut t = three_services();
    let template = |t: &mut Test| {
        let out = t.rerun(&["template", "-n", "-f", "."]);
        assert_eq!(out.status, 0, "{}", out.stderr);
    };
    template(&mut t);
    let first = rendered(&helm, &t);
    let annotated = first
        .iter()
        .filter(|d| d.contains("kind: Deployment") && d.contains("meshfile/session: "))
        .count();
    assert_eq!(annotated, 3, "{first:?}");

    // b's own environment: b's Deployment, its annotation, nothing else.
    t = edited(t, "mesh.yaml", "value: hi", "value: howdy");
    template(&mut t);
    let second = rendered(&helm, &t);
    let diff = differing(&first, &second);
    assert_eq!(diff.len(), 1, "{diff:?}");
    assert!(
        diff[0].0.contains("b/templates/deployment.yaml"),
        "{diff:?}"
    );
    assert_eq!(diff[0].1.len(), 1, "{diff:?}");
    assert!(diff[0].1[0].starts_with("meshfile/session: "), "{diff:?}");

    // a's exported certificate: a and the two services that import it.
    let dns = "      private_key: a_key\n      dns: [a]\n";
    t = edited(t, "a.yaml", "      private_key: a_key\n", dns);
    template(&mut t);
    let third = rendered(&helm, &t);
    let diff = differing(&second, &third);
    let mut services: Vec<&str> = (diff.iter())
        .map(|(source, changed)| {
            assert!(
                changed.iter().all(|l| l.starts_with("meshfile/session: ")),
                "{diff:?}"
            );
            source.rsplit("charts/").next().unwrap_or_default()
        })
        .collect();
    services.sort_unstable();
    assert_eq!(
        services,
        [
            "a/templates/deployment.yaml",
            "b/templates/deployment.yaml",
            "c/templates/deployment.yaml"
        ],
        "{diff:?}"
    );
}

#[test]
fn plan_names_the_services_that_restart() {
    let mut t = three_services();
    let apply = t.rerun(&["apply", "-n", "-f", "."]);
    assert_eq!(apply.status, 0, "{}", apply.stderr);
    t = edited(t, "mesh.yaml", "value: hi", "value: howdy");
    let plan = t.rerun(&["plan", "-n", "-f", ".", "-q"]);
    assert!(
        plan.stderr
            .contains("helm upgrade restarts the pods of: b (their session"),
        "{}",
        plan.stderr
    );
    let p384 = "kind: private-key\n      key_type: P-384";
    t = edited(t, "a.yaml", "kind: private-key", p384);
    let plan = t.rerun(&["plan", "-n", "-f", ".", "-o", "json", "-q"]);
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).expect("json");
    assert_eq!(
        json["meshes"][0]["restarts"],
        serde_json::json!(["a", "b", "c"]),
        "{}",
        plan.stdout
    );
}
