//! One file per command; what several share (printing) is here, the terminal as the use
//! cases see it in `terminal`, `progress` and `steps`.

pub mod apply;
pub mod cas;
pub mod explain;
pub mod graph;
pub mod images;
pub mod key;
pub mod lsp;
pub mod plan;
pub mod progress;
pub mod review;
pub mod schema;
pub mod sconectl;
pub mod sign;
pub mod steps;
pub mod template;
pub mod terminal;
pub mod validate;

use std::io::Write;

use meshfile_app::Error;
use meshfile_app::compile::Compilation;
use meshfile_manifest::Code;

/// Lets the process end without freeing a compiled mesh piece by piece: its millions of
/// small allocations take ~25 ms to free at 10,000 services, and the process is about to
/// exit, which returns the memory at once.
pub fn discard(compilation: Compilation) {
    std::mem::forget(compilation);
}

/// Writes `text` to standard output.
pub fn print(text: &str) -> Result<(), Error> {
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Error::new(Code::WriteFailed, "cannot write to standard output").caused_by(e))
}

/// Writes `value` to standard output as pretty JSON.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::new(Code::WriteFailed, "cannot write JSON").caused_by(e))?;
    print(&(text + "\n"))
}
