//! YAML documents that remember where every node came from.
//!
//! Manifests are user input: every error must point at a line and column, and hostile input
//! (alias bombs, deep nesting, huge files, invalid UTF-8) must fail fast with a clear message.
//! [`parse`] builds a [`Node`] tree from one YAML document within fixed [`Limits`];
//! [`emit`] writes a tree back as deterministic block YAML that parses to the same tree.

mod emit;
mod parse;

pub use emit::{emit, emit_entries};
pub use parse::{Limits, parse, parse_bytes};

use std::fmt;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where a node starts and ends in its source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    /// A span that covers one position, for facts that have no extent (a missing key).
    pub fn at(pos: Pos) -> Span {
        Span {
            start: pos,
            end: pos,
        }
    }
}

/// How a scalar was written; plain scalars may be numbers, booleans or null to YAML.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Text known when the program was built (a key of the session language) is borrowed,
    /// not allocated: generated trees hold thousands of such keys.
    Scalar {
        text: std::borrow::Cow<'static, str>,
        style: Style,
    },
    Sequence(Vec<Node>),
    Mapping(Vec<Entry>),
}

/// A key and its value; keys are always scalars (complex keys are refused while parsing).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

impl Entry {
    /// The key's text (keys are scalars by construction).
    pub fn key_text(&self) -> &str {
        self.key.as_scalar().unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    /// An explicit tag such as `!!str`, as written. Boxed twice, so that the rare tag costs
    /// every node of a tree one pointer, not two.
    pub tag: Option<Box<Box<str>>>,
}

/// What YAML's core schema makes of a plain scalar.
#[derive(Clone, Debug, PartialEq)]
pub enum Typed<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Node {
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The entry of a mapping with this key; `None` for another key or a node that is no
    /// mapping.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Mapping(entries) => entries.iter().find(|e| e.key_text() == key),
            _ => None,
        }
    }

    /// The text of a mapping's scalar value under `key`.
    pub fn scalar_at(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|e| e.value.as_scalar())
    }

    /// A plain `~`, `null` or empty scalar: the YAML way of saying "no value".
    pub fn is_null(&self) -> bool {
        matches!(self.typed(), Some(Typed::Null)) && self.tag.is_none()
    }

    /// Resolves a scalar the way the YAML 1.2 core schema does; quoted scalars are strings.
    pub fn typed(&self) -> Option<Typed<'_>> {
        let Value::Scalar { text, style } = &self.value else {
            return None;
        };
        if *style != Style::Plain || self.tag.as_deref().is_some_and(|t| t.ends_with("str")) {
            return Some(Typed::Str(text));
        }
        Some(resolve_plain(text))
    }

    /// A short noun for messages: "a mapping", "a list", "a string".
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
            Value::Scalar { .. } => match self.typed() {
                Some(Typed::Null) => "null",
                Some(Typed::Bool(_)) => "a boolean",
                Some(Typed::Int(_)) | Some(Typed::Float(_)) => "a number",
                _ => "a string",
            },
        }
    }

    pub fn scalar(text: impl Into<std::borrow::Cow<'static, str>>, style: Style) -> Node {
        Node {
            value: Value::Scalar {
                text: text.into(),
                style,
            },
            span: Span::default(),
            tag: None,
        }
    }

    pub fn sequence(items: Vec<Node>) -> Node {
        Node {
            value: Value::Sequence(items),
            span: Span::default(),
            tag: None,
        }
    }

    pub fn mapping<K: Into<std::borrow::Cow<'static, str>>>(entries: Vec<(K, Node)>) -> Node {
        let entries = entries
            .into_iter()
            .map(|(key, value)| Entry {
                key: Node::scalar(key, Style::DoubleQuoted),
                value,
            })
            .collect();
        Node {
            value: Value::Mapping(entries),
            span: Span::default(),
            tag: None,
        }
    }
}

pub(crate) fn resolve_plain(text: &str) -> Typed<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Typed::Null,
        "true" | "True" | "TRUE" => return Typed::Bool(true),
        "false" | "False" | "FALSE" => return Typed::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Typed::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Typed::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Typed::Float(f64::NAN),
        _ => {}
    }
    let bytes = text.as_bytes();
    let digits = bytes
        .strip_prefix(b"-")
        .or(bytes.strip_prefix(b"+"))
        .unwrap_or(bytes);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        if let Ok(i) = text.parse::<i64>() {
            return Typed::Int(i);
        }
        if let Ok(f) = text.parse::<f64>() {
            return Typed::Float(f);
        }
    }
    if let Some(hex) = text.strip_prefix("0x")
        && !hex.is_empty()
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Typed::Int(i);
    }
    if let Some(oct) = text.strip_prefix("0o")
        && !oct.is_empty()
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Typed::Int(i);
    }
    if is_core_float(digits)
        && let Ok(f) = text.parse::<f64>()
    {
        return Typed::Float(f);
    }
    Typed::Str(text)
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?` without the sign.
fn is_core_float(b: &[u8]) -> bool {
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

/// Why a text is not one acceptable YAML document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("the file is not valid UTF-8")]
    InvalidUtf8,
    #[error("the file is empty; a manifest starts with `apiVersion:` and `kind:`")]
    Empty,
    #[error("YAML syntax error: {0}")]
    Syntax(String),
    #[error("duplicate key `{key}` (first defined at {first})")]
    DuplicateKey { key: String, first: Pos },
    #[error("the file holds more than one YAML document; a manifest is exactly one")]
    MultipleDocuments,
    #[error("only plain text keys are supported, found {0} as a key")]
    ComplexKey(&'static str),
    #[error("alias `*{0}` refers to no anchor")]
    UnknownAlias(String),
    #[error("the file is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error(
        "the document expands to more than {limit} nodes (YAML aliases can multiply a small file)"
    )]
    TooManyNodes { limit: usize },
    #[error(
        "the document's text expands to more than {limit} bytes (YAML aliases can repeat a long value)"
    )]
    ExpandsTooLarge { limit: u64 },
}

/// A parse failure and where it happened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {kind}")]
pub struct Error {
    pub kind: ErrorKind,
    pub pos: Pos,
}
