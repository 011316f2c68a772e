//! The command line, defined once: help, completions and parsing all come from these types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Where `template` and `apply` write, and where `validate` reads recorded descriptors.
pub const DEFAULT_TARGET: &str = "target";
#[derive(Debug, Parser)]
#[command(
    name = "meshfile",
    version,
    about = "Validate, compile and apply SCONE confidential service meshes",
    long_about = "meshfile reads SCONE Meshfiles (kind: mesh) and service manifests (kind: genservice), \
                  explains every mistake by file, line and column, and turns a mesh into CAS session \
                  policies and a Helm chart. It is an open, native implementation of `sconectl apply`.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests against the specification and report every problem at once.
    ///
    /// Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage error.
    Validate(CheckArgs),
    /// Validate, then warn about risky settings (debug tolerances, testing-only CAS flags,
    /// `latest` tags, secrets written in clear, ignored advisories).
    Lint(LintArgs),
    /// Compile a mesh into CAS session policies and a Helm chart under the target directory;
    /// nothing is uploaded. Service manifests given too are recorded as descriptors first.
    Template(TemplateArgs),
    /// Apply manifests: record service manifests (with their MRENCLAVEs) as descriptors, and
    /// compile meshes into `target/policies` and `target/helm`.
    Apply(ApplyArgs),
    /// Show what `apply` would change in CAS, session by session, without changing anything.
    #[command(alias = "diff")]
    Plan(PlanArgs),
    /// Show the mesh as a graph: services, the secrets they define, export, import and use,
    /// the CAS and signers of the namespace, images; least-privilege findings marked. With
    /// `--affected-by`, what a change to one secret, service or image touches.
    Graph(GraphArgs),
    /// Serve the Language Server Protocol on standard input and output, for editors:
    /// meshfile's diagnostics as you type, hover, go to definition, completion, quick fixes.
    Lsp,
    /// The development CAS: a CAS-compatible policy store (NOT SCONE CAS: no SGX, no attestation).
    #[command(subcommand)]
    Cas(CasCommand),
    /// Session signing keys: make one, or show its public key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Add a signature to the signed sessions of a target directory (yours, or one handed
    /// over), without recompiling: the chart's policy resources and the encrypted copies follow.
    ///
    /// With your key (`--signing-key`, default the user's), or a signature made elsewhere over
    /// the message `--export-message` writes (`openssl pkeyutl -sign -rawin` for Ed25519,
    /// `openssl dgst -sha384 -sign` for P-384), added with `--signer PUB --signature FILE`.
    Sign(SignArgs),
    /// Print the JSON Schema (2020-12) of a manifest kind, for editors and CI.
    ///
    /// For yaml-language-server: `meshfile schema mesh > mesh.schema.json`, then put
    /// `# yaml-language-server: $schema=mesh.schema.json` at the top of the Meshfile.
    Schema {
        #[arg(value_enum)]
        kind: SchemaKind,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Publish service descriptors beside their images: each service manifest given (with its
    /// MRENCLAVEs) is attached to its image in the registry as an OCI artifact, signed with a
    /// cosign key when `--key` names one. Meshes that use the image find it there.
    Publish(PublishArgs),
    /// Check that every image of a mesh's chart carries a cosign signature by KEY that names
    /// its repository and digest (what `repo.key_file` signs). Exits 1 when one does not.
    VerifyImages(VerifyImagesArgs),
    /// Explain a diagnostic code such as E012, or list all codes.
    Explain {
        /// The code; omit to list every code.
        code: Option<String>,
    },
}

/// The manifests a command reads; defined once for every command.
#[derive(Debug, Args)]
pub struct Inputs {
    /// A manifest file, a directory of manifests (*.yaml, *.yml; service manifests are handled
    /// before meshes), or `-` for standard input. Repeatable. Without it, SCONE's default file
    /// names: `Meshfile.yaml`, else `Manifest.yaml`, in the current directory.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR")]
    pub files: Vec<PathBuf>,
    /// Let a Meshfile name files (`helm_chart`, `image_policy`, `image_secrets`, `env`) outside
    /// its own directory. Without it such paths are refused, so that a Meshfile from elsewhere
    /// cannot read your files into a chart or a session.
    #[arg(long = "allow-outside-mesh-dir")]
    pub allow_outside: bool,
}

/// The files sconectl reads when `-f` is not given: scone_mesh's, then genservice's.
pub const DEFAULT_FILES: &[&str] = &["Meshfile.yaml", "Manifest.yaml"];

impl Inputs {
    /// The files given, else the first of SCONE's default file names that exists.
    pub fn files(&self) -> Result<Vec<PathBuf>, meshfile_app::Error> {
        if !self.files.is_empty() {
            return Ok(self.files.clone());
        }
        DEFAULT_FILES
            .iter()
            .map(PathBuf::from)
            .find(|f| f.is_file())
            .map(|f| vec![f])
            .ok_or_else(|| {
                meshfile_app::Error::new(
                    meshfile_manifest::Code::BadArguments,
                    format!(
                        "no manifest given, and none of SCONE's default files ({}) is here",
                        DEFAULT_FILES.join(", ")
                    ),
                )
                .hint(
                    "name the manifests with -f FILE|DIR (a directory takes every manifest in it)",
                )
            })
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Print nothing but errors and warnings.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print each valid manifest in canonical form (fields in specification order).
    #[arg(long)]
    pub dump: bool,
}

/// How a mesh compiles; shared by every command that compiles one.
#[derive(Debug, Args)]
pub struct CompileArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Where generated files go.
    #[arg(
        short = 't',
        long = "target-directory",
        value_name = "DIR",
        default_value = DEFAULT_TARGET
    )]
    pub target: PathBuf,
    /// Helm release name; also names the umbrella chart (default: the policy namespace).
    #[arg(long, value_name = "NAME")]
    pub release: Option<String>,
    /// `debug` lets services run as debug enclaves (adds the `debug-mode` tolerance).
    #[arg(long, value_enum, default_value_t = Mode::Production)]
    pub mode: Mode,
    /// Do not ask registries for image digests (nothing leaves the machine): images are pinned
    /// by the digests recorded with their services, if any, else they keep their tags. By
    /// default each image is pinned by the digest its registry serves for its tag.
    #[arg(short = 'n', long = "no-pull")]
    pub no_pull: bool,
    /// Give `$NAME` a value, before the process environment.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Use this namespace instead of the Meshfile's `policy.namespace` (as sconectl's flag).
    #[arg(long = "policy-namespace", value_name = "NAMESPACE")]
    pub policy_namespace: Option<String>,
    /// Attest services with Azure MAA at this URL, as the Meshfile's `policy.maa` would (as
    /// sconectl's flag).
    #[arg(short = 'm', long = "maa", value_name = "URL")]
    pub maa: Option<String>,
    /// The session signing key (PKCS#8 PEM, Ed25519 or P-384) for the signing modes
    /// (`SignedManifest`, `EncryptedManifest`, `EncryptedOnly`); default: the user's, made by
    /// `meshfile key generate`.
    #[arg(
        long = "signing-key",
        value_name = "FILE",
        conflicts_with = "scone_cli"
    )]
    pub signing_key: Option<PathBuf>,
    /// Sign and encrypt sessions with SCONE's `scone` CLI at this path instead of meshfile's
    /// own scheme (`scone session sign`, `encrypt --key`, `calculate-hash`; their output is
    /// copied verbatim): the form SCONE CAS accepts. Untested against SCONE CAS by meshfile.
    #[arg(long = "scone-cli", value_name = "PATH")]
    pub scone_cli: Option<PathBuf>,
    /// Trust service descriptors published beside their images (`meshfile publish`) only
    /// when signed by this cosign public key; repeatable. Without one, a published
    /// descriptor's signature is not checked (the note says so).
    #[arg(long = "descriptor-key", value_name = "FILE")]
    pub descriptor_keys: Vec<PathBuf>,
    /// Print nothing but problems.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Service manifests given to a command that records them.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// MRENCLAVE of the service manifest being applied (64 hex digits; repeat for several).
    #[arg(long = "mrenclave", value_name = "HEX")]
    pub mrenclaves: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    #[command(flatten)]
    pub compile: CompileArgs,
    #[command(flatten)]
    pub record: RecordArgs,
    /// Client identity whose key hash may read the signed sessions of the signing modes
    /// (unless the Meshfile states `policy.access_policy`); default: the user's.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

