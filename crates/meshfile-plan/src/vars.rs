//! Mesh-time variables: `{{name}}` from the Meshfile's env sections and the built-ins.

use std::collections::BTreeMap;
use std::fmt;

use meshfile_manifest::mesh::MeshManifest;
use meshfile_manifest::refs;
use meshfile_manifest::service::{Environment, ServiceManifest};
use meshfile_manifest::{Code, Diagnostic};
use meshfile_yaml::Span;

/// Where a variable's value comes from, in order of precedence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The Meshfile's env section for this service.
    ServiceSection,
    /// The Meshfile's `helm` env section.
    Helm,
    /// The Meshfile's `global` env section.
    Global,
    /// The default in the service manifest's `environment.global`.
    Default,
    /// Computed by meshfile (`namespace`, `session`, `cas_<name>_<field>`, ...).
    Builtin,
    /// Nowhere: compiling fails until the Meshfile gives a value.
    Missing,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::ServiceSection => "the service's env section",
            Origin::Helm => "the `helm` env section",
            Origin::Global => "the `global` env section",
            Origin::Default => "the service manifest's default",
            Origin::Builtin => "built in",
            Origin::Missing => "MISSING: give it a value",
        })
    }
}

/// The variables one service sees.
pub struct Scope<'a> {
    pub service: &'a str,
    pub program: &'a str,
    values: BTreeMap<String, (String, Origin)>,
}

impl<'a> Scope<'a> {
    pub fn new(
        mesh: &MeshManifest,
        service: &'a str,
        environment: &Environment,
        program: &'a str,
    ) -> Scope<'a> {
        let mut values: BTreeMap<String, (String, Origin)> = BTreeMap::new();
        // Lowest precedence first; later inserts win.
        for g in environment.global.iter().flatten() {
            if let Some(v) = &g.value {
                values.insert(
                    g.name.as_str().to_owned(),
                    (v.as_str().to_owned(), Origin::Default),
                );
            }
        }
        for (section, origin) in [
            ("global", Origin::Global),
            ("helm", Origin::Helm),
            (service, Origin::ServiceSection),
        ] {
            for s in mesh.env.iter().filter(|s| s.service.as_str() == section) {
                for kv in s.env.iter().flatten() {
                    let value = meshfile_manifest::mesh::unpasted(kv.value.as_str());
                    values.insert(kv.name.as_str().to_owned(), (value, origin.clone()));
                }
            }
        }
        let namespace = mesh.policy.namespace.as_str();
        let mut builtin = |k: String, v: &str| {
            values.insert(k, (v.to_owned(), Origin::Builtin));
        };
        builtin("namespace".into(), namespace);
        builtin("session".into(), &format!("{namespace}/{service}"));
        builtin("cas_service_name".into(), program);
        for cas in &mesh.cas {
            let Some(name) = &cas.name else { continue };
            let fields = [
                ("name", Some(name)),
                ("cas_url", Some(&cas.cas_url)),
                ("cas_key", cas.cas_key.as_ref()),
                ("cas_encryption_key", cas.cas_encryption_key.as_ref()),
                ("tolerance", cas.tolerance.as_ref()),
            ];
            for (field, value) in fields {
                if let Some(v) = value {
                    builtin(format!("cas_{name}_{field}"), v.as_str());
                    builtin(format!("cas.{name}.{field}"), v.as_str());
                }
            }
        }
        Scope {
            service,
            program,
            values,
        }
    }

    pub fn lookup(&self, name: &str) -> Option<(String, Origin)> {
        self.values.get(name).cloned()
    }

    /// Substitutes `{{name}}` in a value.
    pub fn substitute(&self, text: &str) -> Result<String, (String, usize)> {
        refs::substitute_mesh(text, &|name| self.values.get(name).map(|(v, _)| v.clone()))
    }

    /// Substitutes `{{name}}` in a YAML text template, keeping it valid YAML: a multi-line
    /// value that stands alone after `key:` or `-` becomes an indented literal block, and one
    /// inside double quotes has its line breaks escaped.
    pub fn substitute_block(&self, text: &str) -> Result<String, (String, usize)> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            let Some(close) = rest[open + 2..].find("}}") else {
                break;
            };
            let name = rest[open + 2..open + 2 + close].trim();
            let Some((value, _)) = self.values.get(name) else {
                return Err((name.to_owned(), offset + open));
            };
            let before = &rest[..open];
            let end = open + 2 + close + 2;
            let after_line = rest[end..].split('\n').next().unwrap_or_default();
            let line_start = out.rfind('\n').map_or(0, |i| i + 1);
            out.push_str(before);
            let current_line = &out[line_start..];
            let indent = current_line.len() - current_line.trim_start().len();
            if value.contains('\n')
                && (current_line.trim_end().ends_with(':')
                    || current_line.trim_end().ends_with('-'))
                && after_line.trim().is_empty()
            {
                let body = value.trim_end_matches('\n');
                let chomp = if value.ends_with('\n') { "" } else { "-" };
                out.push_str(&format!("|{chomp}"));
                for line in body.split('\n') {
                    out.push('\n');
                    if !line.is_empty() {
                        out.push_str(&" ".repeat(indent + 2));
                        out.push_str(line);
                    }
                }
            } else if value.contains('\n') && current_line.ends_with('"') {
                out.push_str(
                    &value
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n"),
                );
            } else {
                out.push_str(value);
            }
            offset += end;
            rest = &rest[end..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// An undefined `{{name}}` at `span`, saying where it could be defined.
    pub fn undefined(&self, name: &str, span: Span) -> Diagnostic {
        Diagnostic::new(Code::UndefinedMeshVariable, span, "", format!("`{{{{{name}}}}}` is not defined for service `{}`", self.service)).with_hint(format!(
            "give `{name}` a value in the Meshfile's `global` env section or in its `service: {}` section, or a default in the service manifest's `environment.global`",
            self.service
        ))
    }

    /// Every variable the service uses (declared globals and `{{name}}` references) with origin.
    pub fn report(
        &self,
        environment: &Environment,
        manifest: &ServiceManifest,
    ) -> Vec<crate::Variable> {
        let mut names: Vec<String> = environment
            .global
            .iter()
            .flatten()
            .map(|g| g.name.as_str().to_owned())
            .collect();
        let json = serde_json::to_value(manifest).unwrap_or_default();
        mesh_references(&json, &mut names);
        let mut seen = std::collections::BTreeSet::new();
        names
            .into_iter()
            .filter(|n| seen.insert(n.clone()))
            .map(|name| {
                let (value, origin) = match self.values.get(&name) {
                    Some((v, o)) => (Some(v.clone()), o.clone()),
                    None => (None, Origin::Missing),
                };
                crate::Variable {
                    name,
                    value,
                    origin,
                }
            })
            .collect()
    }
}

/// The names of the `{{name}}` references in every string of `value`, in document order.
fn mesh_references(value: &serde_json::Value, names: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) => names.extend(
            meshfile_manifest::refs::mesh_references(text).map(|(name, _)| name.to_owned()),
        ),
        serde_json::Value::Array(items) => items.iter().for_each(|v| mesh_references(v, names)),
        serde_json::Value::Object(fields) => {
            fields.values().for_each(|v| mesh_references(v, names))
        }
        _ => {}
    }
}
