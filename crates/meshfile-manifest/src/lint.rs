//! Hygiene and security warnings: settings that are valid but risky in production.

use crate::Manifest;
use crate::decode::Text;
use crate::diagnostic::{Code, Diagnostic};
use crate::mesh::MeshManifest;
use crate::service::ServiceManifest;
use crate::validate::{TOLERATE_WORDS, has_references, split_list};

/// Tolerances that weaken attestation without being debug mode: all but `debug-mode` (its
/// own warning) and `maa-managed-tcb` (Azure manages the TCB).
fn is_weak_tolerance(word: &str) -> bool {
    TOLERATE_WORDS.contains(&word) && !matches!(word, "debug-mode" | "maa-managed-tcb")
}

/// Words that mark an environment value as confidential (`DB_PASSWORD`, `apiToken`).
/// `secrets` (plural) is left out: `imagePullSecrets` names a Kubernetes object, not a value.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "credential",
    "credentials",
];

/// Splits `DB_PASSWORD`, `apiToken` or `api-key` into lower-case words.
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            out.extend((!current.is_empty()).then(|| std::mem::take(&mut current)));
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            out.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    out.extend((!current.is_empty()).then_some(current));
    out
}

fn looks_confidential(name: &str) -> bool {
    let words = words(name);
    words.iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
        || words.windows(2).any(|w| {
            matches!(
                (w[0].as_str(), w[1].as_str()),
                ("api" | "private" | "secret" | "access", "key")
            )
        })
}

pub fn lint(manifest: &Manifest) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    match manifest {
        Manifest::Mesh(mesh) => lint_mesh(mesh, &mut out),
        Manifest::Service(svc) => lint_service(svc, &mut out),
    }
    out
}

pub(crate) fn lint_mesh(mesh: &MeshManifest, out: &mut Vec<Diagnostic>) {
    for (i, cas) in mesh.cas.iter().enumerate() {
        if let Some(mode) = cas
            .mode
            .as_ref()
            .filter(|m| m.value == crate::mesh::CasMode::SignedManifest)
        {
            out.push(
                Diagnostic::new(Code::LintSignedInClear, mode.span, format!("cas[{i}].mode"), "SignedManifest puts every session into the chart as it is: whoever reads the chart or the cluster's SignedPolicy resources reads the services' environment")
                    .with_hint("use `mode: EncryptedManifest`: the same signatures, and only the CAS can read the sessions"),
            );
        }
    }
    for (i, section) in mesh.env.iter().enumerate() {
        for (j, kv) in section.env.iter().flatten().enumerate() {
            if crate::mesh::pasted_block(kv.value.as_str()).is_some() {
                out.push(
                    Diagnostic::new(Code::LintPasteWorkaround, kv.value.span, format!("env[{i}].env[{j}].value"), format!("`{}` starts with a line holding only `|`, scone_mesh's workaround for pasting multi-line values: meshfile uses the text after that line", kv.name))
                        .with_hint("meshfile keeps values typed: write the text as a plain `|` block without the extra first line once only meshfile applies this mesh"),
                );
            }
        }
    }
    if let Some(access) = &mesh.policy.access_policy {
        out.push(
            Diagnostic::new(Code::LintExtension, access.span, "policy.access_policy", "`policy.access_policy` is a meshfile extension: sconectl refuses a Meshfile with it")
                .with_hint("keep it if only meshfile applies this mesh; without it, sessions get meshfile's default policy (only their creator reads and changes them)"),
        );
    }
    if let Some(first) = mesh.descriptor_keys.as_ref().and_then(|keys| keys.first()) {
        out.push(
            Diagnostic::new(Code::LintExtension, first.span, "descriptor_keys", "`descriptor_keys` is a meshfile extension: sconectl refuses a Meshfile with it")
                .with_hint("keep it if only meshfile applies this mesh; without it, pass the keys with `--descriptor-key`"),
        );
    }
    if let Some(tolerate) = &mesh.policy.tolerate {
        let words = split_list(tolerate.as_str());
        if words.contains(&"debug-mode") {
            out.push(
                Diagnostic::new(Code::LintDebugTolerance, tolerate.span, "policy.tolerate", "services tolerate `debug-mode`: a debug enclave's memory can be read by the host, so its secrets are not protected")
                    .with_hint("remove `debug-mode` for production; use `--mode debug` for development runs instead"),
            );
        }
        let weak: Vec<&str> = words.into_iter().filter(|w| is_weak_tolerance(w)).collect();
        if !weak.is_empty() {
            out.push(
                Diagnostic::new(Code::LintWeakTolerance, tolerate.span, "policy.tolerate", format!("services accept platforms with known weaknesses: {}", weak.join(", ")))
                    .with_hint("tolerate only what your platform needs, and list the advisories in `ignore_advisories` instead of `*`"),
            );
        }
    }
    if let Some(adv) = &mesh.policy.ignore_advisories
        && adv.as_str().trim() == "*"
    {
        out.push(
            Diagnostic::new(Code::LintIgnoreAllAdvisories, adv.span, "policy.ignore_advisories", "`ignore_advisories: \"*\"` ignores every present and future Intel security advisory")
                .with_hint("list the advisories you accept, e.g. `INTEL-SA-00334, INTEL-SA-00615`; the session language allows `*` only in debug mode"),
        );
    }
    for (i, cas) in mesh.cas.iter().enumerate() {
        if let Some(tol) = &cas.tolerance {
            let testing: Vec<&str> = tol
                .as_str()
                .split_whitespace()
                .filter(|f| f.starts_with("--only_for_testing"))
                .collect();
            if !testing.is_empty() {
                out.push(
                    Diagnostic::new(Code::LintTestingCasTolerance, tol.span, format!("cas[{i}].tolerance"), format!("the CAS is attested with testing-only flags: {}", testing.join(" ")))
                        .with_hint("with `--only_for_testing-trust-any` any server can pose as your CAS; set `cas_key` and drop these flags in production"),
                );
            }
        }
    }
    for (i, s) in mesh.services.iter().enumerate() {
        check_tag(&s.image, format!("services[{i}].image"), out);
    }
    for (i, section) in mesh.env.iter().enumerate() {
        for (j, kv) in section.env.iter().flatten().enumerate() {
            check_clear_env(&kv.name, &kv.value, format!("env[{i}].env[{j}].value"), out);
        }
    }
}