/// Who meshfile is to a CAS, and how it knows the CAS.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Client identity (certificate and key, PEM) for CAS; default: one created on first use
    /// in the user's config directory (`~/.config/meshfile/identity.pem`).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// The CA certificate (PEM) that signed the CAS's server certificate; a file with several
    /// certificates (as `scone cas show-certificate` writes) trusts each of them.
    #[arg(long = "cas-ca", value_name = "FILE")]
    pub cas_ca: Option<PathBuf>,
    /// With `--cas-ca`: the name the CAS's certificate must carry, whatever address is dialled.
    #[arg(long = "cas-server-name", value_name = "NAME", default_value = "cas")]
    pub cas_server_name: String,
    /// Trust exactly the CAS whose public key has this hash: 64 hex digits or SCONE's
    /// Base58Check form (`meshfile cas key-hash server.pem` prints it).
    #[arg(long = "cas-pin", value_name = "HASH", conflicts_with = "cas_ca", value_parser = meshfile_cas::pki::parse_key_hash)]
    pub cas_pin: Option<String>,
    /// Seconds one request to CAS may take, connecting included; a CAS that accepts and does
    /// not answer is given up on after this, not retried.
    #[arg(long = "cas-timeout", value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub cas_timeout: u64,
    /// Do not check who the CAS is (TLS still encrypts): for a first contact with a
    /// development CAS only. Warns loudly and prints the key hash to pass to `--cas-pin`.
    #[arg(long, conflicts_with_all = ["cas_ca", "cas_pin"])]
    pub insecure: bool,
}

