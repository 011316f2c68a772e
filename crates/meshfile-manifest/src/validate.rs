//! Rules beyond the shape of the document: names, references between sections, value syntax.
//!
//! Values that still hold a `$VAR` or `{{name}}` are checked after resolution, when a mesh is
//! compiled; here they are only checked for reference syntax.

use std::collections::HashMap;

use meshfile_session::limits;
use meshfile_yaml::{Node, Span, Value};

use crate::decode::{Path, Text};
use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::mesh::MeshManifest;
use crate::refs::{self, Token, is_cas_name, is_env_name};
use crate::service::{SecretKind, ServiceManifest};

/// Roles a mesh needs; each must be served by exactly one CAS entry (by `name` or `alias`).
pub const CAS_ROLES: &[&str] = &["cas", "image", "security", "access", "attestation"];

/// Words allowed in `policy.tolerate` (CAS session language, `security.attestation.tolerate`).
pub const TOLERATE_WORDS: &[&str] = &[
    "debug-mode",
    "hyperthreading",
    "insecure-igpu",
    "software-hardening-needed",
    "insecure-configuration",
    "outdated-tcb",
    "aepic-leak",
    "maa-managed-tcb",
];

pub const KEY_TYPES: &[&str] = &["P-256", "P-384", "Ed25519", "RSA-2048", "RSA-3072"];

/// Names that `env[].service` may use besides the mesh's services.
pub const RESERVED_ENV_SECTIONS: &[&str] = &["global", "helm"];

fn diag(code: Code, span: Span, path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(code, span, path, message)
}

/// True when the value is finished only after `$VAR`/`{{name}}` resolution.
pub fn has_references(text: &str) -> bool {
    text.contains('$') || text.contains("{{")
}

/// Splits a comma-separated list, trimming each item.
pub fn split_list(text: &str) -> Vec<&str> {
    text.split(',').map(str::trim).collect()
}

/// `scone/MAJOR.MINOR[.PATCH]`, at least 5.8.
pub fn check_api_version(api: &Text, out: &mut Vec<Diagnostic>) {
    let hint = "write `apiVersion: scone/5.8` (or a later version)";
    let Some(version) = api.as_str().strip_prefix("scone/") else {
        out.push(
            diag(
                Code::ApiVersion,
                api.span,
                "apiVersion",
                format!("apiVersion `{api}` must have the form `scone/MAJOR.MINOR[.PATCH]`"),
            )
            .with_hint(hint),
        );
        return;
    };
    let parts: Vec<&str> = version.split('.').collect();
    let numbers: Option<Vec<u64>> = parts.iter().map(|p| p.parse::<u64>().ok()).collect();
    match numbers {
        Some(n) if (2..=3).contains(&n.len()) => {
            if (n[0], n[1]) < (5, 8) {
                out.push(
                    diag(
                        Code::ApiVersion,
                        api.span,
                        "apiVersion",
                        format!("apiVersion `{api}` is older than scone/5.8, the first version with these manifests"),
                    )
                    .with_hint(hint),
                );
            }
        }
        _ => out.push(
            diag(
                Code::ApiVersion,
                api.span,
                "apiVersion",
                format!("apiVersion `{api}`: `{version}` is not a version of the form MAJOR.MINOR[.PATCH]"),
            )
            .with_hint(hint),
        ),
    }
}

/// Reference syntax in every string value of the document (Helm values are passed through).
pub fn check_reference_syntax(root: &Node, out: &mut Vec<Diagnostic>) {
    walk_references(root, &Path::Root, out);
}

fn walk_references(node: &Node, path: &Path<'_>, out: &mut Vec<Diagnostic>) {
    match &node.value {
        Value::Scalar { text, .. } => {
            if !text.bytes().any(|b| b == b'$' || b == b'{') {
                return;
            }
            if let Err(e) = refs::scan(text) {
                let code = if e.scone {
                    Code::SecretRefSyntax
                } else {
                    Code::VariableSyntax
                };
                out.push(diag(code, node.span, path.to_string(), e.message));
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_references(item, &path.index(i), out);
            }
        }
        Value::Mapping(entries) => {
            for e in entries {
                let key = e.key_text();
                if matches!(path, Path::Root) && key == "helm_extra_values" {
                    continue;
                }
                walk_references(&e.value, &path.key(key), out);
            }
        }
    }
}

