//! The mesh's sessions as SCONE operator resources (`SignedPolicy`, `EncryptedPolicy`,
//! `cas.scone.cloud/v1beta1`): the operator registers each in CAS when Helm installs the
//! chart. They are Helm hooks (`pre-install,pre-upgrade`) so that CAS holds a service's policy
//! before its pods start, ordered by weight: the namespace first, exporters before importers.
//! A policy resource cannot be changed in place (its signatures would break): each upgrade
//! deletes the previous hook resource and creates the new one.
//!
//! The resources are files of the chart (`policies/`), put into the manifest by one template
//! with `.Files.Get`, so that nothing in a session is ever read as a Helm template.

use std::collections::BTreeMap;

use meshfile_yaml::{Node, Style};

pub const API_VERSION: &str = "cas.scone.cloud/v1beta1";

/// One session as a policy resource.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyResource {
    /// The CAS session name (`namespace/service`).
    pub session: String,
    /// The order among the hooks: 0 for the namespace, then one more than any exporter.
    pub weight: usize,
    pub body: PolicyBody,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PolicyBody {
    /// `spec.policy` is the signed session's text; `signatures` its `(signer, signature)`s.
    Signed {
        policy: String,
        signatures: Vec<(String, String)>,
    },
    /// `spec.policy` is the base64 encrypted session; `encryption_key` the CAS's key.
    Encrypted {
        policy: String,
        encryption_key: String,
    },
}

