//! The one renderer for people: manifest diagnostics and command errors alike, as
//! `FILE:LINE:COL: error[CODE]: message`, the source line with a marker, and `= help:` lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use meshfile_app::{Error, Report};
use meshfile_manifest::{Diagnostic, Severity};

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A file's text with the start of each line, found once: rendering many diagnostics of one
/// file stays linear in their number.
pub struct Source<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str) -> Source<'a> {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source { text, starts }
    }

    /// Line `n` (1-based) without its line break.
    fn line(&self, n: u32) -> Option<&'a str> {
        let i = usize::try_from(n).ok()?.checked_sub(1)?;
        let start = *self.starts.get(i)?;
        let end = self.starts.get(i + 1).map_or(self.text.len(), |e| e - 1);
        self.text.get(start..end)
    }
}

/// One diagnostic with a snippet of its file, if the text is at hand.
pub fn diagnostic(file: &str, source: Option<&Source<'_>>, d: &Diagnostic) -> String {
    let mut out = format!(
        "{file}:{}:{}: {}[{}]: {}\n",
        d.line,
        d.column,
        severity(d.severity),
        d.code.as_str(),
        d.message
    );
    let mut gutter = "  ".to_owned();
    if let Some(text) = source.and_then(|s| s.line(d.line)) {
        let number = d.line.to_string();
        gutter = " ".repeat(number.len());
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
        gutter.push(' ');
    }
    if !d.path.is_empty() {
        let _ = writeln!(out, "{gutter}= at: {}", d.path);
    }
    if let Some(hint) = &d.hint {
        let _ = writeln!(out, "{gutter}= help: {hint}");
    }
    out
}

/// A command's error: its code, its message with the cause chain once, what to do.
pub fn error(e: &Error) -> String {
    let mut out = format!("error[{}]: {}", e.code.as_str(), e.message);
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.source.as_deref().map(|s| s as _);
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            let _ = write!(out, ": {text}");
        }
        cause = c.source();
    }
    out.push('\n');
    for hint in &e.hints {
        let _ = writeln!(out, "  = help: {hint}");
    }
    out
}

/// How many diagnostics people are shown in one run; the rest are counted. Past a hundred,
/// more of them help nobody read the first, and a huge input would flood the terminal.
pub const SHOWN: usize = 100;

/// Counts diagnostics against [`SHOWN`].
#[derive(Default)]
pub struct Shown {
    shown: usize,
    hidden: usize,
}

impl Shown {
    /// Whether the next diagnostic is shown.
    pub fn admit(&mut self) -> bool {
        if self.shown < SHOWN {
            self.shown += 1;
            true
        } else {
            self.hidden += 1;
            false
        }
    }

    /// The line that says how many were not shown, if any.
    pub fn remainder(&self) -> Option<String> {
        (self.hidden > 0).then(|| {
            format!(
                "... and {} more not shown (the first {SHOWN} are; `--output json` of `validate` lists all)\n",
                self.hidden
            )
        })
    }
}

/// The problems of a report, in order, with snippets: the first [`SHOWN`] and a count.
pub fn report(report: &Report) -> String {
    problems(report, |_| true)
}

/// The problems of `report` that `shown` admits, rendered as [`report`] does.
pub fn problems(report: &Report, shown: impl Fn(&meshfile_plan::Located) -> bool) -> String {
    let sources: BTreeMap<&str, Source<'_>> = report
        .sources
        .iter()
        .map(|(file, text)| (file.as_str(), Source::new(text)))
        .collect();
    let mut out = String::new();
    let mut admitted = Shown::default();
    for p in (report.problems.iter())
        .filter(|p| shown(p))
        .filter(|_| admitted.admit())
    {
        out.push_str(&diagnostic(
            &p.file,
            sources.get(p.file.as_str()),
            &p.diagnostic,
        ));
        out.push('\n');
    }
    out.extend(admitted.remainder());
    out
}

/// Writes to standard error; a closed stderr is not worth failing for. Control characters
/// (what a hostile manifest could use to retitle or clear the terminal: `ESC ] 0 ; ... BEL`,
/// `ESC [ 2 J`) are shown escaped, wherever in the text they came from.
pub fn eprint(text: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(escape_controls(text).as_bytes());
}

/// `text` with every control character but line break and tab written as `\u{..}`.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let is_control = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.contains(is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_control(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The plural ending of a count's noun: `""` for one, `"s"` otherwise.
pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(
            escape_controls("a\u{1b}]0;owned\u{7}b\u{1b}[2J\n\tc\u{9b}"),
            "a\\u{1b}]0;owned\\u{7}b\\u{1b}[2J\n\tc\\u{9b}"
        );
        assert!(matches!(
            escape_controls("plain\n"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
