//! Least-privilege findings: what a session can read, export or tolerate beyond what its
//! service uses. Each names the file, line and column to change, and how.

use std::collections::{BTreeMap, BTreeSet};

use meshfile_manifest::{Code, Diagnostic, Text};
use meshfile_session::Value;
use meshfile_yaml::{Span, Value as YamlValue};

use crate::build::{Builder, Facts, ServiceFacts, secret_id, service_id};
use crate::{EdgeKind, Finding};

/// The codes [`find`] reports beyond those of a Meshfile's own lint.
pub const CODES: [Code; 6] = [
    Code::LintUnusedSecret,
    Code::LintUnusedImport,
    Code::LintWideExport,
    Code::LintPrivateKeyReach,
    Code::LintSharedValue,
    Code::LintTemplateDebug,
];

pub(crate) fn find(b: &Builder, facts: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    mesh_lint(facts, &mut out);
    let importers = importers(b);
    for (service, f) in &facts.services {
        unused_secrets(b, service, f, &importers, &mut out);
        unused_imports(service, f, &mut out);
        private_key_reach(b, service, f, &mut out);
        wide_exports(b, facts, service, f, &mut out);
        template_debug(facts, service, f, &mut out);
    }
    shared_values(facts, &importers, &mut out);
    out.sort_by(|a, b| {
        (&a.file, a.line, a.column, &a.code).cmp(&(&b.file, b.line, b.column, &b.code))
    });
    out
}

/// Per secret or volume node: the services that import it.
fn importers(b: &Builder) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut map: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in b.edges.iter().filter(|e| e.kind == EdgeKind::Imports) {
        map.entry(e.from.as_str())
            .or_default()
            .insert(e.to.as_str());
    }
    map
}

/// The Meshfile's own findings that reach every service (debug tolerance, every advisory
/// ignored, a weakened platform), marked on the namespace.
fn mesh_lint(facts: &Facts<'_>, out: &mut Vec<Finding>) {
    let inputs = facts.inputs;
    let lint = meshfile_manifest::lint_mesh(inputs.mesh);
    for d in lint.into_iter().filter(|d| {
        matches!(
            d.code,
            Code::LintDebugTolerance | Code::LintIgnoreAllAdvisories | Code::LintWeakTolerance
        )
    }) {
        out.push(Finding::new(inputs.mesh_file, d, vec!["namespace".into()]));
    }
}

/// The Meshfile's entry of service `name`.
fn mesh_service<'m>(facts: &Facts<'m>, name: &str) -> Option<&'m meshfile_manifest::mesh::Service> {
    (facts.inputs.mesh.services.iter()).find(|s| s.effective_name() == name)
}

fn warning(code: Code, span: Span, path: String, message: String, hint: &str) -> Diagnostic {
    Diagnostic::new(code, span, path, message).with_hint(hint)
}

/// W111: a secret of `secrets.global` that its service does not use and no service imports.
fn unused_secrets(
    b: &Builder,
    service: &str,
    f: &ServiceFacts<'_>,
    importers: &BTreeMap<&str, BTreeSet<&str>>,
    out: &mut Vec<Finding>,
) {
    let Some(descriptor) = f.descriptor else {
        return;
    };
    for (i, secret) in descriptor.manifest.secrets_defined().enumerate() {
        let name = secret.name.as_str();
        let id = secret_id(service, name);
        let exported = b
            .ids
            .get(&id)
            .is_some_and(|&n| !b.nodes[n].exported_to.is_empty());
        if !exported
            || f.usage.references.contains_key(name)
            || f.usage.named_by_secrets.contains(name)
            || importers.contains_key(id.as_str())
        {
            continue;
        }
        let d = warning(
            Code::LintUnusedSecret,
            secret.name.span,
            format!("secrets.global[{i}].name"),
            format!(
                "service `{service}` defines `{name}` and exports it to the namespace, but nothing uses it: no `$$SCONE::{name}$$` in the service, no secret names it, no service imports it"
            ),
            "remove the secret, or refer to it where it is meant to be used",
        );
        out.push(Finding::new(&descriptor.file, d, vec![id]));
    }
}

/// Whether an import's name is the one the session uses (not made from a mesh variable).
fn literal(text: &Text) -> bool {
    !text.as_str().contains("{{")
}

/// W112: an import the service never refers to.
fn unused_imports(service: &str, f: &ServiceFacts<'_>, out: &mut Vec<Finding>) {
    let Some(descriptor) = f.descriptor else {
        return;
    };
    for (i, import) in descriptor.manifest.secrets_imported().enumerate() {
        let name = import.as_str();
        if !literal(import)
            || f.usage.references.contains_key(name)
            || f.usage.named_by_secrets.contains(name)
        {
            continue;
        }
        let mut nodes = vec![service_id(service)];
        nodes.extend(f.usage.imported.get(name).cloned());
        let d = warning(
            Code::LintUnusedImport,
            import.span,
            format!("secrets.import[{i}]"),
            format!(
                "service `{service}` imports `{name}` and never uses it: its enclave can read a secret it has no use for"
            ),
            "remove it from `secrets.import`, or use it as `$$SCONE::name$$`",
        );
        out.push(Finding::new(&descriptor.file, d, nodes));
    }
}

