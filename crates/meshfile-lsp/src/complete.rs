//! Completion from the specification: the fields a place takes (those not written yet), and
//! the values an enumerated field takes. Read from the text around the cursor, so it works
//! while the document does not parse.

use lsp_types::{CompletionItem, CompletionItemKind, Documentation, MarkupContent, MarkupKind};
use meshfile_manifest::ManifestKind;
use meshfile_yaml::Pos;

use crate::position;
use crate::schema::Schemas;

/// The manifest kind a text declares (`kind: mesh` or `kind: genservice`).
pub fn kind_of(text: &str) -> Option<ManifestKind> {
    let line = text.lines().find_map(|l| l.strip_prefix("kind:"))?;
    match line
        .split('#')
        .next()
        .unwrap_or_default()
        .trim()
        .trim_matches(['"', '\''])
    {
        "mesh" => Some(ManifestKind::Mesh),
        "genservice" => Some(ManifestKind::Service),
        _ => None,
    }
}

fn item(
    label: &str,
    kind: CompletionItemKind,
    doc: Option<&str>,
    insert: String,
) -> CompletionItem {
    CompletionItem {
        label: label.to_owned(),
        kind: Some(kind),
        detail: doc.and_then(|d| d.lines().next()).map(str::to_owned),
        documentation: doc.map(|d| {
            Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value: d.to_owned(),
            })
        }),
        insert_text: Some(insert),
        ..CompletionItem::default()
    }
}

/// The text typed on the cursor's line before it.
fn typed(text: &str, pos: Pos) -> String {
    let line = text
        .lines()
        .nth(pos.line.saturating_sub(1) as usize)
        .unwrap_or_default();
    line.chars()
        .take(pos.column.saturating_sub(1) as usize)
        .collect()
}

/// Whether the cursor is inside a reference being typed (`open` without its `close` after
/// it): completion then offers names, not fields.
fn inside(typed: &str, open: &str, close: &str) -> bool {
    typed
        .rfind(open)
        .is_some_and(|at| !typed[at + open.len()..].contains(close))
}

/// What completion offers from the mesh rather than the specification.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// After `$$SCONE::`: the secrets the service defines or imports.
    Secrets,
    /// After `{{`: the service's variables.
    Variables,
    /// An item of `secrets.import`: the secrets other services define.
    Importable,
}

/// Which names completion at `pos` needs from the mesh, if any.
pub fn wanted(text: &str, pos: Pos) -> Option<Wanted> {
    let typed = typed(text, pos);
    if inside(&typed, "$$SCONE::", "$$") {
        return Some(Wanted::Secrets);
    }
    if inside(&typed, "{{", "}}") {
        return Some(Wanted::Variables);
    }
    let context = position::context(text, pos);
    let in_imports = position::keys(&context) == ["secrets", "import"];
    (in_imports && typed.trim_start().starts_with('-')).then_some(Wanted::Importable)
}

/// Names as completion items.
pub fn names(wanted: Wanted, names: &crate::navigate::Names) -> Vec<CompletionItem> {
    let (list, kind) = match wanted {
        Wanted::Secrets => (&names.secrets, CompletionItemKind::VALUE),
        Wanted::Variables => (&names.variables, CompletionItemKind::VARIABLE),
        Wanted::Importable => (&names.importable, CompletionItemKind::VALUE),
    };
    list.iter()
        .map(|(name, detail)| CompletionItem {
            detail: Some(detail.clone()),
            ..item(name, kind, None, name.clone())
        })
        .collect()
}

pub fn complete(schemas: &Schemas, text: &str, pos: Pos) -> Vec<CompletionItem> {
    let typed = typed(text, pos);
    let Some(kind) = kind_of(text) else {
        // Without a kind, the one field that says which manifest this is.
        return ["mesh", "genservice"]
            .iter()
            .map(|k| {
                item(
                    &format!("kind: {k}"),
                    CompletionItemKind::FIELD,
                    None,
                    format!("kind: {k}"),
                )
            })
            .collect();
    };
    let context = position::context(text, pos);
    let mut keys: Vec<&str> = position::keys(&context);
    // After `key:` on this line: the key's values.
    let content = typed.trim_start().trim_start_matches("- ");
    if let Some((key, _)) = content.split_once(':') {
        keys.push(key.trim());
        let Some(place) = schemas.at(kind, &keys) else {
            return Vec::new();
        };
        return (place.values().into_iter())
            .map(|v| item(v, CompletionItemKind::ENUM_MEMBER, None, v.to_owned()))
            .collect();
    }
    let Some(place) = schemas.at(kind, &keys) else {
        return Vec::new();
    };
    let written = siblings(text, pos);
    (place.fields().into_iter())
        .filter(|(name, _)| !written.iter().any(|w| w == name))
        .map(|(name, doc)| item(name, CompletionItemKind::FIELD, doc, format!("{name}: ")))
        .collect()
}

/// The keys written at the cursor's level of its block (so they are not offered again).
fn siblings(text: &str, pos: Pos) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let at = (pos.line as usize).saturating_sub(1);
    let current = lines.get(at).copied().unwrap_or_default();
    let indent = current.len() - current.trim_start_matches([' ', '-']).len();
    let within = |l: &&&str| {
        let content = l.trim_start_matches([' ', '-']);
        content.is_empty() || l.len() - content.len() >= indent
    };
    let before = lines[..at.min(lines.len())].iter().rev().take_while(within);
    let after = lines.iter().skip(at + 1).take_while(within);
    before
        .chain(after)
        .filter(|l| l.len() - l.trim_start_matches([' ', '-']).len() == indent)
        .filter_map(|l| {
            l.trim_start_matches([' ', '-'])
                .split_once(':')
                .map(|(k, _)| k.trim().to_owned())
        })
        .collect()
}
