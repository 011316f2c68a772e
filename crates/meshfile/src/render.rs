//! Diagnostics for people: `FILE:LINE:COL: error[CODE]: message`, the source line, a marker.

use std::fmt::Write;

use meshfile_manifest::{Diagnostic, Severity};

/// Renders one diagnostic with a snippet of `source` (the file's text, if it could be read).
pub fn human(file: &str, source: Option<&str>, d: &Diagnostic) -> String {
    let severity = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut out = format!(
        "{file}:{}:{}: {severity}[{}]: {}\n",
        d.line,
        d.column,
        d.code.as_str(),
        d.message
    );
    let line_text = source.and_then(|s| s.lines().nth((d.line as usize).saturating_sub(1)));
    if let Some(text) = line_text {
        let number = d.line.to_string();
        let gutter = " ".repeat(number.len());
        let text = text.trim_end();
        let col = (d.column as usize).max(1);
        let width =
            if d.span.end.line == d.span.start.line && d.span.end.column > d.span.start.column {
                (d.span.end.column - d.span.start.column) as usize
            } else {
                text.chars().count().saturating_sub(col - 1).max(1)
            };
        let _ = writeln!(out, "{gutter} |");
        let _ = writeln!(out, "{number} | {text}");
        let _ = writeln!(
            out,
            "{gutter} | {}{}",
            " ".repeat(col - 1),
            "^".repeat(width.min(120))
        );
        if !d.path.is_empty() {
            let _ = writeln!(out, "{gutter} = at: {}", d.path);
        }
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "{gutter} = help: {hint}");
        }
    } else {
        if !d.path.is_empty() {
            let _ = writeln!(out, "  = at: {}", d.path);
        }
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "  = help: {hint}");
        }
    }
    out
}
