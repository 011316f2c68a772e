//! What `plan` and `apply` show of a delivery: its steps, outcomes and signatures, for
//! people and as JSON.

use std::fmt::Write as _;

use meshfile_app::Exit;
use meshfile_app::connection::{Outcome, short};
use meshfile_app::usecase::apply::Applied;
use meshfile_app::usecase::plan::{Compared, MeshPlan};
use meshfile_plan::delivery::{Action, Step};
use serde_json::json;

use crate::render;

/// A plan, a line per session; updates with their differences.
pub fn steps(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        let _ = match &step.action {
            Action::Create => writeln!(out, "create     {}  (new session)", step.session),
            Action::Update { predecessor } => writeln!(
                out,
                "update     {}  (active {}…)",
                step.session,
                short(predecessor)
            ),
            Action::Unchanged { .. } if step.kept => writeln!(
                out,
                "unchanged  {}  (exists with another policy and is kept: meshfile creates a namespace but never changes one)",
                step.session
            ),
            Action::Unchanged { .. } => writeln!(out, "unchanged  {}", step.session),
        };
        if matches!(step.action, Action::Update { .. }) {
            for change in &step.changes {
                let _ = writeln!(out, "           {change}");
            }
        }
    }
    out
}

/// What became of one written session, for people: a line (with differences and help).
pub fn written(target: &str, step: &Step, outcome: &Outcome, quiet: bool) -> String {
    let mut text = String::new();
    match outcome {
        Outcome::Created { hash } | Outcome::Updated { hash } if !quiet => {
            let updated = matches!(outcome, Outcome::Updated { .. });
            let verb = if updated { "updated" } else { "created" };
            let _ = writeln!(text, "{verb:<9}  {}  ({}…)", step.session, short(hash));
            if updated {
                for change in &step.changes {
                    let _ = writeln!(text, "           {change}");
                }
            }
        }
        Outcome::Failed(e) => {
            let _ = writeln!(text, "FAILED     {}: {e}", step.session);
            for hint in &meshfile_app::Error::cas(target, e).hints {
                let _ = writeln!(text, "           = help: {hint}");
            }
        }
        _ => {}
    }
    text
}

/// What a delivery did: the summary, the JSON results in plan order and the exit status.
pub fn outcomes(
    target: &str,
    steps: &[Step],
    outcomes: &[Outcome],
) -> (String, Vec<serde_json::Value>, Exit) {
    let mut results = Vec::new();
    let (mut created, mut updated, mut unchanged, mut failed) = (0, 0, 0, 0);
    let mut not_written = Vec::new();
    let mut exit = Exit::Ok;
    for (step, outcome) in steps.iter().zip(outcomes) {
        let result = match outcome {
            Outcome::Created { hash } => {
                created += 1;
                json!({ "session": step.session, "result": "created", "hash": hash, "changes": step.changes })
            }
            Outcome::Updated { hash } => {
                updated += 1;
                json!({ "session": step.session, "result": "updated", "hash": hash, "changes": step.changes })
            }
            Outcome::Unchanged { hash } => {
                unchanged += 1;
                json!({ "session": step.session, "result": "unchanged", "hash": hash })
            }
            Outcome::Failed(e) => {
                failed += 1;
                not_written.push(step.session.as_str());
                exit = exit.max(meshfile_app::Error::cas(target, e).exit());
                json!({ "session": step.session, "result": "failed", "error": e.to_string() })
            }
            Outcome::NotWritten => {
                failed += 1;
                not_written.push(step.session.as_str());
                json!({ "session": step.session, "result": "not written" })
            }
        };
        results.push(result);
    }
    let mut text =
        format!("{created} created, {updated} updated, {unchanged} unchanged, {failed} failed\n");
    if !not_written.is_empty() {
        let _ = writeln!(text, "not written: {}", not_written.join(", "));
    }
    (text, results, exit)
}

/// Who signed each session to be written, and what its rule still lacks.
pub fn approvals(approvals: &[meshfile_app::sign::Approval]) -> String {
    if approvals.is_empty() {
        return String::new();
    }
    let mut out = String::from("signatures:\n");
    for a in approvals {
        let signers: Vec<String> = a.signers.iter().map(|s| s.short_name()).collect();
        let signed = if signers.is_empty() {
            "nobody".to_owned()
        } else {
            signers.join(", ")
        };
        if a.opaque {
            let _ = writeln!(
                out,
                "  {}  signed by SCONE's CLI: its signatures are for SCONE CAS to check",
                a.session
            );
            continue;
        }
        let verdict = match (&a.rule, &a.unmet) {
            (_, Some(unmet)) => format!(
                "NOT YET: {} needs {unmet}",
                a.rule.as_deref().unwrap_or("its rule")
            ),
            (Some(rule), None) => format!("{rule}: met"),
            (None, None) => "no rule governs a new top-level session".to_owned(),
        };
        let _ = writeln!(out, "  {}  signed by {signed}; {verdict}", a.session);
    }
    out
}

