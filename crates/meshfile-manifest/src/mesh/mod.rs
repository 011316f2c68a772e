//! The Meshfile (`kind: mesh`, Mesh manifest 0.2.1).

use meshfile_yaml::Node;
use schemars::JsonSchema;
use serde::Serialize;

use crate::decode::{Cx, Path, Spanned, Text};
use crate::diagnostic::{Code, Diagnostic};
use crate::helm_values::HelmExtraValues;

mod image;

pub use image::{image_base_name, image_reference_error, is_digest, split_image};

/// A confidential service mesh: its services, their configuration and where policies go.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "SCONE Mesh manifest (Meshfile) 0.2.1")]
pub struct MeshManifest {
    /// `scone/MAJOR.MINOR[.PATCH]`, at least `scone/5.8`.
    #[serde(rename = "apiVersion")]
    pub api_version: Text,
    /// Always `mesh`.
    pub kind: Text,
    /// CAS instances and the roles (`cas`, `image`, `security`, `access`, `attestation`) they serve.
    pub cas: Vec<Cas>,
    /// Where the mesh's sessions are stored (the CAS namespace) and the attestation tolerances
    /// of its services.
    pub policy: Policy,
    /// Key/value configuration: `global` defaults, `helm` values, per-service overrides.
    pub env: Vec<ServiceEnv>,
    /// The services of the mesh, each with a unique name and its image; several services may
    /// share an image.
    pub services: Vec<Service>,
    /// Reserved by the specification; accepted and not acted on yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_policies: Option<Vec<ExtraPolicy>>,
    /// Extra Helm values: a mapping keyed by sub-chart, or a string of YAML.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm_extra_values: Option<HelmExtraValues>,
    /// Copies the mesh's images to another registry (squashed, stripped of `/scone`, signed
    /// with cosign) and deploys the copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<Repo>,
    /// A meshfile extension: cosign public key files (relative to the Meshfile) one of which
    /// must have signed each descriptor found published beside an image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub descriptor_keys: Option<Vec<Text>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub enum CasMode {
    Upload,
    SignedManifest,
    EncryptedManifest,
    NoUpload,
    EncryptedOnly,
    SignOnline,
}

impl CasMode {
    pub const CHOICES: &'static [(&'static str, CasMode)] = &[
        ("Upload", CasMode::Upload),
        ("SignedManifest", CasMode::SignedManifest),
        ("EncryptedManifest", CasMode::EncryptedManifest),
        ("NoUpload", CasMode::NoUpload),
        ("EncryptedOnly", CasMode::EncryptedOnly),
        ("SignOnline", CasMode::SignOnline),
    ];
}

/// A CAS instance.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cas {
    /// The role this instance serves: `cas` (where the sessions go), `image`, `security` (the
    /// CAS the pods attest with), `access` or `attestation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// Further roles this instance serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<Vec<Text>>,
    /// Host (and optional port) of the CAS client API.
    pub cas_url: Text,
    /// The CAS's public key (base58, from `scone cas show-identification`): the connection is
    /// accepted only from a CAS that holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cas_key: Option<Text>,
    /// The CAS public session-encryption key, 64 hex digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cas_encryption_key: Option<Text>,
    /// Flags used when attesting this CAS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Text>,
    /// How sessions reach this CAS: `Upload` (the default) sends them; `NoUpload` writes
    /// `target/` only; `SignedManifest`, `EncryptedManifest` and `EncryptedOnly` sign (and
    /// encrypt) them into the operator's policy resources; `SignOnline` is refused (its
    /// protocol is not public).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Spanned<CasMode>>,
}

