//! The service manifest (`kind: genservice`, Service manifest 0.2.1).

use meshfile_yaml::Node;
use schemars::JsonSchema;
use serde::Serialize;

use crate::decode::{Cx, Path, Spanned, Text};
use crate::diagnostic::{Code, Diagnostic};
use crate::mesh::{KeyValue, decode_key_value};

/// How to build one confidential image, and what its CAS policy needs.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "SCONE Service manifest (genservice) 0.2.1")]
pub struct ServiceManifest {
    /// `scone/MAJOR.MINOR[.PATCH]`, at least `scone/5.8`.
    #[serde(rename = "apiVersion")]
    pub api_version: Text,
    /// Always `genservice`.
    pub kind: Text,
    /// The confidential image: its name, the image built (`to`), the command the session runs
    /// and, for SCONE's build, how it is made.
    pub build: Build,
    /// The program's environment: `local` values of this manifest, `global` names whose values
    /// the Meshfile gives.
    pub environment: Environment,
    /// Secrets this service defines (`global`, generated or held by CAS) and imports from other
    /// services of the mesh (`import`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Secrets>,
    /// Files that exist only inside the enclave; content may use `$$SCONE::name$$`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injection_files: Option<Vec<InjectionFile>>,
}

impl ServiceManifest {
    pub fn secrets_defined(&self) -> impl Iterator<Item = &Secret> {
        self.secrets.iter().flat_map(|s| s.global.iter().flatten())
    }

    pub fn secrets_imported(&self) -> impl Iterator<Item = &Text> {
        self.secrets.iter().flat_map(|s| s.import.iter().flatten())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// The service's name: its session is `NAMESPACE/NAME` unless the Meshfile names the
    /// service otherwise.
    pub name: Text,
    /// `python`, `java`, `java8`, `java15`, `java17`, `java21`, `sconify_image`, ...
    pub kind: Text,
    /// Name of the generated image.
    pub to: Text,
    /// The command line, copied into the CAS policy.
    pub command: Command,
    /// The program's working directory inside the enclave (the session's `pwd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pwd: Option<Text>,
    /// The base image SCONE's build starts from, which SCONE's tools use when they build the
    /// image; meshfile uses the image as built (warning W009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Text>,
    /// The Python requirements file, which SCONE's tools use when they build the image;
    /// meshfile uses the image as built (warning W009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirements: Option<Text>,
    /// The last stable version of the image (kept runnable until a software update), which
    /// SCONE's tools use when they build the image; meshfile uses the image as built (warning
    /// W009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable: Option<Text>,
    /// The binaries of the image to sconify (one per image is best), which SCONE's tools use
    /// when they build the image; meshfile uses the image as built (warning W009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binaries: Option<Vec<Text>>,
    /// Files copied from the working directory into the image, which SCONE's tools use when
    /// they build the image; meshfile uses the image as built (warning W009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy: Option<Vec<Text>>,
    /// Directories encrypted in the image, which SCONE's tools use when they build the image;
    /// meshfile uses the image as built (warning W009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dirs: Option<Vec<Text>>,
    /// Directories protected (integrity, not confidentiality) by SCONE's binary file system,
    /// which SCONE's tools use when they build the image; meshfile uses the image as built
    /// (warning W009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_dirs: Option<Vec<Text>>,
    /// Files protected (integrity, not confidentiality) by SCONE's binary file system, which
    /// SCONE's tools use when they build the image; meshfile uses the image as built (warning
    /// W009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_files: Option<Vec<Text>>,
    /// Paths served from the host's file system without SCONE's protection (`/etc/hosts`,
    /// devices), which SCONE's tools use when they build the image; meshfile uses the image as
    /// built (warning W009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_paths: Option<Vec<Text>>,
    /// Misspelling of `host_paths` found in a public tutorial; accepted with a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("deprecated" = true))]
    pub host_path: Option<Vec<Text>>,
    /// Files copied as plain text (neither confidential nor integrity protected), which SCONE's
    /// tools use when they build the image; meshfile uses the image as built (warning W009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain_files: Option<Vec<Text>>,
    /// Directories copied as plain text (neither confidential nor integrity protected), which
    /// SCONE's tools use when they build the image; meshfile uses the image as built (warning
    /// W009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plains: Option<Vec<Text>>,
    /// Commands run while the image is built, which SCONE's tools use when they build the
    /// image; meshfile uses the image as built (warning W009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Vec<Text>>,
    /// The policy template SCONE's build generates with the image; meshfile takes a session
    /// template from the Meshfile's `image_policy` instead (warning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gen_policy: Option<GenPolicy>,
    /// How SCONE's build signs the enclave, which gives its MRSIGNER; meshfile uses the image
    /// as signed (warning W009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
    /// Encrypted volumes of the session: defined here, imported from another session, or
    /// exported to others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
}

/// `build.command`: a command line, or its words as a list, which the session language takes
/// since 0.3.5 (beyond the service-manifest specification, which has the line only).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Command {
    Line(Text),
    Words(Vec<Text>),
}

