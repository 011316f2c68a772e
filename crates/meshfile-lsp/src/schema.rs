//! The specification's fields, as the manifests' JSON Schemas give them: a field's
//! documentation for hover, the fields and values a place takes for completion.

use meshfile_manifest::ManifestKind;
use serde_json::Value;

/// The JSON Schemas of both manifest kinds, made once.
pub struct Schemas {
    mesh: Value,
    service: Value,
}

impl Default for Schemas {
    fn default() -> Self {
        Schemas {
            mesh: meshfile_manifest::schema(ManifestKind::Mesh),
            service: meshfile_manifest::schema(ManifestKind::Service),
        }
    }
}

/// A place of the schema: the object a path leads to.
pub struct Place<'s> {
    root: &'s Value,
    /// The property's own schema (its description is the field's), when the path has a key.
    field: Option<&'s Value>,
    node: &'s Value,
}

impl Schemas {
    /// The schema node at `keys` (a path's keys; list items are walked through).
    pub fn at<'s>(&'s self, kind: ManifestKind, keys: &[&str]) -> Option<Place<'s>> {
        let root = match kind {
            ManifestKind::Mesh => &self.mesh,
            ManifestKind::Service => &self.service,
        };
        let mut node = resolve(root, root);
        let mut field = None;
        for key in keys {
            let property = resolve(root, node).get("properties")?.get(*key)?;
            field = Some(property);
            node = resolve(root, property);
        }
        Some(Place { root, field, node })
    }
}

/// Follows `$ref`s, list items and the `anyOf` an optional field is written as, to the
/// schema that describes the value.
fn resolve<'s>(root: &'s Value, mut node: &'s Value) -> &'s Value {
    for _ in 0..16 {
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let pointer = reference.trim_start_matches('#');
            match root.pointer(pointer) {
                Some(target) => node = target,
                None => return node,
            }
        } else if node.get("type").and_then(Value::as_str) == Some("array")
            || node
                .get("type")
                .and_then(Value::as_array)
                .is_some_and(|t| t.iter().any(|t| t == "array"))
        {
            match node.get("items") {
                Some(items) => node = items,
                None => return node,
            }
        } else if let Some(choice) = (node.get("anyOf").or_else(|| node.get("oneOf")))
            .and_then(Value::as_array)
            .and_then(|choices| {
                choices
                    .iter()
                    .find(|c| c.get("type") != Some(&Value::from("null")))
            })
        {
            node = choice;
        } else {
            return node;
        }
    }
    node
}

impl<'s> Place<'s> {
    pub fn description(&self) -> Option<&'s str> {
        (self.field.and_then(|f| f.get("description")))
            .or_else(|| self.node.get("description"))
            .and_then(Value::as_str)
    }

    /// The field names an object here takes, with their descriptions.
    pub fn fields(&self) -> Vec<(&'s str, Option<&'s str>)> {
        let node = resolve(self.root, self.node);
        let Some(properties) = node.get("properties").and_then(Value::as_object) else {
            return Vec::new();
        };
        properties
            .iter()
            .map(|(name, schema)| {
                let described = schema
                    .get("description")
                    .or_else(|| resolve(self.root, schema).get("description"))
                    .and_then(Value::as_str);
                (name.as_str(), described)
            })
            .collect()
    }

    /// The values an enumerated field takes.
    pub fn values(&self) -> Vec<&'s str> {
        let node = resolve(self.root, self.node);
        let mut out: Vec<&str> = (node
            .get("enum")
            .and_then(Value::as_array)
            .into_iter()
            .flatten())
        .filter_map(Value::as_str)
        .collect();
        for choice in (node.get("oneOf").or_else(|| node.get("anyOf")))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(choice.get("const").and_then(Value::as_str));
            out.extend(
                (choice
                    .get("enum")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten())
                .filter_map(Value::as_str),
            );
        }
        out
    }

    /// The JSON type a value here has, as the schema names it.
    pub fn type_name(&self) -> Option<String> {
        let node = resolve(self.root, self.node);
        match node.get("type") {
            Some(Value::String(t)) => Some(t.clone()),
            Some(Value::Array(types)) => Some(
                (types.iter().filter_map(Value::as_str))
                    .filter(|t| *t != "null")
                    .collect::<Vec<_>>()
                    .join(" or "),
            ),
            _ => node.get("properties").map(|_| "object".into()),
        }
    }
}
