//! Positions: the protocol's (0-based lines, UTF-16 columns) and meshfile's (1-based lines,
//! columns in characters), and what a position points at in a YAML document.

use meshfile_yaml::{Node, Pos, Span, Value};

/// meshfile's position of a protocol position in `text`.
pub fn from_lsp(text: &str, position: lsp_types::Position) -> Pos {
    let line = text.lines().nth(position.line as usize).unwrap_or_default();
    let mut units = 0u32;
    let mut column = 1u32;
    for c in line.chars() {
        if units >= position.character {
            break;
        }
        units += c.len_utf16() as u32;
        column += 1;
    }
    Pos {
        line: position.line + 1,
        column,
    }
}

/// The protocol's position of meshfile's `pos` in `text` (a position past a line's end stays
/// at its end).
pub fn to_lsp(text: &str, pos: Pos) -> lsp_types::Position {
    let line_index = pos.line.saturating_sub(1);
    let line = text.lines().nth(line_index as usize).unwrap_or_default();
    let units: u32 = (line.chars())
        .take(pos.column.saturating_sub(1) as usize)
        .map(|c| c.len_utf16() as u32)
        .sum();
    lsp_types::Position {
        line: line_index,
        character: units,
    }
}

/// The protocol's range of a span; an empty span covers the rest of its word.
pub fn range(text: &str, span: Span) -> lsp_types::Range {
    let start = to_lsp(text, span.start);
    let end = if span.end > span.start {
        to_lsp(text, span.end)
    } else {
        let line = text.lines().nth(start.line as usize).unwrap_or_default();
        let word: u32 = (line
            .chars()
            .skip(span.start.column.saturating_sub(1) as usize))
        .take_while(|c| !c.is_whitespace() && *c != ':')
        .map(|c| c.len_utf16() as u32)
        .sum();
        lsp_types::Position {
            line: start.line,
            character: start.character + word.max(1),
        }
    };
    lsp_types::Range { start, end }
}

/// One step of a path into a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// What a position points at: a mapping's key, or a scalar value, with the path to it (the
/// key included).
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub path: Vec<Step>,
    pub on: On,
}

#[derive(Clone, Debug, PartialEq)]
pub enum On {
    Key,
    /// A scalar's text and span.
    Value(String, Span),
}

fn contains(span: Span, pos: Pos) -> bool {
    span.start <= pos && pos <= span.end
}

/// The deepest key or scalar of `node` at `pos`.
pub fn locate(node: &Node, pos: Pos) -> Option<Hit> {
    let mut path = Vec::new();
    let mut here = node;
    loop {
        match &here.value {
            Value::Mapping(entries) => {
                let entry = entries.iter().find(|e| {
                    contains(e.key.span, pos)
                        || contains(e.value.span, pos)
                        || (e.key.span.start.line == pos.line && e.value.span.start > pos)
                })?;
                path.push(Step::Key(entry.key_text().to_owned()));
                if contains(entry.key.span, pos) {
                    return Some(Hit { path, on: On::Key });
                }
                here = &entry.value;
            }
            Value::Sequence(items) => {
                let (i, item) = items
                    .iter()
                    .enumerate()
                    .find(|(_, item)| contains(item.span, pos))?;
                path.push(Step::Index(i));
                here = item;
            }
            Value::Scalar { text, .. } => {
                return Some(Hit {
                    path,
                    on: On::Value(text.to_string(), here.span),
                });
            }
        }
    }
}

/// The keys of a path, indices left out: what a schema is walked by.
pub fn keys(path: &[Step]) -> Vec<&str> {
    path.iter()
        .filter_map(|s| match s {
            Step::Key(k) => Some(k.as_str()),
            Step::Index(_) => None,
        })
        .collect()
}

/// The path at a line being typed, read from the indentation of the lines above: where a new
/// key at `pos` would go. Works on text that does not parse (yet).
pub fn context(text: &str, pos: Pos) -> Vec<Step> {
    let lines: Vec<&str> = text.lines().collect();
    let index = (pos.line as usize).saturating_sub(1);
    let current = lines.get(index).copied().unwrap_or_default();
    let typed: String = current
        .chars()
        .take(pos.column.saturating_sub(1) as usize)
        .collect();
    // The indentation of what is typed, a list item's dash counted as indentation.
    let mut indent = indentation(&typed);
    let mut path: Vec<Step> = Vec::new();
    if typed.trim_start().starts_with("- ") || typed.trim_start() == "-" {
        path.push(Step::Index(0));
    }
    for line in lines[..index.min(lines.len())].iter().rev() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let own = line.len() - content.len();
        if own >= indent {
            continue;
        }
        let item = content.strip_prefix("- ");
        let key_part = item.unwrap_or(content);
        if let Some((key, rest)) = key_part.split_once(':')
            && rest.trim().is_empty()
        {
            path.push(Step::Key(key.trim().to_owned()));
        }
        if item.is_some() {
            path.push(Step::Index(0));
            indent = own;
        } else {
            indent = own;
        }
        if own == 0 {
            break;
        }
    }
    path.reverse();
    path
}

fn indentation(line: &str) -> usize {
    let mut n = 0;
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start_matches(' ');
        n += rest.len() - trimmed.len();
        match trimmed.strip_prefix("- ") {
            Some(after) => {
                n += 2;
                rest = after;
            }
            None => return n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_columns_round_trip() {
        let text = "a: \"é😀x\"\n";
        let pos = Pos { line: 1, column: 7 };
        let lsp = to_lsp(text, pos);
        assert_eq!(lsp.character, 7);
        assert_eq!(from_lsp(text, lsp), pos);
    }

    #[test]
    fn the_context_of_a_line_being_typed() {
        let text = "kind: mesh\nservices:\n  - name: a\n    ima\n";
        let path = context(text, Pos { line: 4, column: 8 });
        assert_eq!(path, vec![Step::Key("services".into()), Step::Index(0)]);
        let text = "kind: mesh\npolicy:\n  \n";
        assert_eq!(
            context(text, Pos { line: 3, column: 3 }),
            vec![Step::Key("policy".into())]
        );
    }
}
