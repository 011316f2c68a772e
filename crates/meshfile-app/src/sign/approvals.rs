//! What each session's signatures amount to before it is written: who signed, whose rule
//! governs the write, and what it still lacks.

use super::*;

/// What one session's signatures amount to before it is written.
#[derive(Clone, Debug)]
pub struct Approval {
    pub session: String,
    pub signers: Vec<PublicKey>,
    /// What is still missing, in words; `None` when the signatures suffice.
    pub unmet: Option<String>,
    /// Whose rule decides: `create_sessions of NAMESPACE` or `update of SESSION`.
    pub rule: Option<String>,
    /// Signed by SCONE's CLI: only SCONE CAS can check the signatures.
    pub opaque: bool,
}

/// For each session a delivery would write (by the mTLS `client`), its signers and what the
/// rule that governs the write (the namespace's `create_sessions` for a new session, the active version's `update`
/// for a new version) still lacks; as CAS decides it, so that `apply` refuses before writing.
pub fn approvals(
    artifacts: &[Artifact],
    steps: &[meshfile_plan::delivery::Step],
    current: &BTreeMap<String, meshfile_plan::delivery::Current>,
    client: &str,
) -> Vec<Approval> {
    use meshfile_cas::policy::{self, Operation};
    use meshfile_plan::delivery::Action;
    use meshfile_session::access::{Creator, Principals};
    let by_name: BTreeMap<&str, &Artifact> =
        artifacts.iter().map(|a| (a.name.as_str(), a)).collect();
    let mut out = Vec::new();
    for step in steps {
        let Some(artifact) = by_name.get(step.session.as_str()) else {
            continue;
        };
        if matches!(step.action, Action::Unchanged { .. }) {
            continue;
        }
        if artifact.opaque {
            out.push(Approval {
                session: step.session.clone(),
                signers: Vec::new(),
                unmet: None,
                rule: None,
                opaque: true,
            });
            continue;
        }
        let signers = artifact.signers();
        // The governing session's text and creator, and the operation.
        let governing: Option<(String, String, Operation, String)> = match &step.action {
            Action::Unchanged { .. } => continue,
            Action::Update { .. } => current.get(&step.session).map(|c| {
                (
                    c.session.clone(),
                    c.creator.clone().unwrap_or_default(),
                    Operation::Update,
                    format!("update of `{}`", step.session),
                )
            }),
            Action::Create => step.session.rsplit_once('/').and_then(|(parent, _)| {
                let rule = format!("create_sessions of `{parent}`");
                match (current.get(parent), by_name.get(parent)) {
                    (Some(c), _) => Some((
                        c.session.clone(),
                        c.creator.clone().unwrap_or_default(),
                        Operation::CreateSessions,
                        rule,
                    )),
                    (None, Some(p)) => p.signers().first().map(|first| {
                        (
                            p.signed.session.clone(),
                            Creator::Signer(first.clone()).to_record(),
                            Operation::CreateSessions,
                            rule,
                        )
                    }),
                    (None, None) => None,
                }
            }),
        };
        let (unmet, rule) = match governing {
            None => (None, None),
            Some((text, creator, op, rule)) => {
                let who = Principals {
                    client: Some(client),
                    signers: &signers,
                };
                let unmet = meshfile_yaml::parse(&text, &meshfile_yaml::Limits::default())
                    .ok()
                    .filter(|node| !policy::allows(node, &creator, who, op))
                    .map(|node| policy::unmet(&node, &creator, who, op));
                (unmet, Some(rule))
            }
        };
        out.push(Approval {
            session: step.session.clone(),
            signers,
            unmet,
            rule,
            opaque: false,
        });
    }
    out
}

/// Sends each written step's signed (or encrypted) session instead of its plain text.
pub fn attach(steps: &mut [meshfile_plan::delivery::Step], artifacts: &[Artifact], form: Form) {
    use meshfile_plan::delivery::SignedUpload;
    let by_name: BTreeMap<&str, &Artifact> =
        artifacts.iter().map(|a| (a.name.as_str(), a)).collect();
    for step in steps {
        if let Some(a) = by_name.get(step.session.as_str()) {
            step.signed = Some(match (&a.encrypted, form) {
                (Some(e), Form::Encrypted | Form::EncryptedOnly) => {
                    SignedUpload::Encrypted(e.to_json())
                }
                _ => SignedUpload::Signed(a.signed.to_json()),
            });
        }
    }
}