fn lint_service(svc: &ServiceManifest, out: &mut Vec<Diagnostic>) {
    check_tag(&svc.build.to, "build.to".into(), out);
    if svc.build.pwd.is_none() {
        out.push(
            Diagnostic::new(Code::LintNoPwd, svc.build.name.span, "build.pwd", "`build.pwd` is not set: the session names `/` as the program's working directory, since SCONE requires one and `/` exists in every image")
                .with_hint("set `pwd` to the directory the program expects to start in when it opens files by relative paths"),
        );
    }
    for (i, secret) in svc.secrets_defined().enumerate() {
        if let Some(value) = &secret.value {
            out.push(
                Diagnostic::new(Code::LintClearSecret, value.span, format!("secrets.global[{i}].value"), format!("secret `{}` has its value written in the manifest: whoever reads the file knows it", secret.name))
                    .with_hint("drop `value` so that CAS generates the secret, which no human then knows"),
            );
        }
    }
    for (i, kv) in svc.environment.local.iter().flatten().enumerate() {
        check_clear_env(
            &kv.name,
            &kv.value,
            format!("environment.local[{i}].value"),
            out,
        );
    }
}

fn check_tag(image: &Text, path: String, out: &mut Vec<Diagnostic>) {
    let reference = image.as_str();
    if has_references(reference) || reference.contains('@') {
        return;
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    let message = match last.split_once(':') {
        None => format!("image `{reference}` has no tag, so it means `latest`"),
        Some((_, "latest")) => format!("image `{reference}` is tagged `latest`"),
        Some(_) => return,
    };
    out.push(
        Diagnostic::new(Code::LintImageTag, image.span, path, message)
            .with_hint("pin a version tag or a digest (`@sha256:...`), so that the measured enclave is the one that runs"),
    );
}

fn check_clear_env(name: &Text, value: &Text, path: String, out: &mut Vec<Diagnostic>) {
    if looks_confidential(name.as_str())
        && !value.as_str().is_empty()
        && !has_references(value.as_str())
    {
        out.push(
            Diagnostic::new(Code::LintClearSecret, value.span, path, format!("`{name}` looks confidential but its value is written in clear"))
                .with_hint(format!("define a secret and write `value: \"$$SCONE::{}$$\"`, so that only the attested service receives it", name.as_str().to_ascii_lowercase())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::looks_confidential;

    #[test]
    fn confidential_names_by_whole_words() {
        for name in [
            "DB_PASSWORD",
            "apiToken",
            "API_KEY",
            "client_secret",
            "PRIVATE_KEY",
        ] {
            assert!(looks_confidential(name), "{name}");
        }
        for name in [
            "imagePullSecrets",
            "session_secrets",
            "KEYCLOAK_HOST",
            "PWD",
            "monkey",
        ] {
            assert!(!looks_confidential(name), "{name}");
        }
    }
}
