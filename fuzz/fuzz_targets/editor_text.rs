//! Any text as an editor's buffer, any position in it (or past it), as the language server
//! reads them before a mesh is known: completion and hover. None panics; positions the
//! answers carry lie in the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (Some(head), Some(rest)) = (data.get(..4), data.get(4..)) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let position = lsp_types::Position {
        line: u32::from(u16::from_le_bytes([head[0], head[1]])) % 512,
        character: u32::from(u16::from_le_bytes([head[2], head[3]])) % 512,
    };
    let (_, hover) = meshfile_lsp::text_answers(text, position);
    if let Some(range) = hover.and_then(|h| h.range) {
        let lines = text.lines().count().max(1) as u32;
        assert!(range.start.line <= lines && range.end.line <= lines, "{range:?}");
    }
});
