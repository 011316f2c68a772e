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
    #[diagnostic(code(meshfile::write))]
    Write(#[source] std::io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Read { source, .. } if source.kind() != std::io::ErrorKind::NotFound => {
                exit::ENVIRONMENT
            }
            CliError::Write(_) => exit::ENVIRONMENT,
            _ => exit::USAGE,
        }
    }
}