/// A document path kept as indices, formatted only when a diagnostic needs it.
#[derive(Clone, Copy)]
enum Loc {
    /// `{0}[{1}]{2}`, e.g. `services[3].name`.
    Item(&'static str, usize, &'static str),
    /// `{0}[{1}]{2}[{3}]{4}`, e.g. `env[0].env[2].name`.
    Nested(&'static str, usize, &'static str, usize, &'static str),
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loc::Item(a, i, b) => write!(f, "{a}[{i}]{b}"),
            Loc::Nested(a, i, b, j, c) => write!(f, "{a}[{i}]{b}[{j}]{c}"),
        }
    }
}

/// Reports each name seen before in `items`, pointing at the later one.
fn duplicates<'a>(
    items: impl IntoIterator<Item = (&'a Text, Loc)>,
    code: Code,
    what: &str,
    out: &mut Vec<Diagnostic>,
) {
    let mut seen: HashMap<&str, &Text> = HashMap::new();
    for (name, path) in items {
        if let Some(first) = seen.get(name.as_str()) {
            out.push(diag(
                code,
                name.span,
                path.to_string(),
                format!(
                    "{what} `{name}` is defined twice (first at line {})",
                    first.span.start.line
                ),
            ));
        } else {
            seen.insert(name.as_str(), name);
        }
    }
}

fn check_env_name(name: &Text, path: Loc, out: &mut Vec<Diagnostic>) {
    if !has_references(name.as_str()) && !is_env_name(name.as_str()) {
        out.push(
            diag(
                Code::InvalidEnvName,
                name.span,
                path.to_string(),
                format!("`{name}` is not a valid environment variable name"),
            )
            .with_hint("use letters, digits and `_`, starting with a letter or `_`"),
        );
    }
}

/// `scone cas attest` options a `tolerance` may hold that take no value (SCONE's CLI reference).
pub const ATTEST_FLAGS: &[&str] = &[
    "-C",
    "--accept-configuration-needed",
    "-G",
    "--accept-group-out-of-date",
    "-S",
    "--accept-sw-hardening-needed",
    "--allow-cas-owner-secret-access",
    "--only_for_testing-debug",
    "--only_for_testing-ignore-signer",
    "--only_for_testing-trust-any",
    "--only_for_testing_allow-unprovisioned-cas",
];

/// `scone cas attest` options that take a value, the next word.
pub const ATTEST_OPTIONS: &[&str] = &[
    "-c",
    "-s",
    "--mrenclave",
    "--mrsigner",
    "--isvprodid",
    "--isvsvn",
    "--offline-report",
    "--nonce",
    "--verification-time",
    "--retries",
];

/// Each word of a CAS's `tolerance` should be an option of `scone cas attest` (with its value,
/// for one that takes one). meshfile attests no CAS, so it cannot judge a word SCONE's CLI
/// does not document (scone_mesh_tutorial has used such words since 2023): it warns.
fn check_tolerances(mesh: &MeshManifest, out: &mut Vec<Diagnostic>) {
    for (i, cas) in mesh.cas.iter().enumerate() {
        let Some(tolerance) = &cas.tolerance else {
            continue;
        };
        if has_references(tolerance.as_str()) {
            continue;
        }
        let mut words = tolerance.as_str().split_whitespace();
        while let Some(word) = words.next() {
            let problem = if ATTEST_FLAGS.contains(&word) {
                None
            } else if ATTEST_OPTIONS.contains(&word) {
                words
                    .next()
                    .is_none()
                    .then(|| format!("`{word}` needs a value"))
            } else {
                Some(format!("`{word}` is no option of `scone cas attest`"))
            };
            if let Some(message) = problem {
                out.push(
                    diag(
                        Code::UnknownTolerance,
                        tolerance.span,
                        format!("cas[{i}].tolerance"),
                        message,
                    )
                    .with_hint(format!(
                        "meshfile does not use the tolerance (it attests no CAS); the options `scone cas attest` documents: {}, and with a value: {}",
                        ATTEST_FLAGS.join(" "),
                        ATTEST_OPTIONS.join(" ")
                    )),
                );
            }
        }
    }
}

