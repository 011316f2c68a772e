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

/// A top-level mapping given entry by entry: the text [`emit`] gives for the whole mapping,
/// with only one entry's tree in memory at a time (for files with thousands of entries).
pub fn emit_entries(entries: impl IntoIterator<Item = (String, Node)>) -> String {
    let mut out = String::new();
    for (key, value) in entries {
        block(&mut out, &Node::mapping(vec![(key, value)]), 0);
    }
    if out.is_empty() {
        out.push_str("{}\n");
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
    const SPACES: &str = "                                                                ";
    let mut left = indent;
    while left > 0 {
        let n = left.min(SPACES.len());
        out.push_str(&SPACES[..n]);
        left -= n;
    }
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

/// Plain scalars that need no context to be read back the same way: printable ASCII without
/// flow indicators, comment or mapping markers, leading indicators or surrounding spaces, and
/// not a word that YAML 1.1 readers take for a boolean. One pass: every key goes through here.
fn plain_safe(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if bytes.len() > 200
        || first == b' '
        || last == b' '
        || last == b':'
        || b"-?:,[]{}#&*!|>'\"%@`+.".contains(&first)
        || first.is_ascii_digit()
    {
        return false;
    }
    let mut previous = 0u8;
    for &b in bytes {
        let printable = (0x20..0x7f).contains(&b);
        if !printable
            || matches!(b, b'{' | b'}' | b'[' | b']' | b',')
            || (previous == b':' && b == b' ')
            || (previous == b' ' && b == b'#')
        {
            return false;
        }
        previous = b;
    }
    !(bytes.len() <= 3
        && ["y", "n", "yes", "no", "on", "off"]
            .iter()
            .any(|word| text.eq_ignore_ascii_case(word)))
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
    let mut unescaped = 0;
    for (at, c) in text.char_indices() {
        let escape = matches!(
            c,
            '"' | '\\' | '\u{85}' | '\u{a0}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
        ) || c.is_control();
        if !escape {
            continue;
        }
        out.push_str(&text[unescaped..at]);
        unescaped = at + c.len_utf8();
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
            c => out.push_str(&format!("\\x{:02X}", c as u32)),
        }
    }
    out.push_str(&text[unescaped..]);
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
            ("port", Node::scalar("443", Style::DoubleQuoted)),
            ("count", Node::scalar("443", Style::Plain)),
            ("flag", Node::scalar("yes", Style::DoubleQuoted)),
            ("ref", Node::scalar("$$SCONE::x$$", Style::DoubleQuoted)),
            ("var", Node::scalar("{{x}}", Style::DoubleQuoted)),
            ("text", Node::scalar("a\n  b\n", Style::DoubleQuoted)),
            ("tol", Node::scalar("-G", Style::DoubleQuoted)),
            ("empty", Node::sequence(vec![])),
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

        #[test]
        fn entries_emit_like_their_mapping(
            entries in prop::collection::btree_map(arb_text(), arb_node(), 0..5)
        ) {
            let entries: Vec<(String, Node)> = entries.into_iter().collect();
            prop_assert_eq!(emit_entries(entries.clone()), emit(&Node::mapping(entries)));
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
