//! Events from `saphyr-parser` folded into a [`Node`] tree, iteratively and within limits.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span as RawSpan};

use crate::{Entry, Error, ErrorKind, Node, Pos, Span, Style, Value};

/// Bounds that keep hostile input cheap: checked while parsing, before work grows.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_bytes: u64,
    /// Deepest accepted nesting of lists and mappings.
    pub max_depth: usize,
    /// Most nodes the document may expand to, aliases counted at every use. The scalar text
    /// a document expands to is bounded by `max_bytes` too: an alias repeats its anchor's text.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 * 1024 * 1024,
            max_depth: 64,
            max_nodes: 4_000_000,
        }
    }
}

/// Parses raw bytes: checks size and UTF-8 first, so the error can say where the bad byte is.
pub fn parse_bytes(bytes: &[u8], limits: &Limits) -> Result<Node, Error> {
    check_size(bytes.len() as u64, limits)?;
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, limits),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            // The prefix is valid UTF-8 by definition of `valid_up_to`.
            let prefix = std::str::from_utf8(valid).unwrap_or_default();
            Err(Error {
                kind: ErrorKind::InvalidUtf8,
                pos: end_pos(prefix),
            })
        }
    }
}

fn check_size(size: u64, limits: &Limits) -> Result<(), Error> {
    if size > limits.max_bytes {
        return Err(Error {
            kind: ErrorKind::TooLarge {
                size,
                limit: limits.max_bytes,
            },
            pos: Pos { line: 1, column: 1 },
        });
    }
    Ok(())
}

/// The position just after `text`.
fn end_pos(text: &str) -> Pos {
    let line = text.bytes().filter(|b| *b == b'\n').count() + 1;
    let last = text.rsplit('\n').next().unwrap_or_default();
    Pos {
        line: line as u32,
        column: last.chars().count() as u32 + 1,
    }
}

/// Parses exactly one YAML document.
pub fn parse(text: &str, limits: &Limits) -> Result<Node, Error> {
    check_size(text.len() as u64, limits)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Builder::new(limits, text).run(Parser::new_from_str(text))
}

/// Where a quoted scalar really ends: the parser's span runs on over a trailing comment.
fn quoted_end(line: &str, start: Pos, style: Style) -> Option<Pos> {
    let quote = match style {
        Style::DoubleQuoted => '"',
        Style::SingleQuoted => '\'',
        _ => return None,
    };
    let mut chars = line.chars().enumerate().skip(start.column as usize);
    let mut escaped = false;
    while let Some((i, c)) = chars.next() {
        if escaped {
            escaped = false;
        } else if quote == '"' && c == '\\' {
            escaped = true;
        } else if c == quote {
            if quote == '\'' && line.chars().nth(i + 1) == Some('\'') {
                chars.next();
                continue;
            }
            return Some(Pos {
                line: start.line,
                column: i as u32 + 2,
            });
        }
    }
    None
}

fn pos(m: saphyr_parser::Marker) -> Pos {
    Pos {
        line: m.line() as u32,
        column: m.col() as u32 + 1,
    }
}

fn span(s: RawSpan) -> Span {
    Span {
        start: pos(s.start),
        end: pos(s.end),
    }
}

fn syntax(e: ScanError) -> Error {
    Error {
        kind: ErrorKind::Syntax(e.info().to_owned()),
        pos: pos(*e.marker()),
    }
}

enum Frame {
    Sequence {
        items: Vec<Node>,
        start: Span,
        anchor: usize,
        tag: Option<Box<Box<str>>>,
    },
    Mapping {
        entries: Vec<Entry>,
        key: Option<Node>,
        /// Built only for large mappings; small ones are searched directly.
        index: Option<HashMap<String, Pos>>,
        start: Span,
        anchor: usize,
        tag: Option<Box<Box<str>>>,
    },
}

struct Builder<'l> {
    limits: &'l Limits,
    lines: Vec<&'l str>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    /// Bytes of scalar text so far, aliases counted at every use.
    text: u64,
    root: Option<Node>,
}

