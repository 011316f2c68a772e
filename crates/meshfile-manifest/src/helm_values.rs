//! `helm_extra_values`: the specification types it as a string of YAML, real Meshfiles write a
//! mapping keyed by sub-chart. Both are accepted and mean the same values.

use meshfile_yaml::{Limits, Node, Typed, Value};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::decode::{Cx, Path, Text};
use crate::diagnostic::Code;

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum HelmExtraValues {
    /// Values as a YAML mapping, keyed by sub-chart name.
    Mapping(Map<String, Json>),
    /// Values as a string holding a YAML mapping.
    Text(Text),
}

impl HelmExtraValues {
    pub(crate) fn decode(cx: &mut Cx, node: &Node, path: &Path<'_>) -> Option<HelmExtraValues> {
        match &node.value {
            Value::Mapping(_) => match to_json(node) {
                Json::Object(map) => Some(HelmExtraValues::Mapping(map)),
                _ => None,
            },
            Value::Scalar { .. } => {
                let text = cx.text(node, path)?;
                match meshfile_yaml::parse(text.as_str(), &Limits::default()) {
                    Ok(inner) if matches!(inner.value, Value::Mapping(_)) => {}
                    Ok(inner) => cx.error(
                        Code::WrongType,
                        node.span,
                        path,
                        format!(
                            "`{path}` must hold a YAML mapping of values, found {}",
                            inner.kind_name()
                        ),
                    ),
                    Err(e) => cx.error(
                        Code::Syntax,
                        node.span,
                        path,
                        format!(
                            "`{path}` is not valid YAML: line {} of the value: {}",
                            e.pos.line, e.kind
                        ),
                    ),
                }
                Some(HelmExtraValues::Text(text))
            }
            Value::Sequence(_) => {
                cx.error(
                    Code::WrongType,
                    node.span,
                    path,
                    format!("`{path}` must be a mapping of Helm values (keyed by sub-chart), found a list"),
                );
                None
            }
        }
    }

    /// The values as one JSON object; `None` when the text form does not hold a mapping.
    pub fn values(&self) -> Option<Map<String, Json>> {
        match self {
            HelmExtraValues::Mapping(map) => Some(map.clone()),
            HelmExtraValues::Text(text) => {
                let node = meshfile_yaml::parse(text.as_str(), &Limits::default()).ok()?;
                match to_json(&node) {
                    Json::Object(map) => Some(map),
                    _ => None,
                }
            }
        }
    }
}

/// YAML to JSON with the YAML 1.2 core schema: free-form values keep their types.
pub fn to_json(node: &Node) -> Json {
    match &node.value {
        Value::Sequence(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Mapping(entries) => Json::Object(
            entries
                .iter()
                .map(|e| (e.key_text().to_owned(), to_json(&e.value)))
                .collect(),
        ),
        Value::Scalar { .. } => match node.typed() {
            Some(Typed::Null) | None => Json::Null,
            Some(Typed::Bool(b)) => Json::Bool(b),
            Some(Typed::Int(i)) => Json::from(i),
            Some(Typed::Float(f)) => {
                serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
            }
            Some(Typed::Str(s)) => Json::String(s.to_owned()),
        },
    }
}

/// JSON back to a YAML tree: strings stay strings, other scalars are written plain.
pub fn from_json(json: &Json) -> Node {
    use meshfile_yaml::Style;
    match json {
        Json::Null => Node::scalar("null", Style::Plain),
        Json::Bool(b) => Node::scalar(b.to_string(), Style::Plain),
        Json::Number(n) => Node::scalar(n.to_string(), Style::Plain),
        Json::String(s) => Node::scalar(s.clone(), Style::DoubleQuoted),
        Json::Array(items) => Node::sequence(items.iter().map(from_json).collect()),
        Json::Object(map) => {
            Node::mapping(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}