pub fn check_mesh(mesh: &MeshManifest, root: &Node, out: &mut Vec<Diagnostic>) {
    check_api_version(&mesh.api_version, out);
    check_tolerances(mesh, out);

    // Services: names usable as CAS session names, and unique.
    let mut names: HashMap<&str, (Span, usize)> = HashMap::new();
    for (i, s) in mesh.services.iter().enumerate() {
        let name = s.effective_name();
        let span = s.name.as_ref().map_or(s.image.span, |n| n.span);
        let path = Loc::Item("services", i, ".name");
        if !has_references(name) && !is_cas_name(name) {
            out.push(
                diag(
                    Code::InvalidName,
                    span,
                    path.to_string(),
                    format!("service name `{name}` cannot be used as a CAS session name"),
                )
                .with_hint("use up to 128 letters, digits, `_`, `-`, `.` or `~`"),
            );
        }
        check_image(&s.image, Loc::Item("services", i, ".image"), out);
        if let Some((first, j)) = names.get(name) {
            out.push(
                diag(
                    Code::DuplicateService,
                    span,
                    path.to_string(),
                    format!(
                        "service name `{name}` is already used by services[{j}] at line {}",
                        first.start.line
                    ),
                )
                .with_hint("give each service a unique `name`; two services may share an image"),
            );
        } else {
            names.insert(name, (span, i));
        }
    }

    // Env sections: known targets, valid names, duplicates per target.
    let service_names: Vec<&str> = mesh.services.iter().map(|s| s.effective_name()).collect();
    let declared: std::collections::HashSet<&str> = service_names.iter().copied().collect();
    let mut by_target: HashMap<&str, Vec<(&Text, Loc)>> = HashMap::new();
    for (i, section) in mesh.env.iter().enumerate() {
        let target = section.service.as_str();
        if !RESERVED_ENV_SECTIONS.contains(&target)
            && !declared.contains(target)
            && !has_references(target)
        {
            let candidates = RESERVED_ENV_SECTIONS
                .iter()
                .copied()
                .chain(service_names.iter().copied());
            let mut d = diag(
                Code::UnknownEnvService,
                section.service.span,
                format!("env[{i}].service"),
                format!(
                    "env section for `{target}`, which is neither `global`, `helm` nor a service of this mesh"
                ),
            );
            d = match did_you_mean(target, candidates) {
                Some(best) => d.with_hint(format!("did you mean `{best}`?")),
                None => d.with_hint(format!("services: {}", service_names.join(", "))),
            };
            out.push(d);
        }
        for (j, kv) in section.env.iter().flatten().enumerate() {
            let path = Loc::Nested("env", i, ".env", j, ".name");
            check_env_name(&kv.name, path, out);
            by_target.entry(target).or_default().push((&kv.name, path));
        }
    }
    let mut targets: Vec<_> = by_target.into_iter().collect();
    targets.sort_by_key(|(t, _)| *t);
    for (_, names) in targets {
        duplicates(names, Code::DuplicateEnv, "environment name", out);
    }

    check_cas(mesh, root, out);
    check_policy(mesh, out);
}

fn check_cas(mesh: &MeshManifest, root: &Node, out: &mut Vec<Diagnostic>) {
    let names = mesh
        .cas
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.name.as_ref().map(|n| (n, Loc::Item("cas", i, ".name"))));
    duplicates(names, Code::DuplicateCasName, "CAS", out);

    let mut served: HashMap<&str, (&Text, usize)> = HashMap::new();
    for (i, cas) in mesh.cas.iter().enumerate() {
        if cas.roles().next().is_none() {
            out.push(
                diag(
                    Code::UnusedCas,
                    cas.cas_url.span,
                    format!("cas[{i}]"),
                    "this CAS entry has no name and no alias, so it serves no role",
                )
                .with_hint(format!(
                    "give it a `name` or an `alias` list with roles from: {}",
                    CAS_ROLES.join(", ")
                )),
            );
        }
        let mut own: Vec<&str> = Vec::new();
        for role in cas.roles() {
            if own.contains(&role.as_str()) {
                continue;
            }
            own.push(role.as_str());
            if !CAS_ROLES.contains(&role.as_str()) {
                continue;
            }
            if let Some((first, j)) = served.get(role.as_str()) {
                out.push(
                    diag(
                        Code::DuplicateCasRole,
                        role.span,
                        format!("cas[{i}]"),
                        format!(
                            "role `{role}` is served by cas[{j}] (line {}) and again by cas[{i}]",
                            first.span.start.line
                        ),
                    )
                    .with_hint(
                        "each role must be served by exactly one CAS; remove it from one of them",
                    ),
                );
            } else {
                served.insert(role.as_str(), (role, i));
            }
        }
        if let Some(key) = &cas.cas_encryption_key
            && !has_references(key.as_str())
            && !(key.as_str().len() == 64 && key.as_str().bytes().all(|c| c.is_ascii_hexdigit()))
        {
            out.push(
                diag(
                    Code::InvalidCasKey,
                    key.span,
                    format!("cas[{i}].cas_encryption_key"),
                    "cas_encryption_key must be 64 hexadecimal digits",
                )
                .with_hint(
                    "print it with `scone cas show-identification --session-encryption-key`",
                ),
            );
        }
        signing_mode_needs(cas, i, out);
    }
    // Roles are counted only when every entry decoded; a broken entry is already reported.
    let cas_entry = match &root.value {
        Value::Mapping(entries) => entries.iter().find(|e| e.key_text() == "cas"),
        _ => None,
    };
    let written = cas_entry.map_or(0, |e| match &e.value.value {
        Value::Sequence(items) => items.len(),
        _ => 0,
    });
    if written != mesh.cas.len() {
        return;
    }
    let anchor = mesh
        .cas
        .first()
        .map(|c| c.name.as_ref().map_or(c.cas_url.span, |n| n.span))
        .or(cas_entry.map(|e| e.key.span))
        .unwrap_or(root.span);
    for role in CAS_ROLES {
        if served.contains_key(role) {
            continue;
        }
        let near_miss = mesh.cas.iter().flat_map(|c| c.roles()).find(|r| {
            !CAS_ROLES.contains(&r.as_str()) && did_you_mean(r.as_str(), [*role]).is_some()
        });
        let mut d = diag(
            Code::MissingCasRole,
            anchor,
            "cas",
            format!("no CAS serves the `{role}` role"),
        );
        d = match near_miss {
            Some(r) => d.with_hint(format!("`{r}` at line {} looks like a misspelling of `{role}`", r.span.start.line)),
            None => d.with_hint(format!(
                "add `{role}` to the `alias` list of the CAS that should hold these policies, e.g. alias: [\"image\", \"security\", \"access\", \"attestation\"]"
            )),
        };
        out.push(d);
    }
}

