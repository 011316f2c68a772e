//! `lsp`: the language server on standard input and output (`meshfile_lsp`).

use meshfile_app::{Error, Exit, Stop};
use meshfile_manifest::Code;

pub fn run() -> Result<Exit, Stop> {
    meshfile_lsp::run_stdio().map_err(|e| {
        Error::new(Code::WriteFailed, e.to_string())
            .hint("the editor ended the connection; it starts `meshfile lsp` again")
    })?;
    Ok(Exit::Ok)
}
