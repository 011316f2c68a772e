//! The reference pages made from the code itself: every command and flag from the clap
//! definitions, every diagnostic code from the code list. A test fails when the committed
//! pages are stale; `MESHFILE_UPDATE_DOCS=1 cargo test -p meshfile docs` writes them anew.

use std::fmt::Write as _;

use clap::CommandFactory;
use meshfile_app::Exit;
use meshfile_manifest::{Code, Severity};

use crate::cli::Cli;

const GENERATED: &str = "<!-- Generated from the code by `MESHFILE_UPDATE_DOCS=1 cargo test -p meshfile docs`; do not edit. -->\n\n";

/// `docs/src/reference/commands.md`.
pub fn commands() -> String {
    let mut out = format!("{GENERATED}# Commands\n\n");
    out.push_str("Every command and flag, as `meshfile help` prints them. Exit statuses are the same for every command:\n\n");
    out.push_str("| status | meaning |\n|---|---|\n");
    for (exit, meaning) in [
        (Exit::Ok, "success (warnings allowed)"),
        (Exit::Invalid, "invalid input, or refused by CAS"),
        (
            Exit::Usage,
            "usage error: a flag, an argument or a named file is wrong",
        ),
        (
            Exit::Environment,
            "the environment failed: a file could not be read or written, CAS or a registry could not be reached",
        ),
    ] {
        let _ = writeln!(out, "| {} | {meaning} |", exit as u8);
    }
    out.push('\n');
    let mut cli = Cli::command();
    cli.build();
    for command in cli.get_subcommands() {
        command_section(&mut out, command, "meshfile");
    }
    out
}

fn command_section(out: &mut String, command: &clap::Command, parent: &str) {
    let name = format!("{parent} {}", command.get_name());
    if command.has_subcommands() {
        let _ = writeln!(out, "## `{name}`\n");
        if let Some(about) = command.get_long_about().or(command.get_about()) {
            let _ = writeln!(out, "{about}\n");
        }
        for sub in command.get_subcommands() {
            command_section(out, sub, &name);
        }
        return;
    }
    let _ = writeln!(out, "## `{name}`\n");
    if let Some(about) = command.get_long_about().or(command.get_about()) {
        let _ = writeln!(out, "{about}\n");
    }
    let aliases: Vec<&str> = command.get_visible_aliases().collect();
    if !aliases.is_empty() {
        let _ = writeln!(out, "Also: `{} {}`.\n", parent, aliases.join("`, `"));
    }
    let args: Vec<&clap::Arg> = command
        .get_arguments()
        .filter(|a| !a.is_hide_set() && a.get_id() != "help" && a.get_id() != "version")
        .collect();
    if args.is_empty() {
        return;
    }
    out.push_str("| argument | what it does | default |\n|---|---|---|\n");
    for arg in args {
        let mut names = Vec::new();
        if let Some(short) = arg.get_short() {
            names.push(format!("-{short}"));
        }
        if let Some(long) = arg.get_long() {
            names.push(format!("--{long}"));
        }
        let value = arg
            .get_value_names()
            .map(|v| v.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" "))
            .filter(|_| arg.get_action().takes_values());
        let mut spelled = if names.is_empty() {
            value.clone().map(|v| format!("<{v}>")).unwrap_or_default()
        } else {
            names.join(", ")
        };
        if !names.is_empty()
            && let Some(v) = &value
        {
            spelled.push_str(&format!(" {v}"));
        }
        let mut help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string().replace('\n', " "))
            .unwrap_or_default();
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        if !help.is_empty() && !help.ends_with('.') {
            help.push('.');
        }
        if !possible.is_empty() && arg.get_action().takes_values() {
            help.push_str(&format!(" One of {}.", possible.join(", ")));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        let default = if defaults.is_empty() || !arg.get_action().takes_values() {
            String::new()
        } else {
            format!("`{}`", defaults.join(" "))
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {default} |",
            spelled.replace('|', "\\|"),
            help.replace('|', "\\|")
        );
    }
    out.push('\n');
}

/// `docs/src/reference/diagnostics.md`.
pub fn diagnostics() -> String {
    let mut out = format!("{GENERATED}# Diagnostic codes\n\n");
    out.push_str("Every problem meshfile reports carries one of these codes. Codes are stable: never reused or renumbered, so scripts may match on them. `E` codes are errors; `W0xx` warnings do not make a manifest invalid; `W1xx` are `lint`'s. `meshfile explain CODE` prints a code's explanation, as below the table.\n\n");
    out.push_str("| code | severity | what it means | exit status |\n|---|---|---|---|\n");
    for code in Code::ALL {
        let severity = match code.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let exit = match code.severity() {
            Severity::Error => (Exit::of(*code) as u8).to_string(),
            Severity::Warning => "-".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {severity} | {} | {exit} |",
            code.as_str(),
            code.title().replace('|', "\\|")
        );
    }
    out.push_str("\n## Explanations\n");
    for code in Code::ALL {
        let _ = write!(
            out,
            "\n### {}: {}\n\n{}\n",
            code.as_str(),
            code.title(),
            markdown(code.explanation())
        );
    }
    out
}

/// An explanation as Markdown: its indented examples become code blocks, which in Markdown
/// need a blank line before them.
fn markdown(text: &str) -> String {
    let mut out = String::new();
    let mut previous = "";
    for line in text.lines() {
        if line.starts_with("    ") && !previous.is_empty() && !previous.starts_with("    ") {
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
        previous = line;
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn check(page: &str, text: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/src/reference")
            .join(page);
        if std::env::var("MESHFILE_UPDATE_DOCS").as_deref() == Ok("1") {
            std::fs::write(&path, text).expect("write the page");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{} is stale: run `MESHFILE_UPDATE_DOCS=1 cargo test -p meshfile docs` and commit it",
            path.display()
        );
    }

    #[test]
    fn docs_reference_pages_are_current() {
        check("commands.md", &super::commands());
        check("diagnostics.md", &super::diagnostics());
    }
}
