//! Turning a YAML [`Node`] tree into typed models while collecting every problem.
//!
//! Serde stops at the first error and reinterprets scalars (`1.10` becomes `1.1`); manifests
//! need all errors at once and text kept as written. A decoder reads a mapping through
//! [`Fields`], which records each key it is asked for: the keys left over are unknown fields,
//! and the keys asked for are the candidates for "did you mean".

use std::borrow::Cow;
use std::fmt;

use meshfile_yaml::{Node, Span, Typed, Value};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Serialize, Serializer};

use crate::diagnostic::{Code, Diagnostic, did_you_mean};

/// Text as written in the manifest, with its location. Equality ignores the location, so
/// models parsed from differently formatted files compare equal when they say the same.
#[derive(Clone, Debug, Default)]
pub struct Text {
    pub value: String,
    pub span: Span,
}

impl Text {
    pub fn new(value: impl Into<String>) -> Text {
        Text {
            value: value.into(),
            span: Span::default(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for Text {}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.value)
    }
}

impl JsonSchema for Text {
    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // YAML writes `value: 443` and `value: true` unquoted; the text is kept as written.
        json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

/// A typed value with its location; equality ignores the location.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T) -> Self {
        Spanned {
            value,
            span: Span::default(),
        }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// Where a value sits in the document, kept as a chain so it is only formatted on error.
#[derive(Clone, Copy)]
pub enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Collects diagnostics while decoding.
#[derive(Default)]
pub struct Cx {
    pub diagnostics: Vec<Diagnostic>,
    /// What became of the `$VAR`s of the values decoded.
    pub env: Env,
}

/// What became of the `$VAR`s of a manifest before it is decoded.
#[derive(Debug, Default)]
pub enum Env {
    /// Nothing was substituted: a value is decoded as it is.
    #[default]
    Untouched,
    /// They are kept as written (validation without an environment): an optional field of a
    /// closed set or a boolean that holds one is left unchecked and unset, for the run that
    /// has the value.
    AsWritten,
    /// Substituted: the values at `given` came from variables; those at `unknown` hold
    /// variables without a value (reported as such, so not checked as a value too).
    Substituted {
        given: Vec<Span>,
        unknown: Vec<Span>,
    },
}

impl Cx {
    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    pub fn error(&mut self, code: Code, span: Span, path: &Path<'_>, message: impl Into<String>) {
        self.report(Diagnostic::new(code, span, path.to_string(), message));
    }

    fn wrong_type(&mut self, node: &Node, path: &Path<'_>, expected: &str) {
        self.error(
            Code::WrongType,
            node.span,
            path,
            format!("`{path}` must be {expected}, found {}", node.kind_name()),
        );
    }

    /// A mapping, read field by field; `None` (reported) when the node is not a mapping.
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &Path<'_>,
        what: &'static str,
    ) -> Option<Fields<'n>> {
        match &node.value {
            Value::Mapping(entries) => Some(Fields {
                node,
                entries,
                known: [""; MAX_FIELDS],
                known_len: 0,
                handled: None,
                what,
            }),
            _ => {
                self.wrong_type(node, path, &format!("a mapping ({what})"));
                None
            }
        }
    }

    /// Scalar text as written; numbers and booleans keep their spelling.
    pub fn text(&mut self, node: &Node, path: &Path<'_>) -> Option<Text> {
        match &node.value {
            Value::Scalar { text, .. } => Some(Text {
                value: text.to_string(),
                span: node.span,
            }),
            _ => {
                self.wrong_type(node, path, "a string");
                None
            }
        }
    }

    /// Whether `node` holds a `$VAR` whose value this run does not know.
    fn deferred(&self, node: &Node) -> bool {
        match &self.env {
            Env::Untouched => false,
            Env::AsWritten => node.as_scalar().is_some_and(crate::refs::names_env),
            Env::Substituted { unknown, .. } => unknown.contains(&node.span),
        }
    }

    /// Whether `node`'s value came from a `$VAR` (text in the file, whatever it became).
    fn substituted(&self, node: &Node) -> bool {
        matches!(&self.env, Env::Substituted { given, .. } if given.contains(&node.span))
    }

    /// `true` or `false`, strictly: YAML 1.1's `yes`/`on` are refused rather than guessed. A
    /// `$VAR` that gives `true` or `false` gives the boolean, as `envsubst` before the YAML
    /// parser would.
    pub fn boolean(&mut self, node: &Node, path: &Path<'_>) -> Option<Spanned<bool>> {
        if self.deferred(node) {
            return None;
        }
        let from_variable = match node.as_scalar() {
            Some("true") if self.substituted(node) => Some(true),
            Some("false") if self.substituted(node) => Some(false),
            _ => None,
        };
        match from_variable.map(Typed::Bool).or_else(|| node.typed()) {
            Some(Typed::Bool(b)) => Some(Spanned {
                value: b,
                span: node.span,
            }),
            _ => {
                let mut d = Diagnostic::new(
                    Code::WrongType,
                    node.span,
                    path.to_string(),
                    format!("`{path}` must be true or false, found {}", node.kind_name()),
                );
                if let Some(text) = node.as_scalar() {
                    d = d.with_hint(format!(
                        "write `true` or `false` without quotes instead of `{text}`"
                    ));
                }
                self.report(d);
                None
            }
        }
    }