fn check_policy(mesh: &MeshManifest, out: &mut Vec<Diagnostic>) {
    let policy = &mesh.policy;
    let ns = policy.namespace.as_str();
    if !has_references(ns) && !ns.split('/').all(is_cas_name) {
        out.push(
            diag(Code::InvalidNamespace, policy.namespace.span, "policy.namespace", format!("`{ns}` is not a valid CAS namespace"))
                .with_hint("use path elements of up to 128 letters, digits, `_`, `-`, `.` or `~`, separated by `/`"),
        );
    }
    let mut words = Vec::new();
    if let Some(tolerate) = &policy.tolerate
        && !has_references(tolerate.as_str())
    {
        for word in split_list(tolerate.as_str()) {
            words.push(word);
            if TOLERATE_WORDS.contains(&word) {
                continue;
            }
            let message = if word.is_empty() {
                "`policy.tolerate` has an empty item; separate tolerances with single commas"
                    .to_owned()
            } else {
                format!("`{word}` is not an attestation tolerance")
            };
            let mut d = diag(
                Code::InvalidTolerate,
                tolerate.span,
                "policy.tolerate",
                message,
            );
            d = match did_you_mean(word, TOLERATE_WORDS.iter().copied()) {
                Some(best) if !word.is_empty() => d.with_hint(format!("did you mean `{best}`?")),
                _ => d.with_hint(format!("known tolerances: {}", TOLERATE_WORDS.join(", "))),
            };
            out.push(d);
        }
    }
    if let Some(adv) = &policy.ignore_advisories
        && !has_references(adv.as_str())
        && adv.as_str().trim() != "*"
    {
        for item in split_list(adv.as_str()) {
            let ok = item
                .strip_prefix("INTEL-SA-")
                .is_some_and(|n| n.len() == 5 && n.bytes().all(|c| c.is_ascii_digit()));
            if !ok {
                out.push(
                    diag(Code::InvalidAdvisories, adv.span, "policy.ignore_advisories", format!("`{item}` is not a security advisory id"))
                        .with_hint("write `*` or a comma-separated list such as `INTEL-SA-00334, INTEL-SA-00615`"),
                );
            }
        }
    }
    if let Some(maa) = &policy.maa
        && !words.contains(&"maa-managed-tcb")
    {
        out.push(
            diag(
                Code::MaaWithoutTolerance,
                maa.span,
                "policy.maa",
                "MAA attestation needs the `maa-managed-tcb` tolerance",
            )
            .with_hint("add `maa-managed-tcb` to `policy.tolerate`"),
        );
    }
}

/// An image reference. `$VAR` and `{{name}}` references in it stand for a valid name part, so
/// the text around them is checked wherever the value comes from.
fn check_image(image: &Text, path: impl std::fmt::Display, out: &mut Vec<Diagnostic>) {
    let Ok(tokens) = refs::scan(image.as_str()) else {
        return; // a malformed reference is reported as such
    };
    let shape: String = tokens
        .iter()
        .map(|t| match t {
            Token::Literal(text) => *text,
            _ => "x0",
        })
        .collect();
    if let Some(why) = crate::mesh::image_reference_error(&shape) {
        out.push(
            diag(
                Code::InvalidImage,
                image.span,
                path.to_string(),
                format!("{:?} is not an image reference: {why}", image.as_str()),
            )
            .with_hint("write `[registry/]repository[:tag][@sha256:digest]`, e.g. `registry.example.com/team/app:1.0`"),
        );
    }
}