/// How to reach and trust the CAS a mesh names.
#[derive(Debug, Args)]
pub struct CasArgs {
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Trace each request to CAS (method, session, status, time; never a body). Repeatable, as
    /// sconectl's `-vvv`; one is as many as meshfile needs.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// In the modes whose chart delivers the sessions (`SignedManifest`, `EncryptedManifest`,
    /// `EncryptedOnly`), also write them to CAS directly over its client API, as `Upload`
    /// does: how a development CAS is tried without a cluster. Without it those modes open
    /// no connection to CAS, as sconectl.
    #[arg(long)]
    pub upload: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub compile: CompileArgs,
    #[command(flatten)]
    pub cas: CasArgs,
    /// `json`: the plan as JSON on standard output (format `meshfile-plan/1`, its schema
    /// `meshfile schema plan`); `markdown`: a pull request's comment on standard output.
    #[arg(short = 'o', long, value_enum, default_value_t = PlanOutput::Human)]
    pub output: PlanOutput,
    /// Exit with status 1 when something would change.
    #[arg(long, conflicts_with = "detailed_exitcode")]
    pub exit_code: bool,
    /// Exit as `terraform plan -detailed-exitcode` and `helm diff --detailed-exitcode` do: 0
    /// nothing would change, 2 something would, 1 any error.
    #[arg(long = "detailed-exitcode")]
    pub detailed_exitcode: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    /// The plan for people, on standard error.
    Human,
    /// `meshfile-plan/1` JSON on standard output.
    Json,
    /// A pull request's comment (GitHub or GitLab Markdown) on standard output.
    Markdown,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub compile: CompileArgs,
    /// `dot` (Graphviz), `mermaid`, `json` (format `meshfile-graph/1`, its schema
    /// `meshfile schema graph`), `html`: one self-contained page to pan, zoom, search and
    /// click through, with the findings beside the picture, or `svg`: its picture alone. With `--affected-by`: `human`
    /// (the default there) or `json`.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<GraphOutput>,
    /// Write to FILE (atomically) instead of standard output.
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// List what a change to NAME touches: a secret (`NAME` or `SERVICE/NAME`), a service or
    /// an image: the sessions that change and the workloads that restart, in delivery order,
    /// and for a secret the services that can read it.
    #[arg(long = "affected-by", value_name = "NAME")]
    pub affected_by: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphOutput {
    /// Graphviz DOT (the default): `| dot -Tsvg > mesh.svg`.
    Dot,
    /// A Mermaid flowchart, for Markdown.
    Mermaid,
    /// `meshfile-graph/1` JSON.
    Json,
    /// One self-contained HTML page; nothing is fetched when it is viewed.
    Html,
    /// The page's picture alone, as an SVG file.
    Svg,
    /// With `--affected-by`: for people.
    Human,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub compile: CompileArgs,
    #[command(flatten)]
    pub record: RecordArgs,
    #[command(flatten)]
    pub cas: CasArgs,
    /// Print every variable each service of the mesh needs, its value and where it comes from,
    /// as a ready-to-paste `env:` block; writes nothing.
    #[arg(short = 'p', long = "print-defaults")]
    pub print_defaults: bool,
    /// Compile, write the target directory and print the plan, but change nothing in CAS.
    #[arg(short = 'd', long = "dry-run")]
    pub dry_run: bool,
    /// `json` prints the outcome as JSON on standard output.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub sconectl: SconectlArgs,
}

/// Flags of `sconectl apply` that scripts pass, so that they run with `meshfile` in its
/// place: each says why meshfile does not need it, or fails saying what to use instead.
#[derive(Debug, Args)]
#[command(next_help_heading = "sconectl's flags")]
pub struct SconectlArgs {
    /// The SCONE version of the base images to build from. meshfile builds no image, so it is
    /// not used (a note says so).
    #[arg(long = "set-version", value_name = "VERSION")]
    pub set_version: Option<String>,
    /// Not used (a note says so): sconectl does not document what it changes.
    #[arg(long = "release-version", value_name = "N")]
    pub release_version: Option<String>,
    /// Do not push built images. meshfile builds and pushes none: not used.
    #[arg(long = "no-push")]
    pub no_push: bool,
    /// The host's directory for sconectl's nested Docker. meshfile runs no container: not used.
    #[arg(long = "host-pwd", value_name = "DIR")]
    pub host_pwd: Option<PathBuf>,
    /// SCONE's CLI configuration directory. Refused: pass the client identity with
    /// `--identity FILE` and the CAS's trust with `--cas-ca` or `--cas-pin`.
    #[arg(long = "cas-config", value_name = "DIR")]
    pub cas_config: Option<PathBuf>,
    /// A one-time password for confidential cosign signing. Refused: image signing is not
    /// implemented.
    #[arg(long = "otp", value_name = "OTP")]
    pub otp: Option<String>,
    /// A signing service for signed sessions (SignOnline). Refused: its protocol is not
    /// public; meshfile signs locally (`mode: SignedManifest`, `meshfile key generate`).
    #[arg(long = "signing-url", value_name = "HOST:PORT")]
    pub signing_url: Option<String>,
    /// Sign sessions online. Refused, as `--signing-url`.
    #[arg(long = "signing-online")]
    pub signing_online: bool,
    /// A genservice template directory (values.template, Chart.yaml.template, templates/): the
    /// service manifests' chart is rendered from it, with the manifest's variables now and the
    /// Meshfile's when a mesh uses the service, as genservice and scone_mesh render it.
    /// genservice's `-h DIR` means the same after `apply`.
    #[arg(long = "helm-template", value_name = "DIR")]
    pub helm_template: Option<PathBuf>,
    /// What sconectl writes: `helm_chart` (what meshfile writes) or `yaml`, refused: render
    /// plain manifests with `helm template RELEASE target/helm`.
    #[arg(short = 'o', value_name = "FORMAT", value_enum)]
    pub sconectl_output: Option<SconectlOutput>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SconectlOutput {
    #[value(name = "helm_chart")]
    HelmChart,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum CasCommand {
    /// Serve the store over HTTPS with client certificates, for a team, CI or a test cluster.
    ///
    /// It is a development and CI stand-in for SCONE CAS: there is no SGX and no attestation,
    /// and secrets are kept in a file under the state directory. Point `cas_url` at SCONE CAS
    /// for real deployments. On first start it writes a CA, the server certificate and an owner
    /// client identity into the state directory and prints how to connect.
    Serve {
        /// Address to listen on (port 0 picks a free one, printed on start).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
        /// Also serve `export_public` values (and the version) here, without client certificates.
        #[arg(long = "public-listen", value_name = "ADDR")]
        public_listen: Option<std::net::SocketAddr>,
        /// Directory for the store, the CA and the identities.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// Host names and IP addresses the server certificate is for, besides `cas` and
        /// `localhost`, as SCONE names its CAS (first start only).
        #[arg(long = "name", value_name = "HOST", default_values_t = ["127.0.0.1".to_string(), "::1".to_string()])]
        names: Vec<String>,
        /// Connections open at once, TLS handshakes included; lowered to what the file limit
        /// (`ulimit -n`) allows.
        #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
        max_connections: u32,
        /// Connections open at once by one client identity.
        #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
        max_connections_per_identity: u32,
        /// Seconds a connection may take to send a request's head, and stay idle between
        /// requests, before it is closed.
        #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        idle_timeout: u64,
        /// Storage one client identity may use, in MiB, every version counted (versions are
        /// kept forever).
        #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
        quota_mib: u64,
    },
    /// Verify a stopped server's store: every version against its hash and checksum, and
    /// every session's history back to its first version. Exits 1 on any damage.
    Check {
        /// The state directory `cas serve` used.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
    },
    /// Connect to a CAS and say who it is: its certificate chain, its key hash in both forms,
    /// its version, and whether the given trust accepts it. The first command to run against
    /// a new CAS.
    Probe {
        /// The CAS's client API, `host[:port]` (8081 by default).
        #[arg(value_name = "HOST[:PORT]")]
        address: String,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Print the key hash of a certificate (PEM): how access policies name a client.
    KeyHash {
        #[arg(value_name = "PEM")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a session signing key (PKCS#8 PEM, mode 0600); a key of that kind there already is
    /// kept (never replaced), so running it twice is safe.
    Generate {
        /// Where to write it; default: `signing-key.pem` in the user's config directory,
        /// beside the client identity.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Ed25519 (as SCONE's CLI makes) or ECDSA P-384.
        #[arg(long, value_enum, default_value_t = KeyAlgorithm::Ed25519)]
        algorithm: KeyAlgorithm,
        /// Make a cosign key pair for signing images instead (`repo.key_file`): FILE in
        /// cosign's format, sealed with COSIGN_PASSWORD (or a password asked), and FILE.pub.
        #[arg(long, requires = "out", conflicts_with = "algorithm")]
        cosign: bool,
    },
    /// Print a signing key's public key: PEM (for `signer:` entries) and, for Ed25519, the
    /// Base58Check form.
    Show {
        /// The private key (default: the user's), or a public key PEM.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub compile: CompileArgs,
    #[command(flatten)]
    pub record: RecordArgs,
    /// The cosign key (cosign.key; its password in COSIGN_PASSWORD) to sign the descriptors with.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyImagesArgs {
    #[command(flatten)]
    pub compile: CompileArgs,
    /// The cosign public key (cosign.pub, PEM).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyAlgorithm {
    Ed25519,
    P384,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The target directory whose `session_files/` are signed.
    #[arg(
        short = 't',
        long = "target-directory",
        value_name = "DIR",
        default_value = DEFAULT_TARGET
    )]
    pub target: PathBuf,
    /// Sign only this session (`NAMESPACE` or `NAMESPACE/SERVICE`); repeatable. Default: all.
    #[arg(long, value_name = "NAME")]
    pub session: Vec<String>,
    /// Your signing key; default: the user's.
    #[arg(long = "signing-key", value_name = "FILE", conflicts_with_all = ["signer", "scone_cli"])]
    pub signing_key: Option<PathBuf>,
    /// Sign with SCONE's `scone` CLI at this path (`scone session sign`, its own session
    /// signing key) instead; its output is copied verbatim.
    #[arg(long = "scone-cli", value_name = "PATH", conflicts_with_all = ["signer", "export_message"])]
    pub scone_cli: Option<PathBuf>,
    /// Write the message to be signed for the one `--session` to FILE (`-` for standard
    /// output), and what changed in the session to FILE.diff (to standard error with `-`);
    /// sign nothing.
    #[arg(long = "export-message", value_name = "FILE", requires = "session", conflicts_with_all = ["signer", "signature"])]
    pub export_message: Option<PathBuf>,
    /// The public key (PEM, or Base58Check) of an external signature.
    #[arg(long, value_name = "PUB", requires_all = ["signature", "session"])]
    pub signer: Option<PathBuf>,
    /// The external signature: raw bytes as openssl writes them, or hex, or base64.
    #[arg(long, value_name = "FILE", requires = "signer")]
    pub signature: Option<PathBuf>,
    /// Sign without asking: `sign` shows what changed in each session and, on a terminal,
    /// asks before signing with a key or SCONE's CLI; without a terminal it signs only with
    /// `--yes` (scripts). An external signature (`--signer`) is added without asking: its
    /// signer reviewed the diff `--export-message` wrote.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Compare each session with what this CAS holds now (`HOST[:PORT]`, or `embedded` for
    /// the development store under the target directory): what a signature approves there,
    /// and whether CAS would take the version at all. When CAS cannot be read, the version in
    /// the target directory is compared instead, and `sign` says so.
    #[arg(long = "cas", value_name = "HOST[:PORT]")]
    pub cas: Option<String>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print nothing but problems (what changed is still shown unless `--yes`).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Production,
    Debug,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    #[command(flatten)]
    pub check: CheckArgs,
    /// Exit with status 1 when there is any warning.
    #[arg(long)]
    pub deny_warnings: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// `FILE:LINE:COL: error[CODE]: message` with a source snippet, on standard error.
    Human,
    /// A JSON array of diagnostics on standard output.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// The Meshfile (`kind: mesh`).
    Mesh,
    /// The service manifest (`kind: genservice`).
    Service,
    /// What `plan --output json` prints (`meshfile-plan/1`).
    Plan,
    /// What `graph --output json` prints (`meshfile-graph/1`).
    Graph,
}

/// The command line with genservice's `-h DIR` of `apply` (a value after it, not a flag)
/// spelt `--helm-template DIR`: `-h` alone stays meshfile's help.
pub fn with_sconectl_spelling(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let is_apply = args.get(1).is_some_and(|a| a == "apply");
    if !is_apply {
        return args;
    }
    let mut out = Vec::with_capacity(args.len());
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        let value_follows = args
            .peek()
            .is_some_and(|next| !next.to_string_lossy().starts_with('-'));
        if arg == "-h" && value_follows {
            out.push("--helm-template".into());
        } else {
            out.push(arg);
        }
    }
    out
}

impl CompileArgs {
    /// The compile settings these flags say, resolved once; a command adds its own
    /// (`--mrenclave`, `--identity`, `--helm-template`).
    pub fn settings(&self) -> Result<meshfile_app::usecase::Settings, meshfile_app::Error> {
        use meshfile_app::sign::SignerChoice;
        let signer = match (&self.scone_cli, &self.signing_key) {
            (Some(program), _) => SignerChoice::SconeCli(program.clone()),
            (None, Some(key)) => SignerChoice::Key(key.clone()),
            (None, None) => SignerChoice::UsersKey,
        };
        Ok(meshfile_app::usecase::Settings {
            inputs: self.inputs.files()?,
            allow_outside: self.inputs.allow_outside,
            target: self.target.clone(),
            mode: match self.mode {
                Mode::Production => meshfile_plan::Mode::Production,
                Mode::Debug => meshfile_plan::Mode::Debug,
            },
            release: self.release.clone(),
            sets: self.set.clone(),
            overrides: meshfile_app::compile::Overrides {
                namespace: self.policy_namespace.clone(),
                maa: self.maa.clone(),
            },
            no_pull: self.no_pull,
            descriptor_keys: self.descriptor_keys.clone(),
            signer,
            mrenclaves: Vec::new(),
            identity: None,
            helm_template: None,
        })
    }
}

impl TrustArgs {
    /// How these flags reach and trust a CAS.
    pub fn access(&self) -> meshfile_app::access::CasAccess {
        meshfile_app::access::CasAccess {
            identity: self.identity.clone(),
            cas_ca: self.cas_ca.clone(),
            server_name: self.cas_server_name.clone(),
            cas_pin: self.cas_pin.clone(),
            insecure: self.insecure,
            timeout: std::time::Duration::from_secs(self.cas_timeout),
        }
    }
}