impl Cas {
    /// The roles this entry serves: its name and its aliases.
    pub fn roles(&self) -> impl Iterator<Item = &Text> {
        self.name.iter().chain(self.alias.iter().flatten())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// CAS namespace that holds this mesh's sessions; unique on the CAS.
    pub namespace: Text,
    /// Comma-separated attestation tolerances for the services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerate: Option<Text>,
    /// `*` or a comma-separated list of `INTEL-SA-NNNNN` (used by the tutorials, not in the schema).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_advisories: Option<Text>,
    /// Azure MAA URL: attest with MAA instead of DCAP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maa: Option<Text>,
    /// Access policy to combine with each session: SCONE's tools combine it in a way not made
    /// public, so meshfile warns and does not use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_policy_name: Option<Text>,
    /// Attestation policy to combine with each session: not public, so meshfile warns and does
    /// not use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation_policy_name: Option<Text>,
    /// Security policy fragment to combine with each session: not public, so meshfile warns and
    /// does not use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_policy_name: Option<Text>,
    /// Namespace of the image policies (default: the mesh's namespace): not public, so meshfile
    /// warns and does not use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_policy_namespace: Option<Text>,
    /// meshfile extension (not in the specification; sconectl refuses it): the access policy
    /// of the namespace session and of every service session, in the session language:
    /// `read`, `update`, `create_sessions` lists of `CREATOR`, `ANY`, `NONE`, client key
    /// hashes, `signer:` public keys and `require-all` / `require-at-least-N` thresholds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_policy: Option<AccessPolicySpec>,
}

/// An access policy as a Meshfile states it (meshfile extension), checked and parsed.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct AccessPolicySpec {
    /// The lists as written.
    #[serde(flatten)]
    pub written: serde_json::Map<String, serde_json::Value>,
    /// The policy as the session language reads it.
    #[serde(skip)]
    #[schemars(skip)]
    pub parsed: meshfile_session::AccessPolicy,
    #[serde(skip)]
    #[schemars(skip)]
    pub span: meshfile_yaml::Span,
}

