//! The generated JSON Schema accepts the valid corpus and rejects structural faults.

use meshfile_manifest::{Code, ManifestKind, helm_values::to_json, load, schema};

use crate::corpus;

fn kind_of(json: &serde_json::Value) -> Option<ManifestKind> {
    match json.get("kind")?.as_str()? {
        "mesh" => Some(ManifestKind::Mesh),
        "genservice" => Some(ManifestKind::Service),
        _ => None,
    }
}

fn schema_errors(bytes: &[u8]) -> Option<Vec<String>> {
    let node = meshfile_yaml::parse_bytes(bytes, &meshfile_manifest::limits()).ok()?;
    let json = to_json(&node);
    let kind = kind_of(&json)?;
    let validator = jsonschema::validator_for(&schema(kind)).expect("schema compiles");
    Some(
        validator
            .iter_errors(&json)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect(),
    )
}

#[test]
fn schema_accepts_the_valid_corpus() {
    for (path, bytes) in corpus("valid") {
        let errors = schema_errors(&bytes).expect("valid files parse");
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

/// Faults of shape (types, required and unknown fields, closed value sets) are the schema's job.
const STRUCTURAL: &[Code] = &[
    Code::WrongType,
    Code::MissingField,
    Code::UnknownField,
    Code::InvalidEnum,
    Code::UnknownSecretKind,
];

#[test]
fn schema_rejects_structural_faults() {
    let mut checked = 0;
    for (path, bytes) in corpus("invalid") {
        let loaded = load(&bytes);
        let structural = loaded
            .diagnostics
            .iter()
            .any(|d| STRUCTURAL.contains(&d.code));
        let Some(errors) = schema_errors(&bytes) else {
            continue;
        };
        if structural {
            checked += 1;
            assert!(
                !errors.is_empty(),
                "{}: schema accepted a structural fault",
                path.display()
            );
        }
    }
    assert!(checked >= 10, "only {checked} structural cases");
}

/// Every field says what it is for: an editor shows it on hover (through the schema, or
/// `meshfile lsp`), and the specification describes nearly all of them.
#[test]
fn every_field_of_both_schemas_is_described() {
    for kind in [ManifestKind::Mesh, ManifestKind::Service] {
        let schema = schema(kind);
        let mut places = vec![("(root)".to_owned(), &schema)];
        let defs = schema.get("$defs").and_then(|d| d.as_object());
        places.extend(
            defs.into_iter()
                .flatten()
                .map(|(name, d)| (name.clone(), d)),
        );
        let mut undescribed = Vec::new();
        for (name, place) in places {
            let properties = place.get("properties").and_then(|p| p.as_object());
            for (field, property) in properties.into_iter().flatten() {
                let described = property
                    .get("description")
                    .and_then(|d| d.as_str())
                    .is_some_and(|d| !d.trim().is_empty());
                if !described {
                    undescribed.push(format!("{name}.{field}"));
                }
            }
        }
        assert!(undescribed.is_empty(), "{kind:?}: {undescribed:?}");
    }
}
