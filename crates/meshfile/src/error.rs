//! The command-line error type: one place decides the exit code and the help line.

use std::path::PathBuf;

/// Exit statuses of the command-line contract (design.md).
pub mod exit {
    pub const OK: u8 = 0;
    pub const INVALID: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const ENVIRONMENT: u8 = 3;
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CliError {
    #[error("cannot read `{}`: {source}", path.display())]
    #[diagnostic(
        code(meshfile::read),
        help("check the path; `-f -` reads standard input")
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` holds no manifest (no *.yaml or *.yml file)", path.display())]
    #[diagnostic(
        code(meshfile::empty_dir),
        help("name a manifest file, or a directory that holds some")
    )]
    EmptyDirectory { path: PathBuf },
    #[error("unknown diagnostic code `{0}`")]
    #[diagnostic(
        code(meshfile::unknown_code),
        help("run `meshfile explain` to list every code")
    )]
    UnknownCode(String),
    #[error("cannot write output: {0}")]
    #[diagnostic(code(meshfile::output))]
    Output(#[source] std::io::Error),
    #[error("cannot write `{}`: {source}", path.display())]
    #[diagnostic(
        code(meshfile::write),
        help("check that the target directory is writable")
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    #[diagnostic(code(meshfile::cas))]
    Cas(#[from] meshfile_cas::Error),
    #[error("{0}")]
    #[diagnostic(
        code(meshfile::refused),
        help(
            "ask the session's owner to add the key hash to its access_policy, or use an identity it lists"
        )
    )]
    Refused(String),
    #[error("cannot reach {0}")]
    #[diagnostic(
        code(meshfile::unreachable),
        help("check that the CAS runs and that cas_url names it (host[:port], 8081 by default)")
    )]
    Unreachable(String),
    #[error("meshfile does not know how to trust CAS `{0}`")]
    #[diagnostic(
        code(meshfile::trust),
        help(
            "pass `--cas-ca FILE` (the CA that signed its certificate) or `--cas-pin HASH` (its key hash); to learn the key hash of a development CAS, run once with `--insecure`; never plaintext"
        )
    )]
    NoTrust(String),
    #[error("the Meshfile's cas_key {0} differs from --cas-pin {1}")]
    #[diagnostic(
        code(meshfile::pin),
        help("the CAS must present the key the Meshfile names; check which one is right")
    )]
    PinMismatch(String, String),
    #[error("{0}")]
    #[diagnostic(
        code(meshfile::chart),
        help("helm_chart names a chart directory (with Chart.yaml), relative to the Meshfile")
    )]
    Chart(String),
    #[error("`--set {0}` is not of the form NAME=VALUE")]
    #[diagnostic(code(meshfile::set), help("write e.g. `--set APP_NAMESPACE=demo`"))]
    BadSet(String),
    #[error("`--mrenclave` applies to one service manifest, but {0} were given")]
    #[diagnostic(
        code(meshfile::mrenclave),
        help(
            "apply service manifests one at a time, or list measurements in a measurements.yaml next to them"
        )
    )]
    AmbiguousMrenclave(usize),
    #[error("{} meshes were given ({}), but a target directory holds the output of one", .0.len(), .0.join(", "))]
    #[diagnostic(
        code(meshfile::many_meshes),
        help("apply or template each mesh on its own, with its own `-t DIR`")
    )]
    ManyMeshes(Vec<String>),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Read { source, .. } if source.kind() != std::io::ErrorKind::NotFound => {
                exit::ENVIRONMENT
            }
            CliError::Output(_) | CliError::Write { .. } => exit::ENVIRONMENT,
            CliError::Cas(e) if e.status() >= 500 => exit::ENVIRONMENT,
            CliError::Unreachable(_) => exit::ENVIRONMENT,
            CliError::Chart(_) | CliError::Refused(_) => exit::INVALID,
            CliError::Cas(_) => exit::INVALID,
            _ => exit::USAGE,
        }
    }
}