/// What an exported volume may let its importers do (the session language's `update_policy`).
pub const VOLUME_UPDATE_POLICIES: &[&str] =
    &["ephemeral", "rollback_protected", "no_rollback_protection"];

/// Each volume names itself and where the image mounts it; an import names its session and
/// volume, an export its session; a volume is either imported or defined (and perhaps
/// exported): one cannot export a volume one has imported.
/// An injection file's `permission` is an octal mode as the session language writes it.
fn check_permissions(svc: &ServiceManifest, out: &mut Vec<Diagnostic>) {
    for (i, file) in svc.injection_files.iter().flatten().enumerate() {
        let Some(permission) = &file.permission else {
            continue;
        };
        let digits = permission.as_str().strip_prefix("0o").unwrap_or_default();
        let octal =
            (1..=4).contains(&digits.len()) && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
        if !octal {
            out.push(
                diag(
                    Code::InvalidSecretField,
                    permission.span,
                    format!("injection_files[{i}].permission"),
                    format!("`{permission}` is no file mode"),
                )
                .with_hint("write it in octal as the session language does, e.g. `0o600`"),
            );
        }
    }
}

fn check_volumes(svc: &ServiceManifest, out: &mut Vec<Diagnostic>) {
    for (i, v) in svc.build.volumes.iter().flatten().enumerate() {
        let at = |field: &str| format!("build.volumes[{i}]{field}");
        let span = [&v.name, &v.path]
            .into_iter()
            .flatten()
            .map(|t| t.span)
            .next()
            .unwrap_or_default();
        for (field, value) in [("name", &v.name), ("path", &v.path)] {
            if value.is_none() {
                out.push(
                    diag(Code::InvalidVolume, span, at(""), format!("volume {i} has no `{field}`"))
                        .with_hint("a volume needs `name` (how the session knows it) and `path` (where the image mounts it)"),
                );
            }
        }
        if let Some(import) = &v.import {
            for (field, value) in [("session", &import.session), ("volume", &import.volume)] {
                if value.is_none() {
                    out.push(diag(
                        Code::InvalidVolume,
                        span,
                        at(".import"),
                        format!("the import of volume {i} names no `{field}`"),
                    ));
                }
            }
            if let Some(first) = v.export.iter().flatten().next() {
                let span = first.session.as_ref().map_or(span, |s| s.span);
                out.push(
                    diag(Code::InvalidVolume, span, at(".export"), "a volume that is imported cannot be exported again")
                        .with_hint("export it from the session that defines it, or define the volume here instead of importing it"),
                );
            }
        }
        for (j, e) in v.export.iter().flatten().enumerate() {
            if e.session.is_none() {
                out.push(diag(
                    Code::InvalidVolume,
                    span,
                    at(&format!(".export[{j}]")),
                    "an export names no `session`",
                ));
            }
            if let Some(policy) = &e.update_policy
                && !has_references(policy.as_str())
                && !VOLUME_UPDATE_POLICIES.contains(&policy.as_str())
            {
                out.push(
                    diag(
                        Code::InvalidVolume,
                        policy.span,
                        at(&format!(".export[{j}].update_policy")),
                        format!("`{policy}` is not an update policy"),
                    )
                    .with_hint(format!("use one of: {}", VOLUME_UPDATE_POLICIES.join(", "))),
                );
            }
        }
    }
}