impl Command {
    /// Every text of it: the line, or each word.
    pub fn texts(&self) -> Vec<&Text> {
        match self {
            Command::Line(line) => vec![line],
            Command::Words(words) => words.iter().collect(),
        }
    }

    /// What starts with the program: the line, or the first word.
    pub fn program_text(&self) -> &str {
        match self {
            Command::Line(line) => line.as_str(),
            Command::Words(words) => words.first().map_or("", |w| w.as_str()),
        }
    }
}

fn decode_command(cx: &mut Cx, n: &Node, p: &Path<'_>) -> Option<Command> {
    match &n.value {
        meshfile_yaml::Value::Sequence(_) => texts(cx, n, p).map(Command::Words),
        _ => Cx::text(cx, n, p).map(Command::Line),
    }
}

/// Build kinds named by the specification and the public tutorials.
pub const BUILD_KINDS: &[&str] = &[
    "python",
    "java",
    "java8",
    "java15",
    "java17",
    "java21",
    "java21-ubuntu",
    "java-glibc",
    "sconify_image",
];

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenPolicy {
    /// The file that holds the policy template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Whether SCONE's build signs the binaries (it always does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign: Option<Spanned<bool>>,
    /// The enclave signing key file SCONE's build uses (default `target/identity.pem`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// The volume's name in the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// Where the volume is mounted inside the enclave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Text>,
    /// The session and volume this volume is imported from (instead of defined here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<VolumeImport>,
    /// The sessions this volume is exported to; only a volume defined here can be exported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<Vec<VolumeExport>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeImport {
    /// The session that exports the volume (`{{namespace}}/SERVICE` for a service of the mesh).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<Text>,
    /// The name under which that session exports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeExport {
    /// The session the volume is exported to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<Text>,
    /// Exports to that session's exact version only: a later version of it gets no access.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_hash: Option<Text>,
    /// `ephemeral`, `rollback_protected` (default) or `no_rollback_protection`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_policy: Option<Text>,
    /// The name the importing session sees the volume under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_alias: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Names the Meshfile provides, optionally with a default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<Vec<GlobalKeyValue>>,
    /// Values fixed by this manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<Vec<KeyValue>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobalKeyValue {
    /// A variable the Meshfile gives a value (its `env` sections); the program sees it under
    /// this name.
    pub name: Text,
    /// Default used when the Meshfile gives no value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// Secrets this service defines; exported to the mesh namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<Vec<Secret>>,
    /// Names of secrets defined by other services of the mesh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<Vec<Text>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub enum SecretKind {
    #[serde(rename = "ascii")]
    Ascii,
    #[serde(rename = "binary")]
    Binary,
    #[serde(rename = "private-key")]
    PrivateKey,
    #[serde(rename = "x509")]
    X509,
    #[serde(rename = "x509-ca")]
    X509Ca,
    #[serde(rename = "aad-token")]
    AadToken,
    #[serde(rename = "pgp-key")]
    PgpKey,
}

