//! `explain`: what a diagnostic code means.

use meshfile_app::{Error, Exit, Stop};
use meshfile_manifest::{Code, Severity};

use crate::commands::print;

/// A code's line in `explain`'s list and the reference.
pub fn code_line(code: Code) -> String {
    let severity = match code.severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    format!("{}  {severity:<7}  {}", code.as_str(), code.title())
}

pub fn run(code: Option<&str>) -> Result<Exit, Stop> {
    let text = match code {
        None => Code::ALL.iter().map(|c| code_line(*c) + "\n").collect(),
        Some(text) => Code::parse(text)
            .map(|c| format!("{}\n\n{}\n", code_line(c), c.explanation()))
            .ok_or_else(|| {
                Error::new(
                    Code::BadArguments,
                    format!("unknown diagnostic code `{text}`"),
                )
                .hint("run `meshfile explain` to list every code")
            })?,
    };
    print(&text)?;
    Ok(Exit::Ok)
}
