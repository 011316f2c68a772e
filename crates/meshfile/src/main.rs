//! `meshfile`: the command-line edge. Parses arguments, runs a command, maps the outcome to
//! the exit status of the contract (0 ok, 1 invalid, 2 usage, 3 environment).

mod cli;
mod commands;
mod error;
mod fsutil;
mod render;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command, SchemaKind};
use error::{CliError, exit};
use meshfile_manifest::ManifestKind;

/// Compiling a large mesh makes millions of small allocations on several threads; mimalloc
/// serves them markedly faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.exit_code();
            eprintln!("{:?}", miette::Report::new(e));
            ExitCode::from(code)
        }
    }
}

fn print(text: &str) -> Result<u8, CliError> {
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(CliError::Output)?;
    Ok(exit::OK)
}

fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Validate(args) => commands::check::run(&args, false, false),
        Command::Lint(args) => commands::check::run(&args.check, true, args.deny_warnings),
        Command::Template(args) => {
            let (code, _) =
                commands::compile::run(&args, commands::compile::Action::Write, args.quiet)?;
            Ok(code)
        }
        Command::Apply(args) => commands::apply::run(&args),
        Command::Plan(args) => commands::apply::plan(&args),
        Command::Cas(command) => commands::cas::run(command),
        Command::Schema { kind } => {
            let kind = match kind {
                SchemaKind::Mesh => ManifestKind::Mesh,
                SchemaKind::Service => ManifestKind::Service,
            };
            let schema = meshfile_manifest::schema(kind);
            print(&(serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"))
        }
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "meshfile", &mut out);
            print(&String::from_utf8_lossy(&out))
        }
        Command::Explain { code } => print(&commands::explain::run(code.as_deref())?),
    }
}