impl SecretKind {
    pub const CHOICES: &'static [(&'static str, SecretKind)] = &[
        ("ascii", SecretKind::Ascii),
        ("binary", SecretKind::Binary),
        ("private-key", SecretKind::PrivateKey),
        ("x509", SecretKind::X509),
        ("x509-ca", SecretKind::X509Ca),
        ("aad-token", SecretKind::AadToken),
        ("pgp-key", SecretKind::PgpKey),
    ];

    pub fn as_str(self) -> &'static str {
        SecretKind::CHOICES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |(n, _)| n)
    }

    pub fn is_certificate(self) -> bool {
        matches!(self, SecretKind::X509 | SecretKind::X509Ca)
    }

    /// The `$$SCONE::name:FORMAT$$` formats this kind offers (session language 0.3.10).
    pub fn formats(self) -> &'static [&'static str] {
        match self {
            SecretKind::Ascii | SecretKind::AadToken => &[],
            SecretKind::Binary => &["bin", "hex", "base64", "base64url", "base32", "base32nopad"],
            SecretKind::PrivateKey => &["pem", "der", "pkcs8:pem", "pkcs8:der"],
            SecretKind::X509 | SecretKind::X509Ca => &[
                "crt",
                "crt:pem",
                "crt:der",
                "privatekey",
                "privatekey:pem",
                "privatekey:der",
                "privatekey:pkcs8:pem",
                "privatekey:pkcs8:der",
                "chain",
                "pkcs12-with-private-key",
            ],
            SecretKind::PgpKey => &[
                "privatekey:asciiarmored",
                "privatekey:binary",
                "privatekey:base64",
                "publickey:asciiarmored",
                "publickey:binary",
                "publickey:base64",
            ],
        }
    }
}

/// A secret that CAS generates or holds (its fields mirror the CAS session language).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// The secret's name, unique in the mesh (a prefix such as `NGINX_` helps); referenced as
    /// `$$SCONE::name$$`.
    pub name: Text,
    /// `ascii`, `binary`, `private-key`, `x509`, `x509-ca`, `aad-token` or `pgp-key`: what CAS
    /// generates or holds.
    pub kind: Spanned<SecretKind>,
    /// Length of generated values in bytes (default 20).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<Text>,
    /// An explicit value: hex for binary secrets, PEM for keys and certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Text>,
    /// `true` makes the value public (readable by anyone, and through CAS's /v1/values): for
    /// public keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_public: Option<Text>,
    /// Keep the private key when the session is updated (both versions must say `true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrate: Option<Text>,
    /// `P-256` (default), `P-384`, `Ed25519`, `RSA-2048`, `RSA-3072`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_type: Option<Text>,
    /// The `private-key` secret of this certificate (required unless it is imported or has a
    /// value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<Text>,
    /// The `x509-ca` secret that signs this certificate (self-signed without); its private key
    /// must be reachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<Text>,
    /// The certificate's common name (default: the first `dns` name, else the secret's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_name: Option<Text>,
    /// DNS names of the certificate's subject alternative names (end-entity certificates
    /// without a client endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<Vec<Text>>,
    /// Subject alternative names, `dns:NAME` or `ip:ADDRESS` (the session language's 0.3.10
    /// form; beyond the service-manifest specification, which has `dns` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub san: Option<Vec<Text>>,
    /// `server` or `client`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Text>,
    /// e.g. `90 days`, `1 year`, `59d`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_for: Option<Text>,
    /// The Azure AD tenant an `aad-token` secret is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Text>,
    /// The Azure AD application an `aad-token` secret is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Text>,
    /// The shared secret registered with Azure AD for an `aad-token` (or a `private_key` and
    /// certificate thumbprint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_secret: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectionFile {
    /// Where the file appears inside the enclave; only the enclave sees it.
    pub path: Text,
    /// The file's content; absent means the file comes from the image's file system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Text>,
    /// Its mode, `0o600` style (the session language's; SCONE's default is `0o700`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<Text>,
}

pub(crate) fn decode(cx: &mut Cx, node: &Node) -> Option<ServiceManifest> {
    let root = Path::Root;
    let mut f = cx.fields(node, &root, "the service manifest")?;
    let api_version = f.required(cx, &root, "apiVersion", Cx::text);
    let kind = f.required(cx, &root, "kind", Cx::text);
    let build = f.required(cx, &root, "build", decode_build);
    let environment = f.required(cx, &root, "environment", decode_environment);
    let secrets = f.optional(cx, &root, "secrets", decode_secrets);
    let injection_files = f.optional(cx, &root, "injection_files", |cx, n, p| {
        cx.list(n, p, decode_injection_file)
    });
    f.finish(cx, &root);
    Some(ServiceManifest {
        api_version: api_version?,
        kind: kind?,
        build: build?,
        environment: environment?,
        secrets,
        injection_files,
    })
}

