//! `explain`: what a diagnostic code means.

use meshfile_manifest::Code;

use crate::commands::check::code_line;
use crate::error::CliError;

pub fn run(code: Option<&str>) -> Result<String, CliError> {
    match code {
        None => Ok(Code::ALL.iter().map(|c| code_line(*c) + "\n").collect()),
        Some(text) => Code::parse(text)
            .map(|c| code_line(c) + "\n")
            .ok_or_else(|| CliError::UnknownCode(text.to_owned())),
    }
}
