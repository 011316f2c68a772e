//! Deterministic block YAML: the same tree always gives the same bytes, and parses back to it.
//!
//! Quoting follows meaning, not source: a plain scalar (a number, a boolean, null, or a word)
//! is written plain when that is unambiguous; every other scalar is a string, written plain
//! only when YAML would read it back as that same string, else as a literal block (multi-line
//! text) or double-quoted.

use crate::{Node, Style, Typed, Value, resolve_plain};

/// Writes `node` as a YAML document ending in a newline.
pub fn emit(node: &Node) -> String {
    let mut out = String::new();
    match &node.value {
        Value::Scalar { .. } => {
            scalar(&mut out, node, 0);
            out.push('\n');
        }
        _ => block(&mut out, node, 0),
    }
    out
}

fn is_empty_collection(node: &Node) -> Option<&'static str> {
    match &node.value {
        Value::Sequence(items) if items.is_empty() => Some("[]"),
        Value::Mapping(entries) if entries.is_empty() => Some("{}"),
        _ => None,
    }
}

/// Writes a collection whose first line starts at the current position with `indent` columns.
fn block(out: &mut String, node: &Node, indent: usize) {
    if let Some(empty) = is_empty_collection(node) {
        out.push_str(empty);
        out.push('\n');
        return;
    }
    match &node.value {
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    pad(out, indent);
                }
                out.push_str("- ");
                child(out, item, indent + 2);
            }
        }
        Value::Mapping(entries) => {
            for (i, entry) in entries.iter().enumerate() {
                if i > 0 {
                    pad(out, indent);
                }
                let key = entry.key.as_scalar().unwrap_or_default();
                string(out, key, indent, true);
                out.push(':');
                match &entry.value.value {
                    Value::Scalar { .. } => {
                        out.push(' ');
                        scalar(out, &entry.value, indent + 2);
                        out.push('\n');
                    }
                    _ if is_empty_collection(&entry.value).is_some() => {
                        out.push(' ');
                        block(out, &entry.value, indent + 2);
                    }
                    Value::Sequence(_) => {
                        out.push('\n');
                        pad(out, indent);
                        block(out, &entry.value, indent);
                    }
                    Value::Mapping(_) => {
                        out.push('\n');
                        pad(out, indent + 2);
                        block(out, &entry.value, indent + 2);
                    }
                }
            }
        }
        Value::Scalar { .. } => {
            scalar(out, node, indent);
            out.push('\n');
        }
    }
}

/// Writes a list item's content, which starts right after `- `.
fn child(out: &mut String, node: &Node, indent: usize) {
    match &node.value {
        Value::Scalar { .. } => {
            scalar(out, node, indent);
            out.push('\n');
        }
        _ => block(out, node, indent),
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn scalar(out: &mut String, node: &Node, indent: usize) {
    let Value::Scalar { text, style } = &node.value else {
        return;
    };
    if *style == Style::Plain && !matches!(resolve_plain(text), Typed::Str(_)) {
        // A number, boolean or null: its text is a single word of YAML's core schema.
        out.push_str(if text.is_empty() { "~" } else { text });
    } else {
        string(out, text, indent, false);
    }
}

/// Writes text so that YAML reads it back as exactly this string.
fn string(out: &mut String, text: &str, indent: usize, is_key: bool) {
    if plain_safe(text) && matches!(resolve_plain(text), Typed::Str(_)) {
        out.push_str(text);
    } else if !is_key && literal_safe(text) {
        literal(out, text, indent);
    } else {
        double_quoted(out, text);
    }
}

/// Plain scalars that need no context to be read back the same way.
fn plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if text.len() > 200
        || first.is_whitespace()
        || text.ends_with(char::is_whitespace)
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || text.ends_with(':')
        || text.contains(": ")
        || text.contains(" #")
        || text.contains(['\t', '\n', '\r'])
        || text
            .chars()
            .any(|c| c.is_control() || c == '\u{feff}' || !c.is_ascii())
        || text.contains(['{', '}', '[', ']', ','])
    {
        return false;
    }
    // YAML 1.1 readers treat these words as booleans; keep them quoted for every reader.
    let lower = text.to_ascii_lowercase();
    !matches!(lower.as_str(), "y" | "n" | "yes" | "no" | "on" | "off")
        && !text.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '.')
}

/// Multi-line text that a literal block can carry unchanged.
fn literal_safe(text: &str) -> bool {
    text.contains('\n')
        && !text.starts_with([' ', '\t', '\n'])
        && !text
            .chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{feff}')
        && !text.contains("\u{2028}")
        && !text.contains("\u{2029}")
        && !text.contains('\u{85}')
}