pub fn check_service(svc: &ServiceManifest, out: &mut Vec<Diagnostic>) {
    check_api_version(&svc.api_version, out);
    check_volumes(svc, out);
    check_permissions(svc, out);

    let env = &svc.environment;
    let mut env_names: Vec<(&Text, Loc)> = Vec::new();
    for (i, kv) in env.local.iter().flatten().enumerate() {
        let path = Loc::Item("environment.local", i, ".name");
        check_env_name(&kv.name, path, out);
        env_names.push((&kv.name, path));
    }
    for (i, g) in env.global.iter().flatten().enumerate() {
        let path = Loc::Item("environment.global", i, ".name");
        check_env_name(&g.name, path, out);
        env_names.push((&g.name, path));
    }
    duplicates(env_names, Code::DuplicateEnv, "environment name", out);
    check_image(&svc.build.to, "build.to", out);
    if let Some(from) = &svc.build.from {
        check_image(from, "build.from", out);
    }

    // Secrets: unique names, well-formed fields, references between them.
    let defined: HashMap<&str, SecretKind> = svc
        .secrets_defined()
        .map(|s| (s.name.as_str(), s.kind.value))
        .collect();
    let imported: Vec<&str> = svc.secrets_imported().map(Text::as_str).collect();
    let all_names = svc
        .secrets_defined()
        .enumerate()
        .map(|(i, s)| (&s.name, Loc::Item("secrets.global", i, ".name")))
        .chain(
            svc.secrets_imported()
                .enumerate()
                .map(|(i, n)| (n, Loc::Item("secrets.import", i, ""))),
        );
    duplicates(all_names, Code::DuplicateSecret, "secret", out);
    for (i, name) in svc.secrets_imported().enumerate() {
        if !has_references(name.as_str()) && !is_cas_name(name.as_str()) {
            out.push(diag(
                Code::InvalidName,
                name.span,
                format!("secrets.import[{i}]"),
                format!("`{name}` is not a valid secret name"),
            ));
        }
    }
    for (i, secret) in svc.secrets_defined().enumerate() {
        check_secret(secret, i, &defined, &imported, out);
    }

    // $$SCONE::name$$ references in what the program receives.
    let mut sources: Vec<(&Text, String)> = (svc.build.command.texts().into_iter())
        .map(|t| (t, "build.command".to_owned()))
        .collect();
    sources.extend(
        env.local
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, kv)| (&kv.value, format!("environment.local[{i}].value"))),
    );
    sources.extend(
        env.global
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, g)| {
                g.value
                    .as_ref()
                    .map(|v| (v, format!("environment.global[{i}].value")))
            }),
    );
    sources.extend(
        svc.injection_files
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, f)| {
                f.content
                    .as_ref()
                    .map(|c| (c, format!("injection_files[{i}].content")))
            }),
    );
    for (text, path) in sources {
        check_secret_refs(text, &path, &defined, &imported, out);
    }
}

