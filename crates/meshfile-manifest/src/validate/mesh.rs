//! Rules of a Meshfile: its CAS entries and their roles, tolerances and modes, its policy.

use super::*;

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
pub(super) fn check_tolerances(mesh: &MeshManifest, out: &mut Vec<Diagnostic>) {
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
                Some(best) => d.with_suggestion(best),
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

pub(super) fn check_cas(mesh: &MeshManifest, root: &Node, out: &mut Vec<Diagnostic>) {
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

pub(super) fn check_policy(mesh: &MeshManifest, out: &mut Vec<Diagnostic>) {
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

/// What to do instead of `SignOnline`.
pub const SIGN_LOCALLY: &str = "sign locally with `mode: SignedManifest` (or `EncryptedManifest`): the first run makes your signing key, `meshfile sign` adds more signers";

/// What a signing mode needs of its CAS entry: an address the operator's resources can name
/// (not the embedded store), and for the encrypting modes the CAS's encryption key.
pub(super) fn signing_mode_needs(cas: &crate::mesh::Cas, i: usize, out: &mut Vec<Diagnostic>) {
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