    /// Each item of a list through `item`; items that fail are reported and left out.
    pub fn list<T>(
        &mut self,
        node: &Node,
        path: &Path<'_>,
        mut item: impl FnMut(&mut Cx, &Node, &Path<'_>) -> Option<T>,
    ) -> Option<Vec<T>> {
        match &node.value {
            Value::Sequence(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| item(self, n, &path.index(i)))
                    .collect(),
            ),
            _ => {
                self.wrong_type(node, path, "a list");
                None
            }
        }
    }

    /// A value from a closed set, with "did you mean" on a near miss.
    pub fn one_of<T: Copy>(
        &mut self,
        node: &Node,
        path: &Path<'_>,
        choices: &[(&str, T)],
        code: Code,
    ) -> Option<Spanned<T>> {
        let text = self.text(node, path)?;
        if let Some((_, v)) = choices.iter().find(|(name, _)| *name == text.value) {
            return Some(Spanned {
                value: *v,
                span: node.span,
            });
        }
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let mut d = Diagnostic::new(
            code,
            node.span,
            path.to_string(),
            format!(
                "`{}` is not a valid `{path}`; expected one of: {}",
                text.value,
                names.join(", ")
            ),
        );
        if self.deferred(node) {
            d = d.with_hint(format!(
                "`{path}` decides how the rest is checked, so it cannot wait for a `$VAR`: write the value itself"
            ));
        } else if let Some(best) = did_you_mean(&text.value, names.iter().copied()) {
            d = d.with_suggestion(best);
        }
        self.report(d);
        None
    }

    /// Like [`Cx::one_of`], for an optional field: a `$VAR` whose value this run does not know
    /// leaves it unset, for the run that knows it.
    pub fn optional_one_of<T: Copy>(
        &mut self,
        node: &Node,
        path: &Path<'_>,
        choices: &[(&str, T)],
        code: Code,
    ) -> Option<Spanned<T>> {
        if self.deferred(node) {
            return None;
        }
        self.one_of(node, path, choices, code)
    }
}

/// More fields than any model struct has (Build has 22).
const MAX_FIELDS: usize = 32;

/// A mapping being decoded; [`Fields::finish`] reports the keys nobody asked for.
pub struct Fields<'n> {
    node: &'n Node,
    entries: &'n [meshfile_yaml::Entry],
    /// Keys asked for so far: a fixed array, since every mapping of a large mesh has one.
    known: [&'static str; MAX_FIELDS],
    known_len: usize,
    /// A key read through [`Fields::entry`] (a deprecated spelling).
    handled: Option<&'n str>,
    what: &'static str,
}

impl<'n> Fields<'n> {
    /// The value under `key`, marking the key known; `None` if absent or null.
    pub fn get(&mut self, key: &'static str) -> Option<&'n Node> {
        debug_assert!(self.known_len < MAX_FIELDS, "raise MAX_FIELDS");
        if let Some(slot) = self.known.get_mut(self.known_len) {
            *slot = key;
            self.known_len += 1;
        }
        let value = &self.entries.iter().find(|e| e.key_text() == key)?.value;
        (!value.is_null()).then_some(value)
    }

    pub fn optional<T>(
        &mut self,
        cx: &mut Cx,
        path: &Path<'_>,
        key: &'static str,
        decode: impl FnOnce(&mut Cx, &Node, &Path<'_>) -> Option<T>,
    ) -> Option<T> {
        let node = self.get(key)?;
        decode(cx, node, &path.key(key))
    }

    /// Like [`Fields::optional`], but reports a missing or null value.
    pub fn required<T>(
        &mut self,
        cx: &mut Cx,
        path: &Path<'_>,
        key: &'static str,
        decode: impl FnOnce(&mut Cx, &Node, &Path<'_>) -> Option<T>,
    ) -> Option<T> {
        match self.get(key) {
            Some(node) => decode(cx, node, &path.key(key)),
            None => {
                let present = self.entries.iter().any(|e| e.key_text() == key);
                let where_ = if path.to_string().is_empty() {
                    "the manifest".to_owned()
                } else {
                    format!("`{path}`")
                };
                let message = if present {
                    format!("`{key}` in {where_} must have a value, found null")
                } else {
                    format!(
                        "{where_} ({}) is missing the required field `{key}`",
                        self.what
                    )
                };
                cx.error(Code::MissingField, self.node.span, &path.key(key), message);
                None
            }
        }
    }

    /// Reports every key that no decoder asked for, with the nearest known key as a hint.
    pub fn finish(self, cx: &mut Cx, path: &Path<'_>) {
        let known = &self.known[..self.known_len];
        for entry in self.entries {
            let key = entry.key_text();
            if known.contains(&key) || self.handled == Some(key) {
                continue;
            }
            let mut d = Diagnostic::new(
                Code::UnknownField,
                entry.key.span,
                path.key(key).to_string(),
                format!("unknown field `{key}` in {}", self.what),
            );
            d = match did_you_mean(key, known.iter().copied()) {
                Some(best) => d.with_suggestion(best),
                None => d.with_hint(format!("known fields: {}", known.join(", "))),
            };
            cx.report(d);
        }
    }

    /// Marks `key` as handled without decoding it (deprecated spellings decoded elsewhere).
    pub fn entry(&mut self, key: &str) -> Option<&'n meshfile_yaml::Entry> {
        let entry = self.entries.iter().find(|e| e.key_text() == key)?;
        self.handled = Some(entry.key_text());
        Some(entry)
    }
}