/// One mesh's `apply` outcome: what to show, its JSON results (when written to CAS) and
/// its exit status.
pub fn applied(applied: &Applied, quiet: bool) -> (String, Option<serde_json::Value>, Exit) {
    match applied {
        Applied::Kept { .. } | Applied::InChart { .. } if quiet => (String::new(), None, Exit::Ok),
        Applied::Kept { file, policies } => (
            format!(
                "{file}: mode NoUpload: nothing delivered; the sessions are in {}\n",
                policies.display()
            ),
            None,
            Exit::Ok,
        ),
        Applied::InChart {
            form,
            sessions,
            cas_url,
        } => (
            format!(
                "{sessions} {} resource{} in the chart deliver the sessions: SCONE's operator registers them with CAS {cas_url} on `helm install`; no connection to CAS was made (`--upload` also writes them to CAS directly)\n",
                meshfile_app::route::resource_kind(*form),
                render::plural(*sessions),
            ),
            None,
            Exit::Ok,
        ),
        Applied::Planned { target, steps: s } => (
            format!(
                "plan for {target} (dry run: nothing changed):\n{}",
                steps(s)
            ),
            None,
            Exit::Ok,
        ),
        Applied::Delivered {
            target,
            steps,
            outcomes: o,
        } => {
            let (text, results, exit) = outcomes(target, steps, o);
            let report = json!({ "target": target, "results": results });
            (text, Some(report), exit)
        }
    }
}

/// What a mesh's plan compares with, as its first line names it (`None`: nothing, the mode
/// delivers nothing).
fn compared(plan: &MeshPlan) -> Option<String> {
    match &plan.compared {
        Compared::Nothing { .. } => None,
        Compared::Chart {
            form,
            cas_url,
            files,
        } => Some(format!(
            "the chart's {} resources (SCONE's operator registers them with CAS {cas_url} on `helm install`; compared with {})",
            meshfile_app::route::resource_kind(*form),
            files.display()
        )),
        Compared::Cas(target) => Some(target.clone()),
    }
}

/// A plan for people: its steps, the counts and the signatures still needed.
pub fn plan(plan: &MeshPlan) -> String {
    let Some(target) = compared(plan) else {
        let Compared::Nothing { policies } = &plan.compared else {
            return String::new();
        };
        return format!(
            "plan for {}: mode NoUpload: apply delivers nothing (the sessions stay in {})\n",
            plan.file,
            policies.display()
        );
    };
    let count = |f: fn(&Action) -> bool| plan.steps.iter().filter(|s| f(&s.action)).count();
    let restarts = match plan.restarts.as_slice() {
        [] => String::new(),
        services => format!(
            "helm upgrade restarts the pods of: {} (their session, or one they import from, changes)\n",
            services.join(", ")
        ),
    };
    format!(
        "plan for {target}:\n{}{} to create, {} to update, {} unchanged\n{restarts}{}",
        steps(&plan.steps),
        count(|a| matches!(a, Action::Create)),
        count(|a| matches!(a, Action::Update { .. })),
        count(|a| matches!(a, Action::Unchanged { .. })),
        approvals(&plan.approvals)
    )
}

/// `apply -p`: each service's variables as a ready-to-paste `env:` block.
pub fn variables(file: &str, compiled: &meshfile_plan::Compiled) -> String {
    let mut out = format!(
        "# Variables of the services of {file}: value and where it comes from.\n# Paste into the Meshfile's `env:` and adjust.\nenv:\n"
    );
    for s in &compiled.variables {
        out.push_str(&format!("  - service: {}\n    env:", s.service));
        if s.variables.is_empty() {
            out.push_str(" []");
        }
        out.push('\n');
        for v in &s.variables {
            let node = meshfile_yaml::Node::scalar(
                v.value.clone().unwrap_or_default(),
                meshfile_yaml::Style::DoubleQuoted,
            );
            let value = meshfile_yaml::emit(&node);
            out.push_str(&format!(
                "      - name: {}\n        value: {}    # {}\n",
                v.name,
                value.trim_end(),
                v.origin
            ));
        }
    }
    out
}
