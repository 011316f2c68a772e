//! Fields of the specification that meshfile reads but does not act on: each present one gets
//! a warning at its key saying what happens instead, so that nothing a manifest says is
//! dropped silently. The walk is over the parsed document, so a warning points at the key.

use meshfile_yaml::{Entry, Node, Value};

use crate::ManifestKind;
use crate::diagnostic::{Code, Diagnostic};

/// Fields of a service manifest's `build` that say how to build the image `to`, which
/// SCONE's tools (`sconectl`, `scone-td-build`) do and meshfile does not.
pub const IMAGE_BUILDING: &[&str] = &[
    "kind",
    "from",
    "copy",
    "run",
    "requirements",
    "binaries",
    "dirs",
    "fs_dirs",
    "fs_files",
    "host_paths",
    "host_path",
    "plain_files",
    "plains",
    "stable",
    "signature",
];

/// The roles of a CAS that meshfile sends nothing to: sessions go to the `cas` role's CAS,
/// pods attest with the `security` role's.
const UNUSED_ROLES: &[&str] = &["image", "access", "attestation"];

fn entries(node: &Node) -> &[Entry] {
    match &node.value {
        Value::Mapping(entries) => entries,
        _ => &[],
    }
}

/// Warnings for the fields of `node` (a manifest of `kind`) that meshfile does not act on.
pub fn check(kind: ManifestKind, node: &Node, out: &mut Vec<Diagnostic>) {
    match kind {
        ManifestKind::Mesh => mesh(node, out),
        ManifestKind::Service => service(node, out),
    }
}

fn warn(out: &mut Vec<Diagnostic>, code: Code, entry: &Entry, path: String, message: String) {
    out.push(Diagnostic::new(code, entry.key.span, path, message));
}

fn mesh(node: &Node, out: &mut Vec<Diagnostic>) {
    let cas: &[Node] = match node.get("cas").map(|e| &e.value.value) {
        Some(Value::Sequence(items)) => items,
        _ => &[],
    };
    let roles_of = |entry: &Node| -> Vec<String> {
        let mut roles: Vec<String> = entry
            .scalar_at("name")
            .map(str::to_owned)
            .into_iter()
            .collect();
        if let Some(Value::Sequence(items)) = entry.get("alias").map(|e| &e.value.value) {
            roles.extend(items.iter().filter_map(Node::as_scalar).map(str::to_owned));
        }
        roles
    };
    let delivering = cas
        .iter()
        .position(|c| roles_of(c).iter().any(|r| r == "cas"));
    for (i, entry) in cas.iter().enumerate() {
        if let Some(e) = entry.get("tolerance") {
            warn(out, Code::CannotAct, e, format!("cas[{i}].tolerance"),
                "`tolerance` sets how `scone cas attest` attests this CAS; meshfile cannot attest a CAS (it verifies no SGX quote), so it is not used: the connection is pinned by `cas_key`, `--cas-ca` or `--cas-pin` instead".into());
        }
        let embedded = entry.scalar_at("cas_url") == Some("embedded");
        if let Some(e) = entry.get("cas_key").filter(|_| embedded) {
            warn(out, Code::CannotAct, e, format!("cas[{i}].cas_key"),
                "`cas_key` pins the CAS a connection reaches; the embedded store is in this process, so there is no connection to pin and it is not used".into());
        }
        let mode = entry.scalar_at("mode");
        // A mode given as `$VAR` is known only once the environment is.
        let may_encrypt = mode.is_some_and(crate::refs::names_env)
            || matches!(mode, Some("EncryptedManifest" | "EncryptedOnly"));
        if let Some(e) = entry.get("cas_encryption_key").filter(|_| !may_encrypt) {
            warn(out, Code::CannotAct, e, format!("cas[{i}].cas_encryption_key"),
                "`cas_encryption_key` encrypts sessions in the EncryptedManifest and EncryptedOnly modes; this CAS's mode does not encrypt, so it is checked and not used".into());
        }
        if Some(i) != delivering {
            for role in roles_of(entry)
                .iter()
                .filter(|r| UNUSED_ROLES.contains(&r.as_str()))
            {
                let key = entry.get("alias").or_else(|| entry.get("name"));
                if let Some(e) = key {
                    warn(
                        out,
                        Code::NotSupportedYet,
                        e,
                        format!("cas[{i}].alias"),
                        format!(
                            "role `{role}` of cas[{i}]: meshfile sends nothing to it; every session goes to the CAS with the `cas` role, and pods attest with the `security` one"
                        ),
                    );
                }
            }
        }
    }
    if let Some(policy) = node.get("policy") {
        for field in [
            "access_policy_name",
            "attestation_policy_name",
            "security_policy_name",
            "image_policy_namespace",
        ] {
            if let Some(e) = policy.value.get(field) {
                warn(
                    out,
                    Code::NotSupportedYet,
                    e,
                    format!("policy.{field}"),
                    format!(
                        "`{field}` names a policy that SCONE's tools combine with each session, in a way SCONE has not made public; meshfile does not use it"
                    ),
                );
            }
        }
    }
    helm_extra_values_keys(node, out);
    restart_policies(node, out);
    if let Some(e) = node.get("repo") {
        repo(e, out);
    }
}