/// The template that puts every file under `policies/` into the manifest, as it is.
const TEMPLATE: &str =
    "{{- /* SCONE policy resources: one file each under policies/, never templated. */ -}}
{{- range $path, $_ := .Files.Glob \"policies/*.yaml\" }}
---
{{ $.Files.Get $path }}
{{- end }}
";

/// The chart files: `templates/scone-policies.yaml` and a `policies/<NNNN>-<name>.yaml` per
/// resource, in hook order. `cas_address` is the CAS client API (`https://host:8081`).
pub fn policy_files(cas_address: &str, resources: &[PolicyResource]) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    if resources.is_empty() {
        return files;
    }
    files.insert(
        "templates/scone-policies.yaml".to_owned(),
        TEMPLATE.as_bytes().to_vec(),
    );
    for (i, resource) in resources.iter().enumerate() {
        let name = resource_name(&resource.session);
        files.insert(
            format!("policies/{i:04}-{name}.yaml"),
            resource_yaml(cas_address, resource).into_bytes(),
        );
    }
    files
}

/// One resource as its file holds it.
pub fn resource_yaml(cas_address: &str, resource: &PolicyResource) -> String {
    let name = resource_name(&resource.session);
    meshfile_yaml::emit(&resource_node(cas_address, &name, resource))
}

fn text(value: &str) -> Node {
    Node::scalar(value.to_owned(), Style::DoubleQuoted)
}

fn resource_node(cas_address: &str, name: &str, resource: &PolicyResource) -> Node {
    let (kind, spec) = match &resource.body {
        PolicyBody::Signed { policy, signatures } => (
            "SignedPolicy",
            vec![
                ("casAddress".to_owned(), text(cas_address)),
                ("policy".to_owned(), text(policy)),
                (
                    "signatures".to_owned(),
                    Node::sequence(
                        signatures
                            .iter()
                            .map(|(signer, signature)| {
                                Node::mapping(vec![
                                    ("signer".to_owned(), text(signer)),
                                    ("signature".to_owned(), text(signature)),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ],
        ),
        PolicyBody::Encrypted {
            policy,
            encryption_key,
        } => (
            "EncryptedPolicy",
            vec![
                ("casAddress".to_owned(), text(cas_address)),
                ("encryptionKey".to_owned(), text(encryption_key)),
                ("policy".to_owned(), text(policy)),
            ],
        ),
    };
    let annotations = vec![
        ("helm.sh/hook".to_owned(), text("pre-install,pre-upgrade")),
        (
            "helm.sh/hook-weight".to_owned(),
            text(&resource.weight.to_string()),
        ),
        (
            "helm.sh/hook-delete-policy".to_owned(),
            text("before-hook-creation"),
        ),
    ];
    Node::mapping(vec![
        ("apiVersion".to_owned(), text(API_VERSION)),
        ("kind".to_owned(), text(kind)),
        (
            "metadata".to_owned(),
            Node::mapping(vec![
                ("name".to_owned(), text(name)),
                ("annotations".to_owned(), Node::mapping(annotations)),
            ]),
        ),
        ("spec".to_owned(), Node::mapping(spec)),
    ])
}

/// A session's name as sconectl puts it into file and resource names: `_ : / .` become `-`,
/// lower case, surrounding quotes trimmed.
pub fn mangle(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '_' | ':' | '/' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect::<String>()
        .trim_matches('"')
        .to_owned()
}

/// A Kubernetes name (RFC 1123 label) for a session: sconectl's [`mangle`]d name, as its
/// resources are named. A session whose mangled name Kubernetes refuses (a `~`, a leading or
/// trailing `-`) gets the name with every other character as `-` and a short hash of the
/// exact session name.
pub fn resource_name(session: &str) -> String {
    let mangled = mangle(session);
    let valid = !mangled.is_empty()
        && mangled.len() <= 63
        && mangled
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !mangled.starts_with('-')
        && !mangled.ends_with('-');
    if valid {
        return mangled;
    }
    let mut name: String = session
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '-') => c,
            _ => '-',
        })
        .collect();
    name = name.trim_matches(['-', '.']).to_owned();
    name.truncate(200);
    let name = name.trim_end_matches(['-', '.']);
    format!(
        "{}{}{:08x}",
        name,
        if name.is_empty() { "" } else { "-" },
        fnv1a(session)
    )
}

/// FNV-1a, 32 bits: enough to tell names apart that differ only in what a Kubernetes name
/// cannot hold; not a security measure.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sconectls_where_kubernetes_takes_them() {
        assert_eq!(resource_name("My_NS/flask.v1"), "my-ns-flask-v1");
        assert_eq!(mangle("\"ns:a/b_c\""), "ns-a-b-c");
        let odd = resource_name("ns/a~b");
        assert!(odd.starts_with("ns-a-b-"), "{odd}");
        for name in [odd, resource_name("~~~"), resource_name(&"x".repeat(600))] {
            assert!(name.len() <= 253);
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            );
            assert!(name.starts_with(|c: char| c.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn writes_hooks_in_order_with_the_policy_untouched() {
        let resources = [
            PolicyResource {
                session: "ns".into(),
                weight: 0,
                body: PolicyBody::Signed {
                    policy: "name: ns\nenvironment: {A: \"{{ .Values.x }}\"}\n".into(),
                    signatures: vec![("PEM".into(), "ab".into())],
                },
            },
            PolicyResource {
                session: "ns/a".into(),
                weight: 1,
                body: PolicyBody::Encrypted {
                    policy: "AAAA".into(),
                    encryption_key: "00".repeat(32),
                },
            },
        ];
        let files = policy_files("https://cas.example:8081", &resources);
        let names: Vec<&String> = files.keys().collect();
        assert_eq!(names.len(), 3);
        assert_eq!(names[0], "policies/0000-ns.yaml");
        assert_eq!(names[1], "policies/0001-ns-a.yaml");
        let first = String::from_utf8(files[names[0]].clone()).expect("utf-8");
        assert!(first.contains("kind: SignedPolicy"), "{first}");
        assert!(first.contains("helm.sh/hook-weight: \"0\""), "{first}");
        // Helm never evaluates the session: it is a file, not a template.
        assert!(first.contains("{{ .Values.x }}"));
        assert!(files.contains_key("templates/scone-policies.yaml"));
        assert!(policy_files("x", &[]).is_empty());
    }
}
