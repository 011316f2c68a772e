//! Rollouts that follow sessions: each generated service's pods carry the hash of what they
//! run with (their session and the sessions it imports from), so that a changed session
//! changes the pod template and `helm upgrade` restarts exactly those services.

use std::collections::BTreeMap;

use meshfile_session::Document;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::ChartService;

/// The session a service's pods attest to: `SCONE_CONFIG_ID` without its program.
pub fn session_of(service: &ChartService) -> &str {
    (service.config_id.rsplit_once('/')).map_or(service.config_id.as_str(), |(s, _)| s)
}

/// Whether meshfile's own service chart deploys the service (not a chart of the user's own or
/// from `--helm-template`): only its pods carry the annotation.
pub fn generated(service: &ChartService) -> bool {
    service.chart_dir.is_none() && service.chart_files.is_none()
}

/// Each session's rollout hash, by name: SHA-256 over the session's canonical text (`texts`,
/// in the order of `sessions`, as written to `target/policies`), then over each imported
/// session's name and own hash, in name order.
pub fn hashes(sessions: &[Document], texts: &[&[u8]]) -> BTreeMap<String, String> {
    let own: BTreeMap<&str, [u8; 32]> = (sessions.par_iter().zip(texts))
        .map(|(doc, text)| (doc.name.as_str(), Sha256::digest(text).into()))
        .collect();
    sessions
        .iter()
        .map(|doc| {
            let mut combined = Sha256::new();
            combined.update(own[doc.name.as_str()]);
            for imported in &doc.imports {
                if let Some(hash) = own.get(imported.as_str()) {
                    combined.update(imported.as_bytes());
                    combined.update(hash);
                }
            }
            (doc.name.clone(), hex::encode(combined.finalize()))
        })
        .collect()
}
