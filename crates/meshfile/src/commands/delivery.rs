//! What `plan` and `apply` show of a delivery: traces, progress, steps and outcomes.

use std::fmt::Write as _;
use std::time::Duration;

use meshfile_app::Exit;
use meshfile_app::deliver::{Observer, Outcome, Settings, short};
use meshfile_plan::delivery::{Action, Step};
use serde_json::json;

use crate::cli::TrustArgs;
use crate::render;

pub fn settings(args: &TrustArgs) -> Settings {
    Settings {
        identity: args.identity.clone(),
        cas_ca: args.cas_ca.clone(),
        server_name: args.cas_server_name.clone(),
        cas_pin: args.cas_pin.clone(),
        insecure: args.insecure,
        timeout: std::time::Duration::from_secs(args.cas_timeout),
    }
}

pub fn notices(notices: &[String]) {
    for n in notices {
        render::eprint(&format!("{n}\n"));
    }
}

/// Traces requests with `-v`; a progress bar of the writes on a terminal.
pub struct Trace {
    verbose: bool,
    quiet: bool,
    /// How the target is named in errors.
    target: String,
    progress: Option<indicatif::ProgressBar>,
}

impl Trace {
    pub fn new(target: String, verbose: bool, writes: usize, quiet: bool) -> Trace {
        use std::io::IsTerminal;
        let progress = (!quiet && writes >= 2 && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(writes as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "writing sessions {bar:30} {pos}/{len} {elapsed}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Trace {
            verbose,
            quiet,
            target,
            progress,
        }
    }

    fn say(&self, text: String) {
        match &self.progress {
            Some(bar) => bar.println(text.trim_end()),
            None => render::eprint(&text),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.progress {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Trace {
    fn request(&self, what: &str, session: &str, outcome: &str, elapsed: Duration) {
        if self.verbose {
            self.say(format!(
                "  {what} {session} -> {outcome} ({} ms)\n",
                elapsed.as_millis()
            ));
        }
    }

    fn written(&self, _step: &Step, _outcome: &Outcome) {
        if let Some(bar) = &self.progress {
            bar.inc(1);
        }
    }

    fn level(&self, done: &[(&Step, &Outcome)]) {
        let text: String = (done.iter())
            .map(|(step, outcome)| line(&self.target, step, outcome, self.quiet))
            .collect();
        if !text.is_empty() {
            self.say(text);
        }
    }
}

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
fn line(target: &str, step: &Step, outcome: &Outcome, quiet: bool) -> String {
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

/// A delivery in a signing mode as `plan` and `apply` see it: signed by `signing` (whose key,
/// if any, counts as this user's when a namespace's creator is checked), the commands SCONE's
/// CLI ran shown unless `quiet`.
pub fn plan_signed(
    cas: &mut meshfile_app::deliver::Cas,
    compiled: &meshfile_plan::Compiled,
    form: meshfile_app::sign::Form,
    signing: &crate::commands::Signing,
    target: &std::path::Path,
    observer: &Trace,
    quiet: bool,
) -> Result<meshfile_app::deliver::SignedPlan, meshfile_app::Error> {
    if let Some(key) = signing.public_key() {
        cas.signing_as(&key);
    }
    let plan = cas.plan_signed(compiled, form, &signing.backend(), target, observer)?;
    if !quiet {
        signing.show_commands();
    }
    Ok(plan)
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
