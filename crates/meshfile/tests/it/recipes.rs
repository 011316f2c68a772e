//! The CI recipes of `docs/ci/`, run as the forge runs them: each step's or script's commands
//! in bash, in a checkout holding the examples, with the binary under test on PATH. Posting
//! goes to the forge's API, which no test reaches: `gh` and `curl` are stand-ins on PATH that
//! record how they were called.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use meshfile_yaml::{Entry, Node, Value};

use crate::{Test, workspace};

fn entries(node: Option<&Entry>) -> &[Entry] {
    match node.map(|e| &e.value.value) {
        Some(Value::Mapping(entries)) => entries,
        _ => &[],
    }
}

fn items(node: &Node) -> &[Node] {
    match &node.value {
        Value::Sequence(items) => items,
        _ => &[],
    }
}

/// A checkout with the examples, stand-ins for `gh` and `curl`, and the recipe's text.
fn checkout(recipe: &str) -> (Test, Node) {
    let t = Test::new();
    let examples = workspace().join("examples/hello-world");
    let into = t.dir().join("examples/hello-world");
    std::fs::create_dir_all(&into).expect("examples");
    for entry in std::fs::read_dir(&examples).expect("example") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, into.join(path.file_name().expect("name"))).expect("copy");
    }
    let bin = t.dir().join("forge-bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for tool in ["gh", "curl"] {
        let script = "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \"$0.calls\"\n";
        let path = bin.join(tool);
        std::fs::write(&path, script).expect("stand-in");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("mode");
    }
    let text = std::fs::read_to_string(workspace().join("docs/ci").join(recipe)).expect("recipe");
    let node = meshfile_yaml::parse(&text, &meshfile_yaml::Limits::default()).expect("YAML");
    (t, node)
}

/// Runs `script` as the forge's bash does (`-eo pipefail`) in `t`'s directory.
fn bash(t: &Test, script: &str, env: &BTreeMap<String, String>) -> (i32, String) {
    let meshfile = PathBuf::from(env!("CARGO_BIN_EXE_meshfile"));
    let path = std::env::join_paths([
        meshfile.parent().expect("bin dir").to_path_buf(),
        t.dir().join("forge-bin"),
        PathBuf::from("/usr/bin"),
        PathBuf::from("/bin"),
    ])
    .expect("PATH");
    let mut command = Command::new("bash");
    crate::isolate(&mut command, t.dir());
    let out = command
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(t.dir())
        .env("PATH", path)
        .envs(env)
        .output()
        .expect("bash");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn calls(t: &Test, tool: &str) -> String {
    std::fs::read_to_string(t.dir().join("forge-bin").join(format!("{tool}.calls")))
        .unwrap_or_default()
}

/// The GitHub workflow's steps (checkout and installation left out) with the expressions a
/// pull request gives them; `if:` of the form `steps.ID.outputs.NAME == 'VALUE'` decided
/// from what earlier steps wrote to `$GITHUB_OUTPUT`.
fn run_github_workflow(t: &Test, workflow: &Node) {
    let expressions = [
        ("${{ secrets.MESHFILE_IDENTITY }}", ""),
        ("${{ github.token }}", "a-token"),
        ("${{ github.event.pull_request.number }}", "7"),
    ];
    let substitute = |text: &str| {
        (expressions.iter()).fold(text.to_owned(), |text, (from, to)| text.replace(from, to))
    };
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for entry in entries(workflow.get("env")) {
        env.insert(
            entry.key_text().to_owned(),
            entry.value.as_scalar().unwrap_or_default().to_owned(),
        );
    }
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    let steps = (workflow.get("jobs").and_then(|j| j.value.get("plan")))
        .and_then(|p| p.value.get("steps"))
        .expect("jobs.plan.steps");
    for step in items(&steps.value) {
        let name = step.scalar_at("name").unwrap_or_default();
        let Some(run) = step.scalar_at("run") else {
            continue; // `uses:` steps: the forge's own actions.
        };
        if name == "Install meshfile" {
            continue;
        }
        if let Some(condition) = step.scalar_at("if") {
            let (key, value) = condition.split_once(" == ").expect("if: A == 'B'");
            let wanted = value.trim_matches('\'');
            if outputs.get(key).map(String::as_str) != Some(wanted) {
                continue;
            }
        }
        let mut step_env = env.clone();
        for entry in entries(step.get("env")) {
            let value = substitute(entry.value.as_scalar().unwrap_or_default());
            step_env.insert(entry.key_text().to_owned(), value);
        }
        let output = t.dir().join("github-output");
        std::fs::write(&output, "").expect("output");
        step_env.insert("GITHUB_OUTPUT".into(), output.display().to_string());
        let (status, text) = bash(t, &substitute(run), &step_env);
        assert_eq!(status, 0, "step {name}: {text}");
        let id = step.scalar_at("id").unwrap_or(name);
        for line in std::fs::read_to_string(&output).expect("output").lines() {
            if let Some((k, v)) = line.split_once('=') {
                outputs.insert(format!("steps.{id}.outputs.{k}"), v.to_owned());
            }
        }
    }
}

#[test]
fn the_github_workflow_comments_the_plan_when_a_merge_would_change_cas() {
    let (t, workflow) = checkout("github-actions.yml");
    run_github_workflow(&t, &workflow);
    assert_eq!(calls(&t, "gh"), "pr comment 7 --body-file plan.md\n");
    let plan = std::fs::read_to_string(t.dir().join("plan.md")).expect("plan.md");
    assert!(
        plan.starts_with("### meshfile plan: 2 to create, 0 to update, 0 unchanged\n"),
        "{plan}"
    );
    // Once CAS holds the sessions, a pull request that changes nothing gets no comment.
    let mut t = t;
    let apply = t.rerun(&["apply", "-n", "-f", "examples/hello-world", "-q"]);
    assert_eq!(apply.status, 0, "{}", apply.stderr);
    std::fs::remove_file(t.dir().join("forge-bin/gh.calls")).expect("calls");
    run_github_workflow(&t, &workflow);
    assert_eq!(calls(&t, "gh"), "");
}

#[test]
fn the_gitlab_job_posts_the_plan_as_a_merge_request_note() {
    let (t, pipeline) = checkout("gitlab-ci.yml");
    let job = pipeline.get("meshfile-plan").expect("job").value.clone();
    let script: Vec<&str> = items(&job.get("script").expect("script").value)
        .iter()
        .map(|n| n.as_scalar().expect("a command"))
        .collect();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for entry in entries(job.get("variables")) {
        env.insert(
            entry.key_text().to_owned(),
            entry.value.as_scalar().unwrap_or_default().to_owned(),
        );
    }
    for (key, value) in [
        ("CI_API_V4_URL", "https://gitlab.example.com/api/v4"),
        ("CI_PROJECT_ID", "42"),
        ("CI_MERGE_REQUEST_IID", "7"),
        ("GITLAB_TOKEN", "a-token"),
    ] {
        env.insert(key.into(), value.into());
    }
    let (status, text) = bash(&t, &script.join("\n"), &env);
    assert_eq!(status, 0, "{text}");
    let posted = calls(&t, "curl");
    assert!(
        posted.contains("--data-urlencode body@plan.md https://gitlab.example.com/api/v4/projects/42/merge_requests/7/notes"),
        "{posted}"
    );
    assert!(Path::new(&t.dir().join("plan.md")).is_file());
}