/// Formats of an x509 secret that give the certificate only.
fn certificate_only(format: &str) -> bool {
    format.is_empty() || format.starts_with("crt") || format.starts_with("chain")
}

/// W114: a certificate imported for its certificate alone whose private key is exported too.
fn private_key_reach(b: &Builder, service: &str, f: &ServiceFacts<'_>, out: &mut Vec<Finding>) {
    let Some(descriptor) = f.descriptor else {
        return;
    };
    for (i, import) in descriptor.manifest.secrets_imported().enumerate() {
        let name = import.as_str();
        let Some(cert_id) = f.usage.imported.get(name) else {
            continue;
        };
        let Some(&cert) = b.ids.get(cert_id) else {
            continue;
        };
        if !matches!(
            b.nodes[cert].secret_kind.as_deref(),
            Some("x509" | "x509-ca")
        ) {
            continue;
        }
        let Some(formats) = f.usage.references.get(name) else {
            continue;
        };
        if !formats.iter().all(|f| certificate_only(f)) {
            continue;
        }
        let key = b
            .edges
            .iter()
            .find(|e| e.kind == EdgeKind::KeyOf && &e.to == cert_id);
        let Some(key) = key.and_then(|e| b.ids.get(&e.from)).map(|&k| &b.nodes[k]) else {
            continue;
        };
        if key.exported_to.is_empty() || f.usage.imported.values().any(|v| v == &key.id) {
            continue;
        }
        let owner = b.nodes[cert].service.clone().unwrap_or_default();
        let d = warning(
            Code::LintPrivateKeyReach,
            import.span,
            format!("secrets.import[{i}]"),
            format!(
                "service `{service}` uses only the certificate of `{name}`, but its private key `{}` is exported too (secrets.global of `{owner}`): an imported certificate brings its exported key along, so `{service}`'s enclave can read it",
                key.label
            ),
            "every secret of secrets.global is exported to the namespace: keep a CA whose importers only verify in a service of its own that issues nothing else, or accept the exposure knowingly",
        );
        out.push(Finding::new(
            &descriptor.file,
            d,
            vec![service_id(service), cert_id.clone(), key.id.clone()],
        ));
    }
}

/// W113: a volume exported to a session of the mesh that does not import it; a template's
/// secret exported to a whole namespace.
fn wide_exports(
    b: &Builder,
    facts: &Facts<'_>,
    service: &str,
    f: &ServiceFacts<'_>,
    out: &mut Vec<Finding>,
) {
    if let Some(descriptor) = f.descriptor {
        let namespace = facts.inputs.mesh.policy.namespace.as_str();
        for (i, volume) in descriptor
            .manifest
            .build
            .volumes
            .iter()
            .flatten()
            .enumerate()
        {
            let Some(name) = &volume.name else { continue };
            let id = format!("volume:{service}/{name}");
            for (j, export) in volume.export.iter().flatten().enumerate() {
                let Some(session) = &export.session else {
                    continue;
                };
                let target = (facts.services.keys())
                    .find(|s| format!("{namespace}/{s}") == session.as_str());
                let Some(target) = target else { continue };
                let imports = b.edges.iter().any(|e| {
                    e.kind == EdgeKind::Imports && e.from == id && e.to == service_id(target)
                });
                if imports {
                    continue;
                }
                let d = warning(
                    Code::LintWideExport,
                    session.span,
                    format!("build.volumes[{i}].export[{j}].session"),
                    format!(
                        "service `{service}` exports volume `{name}` to `{session}`, which does not import it: that session may read and change the volume anyway"
                    ),
                    "export the volume only to the sessions that import it",
                );
                out.push(Finding::new(
                    &descriptor.file,
                    d,
                    vec![id.clone(), service_id(target)],
                ));
            }
        }
    }
    // A template's secrets (`image_secrets`) carry their export as written.
    let Some(session) = f.document.and_then(|d| d.session()) else {
        return;
    };
    let Some(path) = mesh_service(facts, service).and_then(|s| s.image_secrets.as_ref()) else {
        return;
    };
    for secret in &session.secrets {
        let wide = secret.fields.iter().any(|(k, v)| {
            k == "export" && matches!(v, Value::Yaml(node) if exports_namespace(node))
        });
        if wide {
            let d = warning(
                Code::LintWideExport,
                path.span,
                String::new(),
                format!(
                    "service `{service}`: secret `{}` of `{path}` is exported to a whole namespace: every session there may import it",
                    secret.name
                ),
                "replace `namespace:` with one `session:` per importer",
            );
            out.push(Finding::new(
                facts.inputs.mesh_file,
                d,
                vec![secret_id(service, &secret.name)],
            ));
        }
    }
}