fn check_secret(
    secret: &crate::service::Secret,
    i: usize,
    defined: &HashMap<&str, SecretKind>,
    imported: &[&str],
    out: &mut Vec<Diagnostic>,
) {
    let path = |field: &str| format!("secrets.global[{i}].{field}");
    let name = &secret.name;
    if !has_references(name.as_str()) && !is_cas_name(name.as_str()) {
        out.push(
            diag(
                Code::InvalidName,
                name.span,
                path("name"),
                format!("`{name}` is not a valid secret name"),
            )
            .with_hint("use up to 128 letters, digits, `_`, `-`, `.` or `~`"),
        );
    }
    let kind = secret.kind.value;
    let invalid = |field: &str, text: &Text, message: String, hint: &str| {
        diag(Code::InvalidSecretField, text.span, path(field), message).with_hint(hint.to_owned())
    };
    if let Some(size) = &secret.size
        && !has_references(size.as_str())
        && let Err(e) = limits::secret_size(size.as_str())
    {
        let message = match e {
            limits::SizeError::TooLarge => format!(
                "size `{size}` is larger than the {} bytes a CAS generates",
                limits::MAX_SECRET_SIZE
            ),
            _ => format!("size `{size}` is not a positive number of bytes"),
        };
        out.push(invalid(
            "size",
            size,
            message,
            "write a number from 1 to 65536, e.g. `size: 32`",
        ));
    }
    if let Some(valid_for) = &secret.valid_for
        && !has_references(valid_for.as_str())
        && let Err(e) = limits::valid_for(valid_for.as_str())
    {
        let message = match e {
            limits::DurationError::TooLong => {
                format!("valid_for `{valid_for}` is longer than 100 years")
            }
            limits::DurationError::NotADuration => {
                format!("valid_for `{valid_for}` is not a duration")
            }
        };
        out.push(invalid(
            "valid_for",
            valid_for,
            message,
            "write a count and a unit (second, minute, hour, day, week, year), e.g. `valid_for: 90 days`",
        ));
    }
    if let Some(kt) = &secret.key_type
        && !has_references(kt.as_str())
        && !KEY_TYPES.contains(&kt.as_str())
    {
        out.push(invalid(
            "key_type",
            kt,
            format!("`{kt}` is not a key type"),
            &format!("use one of: {}", KEY_TYPES.join(", ")),
        ));
    }
    if let Some(ep) = &secret.endpoint
        && !matches!(ep.as_str(), "server" | "client")
    {
        out.push(invalid(
            "endpoint",
            ep,
            format!("endpoint `{ep}` must be `server` or `client`"),
            "omit it for a certificate without extended key usage",
        ));
    }
    for (field, value) in [
        ("export_public", &secret.export_public),
        ("migrate", &secret.migrate),
    ] {
        if let Some(v) = value
            && !matches!(v.as_str(), "true" | "false")
        {
            out.push(invalid(
                field,
                v,
                format!("`{field}` must be true or false, found `{v}`"),
                "write `true` or `false`",
            ));
        }
    }
    if kind == SecretKind::Binary
        && let Some(v) = &secret.value
        && !has_references(v.as_str())
    {
        let hex = v.as_str().trim();
        if hex.len() % 2 != 0 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            out.push(invalid(
                "value",
                v,
                "a binary secret's value must be an even number of hexadecimal digits".into(),
                "encode the bytes as hex, e.g. `feedfeed00`",
            ));
        }
    }
    if secret
        .endpoint
        .as_ref()
        .is_some_and(|e| e.as_str() == "client")
        && secret.dns.is_some()
    {
        out.push(diag(Code::InvalidSecretField, name.span, path("dns"), format!("certificate `{name}` has `dns` names but a client endpoint; dns applies to server certificates")));
    }
    for entry in secret.san.iter().flatten() {
        let text = entry.as_str();
        let named = text
            .split_once(':')
            .filter(|(kind, name)| matches!(*kind, "dns" | "ip") && !name.is_empty());
        if !has_references(text) && named.is_none() {
            out.push(
                diag(
                    Code::InvalidSecretField,
                    entry.span,
                    path("san"),
                    format!("`{text}` is no subject alternative name"),
                )
                .with_hint("write `dns:NAME` or `ip:ADDRESS`"),
            );
        }
    }
    if kind.is_certificate() {
        match &secret.private_key {
            Some(pk) if !has_references(pk.as_str()) => match defined.get(pk.as_str()) {
                Some(SecretKind::PrivateKey) => {}
                Some(other) => out.push(diag(
                    Code::PrivateKeyRef,
                    pk.span,
                    path("private_key"),
                    format!(
                        "private_key `{pk}` is a {} secret, not a private-key",
                        other.as_str()
                    ),
                )),
                None if imported.contains(&pk.as_str()) => {}
                None => out.push(ref_error(
                    Code::PrivateKeyRef,
                    pk,
                    path("private_key"),
                    "private_key",
                    defined,
                    imported,
                )),
            },
            Some(_) => {}
            None if secret.value.is_none() => out.push(
                diag(
                    Code::PrivateKeyRef,
                    name.span,
                    path("private_key"),
                    format!("certificate `{name}` needs a `private_key` (or an explicit value)"),
                )
                .with_hint("define a secret of kind private-key and name it here"),
            ),
            None => {}
        }
        if let Some(issuer) = &secret.issuer
            && !has_references(issuer.as_str())
        {
            match defined.get(issuer.as_str()) {
                Some(SecretKind::X509Ca) => {}
                Some(other) => out.push(diag(
                    Code::IssuerRef,
                    issuer.span,
                    path("issuer"),
                    format!("issuer `{issuer}` is a {} secret; a certificate can only be issued by an x509-ca", other.as_str()),
                )),
                None if imported.contains(&issuer.as_str()) => {}
                None => out.push(ref_error(Code::IssuerRef, issuer, path("issuer"), "issuer", defined, imported)),
            }
        }
    }
}

/// The secrets a service can name: what it defines and what it imports.
struct KnownSecrets<'a> {
    defined: &'a HashMap<&'a str, SecretKind>,
    imported: &'a [&'a str],
}

impl KnownSecrets<'_> {
    fn contains(&self, name: &str) -> bool {
        self.defined.contains_key(name) || self.imported.contains(&name)
    }

    /// Adds "did you mean" for a near miss, else how to define or import `name`.
    fn hint(&self, d: Diagnostic, name: &str) -> Diagnostic {
        let mut candidates: Vec<&str> = self
            .defined
            .keys()
            .copied()
            .chain(self.imported.iter().copied())
            .collect();
        candidates.sort_unstable();
        match did_you_mean(name, candidates.iter().copied()) {
            Some(best) => d.with_hint(format!("did you mean `{best}`?")),
            None => d.with_hint(format!(
                "define `{name}` under `secrets.global`, or add it to `secrets.import` if another service of the mesh defines it"
            )),
        }
    }
}

fn ref_error(
    code: Code,
    name: &Text,
    path: String,
    what: &str,
    defined: &HashMap<&str, SecretKind>,
    imported: &[&str],
) -> Diagnostic {
    let d = diag(
        code,
        name.span,
        path,
        format!("{what} `{name}` names no secret this service defines or imports"),
    );
    KnownSecrets { defined, imported }.hint(d, name.as_str())
}