impl AccessPolicySpec {
    fn decode(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<AccessPolicySpec> {
        use meshfile_session::access::{Operation, parse_list};
        let mut f = cx.fields(node, path, "an access policy")?;
        let mut parsed = meshfile_session::AccessPolicy::default();
        let mut ok = true;
        for op in [
            Operation::Read,
            Operation::Update,
            Operation::CreateSessions,
        ] {
            let Some(list) = f.get(op.as_str()) else {
                continue;
            };
            // A signer given as `$VAR` is checked once the environment gives it (template,
            // apply); validation without it leaves the list alone.
            if holds_env(list) {
                continue;
            }
            match parse_list(list, op) {
                Ok(entries) => match op {
                    Operation::Read => parsed.read = entries,
                    Operation::Update => parsed.update = entries,
                    Operation::CreateSessions => parsed.create_sessions = Some(entries),
                },
                Err(problem) => {
                    ok = false;
                    cx.error(
                        Code::InvalidAccessPolicy,
                        locate(list, &problem.path),
                        &path.key(op.as_str()),
                        format!("`{path}.{}`: {}", problem.path, problem.message),
                    );
                }
            }
        }
        f.finish(cx, path);
        let written = match crate::helm_values::to_json(node) {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        ok.then_some(AccessPolicySpec {
            written,
            parsed,
            span: node.span,
        })
    }
}

/// Whether a scalar below `node` names an environment variable.
fn holds_env(node: &Node) -> bool {
    match &node.value {
        meshfile_yaml::Value::Scalar { text, .. } => crate::refs::names_env(text),
        meshfile_yaml::Value::Sequence(items) => items.iter().any(holds_env),
        meshfile_yaml::Value::Mapping(entries) => entries.iter().any(|e| holds_env(&e.value)),
    }
}

/// The span of the entry a problem's path (`update[0].require-all[1]`) names below `list`.
fn locate(list: &Node, problem_path: &str) -> meshfile_yaml::Span {
    let mut node = list;
    // Skip the operation's name; then follow `[i]` and `.key` steps as far as they lead.
    let steps = problem_path
        .split_once('[')
        .map_or("", |(_, rest)| rest)
        .split(['[', '.']);
    for step in steps {
        let step = step.trim_end_matches(']');
        let next = match (&node.value, step.parse::<usize>()) {
            (meshfile_yaml::Value::Sequence(items), Ok(i)) => items.get(i),
            (meshfile_yaml::Value::Mapping(_), _) => node.get(step).map(|e| &e.value),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    node.span
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyValue {
    /// The variable's name: letters, digits and `_`, starting with a letter; a service manifest
    /// takes it as `{{name}}` or a `global` environment entry.
    pub name: Text,
    /// The variable's value (a string; numbers and booleans keep their spelling).
    pub value: Text,
}

/// Values for `global`, `helm`, or one service.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceEnv {
    /// `global`, `helm`, or the name of a service of this mesh.
    pub service: Text,
    /// The variables given for that section: a service's own values override `helm`, which
    /// overrides `global`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<KeyValue>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Unique name; derived from the image name when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// The service's container image; its service manifest (recorded by `apply -f SERVICE.yaml`
    /// or published beside the image) gives the session, its MRENCLAVEs the attestation.
    pub image: Text,
    /// Override for the policy template taken from the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_policy: Option<Text>,
    /// Override for the secrets template taken from the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_secrets: Option<Text>,
    /// Override for the environment definitions taken from the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Text>,
    /// Override for the Helm chart taken from the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm_chart: Option<Text>,
}

impl Service {
    /// The service's name, or the image's repository name (`reg/x/redis:7` gives `redis`).
    pub fn effective_name(&self) -> &str {
        match &self.name {
            Some(name) => name.as_str(),
            None => image_base_name(self.image.as_str()),
        }
    }
}

/// Reserved by the specification ("do not use").
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtraPolicy {
    /// The file of an extra policy to upload (reserved by the specification, not acted on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// The mode (`production`, `debug`) the extra policy is for (reserved by the specification,
    /// not acted on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Text>,
}

/// What to do with the mesh's images (work in progress in the specification).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Repo {
    /// The registry repository the images are copied to, e.g. `registry.example.com/mesh`.
    pub destination: Text,
    /// Whether the copies are pushed (default `true`); `false` plans the copies without writing
    /// to the registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<Spanned<bool>>,
    /// Whether each copy's layers are merged into one (default `false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub squash: Option<Spanned<bool>>,
    /// Whether `/scone` is removed from each copy (default `true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strip: Option<Spanned<bool>>,
    /// A cosign private key file (relative to the Meshfile) that signs each copy; `meshfile key
    /// generate --cosign` makes one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<Text>,
    /// Confidential signing by SCONE's cosign in an enclave: meshfile cannot run it and refuses
    /// to copy; use `key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_id: Option<Text>,
    /// Shown in the specification's own example, though not in its schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Text>,
}

pub(crate) fn decode(cx: &mut Cx, node: &Node) -> Option<MeshManifest> {
    let root = Path::Root;
    let mut f = cx.fields(node, &root, "the mesh manifest")?;
    let api_version = f.required(cx, &root, "apiVersion", Cx::text);
    let kind = f.required(cx, &root, "kind", Cx::text);
    let cas = f.required(cx, &root, "cas", |cx, n, p| cx.list(n, p, decode_cas));
    let policy = f.required(cx, &root, "policy", decode_policy);
    let env = f.required(cx, &root, "env", |cx, n, p| {
        cx.list(n, p, decode_service_env)
    });
    let services = f.required(cx, &root, "services", |cx, n, p| {
        cx.list(n, p, decode_service)
    });
    let extra_policies = f.optional(cx, &root, "extra_policies", |cx, n, p| {
        let list = cx.list(n, p, decode_extra_policy)?;
        cx.report(
            Diagnostic::new(
                Code::NotSupportedYet,
                n.span,
                p.to_string(),
                "`extra_policies` is a future extension of the specification; it is not supported yet and is ignored",
            )
            .with_hint("remove it, or upload extra policies with `meshfile apply` on a mesh of their own"),
        );
        Some(list)
    });
    let helm_extra_values = f.optional(cx, &root, "helm_extra_values", HelmExtraValues::decode);
    let repo = f.optional(cx, &root, "repo", decode_repo);
    let descriptor_keys = f.optional(cx, &root, "descriptor_keys", |cx, n, p| {
        cx.list(n, p, Cx::text)
    });
    f.finish(cx, &root);
    Some(MeshManifest {
        api_version: api_version?,
        kind: kind?,
        cas: cas?,
        policy: policy?,
        env: env?,
        services: services?,
        extra_policies,
        helm_extra_values,
        repo,
        descriptor_keys,
    })
}

fn text_list(cx: &mut Cx, n: &Node, p: &Path<'_>) -> Option<Vec<Text>> {
    cx.list(n, p, Cx::text)
}

fn decode_cas(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<Cas> {
    let mut f = cx.fields(node, path, "a CAS entry")?;
    let name = f.optional(cx, path, "name", Cx::text);
    let alias = f.optional(cx, path, "alias", text_list);
    let cas_url = f.required(cx, path, "cas_url", Cx::text);
    let cas_key = f.optional(cx, path, "cas_key", Cx::text);
    let cas_encryption_key = f.optional(cx, path, "cas_encryption_key", Cx::text);
    let tolerance = f.optional(cx, path, "tolerance", Cx::text);
    let mode = f.optional(cx, path, "mode", |cx, n, p| {
        cx.optional_one_of(n, p, CasMode::CHOICES, Code::InvalidEnum)
    });
    f.finish(cx, path);
    Some(Cas {
        name,
        alias,
        cas_url: cas_url?,
        cas_key,
        cas_encryption_key,
        tolerance,
        mode,
    })
}

fn decode_policy(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<Policy> {
    let mut f = cx.fields(node, path, "the policy section")?;
    let namespace = f.required(cx, path, "namespace", Cx::text);
    let tolerate = f.optional(cx, path, "tolerate", Cx::text);
    let ignore_advisories = f.optional(cx, path, "ignore_advisories", Cx::text);
    let maa = f.optional(cx, path, "maa", Cx::text);
    let access_policy_name = f.optional(cx, path, "access_policy_name", Cx::text);
    let attestation_policy_name = f.optional(cx, path, "attestation_policy_name", Cx::text);
    let security_policy_name = f.optional(cx, path, "security_policy_name", Cx::text);
    let image_policy_namespace = f.optional(cx, path, "image_policy_namespace", Cx::text);
    let access_policy = f.optional(cx, path, "access_policy", AccessPolicySpec::decode);
    f.finish(cx, path);
    Some(Policy {
        namespace: namespace?,
        tolerate,
        ignore_advisories,
        maa,
        access_policy_name,
        attestation_policy_name,
        security_policy_name,
        image_policy_namespace,
        access_policy,
    })
}

pub(crate) fn decode_key_value(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<KeyValue> {
    let mut f = cx.fields(node, path, "a name/value pair")?;
    let name = f.required(cx, path, "name", Cx::text);
    let value = f.required(cx, path, "value", Cx::text);
    f.finish(cx, path);
    Some(KeyValue {
        name: name?,
        value: value?,
    })
}

fn decode_service_env(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<ServiceEnv> {
    let mut f = cx.fields(node, path, "an env section")?;
    let service = f.required(cx, path, "service", Cx::text);
    let env = f.optional(cx, path, "env", |cx, n, p| cx.list(n, p, decode_key_value));
    f.finish(cx, path);
    Some(ServiceEnv {
        service: service?,
        env,
    })
}

fn decode_service(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<Service> {
    let mut f = cx.fields(node, path, "a service")?;
    let name = f.optional(cx, path, "name", Cx::text);
    let image = f.required(cx, path, "image", Cx::text);
    let image_policy = f.optional(cx, path, "image_policy", Cx::text);
    let image_secrets = f.optional(cx, path, "image_secrets", Cx::text);
    let env = f.optional(cx, path, "env", Cx::text);
    let helm_chart = f.optional(cx, path, "helm_chart", Cx::text);
    f.finish(cx, path);
    Some(Service {
        name,
        image: image?,
        image_policy,
        image_secrets,
        env,
        helm_chart,
    })
}

fn decode_extra_policy(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<ExtraPolicy> {
    let mut f = cx.fields(node, path, "an extra policy")?;
    let name = f.optional(cx, path, "name", Cx::text);
    let mode = f.optional(cx, path, "mode", Cx::text);
    f.finish(cx, path);
    Some(ExtraPolicy { name, mode })
}

fn decode_repo(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<Repo> {
    let mut f = cx.fields(node, path, "the repo section")?;
    let destination = f.required(cx, path, "destination", Cx::text);
    let push = f.optional(cx, path, "push", Cx::boolean);
    let squash = f.optional(cx, path, "squash", Cx::boolean);
    let strip = f.optional(cx, path, "strip", Cx::boolean);
    let key_file = f.optional(cx, path, "key_file", Cx::text);
    let config_id = f.optional(cx, path, "config_id", Cx::text);
    let signature = f.optional(cx, path, "signature", Cx::text);
    f.finish(cx, path);
    Some(Repo {
        destination: destination?,
        push,
        squash,
        strip,
        key_file,
        config_id,
        signature,
    })
}

/// A Kubernetes DNS label (RFC 1123): lower case, `[a-z0-9-]`, at most 63 characters.
pub fn dns_label(name: &str) -> String {
    let mut out: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out.truncate(63);
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "service".into()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::{dns_label, image_base_name, image_reference_error, is_digest, split_image};

    #[test]
    fn dns_labels() {
        assert_eq!(dns_label("maria_DB"), "maria-db");
        assert_eq!(dns_label("--x--"), "x");
        assert_eq!(dns_label(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn image_references_follow_the_oci_grammar() {
        for good in [
            "redis",
            "redis:7",
            "library/redis:7.2-alpine",
            "registry.scontain.com/cicd/redis:7",
            "localhost:5000/a/b",
            "127.0.0.1:5000/team/app_x__y--z.w:1.0",
            "[::1]:5000/a:b",
            "r.example/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "r.example/a:t@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(image_reference_error(good), None, "{good}");
        }
        for bad in [
            "",
            "redis\n:7",
            ";rm -rf /",
            "$(id)",
            "a b",
            "Redis",
            "r.example/a/-b",
            "r.example/a..b",
            "r.example/a:.tag",
            "r.example/a:",
            "r.example//a",
            "bad_host.example:99999999/a",
            "r.example/a@md5:00",
            "[::g]:5000/a",
        ] {
            assert!(image_reference_error(bad).is_some(), "{bad:?} passed");
        }
    }

    #[test]
    fn base_name_drops_registry_tag_and_digest() {
        assert_eq!(
            image_base_name("registry.scontain.com/cicd/redis:7"),
            "redis"
        );
        assert_eq!(image_base_name("localhost:5000/a/b@sha256:00"), "b");
        assert_eq!(image_base_name("memcached"), "memcached");
    }

    #[test]
    fn splits_image_references() {
        assert_eq!(
            split_image("localhost:5000/a/b:1.2"),
            ("localhost:5000/a/b".into(), Some("1.2".into()), None)
        );
        assert_eq!(
            split_image("localhost:5000/a/b"),
            ("localhost:5000/a/b".into(), None, None)
        );
        assert_eq!(
            split_image("r/b:1@sha256:ab"),
            ("r/b".into(), Some("1".into()), Some("sha256:ab".into()))
        );
    }

    #[test]
    fn digests_are_sha256_and_64_hex_digits() {
        assert!(is_digest(&format!("sha256:{}", "ab".repeat(32))));
        assert!(!is_digest("sha256:ab"));
        assert!(!is_digest(&format!("sha512:{}", "ab".repeat(32))));
    }
}

/// A Meshfile env value as scone_mesh would paste it into YAML: a value whose first line is
/// only `|` (the workaround SCONE's SecureDocumentApp uses for multi-line values, "fixed in a
/// future version of scone_mesh") is the text after that line, its common indentation removed
/// as YAML's literal block removes it. Any other value is itself.
pub fn unpasted(value: &str) -> String {
    match pasted_block(value) {
        Some(body) => {
            let indent = (body.lines())
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
                .min()
                .unwrap_or(0);
            let mut out = String::with_capacity(body.len());
            for line in body.split_inclusive('\n') {
                out.push_str(
                    line.get(indent..)
                        .unwrap_or(line.trim_start_matches([' ', '\t'])),
                );
            }
            out
        }
        None => value.to_owned(),
    }
}

/// The text after a first line that holds only `|` (and white space), if the value has one.
pub fn pasted_block(value: &str) -> Option<&str> {
    let (first, rest) = value.split_once('\n')?;
    (first.trim() == "|").then_some(rest)
}

#[cfg(test)]
mod paste_tests {
    use super::unpasted;

    #[test]
    fn a_first_line_of_only_a_bar_is_scone_meshs_paste_workaround() {
        let value = "|\n          CREATE USER 'a';\n            GRANT x;\n\n          FLUSH;\n";
        assert_eq!(unpasted(value), "CREATE USER 'a';\n  GRANT x;\n\nFLUSH;\n");
        assert_eq!(unpasted("a|\nb"), "a|\nb");
        assert_eq!(unpasted("|"), "|");
    }
}