/// `repo`: `destination`, `push`, `squash`, `strip` and `key_file` act (the images are
/// copied, rewritten and signed as asked; the chart pulls them from there). Confidential
/// signing (`config_id`) needs SCONE's cosign in an enclave: `apply` refuses it.
fn repo(e: &Entry, out: &mut Vec<Diagnostic>) {
    if let Some(f) = e.value.get("config_id") {
        warn(out, Code::CannotAct, f, "repo.config_id".into(),
            "`config_id` asks for confidential signing by SCONE's cosign in an enclave, which meshfile cannot run: apply refuses to copy rather than copy unsigned; sign with `key_file` instead".into());
    }
    if let Some(f) = e.value.get("signature") {
        warn(out, Code::CannotAct, f, "repo.signature".into(),
            "`signature` is in the specification's example, not in its schema; the cosign key is `key_file`".into());
    }
}

fn service(node: &Node, out: &mut Vec<Diagnostic>) {
    let Some(build) = node.get("build") else {
        return;
    };
    let building: Vec<&str> = entries(&build.value)
        .iter()
        .map(Entry::key_text)
        .filter(|k| IMAGE_BUILDING.contains(k))
        .collect();
    if !building.is_empty() {
        let to = build.value.scalar_at("to").unwrap_or("`to`");
        let listed: Vec<String> = building.iter().map(|k| format!("build.{k}")).collect();
        warn(
            out,
            Code::ImageBuilding,
            build,
            "build".into(),
            format!(
                "{} say{} how to build the image, which meshfile leaves to SCONE's tools: it uses `{to}` as they built it, measured by its MRENCLAVE",
                listed.join(", "),
                if listed.len() == 1 { "s" } else { "" }
            ),
        );
    }
    if let Some(e) = build.value.get("gen_policy") {
        warn(out, Code::NotSupportedYet, e, "build.gen_policy".into(),
            "`gen_policy` is the template of the policy SCONE's build generates with the image, which meshfile does not do: give the session template in the Meshfile's `image_policy` instead".into());
    }
}

/// `restartPolicy` in an env section is a value SCONE's service chart takes; meshfile deploys
/// each service as a Deployment, whose pods Kubernetes always restarts (it refuses any other
/// policy there), so a value other than `Always` is not used.
fn restart_policies(node: &Node, out: &mut Vec<Diagnostic>) {
    let sections: &[Node] = match node.get("env").map(|e| &e.value.value) {
        Some(Value::Sequence(items)) => items,
        _ => &[],
    };
    for (i, section) in sections.iter().enumerate() {
        let pairs: &[Node] = match section.get("env").map(|e| &e.value.value) {
            Some(Value::Sequence(items)) => items,
            _ => &[],
        };
        for (j, pair) in pairs.iter().enumerate() {
            let (Some(name), Some(value)) = (pair.get("name"), pair.scalar_at("value")) else {
                continue;
            };
            if name.value.as_scalar() == Some("restartPolicy") && value != "Always" {
                warn(
                    out,
                    Code::CannotAct,
                    name,
                    format!("env[{i}].env[{j}].name"),
                    format!(
                        "restartPolicy `{value}` is not used: meshfile deploys each service as a Deployment, whose pods Kubernetes always restarts (it accepts no other policy there)"
                    ),
                );
            }
        }
    }
}

/// A `helm_extra_values` key that names no sub-chart of the umbrella (nor `global`) reaches no
/// chart: Helm ignores it. A service with its own `helm_chart` is keyed by its chart's name,
/// known once the chart is read, so a mesh with one is not checked here.
fn helm_extra_values_keys(node: &Node, out: &mut Vec<Diagnostic>) {
    let services: &[Node] = match node.get("services").map(|e| &e.value.value) {
        Some(Value::Sequence(items)) => items,
        _ => &[],
    };
    if services.iter().any(|s| s.get("helm_chart").is_some()) {
        return;
    }
    let charts: Vec<String> = services
        .iter()
        .filter_map(|s| s.scalar_at("name"))
        .map(crate::mesh::dns_label)
        .collect();
    let Some(values) = node.get("helm_extra_values") else {
        return;
    };
    for entry in entries(&values.value) {
        let key = entry.key_text();
        if key != "global" && !charts.iter().any(|c| c == key) {
            warn(
                out,
                Code::UnusedHelmValues,
                entry,
                format!("helm_extra_values.{key}"),
                format!(
                    "`{key}` is no sub-chart of the mesh ({}), nor `global`: Helm gives these values to no chart",
                    charts.join(", ")
                ),
            );
        }
    }
}
