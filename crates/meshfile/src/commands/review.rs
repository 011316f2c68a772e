//! `plan` for review: JSON in a versioned format (`meshfile-plan/1`; its JSON Schema is
//! `meshfile schema plan`) and Markdown for a pull request's comment. Neither holds a secret's
//! value: a change to one shows as `(secret value)`.

use std::fmt::Write as _;

use meshfile_app::sign::Approval;
use meshfile_app::usecase::plan::{Compared, MeshPlan};
use meshfile_plan::delivery::{Action, Step};
use schemars::JsonSchema;
use serde::Serialize;

/// The format `plan --output json` writes.
pub const FORMAT: &str = "meshfile-plan/1";

/// What `plan --output json` prints.
#[derive(Serialize, JsonSchema)]
#[schemars(title = "meshfile plan (meshfile-plan/1)")]
pub struct PlanReport {
    /// The format of this document: `meshfile-plan/1`. A later format changes the name.
    pub format: String,
    /// How many sessions `apply` would create or update, over all meshes.
    pub changes: usize,
    pub meshes: Vec<MeshReport>,
}

/// What `apply` would do with one Meshfile's sessions.
#[derive(Serialize, JsonSchema)]
pub struct MeshReport {
    /// The Meshfile, as it was named on the command line.
    pub mesh: String,
    pub delivery: Delivery,
    /// Every session, in delivery order (namespace and exporters first).
    pub sessions: Vec<SessionReport>,
    /// In the signing modes, for each session to be written: who signed it and what its rule
    /// still lacks.
    pub signatures: Vec<SignatureReport>,
    /// The services whose pods `helm upgrade` restarts: their session is updated, or a
    /// session they import from changes.
    pub restarts: Vec<String>,
}

/// Where the sessions go.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Delivery {
    /// `mode: NoUpload`: nothing is delivered; the sessions stay in `policies`.
    Nowhere { policies: String },
    /// The chart's policy resources (`SignedPolicy` or `EncryptedPolicy`), which SCONE's
    /// operator registers with CAS `cas` on `helm install`; compared with the previous run's
    /// files in `compared_with`.
    Chart {
        resource_kind: String,
        cas: String,
        compared_with: String,
    },
    /// A CAS over its client API (or meshfile's embedded development store), as named.
    Cas { cas: String },
}

/// One session.
#[derive(Serialize, JsonSchema)]
pub struct SessionReport {
    pub session: String,
    pub action: SessionAction,
    /// `update`: the hash of the active version the new one replaces (its predecessor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predecessor: Option<String>,
    /// `unchanged`: the hash of the version CAS holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// `update`: one line per difference, `~ PATH: BEFORE -> AFTER` (`+`/`-` for a field added
    /// or removed); a secret's value reads `(secret value)`.
    pub changes: Vec<String>,
    /// `unchanged` although CAS holds another version: a namespace, which meshfile creates but
    /// never changes.
    pub kept: bool,
}

#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionAction {
    Create,
    Update,
    Unchanged,
}

/// Who signed a session to be written, and whether that meets its rule.
#[derive(Serialize, JsonSchema)]
pub struct SignatureReport {
    pub session: String,
    /// The signers whose signatures verify: Ed25519 keys in Base58Check, P-384 keys as the
    /// base64 of their SubjectPublicKeyInfo.
    pub signers: Vec<String>,
    /// Whose rule decides: `create_sessions of NAMESPACE` or `update of SESSION`.
    pub rule: Option<String>,
    /// What the rule still lacks; absent when the signatures suffice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmet: Option<String>,
    /// Signed by SCONE's CLI: only SCONE CAS checks those signatures.
    pub checked_by_cas_only: bool,
}

/// The JSON report of the plans of a run.
pub fn report(plans: &[MeshPlan]) -> PlanReport {
    PlanReport {
        format: FORMAT.to_owned(),
        changes: plans.iter().map(MeshPlan::changes).sum(),
        meshes: plans.iter().map(mesh_report).collect(),
    }
}

/// The JSON Schema of [`PlanReport`] (`meshfile schema plan`).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(PlanReport)).unwrap_or_default()
}

fn mesh_report(plan: &MeshPlan) -> MeshReport {
    let delivery = match &plan.compared {
        Compared::Nothing { policies } => Delivery::Nowhere {
            policies: policies.display().to_string(),
        },
        Compared::Chart {
            form,
            cas_url,
            files,
        } => Delivery::Chart {
            resource_kind: meshfile_app::route::resource_kind(*form).to_owned(),
            cas: cas_url.clone(),
            compared_with: files.display().to_string(),
        },
        Compared::Cas(cas) => Delivery::Cas { cas: cas.clone() },
    };
    MeshReport {
        mesh: plan.file.clone(),
        delivery,
        sessions: plan.steps.iter().map(session_report).collect(),
        signatures: plan.approvals.iter().map(signature_report).collect(),
        restarts: plan.restarts.clone(),
    }
}

fn session_report(step: &Step) -> SessionReport {
    let (action, predecessor, hash) = match &step.action {
        Action::Create => (SessionAction::Create, None, None),
        Action::Update { predecessor } => (SessionAction::Update, Some(predecessor.clone()), None),
        Action::Unchanged { hash } => (SessionAction::Unchanged, None, Some(hash.clone())),
    };
    SessionReport {
        session: step.session.clone(),
        action,
        predecessor,
        hash,
        changes: step.changes.clone(),
        kept: step.kept,
    }
}

