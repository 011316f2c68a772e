//! Rules of secrets: each kind's fields, and every `$$SCONE::name$$` naming one that exists.

use super::*;

pub(super) fn check_secret(
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
pub(super) struct KnownSecrets<'a> {
    defined: &'a HashMap<&'a str, SecretKind>,
    imported: &'a [&'a str],
}

impl KnownSecrets<'_> {
    pub(super) fn contains(&self, name: &str) -> bool {
        self.defined.contains_key(name) || self.imported.contains(&name)
    }

    /// Adds "did you mean" for a near miss, else how to define or import `name`.
    pub(super) fn hint(&self, d: Diagnostic, name: &str) -> Diagnostic {
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

pub(super) fn ref_error(
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

pub(super) fn check_secret_refs(
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