fn check_secret_refs(
    text: &Text,
    path: &str,
    defined: &HashMap<&str, SecretKind>,
    imported: &[&str],
    out: &mut Vec<Diagnostic>,
) {
    let Ok(tokens) = refs::scan(text.as_str()) else {
        return; // reported by the syntax pass
    };
    for token in tokens {
        let Token::Scone(r) = token else { continue };
        if r.name.contains("{{") {
            continue; // the name is known only after mesh-time substitution
        }
        // A name may itself contain a dot; a legacy suffix applies only if the full name is unknown.
        let full = &text.as_str()[r.range.start + "$$SCONE::".len()..];
        let full_name = full.split(['$', ':', '|']).next().unwrap_or_default();
        let known = KnownSecrets { defined, imported };
        let (name, legacy) = if known.contains(full_name) {
            (full_name, None)
        } else {
            (r.name, r.legacy_suffix)
        };
        let kind = defined.get(name).copied();
        if !known.contains(name) {
            let d = diag(
                Code::UnknownSecretRef,
                text.span,
                path,
                format!(
                    "`$$SCONE::{name}$$` refers to a secret that this service neither defines nor imports"
                ),
            );
            out.push(known.hint(d, name));
            continue;
        }
        if let Some(suffix) = legacy {
            let modern = refs::modern_format(suffix);
            let mut d = diag(
                Code::DeprecatedSecretSuffix,
                text.span,
                path,
                format!("`$$SCONE::{name}.{suffix}$$` uses the deprecated dot syntax"),
            )
            .with_hint(format!("write `$$SCONE::{name}:{modern}$$`"));
            if suffix == "chain" {
                d = d.with_hint(format!(
                    "write `$$SCONE::{name}:chain$$`; note that `:chain` excludes the certificate itself, while `.chain` included it"
                ));
            }
            out.push(d);
        }
        if let (Some(kind), Some(format)) = (kind, r.format)
            && !kind.formats().contains(&format)
        {
            let offered = kind.formats();
            let d = diag(
                Code::SecretRefSyntax,
                text.span,
                path,
                format!(
                    "format `:{format}` does not apply to `{name}`, a {} secret",
                    kind.as_str()
                ),
            );
            out.push(if offered.is_empty() {
                d.with_hint(format!(
                    "{} secrets take no format: write `$$SCONE::{name}$$`",
                    kind.as_str()
                ))
            } else {
                d.with_hint(format!(
                    "formats of {} secrets: {}",
                    kind.as_str(),
                    offered.join(", ")
                ))
            });
        }
    }
}

/// What to do instead of `SignOnline`.
pub const SIGN_LOCALLY: &str = "sign locally with `mode: SignedManifest` (or `EncryptedManifest`): the first run makes your signing key, `meshfile sign` adds more signers";

/// What a signing mode needs of its CAS entry: an address the operator's resources can name
/// (not the embedded store), and for the encrypting modes the CAS's encryption key.
fn signing_mode_needs(cas: &crate::mesh::Cas, i: usize, out: &mut Vec<Diagnostic>) {
    use crate::mesh::CasMode;
    let Some(mode) = &cas.mode else {
        return;
    };
    if mode.value == CasMode::SignOnline {
        // Valid as the specification writes it (its own example uses it); a run that compiles
        // refuses it (E108).
        out.push(
            diag(
                Code::CannotAct,
                mode.span,
                format!("cas[{i}].mode"),
                "CAS mode `SignOnline` signs through SCONE's online signing service, whose protocol is not public: template, plan and apply refuse it",
            )
            .with_hint(SIGN_LOCALLY),
        );
        return;
    }
    let (signing, encrypting) = match mode.value {
        CasMode::SignedManifest => (true, false),
        CasMode::EncryptedManifest | CasMode::EncryptedOnly => (true, true),
        _ => (false, false),
    };
    if signing && cas.cas_url.as_str() == "embedded" {
        out.push(
            diag(
                Code::UnsupportedMode,
                cas.cas_url.span,
                format!("cas[{i}].cas_url"),
                format!("mode {:?} writes SignedPolicy/EncryptedPolicy resources that name the CAS's address, and the embedded store has none", mode.value),
            )
            .with_hint("point `cas_url` at a CAS the cluster reaches (`meshfile cas serve`, or SCONE CAS), or use `mode: Upload`"),
        );
    }
    if encrypting && cas.cas_encryption_key.is_none() {
        out.push(
            diag(
                Code::MissingField,
                mode.span,
                format!("cas[{i}].cas_encryption_key"),
                format!("mode {:?} encrypts sessions to the CAS's session encryption key: `cas_encryption_key` is missing", mode.value),
            )
            .with_hint("add `cas_encryption_key:` with the key `meshfile cas serve` prints (or `scone cas show-identification --session-encryption-key`)"),
        );
    }
}