fn signature_report(a: &Approval) -> SignatureReport {
    SignatureReport {
        session: a.session.clone(),
        signers: a.signers.iter().map(|s| s.short_name()).collect(),
        rule: a.rule.clone(),
        unmet: a.unmet.clone(),
        checked_by_cas_only: a.opaque,
    }
}

/// The plans as a pull request's comment: the totals, per mesh a table of the sessions, each
/// update's differences in a diff block, and the signatures still needed.
pub fn markdown(plans: &[MeshPlan]) -> String {
    let report = report(plans);
    let count = |wanted: fn(SessionAction) -> bool| -> usize {
        (report.meshes.iter())
            .flat_map(|m| &m.sessions)
            .filter(|s| wanted(s.action))
            .count()
    };
    let mut out = format!(
        "### meshfile plan: {} to create, {} to update, {} unchanged\n",
        count(|a| matches!(a, SessionAction::Create)),
        count(|a| matches!(a, SessionAction::Update)),
        count(|a| matches!(a, SessionAction::Unchanged)),
    );
    for mesh in &report.meshes {
        let _ = write!(out, "\n**{}** ", code(&mesh.mesh));
        let _ = match &mesh.delivery {
            Delivery::Nowhere { policies } => writeln!(
                out,
                "(`mode: NoUpload`): apply delivers nothing; the sessions stay in {}",
                code(policies)
            ),
            Delivery::Chart {
                resource_kind, cas, ..
            } => writeln!(
                out,
                "→ the chart's {resource_kind} resources, registered with CAS {} on `helm install`",
                code(cas)
            ),
            Delivery::Cas { cas } => writeln!(out, "→ {}", text(cas)),
        };
        if mesh.sessions.is_empty() {
            continue;
        }
        out.push_str("\n| session | action | |\n|---|---|---|\n");
        for s in &mesh.sessions {
            let (action, detail) = match s.action {
                SessionAction::Create => ("**create**", String::new()),
                SessionAction::Update => (
                    "**update**",
                    format!(
                        "replaces {}; {} change{}",
                        code(short(s.predecessor.as_deref().unwrap_or_default())),
                        s.changes.len(),
                        if s.changes.len() == 1 { "" } else { "s" }
                    ),
                ),
                SessionAction::Unchanged if s.kept => (
                    "unchanged",
                    "exists with another policy and is kept (a namespace is never changed)"
                        .to_owned(),
                ),
                SessionAction::Unchanged => ("unchanged", String::new()),
            };
            let _ = writeln!(out, "| {} | {action} | {detail} |", code(&s.session));
        }
        for s in mesh.sessions.iter().filter(|s| !s.changes.is_empty()) {
            let _ = writeln!(
                out,
                "\n<details><summary>{}</summary>\n\n{}\n</details>",
                html(&s.session),
                fenced("diff", &s.changes.join("\n"))
            );
        }
        if !mesh.restarts.is_empty() {
            let services: Vec<String> = mesh.restarts.iter().map(|s| code(s)).collect();
            let _ = writeln!(
                out,
                "\n`helm upgrade` restarts the pods of {}.",
                services.join(", ")
            );
        }
        let unmet: Vec<&SignatureReport> = (mesh.signatures.iter())
            .filter(|a| a.unmet.is_some())
            .collect();
        if !unmet.is_empty() {
            out.push_str("\nSignatures still needed before `apply` writes anything:\n\n");
            for a in unmet {
                let signed = if a.signers.is_empty() {
                    "nobody".to_owned()
                } else {
                    a.signers
                        .iter()
                        .map(|s| code(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let _ = writeln!(
                    out,
                    "- {}: {} needs {} (signed by {signed})",
                    code(&a.session),
                    text(a.rule.as_deref().unwrap_or("its rule")),
                    text(a.unmet.as_deref().unwrap_or_default()),
                );
            }
        }
    }
    out
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// `text` as inline code, with a fence longer than any run of backticks in it.
fn code(text: &str) -> String {
    let run = longest_backtick_run(text);
    let fence = "`".repeat(run + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!(
        "{fence}{pad}{}{pad}{fence}",
        text.replace(['\n', '\r'], " ")
    )
}

/// A fenced code block whose fence no line of `body` can close.
fn fenced(info: &str, body: &str) -> String {
    let fence = "`".repeat((longest_backtick_run(body) + 1).max(3));
    format!("{fence}{info}\n{body}\n{fence}")
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Text outside code: what Markdown or HTML would read as markup is escaped.
fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '~'
        ) {
            out.push('\\');
        }
        out.push(if c == '\n' || c == '\r' { ' ' } else { c });
    }
    out
}

/// Text inside an HTML element (a `<summary>`).
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_and_fences_cannot_be_closed_by_what_they_hold() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(fenced("diff", "x ``` y"), "````diff\nx ``` y\n````");
        assert_eq!(text("a|b <c>"), "a\\|b \\<c\\>");
        assert_eq!(html("<b>&"), "&lt;b&gt;&amp;");
    }
}
