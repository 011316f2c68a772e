//! The command line, defined once: help, completions and parsing all come from these types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Explain a diagnostic code such as E012, or list all codes.
    Explain {
        /// The code; omit to list every code.
        code: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A manifest file, a directory of manifests (*.yaml, *.yml), or `-` for standard input.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR",
        required = true
    )]
    pub files: Vec<PathBuf>,
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
}
