//! Where signed and encrypted sessions go besides CAS: sconectl's files under
//! `target/session_files/` and the chart's SignedPolicy/EncryptedPolicy resources.

use super::*;

/// The files of `session_files/`, sconectl's and meshfile's; `cas_url` addresses the
/// operator resources (none for the embedded store, which has no address).
pub fn files(artifacts: &[Artifact], form: Form, target: &Path, cas_url: &str) -> Tree {
    use meshfile_chart::policies::resource_yaml;
    let dir = target.join(SESSION_FILES);
    let relative = |name: &str, kind| {
        file(target, name, kind)
            .strip_prefix(&dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let address = (cas_url != meshfile_plan::EMBEDDED_CAS)
        .then(|| format!("https://{}", crate::access::with_port(cas_url)));
    let mut files = Vec::with_capacity(artifacts.len() * 5);
    for a in artifacts {
        let state = State {
            session: a.name.clone(),
            predecessor: a.predecessor.clone(),
            source_hash: a.source_hash.clone(),
            creator: a.creator.clone(),
            replaces: a.replaces.clone(),
        };
        let state = serde_json::to_string_pretty(&state).unwrap_or_default() + "\n";
        files.push((relative(&a.name, Kind::State), state.into_bytes()));
        files.push((
            relative(&a.name, Kind::Hash),
            format!("{}\n", a.hash).into_bytes(),
        ));
        if form != Form::EncryptedOnly {
            files.push((
                relative(&a.name, Kind::Signed),
                a.signed.to_json().into_bytes(),
            ));
            if let Some(address) = &address {
                let resource = resource(a, Form::Signed);
                files.push((
                    relative(&a.name, Kind::SignedManifest),
                    resource_yaml(address, &resource).into_bytes(),
                ));
            }
        }
        if let Some(e) = &a.encrypted {
            files.push((relative(&a.name, Kind::Encrypted), e.to_json().into_bytes()));
            if let Some(address) = &address {
                files.push((
                    relative(&a.name, Kind::EncryptedManifest),
                    resource_yaml(address, &resource(a, form)).into_bytes(),
                ));
            }
        }
    }
    Tree { dir, files }
}

/// The operator resource of one session in `form`.
pub(super) fn resource(a: &Artifact, form: Form) -> meshfile_chart::policies::PolicyResource {
    use meshfile_chart::policies::{PolicyBody, PolicyResource};
    PolicyResource {
        session: a.name.clone(),
        weight: a.weight,
        body: match (&a.encrypted, form) {
            (Some(e), Form::Encrypted | Form::EncryptedOnly) => PolicyBody::Encrypted {
                policy: e.encrypted_session.clone(),
                encryption_key: e.encryption_key.clone(),
            },
            _ => PolicyBody::Signed {
                policy: a.signed.session.clone(),
                signatures: (a.signed.signatures.iter())
                    .map(|s| (s.signer.clone(), s.signature.clone()))
                    .collect(),
            },
        },
    }
}

/// The chart files of the policy resources: one per session, in hook order.
pub fn chart_files(
    artifacts: &[Artifact],
    form: Form,
    cas_url: &str,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    use meshfile_chart::policies::{PolicyResource, policy_files};
    if cas_url == meshfile_plan::EMBEDDED_CAS {
        return Err(Error::new(
            Code::UnsupportedMode,
            "SignedPolicy and EncryptedPolicy resources name the CAS the operator registers them in, and the embedded store has no address",
        )
        .hint("point `cas_url` at a CAS the cluster reaches (`meshfile cas serve`, or SCONE CAS)"));
    }
    let mut resources: Vec<PolicyResource> = artifacts.iter().map(|a| resource(a, form)).collect();
    resources.sort_by_key(|r| r.weight);
    let address = format!("https://{}", crate::access::with_port(cas_url));
    Ok(policy_files(&address, &resources).into_iter().collect())
}
