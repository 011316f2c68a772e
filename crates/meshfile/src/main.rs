//! `meshfile`: the command-line edge. Parses arguments, runs a command (each composes the
//! stages of `meshfile-app`), renders what went wrong once, and exits with the status of the
//! contract (0 ok, 1 invalid, 2 usage, 3 environment).

mod cli;
mod commands;
#[cfg(test)]
mod docs;
mod render;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use meshfile_app::{Exit, Stop};

/// Compiling a large mesh makes millions of small allocations on several threads; mimalloc
/// serves them markedly faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::with_sconectl_spelling(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let exit = if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            };
            return ExitCode::from(exit as u8);
        }
    };
    let detailed = matches!(&cli.command, Command::Plan(args) if args.detailed_exitcode);
    let outcome = run(cli);
    if let Err(stop) = &outcome {
        match stop {
            Stop::Invalid(report) => render::eprint(&render::report(report)),
            Stop::Failed(e) => render::eprint(&render::error(e)),
        }
    }
    ExitCode::from(status(outcome, detailed))
}

/// The exit status of a run: the contract's (0 ok, 1 invalid, 2 usage, 3 environment), or
/// with `plan --detailed-exitcode` the one Terraform and `helm diff` users script against (0
/// nothing would change, 2 something would, 1 any error).
fn status(outcome: Result<Exit, Stop>, detailed: bool) -> u8 {
    match (outcome, detailed) {
        (Ok(exit), false) => exit as u8,
        (Err(stop), false) => stop.exit() as u8,
        (Ok(Exit::Ok), true) => 0,
        (Ok(_), true) => 2,
        (Err(_), true) => 1,
    }
}

fn run(cli: Cli) -> Result<Exit, Stop> {
    match cli.command {
        Command::Validate(args) => commands::validate::run(&args, false, false),
        Command::Lint(args) => commands::validate::run(&args.check, true, args.deny_warnings),
        Command::Template(args) => commands::template::run(&args),
        Command::Apply(args) => commands::apply::run(&args),
        Command::Plan(args) => commands::plan::run(&args),
        Command::Graph(args) => commands::graph::run(&args),
        Command::Lsp => commands::lsp::run(),
        Command::Cas(command) => commands::cas::run(command),
        Command::Key(command) => commands::key::run(command),
        Command::Sign(args) => commands::sign::run(&args),
        Command::VerifyImages(args) => commands::images::verify(&args),
        Command::Publish(args) => commands::images::publish(&args),
        Command::Schema { kind } => commands::schema::run(kind),
        Command::Completions { shell } => commands::schema::completions(shell),
        Command::Explain { code } => commands::explain::run(code.as_deref()),
    }
}
