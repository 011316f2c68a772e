//! meshfile's diagnostics as the protocol carries them, and the quick fixes they offer.

use std::path::Path;

use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, DiagnosticSeverity,
    NumberOrString, PublishDiagnosticsParams, TextEdit, Url, WorkspaceEdit,
};
use meshfile_manifest::{Diagnostic, Severity};
use serde_json::json;

use crate::position;

/// Where a diagnostic's replacement travels to the quick fix: the diagnostic's `data`.
const REPLACEMENT: &str = "replacement";

/// One file's diagnostics for `textDocument/publishDiagnostics`, and `notes` as information
/// (`None` for a relative path, which has no URI).
pub fn publish(
    path: &Path,
    text: &str,
    found: &[Diagnostic],
    notes: &[Diagnostic],
) -> Option<PublishDiagnosticsParams> {
    let severity = |d: &Diagnostic| match d.severity {
        Severity::Error => DiagnosticSeverity::ERROR,
        Severity::Warning => DiagnosticSeverity::WARNING,
    };
    let found = found.iter().map(|d| one(text, d, severity(d)));
    let notes = notes
        .iter()
        .map(|d| one(text, d, DiagnosticSeverity::INFORMATION));
    Some(PublishDiagnosticsParams {
        uri: Url::from_file_path(path).ok()?,
        diagnostics: found.chain(notes).collect(),
        version: None,
    })
}

fn one(text: &str, d: &Diagnostic, severity: DiagnosticSeverity) -> lsp_types::Diagnostic {
    let message = match &d.hint {
        Some(hint) => format!("{}\nhelp: {hint}", d.message),
        None => d.message.clone(),
    };
    lsp_types::Diagnostic {
        range: position::range(text, d.span),
        severity: Some(severity),
        code: Some(NumberOrString::String(d.code.as_str().to_owned())),
        source: Some("meshfile".into()),
        message,
        data: d.replacement.as_ref().map(|r| json!({ REPLACEMENT: r })),
        ..lsp_types::Diagnostic::default()
    }
}

/// A quick fix for each diagnostic of the request that has one obvious fix.
pub fn quick_fixes(params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let uri = &params.text_document.uri;
    (params.context.diagnostics.iter())
        .filter_map(|d| {
            let replacement = d.data.as_ref()?.get(REPLACEMENT)?.as_str()?;
            let edit = TextEdit {
                range: d.range,
                new_text: replacement.to_owned(),
            };
            Some(CodeActionOrCommand::CodeAction(CodeAction {
                title: format!("Replace with `{replacement}`"),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![d.clone()]),
                edit: Some(WorkspaceEdit {
                    changes: Some([(uri.clone(), vec![edit])].into_iter().collect()),
                    ..WorkspaceEdit::default()
                }),
                is_preferred: Some(true),
                ..CodeAction::default()
            }))
        })
        .collect()
}
