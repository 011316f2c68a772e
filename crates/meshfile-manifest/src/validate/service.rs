//! Rules of a service manifest: its command, environment, injection files and volumes.

use super::*;

/// What an exported volume may let its importers do (the session language's `update_policy`).
pub const VOLUME_UPDATE_POLICIES: &[&str] =
    &["ephemeral", "rollback_protected", "no_rollback_protection"];

/// Each volume names itself and where the image mounts it; an import names its session and
/// volume, an export its session; a volume is either imported or defined (and perhaps
/// exported): one cannot export a volume one has imported.
/// An injection file's `permission` is an octal mode as the session language writes it.
pub(super) fn check_permissions(svc: &ServiceManifest, out: &mut Vec<Diagnostic>) {
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

pub(super) fn check_volumes(svc: &ServiceManifest, out: &mut Vec<Diagnostic>) {
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