fn exports_namespace(node: &meshfile_yaml::Node) -> bool {
    match &node.value {
        YamlValue::Mapping(entries) => entries.iter().any(|e| e.key_text() == "namespace"),
        YamlValue::Sequence(items) => items.iter().any(exports_namespace),
        YamlValue::Scalar { .. } => false,
    }
}

/// W116: a session template that tolerates debug enclaves or ignores every advisory while the
/// mesh is compiled for production.
fn template_debug(facts: &Facts<'_>, service: &str, f: &ServiceFacts<'_>, out: &mut Vec<Finding>) {
    if facts.inputs.mode != meshfile_plan::Mode::Production {
        return;
    }
    let Some(doc) = f.document.filter(|d| d.session().is_none()) else {
        return;
    };
    let node = doc.node();
    let Some(security) = node.get("security").map(|e| &e.value) else {
        return;
    };
    let words = |key: &str| -> Vec<String> {
        match security.get(key).map(|e| &e.value.value) {
            Some(YamlValue::Sequence(items)) => items
                .iter()
                .filter_map(|i| i.as_scalar())
                .map(str::to_owned)
                .collect(),
            Some(YamlValue::Scalar { text, .. }) => {
                text.split(',').map(|w| w.trim().to_owned()).collect()
            }
            _ => Vec::new(),
        }
    };
    let debug = words("tolerate").iter().any(|w| w == "debug-mode");
    let all = words("ignore_advisories").iter().any(|w| w == "*");
    if !debug && !all {
        return;
    }
    let Some(path) = mesh_service(facts, service).and_then(|s| s.image_policy.as_ref()) else {
        return;
    };
    let what = match (debug, all) {
        (true, true) => "tolerates `debug-mode` and ignores every advisory",
        (true, false) => "tolerates `debug-mode`",
        _ => "ignores every advisory (`*`)",
    };
    let d = warning(
        Code::LintTemplateDebug,
        path.span,
        String::new(),
        format!("service `{service}`: its policy template `{path}` {what}, in a production mesh"),
        "remove `debug-mode` and `*` from the template's security section; use `--mode debug` for development runs",
    );
    out.push(Finding::new(
        facts.inputs.mesh_file,
        d,
        vec![service_id(service)],
    ));
}

/// W115: the same explicit value, of the same kind, defined by services that share nothing.
fn shared_values(
    facts: &Facts<'_>,
    importers: &BTreeMap<&str, BTreeSet<&str>>,
    out: &mut Vec<Finding>,
) {
    // (kind, value) to the services and secrets that define it, in mesh order.
    let mut seen: BTreeMap<(String, &str), Vec<(&str, &str)>> = BTreeMap::new();
    for service in facts
        .inputs
        .mesh
        .services
        .iter()
        .map(|s| s.effective_name())
    {
        let Some(f) = facts.services.get(service) else {
            continue;
        };
        let Some(session) = f.document.and_then(|d| d.session()) else {
            continue;
        };
        for secret in session.secrets.iter().filter(|s| s.import.is_none()) {
            let value = secret.fields.iter().find_map(|(k, v)| match v {
                Value::Text(text) if k == "value" && !text.is_empty() => Some(text.as_str()),
                _ => None,
            });
            if let Some(value) = value {
                let kind = secret.kind.clone().unwrap_or_default();
                seen.entry((kind, value))
                    .or_default()
                    .push((service, secret.name.as_str()));
            }
        }
    }
    let related = |a: &str, b_service: &str| {
        let shares = |from: &str, to: &str| {
            importers.iter().any(|(secret, who)| {
                secret.starts_with(&format!("secret:{from}/"))
                    && who.contains(service_id(to).as_str())
            })
        };
        shares(a, b_service) || shares(b_service, a)
    };
    for defined in seen.values() {
        for (k, &(service, name)) in defined.iter().enumerate().skip(1) {
            let Some(&(first, first_name)) = defined[..k]
                .iter()
                .find(|(s, _)| *s != service && !related(s, service))
            else {
                continue;
            };
            let Some(descriptor) = facts.services.get(service).and_then(|f| f.descriptor) else {
                continue;
            };
            let Some((i, secret)) = descriptor
                .manifest
                .secrets_defined()
                .enumerate()
                .find(|(_, s)| s.name.as_str() == name)
            else {
                continue;
            };
            let span = secret.value.as_ref().map_or(secret.name.span, |v| v.span);
            let d = warning(
                Code::LintSharedValue,
                span,
                format!("secrets.global[{i}].value"),
                format!(
                    "service `{service}`'s secret `{name}` has the same value as `{first_name}` of `{first}`, and the two services share no secret: one leak is both, and rotating one leaves the other behind"
                ),
                "define the secret once and import it where it is needed, or drop `value` and let CAS generate each",
            );
            let nodes = vec![secret_id(first, first_name), secret_id(service, name)];
            out.push(Finding::new(&descriptor.file, d, nodes));
        }
    }
}