fn tag_text(tag: Option<std::borrow::Cow<'_, saphyr_parser::Tag>>) -> Option<Box<Box<str>>> {
    tag.map(|t| Box::new(format!("{}{}", t.handle, t.suffix).into()))
}

impl<'l> Builder<'l> {
    fn new(limits: &'l Limits, text: &'l str) -> Self {
        Builder {
            limits,
            lines: text.lines().collect(),
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            text: 0,
            root: None,
        }
    }

    fn run<'i>(mut self, parser: Parser<'i, saphyr_parser::StrInput<'i>>) -> Result<Node, Error> {
        let mut documents = 0;
        for event in parser {
            let (event, raw) = event.map_err(syntax)?;
            let at = span(raw);
            match event {
                Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
                Event::StreamEnd => break,
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(Error {
                            kind: ErrorKind::MultipleDocuments,
                            pos: at.start,
                        });
                    }
                }
                Event::Alias(id) => {
                    let node = self.anchors.get(&id).cloned().ok_or(Error {
                        kind: ErrorKind::UnknownAlias(id.to_string()),
                        pos: at.start,
                    })?;
                    let (nodes, text) = measure(&node);
                    self.count(nodes, at.start)?;
                    self.count_text(text, at.start)?;
                    self.push(node)?;
                }
                Event::Scalar(text, style, anchor, tag) => {
                    self.count(1, at.start)?;
                    self.count_text(text.len() as u64, at.start)?;
                    let style = match style {
                        ScalarStyle::Plain => Style::Plain,
                        ScalarStyle::SingleQuoted => Style::SingleQuoted,
                        ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                        ScalarStyle::Literal => Style::Literal,
                        ScalarStyle::Folded => Style::Folded,
                    };
                    let mut span = at;
                    if let Some(line) = self.lines.get((at.start.line as usize).saturating_sub(1))
                        && let Some(end) = quoted_end(line, Span::at(at.start).start, style)
                    {
                        span.end = end;
                    }
                    let node = Node {
                        value: Value::Scalar {
                            text: text.into_owned().into(),
                            style,
                        },
                        span,
                        tag: tag_text(tag),
                    };
                    if anchor > 0 {
                        self.anchors.insert(anchor, node.clone());
                    }
                    self.push(node)?;
                }
                Event::SequenceStart(anchor, tag) => {
                    self.open(at.start)?;
                    self.stack.push(Frame::Sequence {
                        items: Vec::new(),
                        start: at,
                        anchor,
                        tag: tag_text(tag),
                    });
                }
                Event::MappingStart(anchor, tag) => {
                    self.open(at.start)?;
                    self.stack.push(Frame::Mapping {
                        entries: Vec::new(),
                        key: None,
                        index: None,
                        start: at,
                        anchor,
                        tag: tag_text(tag),
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let node = match self.stack.pop() {
                        Some(Frame::Sequence {
                            items,
                            start,
                            anchor,
                            tag,
                        }) => (Value::Sequence(items), start, anchor, tag),
                        Some(Frame::Mapping {
                            entries,
                            start,
                            anchor,
                            tag,
                            ..
                        }) => (Value::Mapping(entries), start, anchor, tag),
                        None => continue,
                    };
                    let (value, start, anchor, tag) = node;
                    let node = Node {
                        value,
                        span: Span {
                            start: start.start,
                            end: at.end,
                        },
                        tag,
                    };
                    if anchor > 0 {
                        self.anchors.insert(anchor, node.clone());
                    }
                    self.push(node)?;
                }
            }
        }
        self.root.ok_or(Error {
            kind: ErrorKind::Empty,
            pos: Pos { line: 1, column: 1 },
        })
    }

    fn count(&mut self, n: usize, at: Pos) -> Result<(), Error> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(Error {
                kind: ErrorKind::TooManyNodes {
                    limit: self.limits.max_nodes,
                },
                pos: at,
            });
        }
        Ok(())
    }

    fn count_text(&mut self, n: u64, at: Pos) -> Result<(), Error> {
        self.text = self.text.saturating_add(n);
        if self.text > self.limits.max_bytes {
            return Err(Error {
                kind: ErrorKind::ExpandsTooLarge {
                    limit: self.limits.max_bytes,
                },
                pos: at,
            });
        }
        Ok(())
    }

    fn open(&mut self, at: Pos) -> Result<(), Error> {
        self.count(1, at)?;
        if self.stack.len() >= self.limits.max_depth {
            return Err(Error {
                kind: ErrorKind::TooDeep {
                    limit: self.limits.max_depth,
                },
                pos: at,
            });
        }
        Ok(())
    }

    fn push(&mut self, node: Node) -> Result<(), Error> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping {
                entries,
                key,
                index,
                ..
            }) => match key.take() {
                None => {
                    let text = match &node.value {
                        Value::Scalar { text, .. } => text,
                        Value::Sequence(_) => {
                            return Err(complex_key("a list", node.span.start));
                        }
                        Value::Mapping(_) => {
                            return Err(complex_key("a mapping", node.span.start));
                        }
                    };
                    if let Some(first) = first_definition(entries, index, text) {
                        return Err(Error {
                            kind: ErrorKind::DuplicateKey {
                                key: text.to_string(),
                                first,
                            },
                            pos: node.span.start,
                        });
                    }
                    if let Some(index) = index {
                        index.insert(text.to_string(), node.span.start);
                    }
                    *key = Some(node);
                }
                Some(k) => entries.push(Entry {
                    key: k,
                    value: node,
                }),
            },
        }
        Ok(())
    }
}