fn literal(out: &mut String, text: &str, indent: usize) {
    let body = text.trim_end_matches('\n');
    let trailing = text.len() - body.len();
    out.push_str(match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    });
    let indent = indent.max(2);
    for line in text
        .split('\n')
        .take(body.split('\n').count() + trailing.saturating_sub(1))
    {
        out.push('\n');
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
    }
}

fn double_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            '\u{feff}' => out.push_str("\\uFEFF"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, parse};
    use proptest::prelude::*;

    fn same_meaning(a: &Node, b: &Node) -> bool {
        match (&a.value, &b.value) {
            (Value::Scalar { text: x, .. }, Value::Scalar { text: y, .. }) => {
                let (p, q) = (a.typed(), b.typed());
                match (&p, &q) {
                    (Some(Typed::Str(_)), _) | (_, Some(Typed::Str(_))) => x == y && p == q,
                    _ => format!("{p:?}") == format!("{q:?}"),
                }
            }
            (Value::Sequence(x), Value::Sequence(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_meaning(p, q))
            }
            (Value::Mapping(x), Value::Mapping(y)) => {
                x.len() == y.len()
                    && x.iter().zip(y).all(|(p, q)| {
                        p.key_text() == q.key_text() && same_meaning(&p.value, &q.value)
                    })
            }
            _ => false,
        }
    }

    fn round_trip(node: &Node) {
        let text = emit(node);
        let back = parse(&text, &Limits::default())
            .unwrap_or_else(|e| panic!("emitted YAML does not parse: {e}\n{text}"));
        assert!(
            same_meaning(node, &back),
            "changed meaning:\n{text}\n{back:?}"
        );
        assert_eq!(emit(&back), text, "emit is not a fixpoint");
    }

    #[test]
    fn quotes_what_would_change_meaning() {
        let n = Node::mapping(vec![
            ("port".into(), Node::scalar("443", Style::DoubleQuoted)),
            ("count".into(), Node::scalar("443", Style::Plain)),
            ("flag".into(), Node::scalar("yes", Style::DoubleQuoted)),
            (
                "ref".into(),
                Node::scalar("$$SCONE::x$$", Style::DoubleQuoted),
            ),
            ("var".into(), Node::scalar("{{x}}", Style::DoubleQuoted)),
            ("text".into(), Node::scalar("a\n  b\n", Style::DoubleQuoted)),
            ("tol".into(), Node::scalar("-G", Style::DoubleQuoted)),
            ("empty".into(), Node::sequence(vec![])),
        ]);
        let text = emit(&n);
        assert_eq!(
            text,
            "port: \"443\"\ncount: 443\nflag: \"yes\"\nref: $$SCONE::x$$\nvar: \"{{x}}\"\ntext: |\n  a\n    b\ntol: \"-G\"\nempty: []\n"
        );
        round_trip(&n);
    }

    fn arb_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9_ .:#{}$\\-]{0,12}",
            "[a-z ]{0,6}\n[a-z ]{0,6}\n{0,3}",
            any::<String>(),
            Just("null".to_owned()),
            Just("1.10".to_owned()),
        ]
    }

    fn arb_node() -> impl Strategy<Value = Node> {
        let leaf = (arb_text(), any::<bool>()).prop_map(|(t, quoted)| {
            Node::scalar(
                t,
                if quoted {
                    Style::DoubleQuoted
                } else {
                    Style::Plain
                },
            )
        });
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Node::sequence),
                prop::collection::btree_map(arb_text(), inner, 0..5)
                    .prop_map(|m| Node::mapping(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn emitted_yaml_parses_back(node in arb_node()) {
            // Plain scalars that are not numbers/booleans/null are strings; normalise before comparing.
            round_trip(&normalise(node));
        }
    }

    fn normalise(node: Node) -> Node {
        match node.value {
            Value::Scalar { text, style } => {
                let style =
                    if style == Style::Plain && matches!(resolve_plain(&text), Typed::Str(_)) {
                        Style::DoubleQuoted
                    } else {
                        style
                    };
                Node::scalar(text, style)
            }
            Value::Sequence(items) => Node::sequence(items.into_iter().map(normalise).collect()),
            Value::Mapping(entries) => Node::mapping(
                entries
                    .into_iter()
                    .map(|e| (e.key_text().to_owned(), normalise(e.value)))
                    .collect(),
            ),
        }
    }
}