fn texts(cx: &mut Cx, n: &Node, p: &Path<'_>) -> Option<Vec<Text>> {
    cx.list(n, p, Cx::text)
}

fn decode_build(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<Build> {
    let mut f = cx.fields(node, path, "the build section")?;
    let name = f.required(cx, path, "name", Cx::text);
    let kind = f.required(cx, path, "kind", Cx::text);
    let to = f.required(cx, path, "to", Cx::text);
    let command = f.required(cx, path, "command", decode_command);
    let pwd = f.optional(cx, path, "pwd", Cx::text);
    let from = f.optional(cx, path, "from", Cx::text);
    let requirements = f.optional(cx, path, "requirements", Cx::text);
    let stable = f.optional(cx, path, "stable", Cx::text);
    let binaries = f.optional(cx, path, "binaries", texts);
    let copy = f.optional(cx, path, "copy", texts);
    let dirs = f.optional(cx, path, "dirs", texts);
    let fs_dirs = f.optional(cx, path, "fs_dirs", texts);
    let fs_files = f.optional(cx, path, "fs_files", texts);
    let host_paths = f.optional(cx, path, "host_paths", texts);
    let plain_files = f.optional(cx, path, "plain_files", texts);
    let plains = f.optional(cx, path, "plains", texts);
    let run = f.optional(cx, path, "run", texts);
    let gen_policy = f.optional(cx, path, "gen_policy", decode_gen_policy);
    let signature = f.optional(cx, path, "signature", decode_signature);
    let volumes = f.optional(cx, path, "volumes", |cx, n, p| cx.list(n, p, decode_volume));
    let host_path = f.entry("host_path").and_then(|entry| {
        let p = path.key("host_path");
        cx.report(
            Diagnostic::new(
                Code::DeprecatedField,
                entry.key.span,
                p.to_string(),
                "`host_path` is not a field of the specification; it is read as `host_paths`",
            )
            .with_hint("rename it to `host_paths`"),
        );
        if entry.value.is_null() {
            None
        } else {
            texts(cx, &entry.value, &p)
        }
    });
    f.finish(cx, path);
    if let Some(k) = &kind
        && !BUILD_KINDS.contains(&k.as_str())
    {
        let mut d = Diagnostic::new(
            Code::UnknownBuildKind,
            k.span,
            path.key("kind").to_string(),
            format!(
                "build kind `{k}` is not one this tool knows ({})",
                BUILD_KINDS.join(", ")
            ),
        );
        if let Some(best) = crate::diagnostic::did_you_mean(k.as_str(), BUILD_KINDS.iter().copied())
        {
            d = d.with_suggestion(best);
        }
        cx.report(d);
    }
    Some(Build {
        name: name?,
        kind: kind?,
        to: to?,
        command: command?,
        pwd,
        from,
        requirements,
        stable,
        binaries,
        copy,
        dirs,
        fs_dirs,
        fs_files,
        host_paths,
        host_path,
        plain_files,
        plains,
        run,
        gen_policy,
        signature,
        volumes,
    })
}

fn decode_gen_policy(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<GenPolicy> {
    let mut f = cx.fields(node, path, "gen_policy")?;
    let policy = f.optional(cx, path, "policy", Cx::text);
    f.finish(cx, path);
    Some(GenPolicy { policy })
}

fn decode_signature(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<Signature> {
    let mut f = cx.fields(node, path, "the signature section")?;
    let sign = f.optional(cx, path, "sign", Cx::boolean);
    let key = f.optional(cx, path, "key", Cx::text);
    f.finish(cx, path);
    Some(Signature { sign, key })
}

fn decode_volume(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<Volume> {
    let mut f = cx.fields(node, path, "a volume")?;
    let name = f.optional(cx, path, "name", Cx::text);
    let vpath = f.optional(cx, path, "path", Cx::text);
    let import = f.optional(cx, path, "import", |cx, n, p| {
        let mut g = cx.fields(n, p, "a volume import")?;
        let session = g.optional(cx, p, "session", Cx::text);
        let volume = g.optional(cx, p, "volume", Cx::text);
        g.finish(cx, p);
        Some(VolumeImport { session, volume })
    });
    let export = f.optional(cx, path, "export", |cx, n, p| {
        cx.list(n, p, |cx, n, p| {
            let mut g = cx.fields(n, p, "a volume export")?;
            let session = g.optional(cx, p, "session", Cx::text);
            let session_hash = g.optional(cx, p, "session_hash", Cx::text);
            let update_policy = g.optional(cx, p, "update_policy", Cx::text);
            let volume_alias = g.optional(cx, p, "volume_alias", Cx::text);
            g.finish(cx, p);
            Some(VolumeExport {
                session,
                session_hash,
                update_policy,
                volume_alias,
            })
        })
    });
    f.finish(cx, path);
    Some(Volume {
        name,
        path: vpath,
        import,
        export,
    })
}

pub(crate) fn decode_environment(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<Environment> {
    let mut f = cx.fields(node, path, "the environment section")?;
    let global = f.optional(cx, path, "global", |cx, n, p| {
        cx.list(n, p, |cx, n, p| {
            let mut g = cx.fields(n, p, "a global environment name")?;
            let name = g.required(cx, p, "name", Cx::text);
            let value = g.optional(cx, p, "value", Cx::text);
            g.finish(cx, p);
            Some(GlobalKeyValue { name: name?, value })
        })
    });
    let local = f.optional(cx, path, "local", |cx, n, p| {
        cx.list(n, p, decode_key_value)
    });
    f.finish(cx, path);
    Some(Environment { global, local })
}

fn decode_secrets(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<Secrets> {
    let mut f = cx.fields(node, path, "the secrets section")?;
    let global = f.optional(cx, path, "global", |cx, n, p| cx.list(n, p, decode_secret));
    let import = f.optional(cx, path, "import", texts);
    f.finish(cx, path);
    Some(Secrets { global, import })
}

fn decode_secret(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<Secret> {
    let mut f = cx.fields(node, path, "a secret")?;
    let name = f.required(cx, path, "name", Cx::text);
    let kind = f.required(cx, path, "kind", |cx, n, p| {
        cx.one_of(n, p, SecretKind::CHOICES, Code::UnknownSecretKind)
    });
    let size = f.optional(cx, path, "size", Cx::text);
    let value = f.optional(cx, path, "value", Cx::text);
    let export_public = f.optional(cx, path, "export_public", Cx::text);
    let migrate = f.optional(cx, path, "migrate", Cx::text);
    let key_type = f.optional(cx, path, "key_type", Cx::text);
    let private_key = f.optional(cx, path, "private_key", Cx::text);
    let issuer = f.optional(cx, path, "issuer", Cx::text);
    let common_name = f.optional(cx, path, "common_name", Cx::text);
    let dns = f.optional(cx, path, "dns", texts);
    let san = f.optional(cx, path, "san", texts);
    let endpoint = f.optional(cx, path, "endpoint", Cx::text);
    let valid_for = f.optional(cx, path, "valid_for", Cx::text);
    let tenant_id = f.optional(cx, path, "tenant_id", Cx::text);
    let client_id = f.optional(cx, path, "client_id", Cx::text);
    let application_secret = f.optional(cx, path, "application_secret", Cx::text);
    f.finish(cx, path);
    Some(Secret {
        name: name?,
        kind: kind?,
        size,
        value,
        export_public,
        migrate,
        key_type,
        private_key,
        issuer,
        common_name,
        dns,
        san,
        endpoint,
        valid_for,
        tenant_id,
        client_id,
        application_secret,
    })
}

fn decode_injection_file(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<InjectionFile> {
    let mut f = cx.fields(node, path, "an injection file")?;
    let file_path = f.required(cx, path, "path", Cx::text);
    let content = f.optional(cx, path, "content", Cx::text);
    let permission = f.optional(cx, path, "permission", Cx::text);
    f.finish(cx, path);
    Some(InjectionFile {
        path: file_path?,
        content,
        permission,
    })
}