/// Where `key` was first defined in this mapping, if it was.
fn first_definition(
    entries: &[Entry],
    index: &mut Option<HashMap<String, Pos>>,
    key: &str,
) -> Option<Pos> {
    const SMALL: usize = 16;
    if index.is_none() && entries.len() > SMALL {
        *index = Some(
            entries
                .iter()
                .map(|e| (e.key_text().to_owned(), e.key.span.start))
                .collect(),
        );
    }
    match index {
        Some(index) => index.get(key).copied(),
        None => entries
            .iter()
            .find(|e| e.key_text() == key)
            .map(|e| e.key.span.start),
    }
}

fn complex_key(what: &'static str, pos: Pos) -> Error {
    Error {
        kind: ErrorKind::ComplexKey(what),
        pos,
    }
}

/// The nodes and the bytes of scalar text (keys included) a subtree holds.
fn measure(node: &Node) -> (usize, u64) {
    // Iterative, so a deep alias target cannot overflow the stack while being measured.
    let (mut nodes, mut text) = (0usize, 0u64);
    let mut todo = vec![node];
    while let Some(n) = todo.pop() {
        nodes += 1;
        match &n.value {
            Value::Scalar { text: t, .. } => text += t.len() as u64,
            Value::Sequence(items) => todo.extend(items),
            Value::Mapping(entries) => {
                for e in entries {
                    nodes += 1;
                    text += e.key_text().len() as u64;
                    todo.push(&e.value);
                }
            }
        }
    }
    (nodes, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Node, Error> {
        parse(text, &Limits::default())
    }

    #[test]
    fn keeps_positions_and_text() {
        let n = p("a: 1.10\nb:\n  - x\n  - 'y'\n").expect("parses");
        let Value::Mapping(entries) = &n.value else {
            panic!("mapping expected")
        };
        assert_eq!(entries[0].value.as_scalar(), Some("1.10"));
        assert_eq!(entries[0].value.span.start, Pos { line: 1, column: 4 });
        let Value::Sequence(items) = &entries[1].value.value else {
            panic!("list expected")
        };
        assert_eq!(items[1].span.start, Pos { line: 4, column: 5 });
    }

    #[test]
    fn quoted_span_stops_at_the_quote() {
        let n = p("a: \"x\\\"y\"   # note\nb: 'it''s'  # c\n").expect("parses");
        let Value::Mapping(entries) = &n.value else {
            panic!("mapping expected")
        };
        assert_eq!(
            entries[0].value.span.end,
            Pos {
                line: 1,
                column: 10
            }
        );
        assert_eq!(
            entries[1].value.span.end,
            Pos {
                line: 2,
                column: 11
            }
        );
    }

    #[test]
    fn duplicate_key_names_both_places() {
        let e = p("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert_eq!(
            e.kind,
            ErrorKind::DuplicateKey {
                key: "a".into(),
                first: Pos { line: 1, column: 1 }
            }
        );
        assert_eq!(e.pos, Pos { line: 3, column: 1 });
    }

    #[test]
    fn refuses_second_document() {
        let e = p("a: 1\n---\nb: 2\n").expect_err("two docs");
        assert_eq!(e.kind, ErrorKind::MultipleDocuments);
        assert_eq!(e.pos.line, 2);
    }

    #[test]
    fn empty_and_comment_only_are_empty() {
        assert_eq!(p("").expect_err("empty").kind, ErrorKind::Empty);
        assert_eq!(p("# nothing\n").expect_err("empty").kind, ErrorKind::Empty);
    }

    #[test]
    fn invalid_utf8_points_at_the_byte() {
        let e = parse_bytes(b"a: 1\nb: \xff\n", &Limits::default()).expect_err("utf8");
        assert_eq!(e.kind, ErrorKind::InvalidUtf8);
        assert_eq!(e.pos, Pos { line: 2, column: 4 });
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let e = p(&doc).expect_err("bomb");
        assert!(matches!(e.kind, ErrorKind::TooManyNodes { .. }), "{e}");
    }

    #[test]
    fn a_long_value_aliased_many_times_is_bounded_by_the_byte_limit() {
        let long = "v".repeat(4096);
        let mut doc = format!("a: &a {long}\nb: [");
        doc.push_str(&vec!["*a"; 300].join(", "));
        doc.push_str("]\n");
        let limits = Limits {
            max_bytes: 1 << 20,
            max_depth: 32,
            max_nodes: doc.len() + 64,
        };
        let e = parse(&doc, &limits).expect_err("1.2 MB of text from 5 KB");
        assert!(
            matches!(e.kind, ErrorKind::ExpandsTooLarge { limit: 1_048_576 }),
            "{e}"
        );
        doc = doc.replace(&vec!["*a"; 300].join(", "), &vec!["*a"; 200].join(", "));
        assert!(
            parse(&doc, &limits).is_ok(),
            "820 KB expanded is within 1 MiB"
        );
    }

    #[test]
    fn deep_nesting_is_bounded() {
        // Flow nesting is stopped by the scanner, block nesting by our own depth limit.
        let flow = "[".repeat(100_000);
        let e = p(&flow).expect_err("deep");
        assert!(e.to_string().contains("recursion limit"), "{e}");
        let block: String = (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let e = p(&block).expect_err("deep");
        assert!(matches!(e.kind, ErrorKind::TooDeep { .. }), "{e}");
    }

    #[test]
    fn aliases_expand() {
        let n = p("a: &x {k: v}\nb: *x\n").expect("parses");
        let Value::Mapping(entries) = &n.value else {
            panic!("mapping expected")
        };
        assert_eq!(entries[0].value.value, entries[1].value.value);
    }

    #[test]
    fn complex_keys_are_refused() {
        let e = p("? [a, b]\n: c\n").expect_err("complex");
        assert_eq!(e.kind, ErrorKind::ComplexKey("a list"));
    }

    #[test]
    fn too_large_is_refused_before_parsing() {
        let limits = Limits {
            max_bytes: 4,
            ..Limits::default()
        };
        let e = parse("a: 12345", &limits).expect_err("large");
        assert!(matches!(e.kind, ErrorKind::TooLarge { .. }));
    }
}
