//! A service's chart from the user's genservice-style template directory (`apply -f
//! service.yaml --helm-template DIR`), rendered in two stages as SCONE's genservice and
//! scone_mesh render it:
//!
//! 1. the service step ([`render_templates`]): the Tera parts of `values.template` and
//!    `Chart.yaml.template` with the service manifest's variables (`{{ SCONE_LOG |
//!    default(value="error") }}`); a `{% raw %}` section is left as it is. The result is
//!    recorded with the service's descriptor.
//! 2. the mesh step ([`render_values`]): every `{{name}}` left in the values from the Meshfile
//!    (`{{session}}`, `{{cas.cas.cas_url}}`, `{{image_name}}`, `{{APP_SERVICE_PORT}}`, ...).
//!
//! Pure: the directory's files come in as data.

use std::collections::BTreeMap;

/// Why a genservice template directory does not give a chart.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("holds no `values.template` (the chart's values, as genservice reads them)")]
    NoValues,
    #[error("holds no chart templates (`templates/` or `charts/templates/`)")]
    NoTemplates,
    /// A template holds what genservice's forms do not, or Tera refused it.
    #[error("{path}: {why}")]
    Form { path: String, why: String },
    #[error("values.template line {line}: `{{{{{name}}}}}` is no variable of the Meshfile")]
    UnknownVariable { line: usize, name: String },
    /// A value pasted into a YAML file would add YAML of its own ([`crate::pasted`]).
    #[error(transparent)]
    Pasted(#[from] crate::pasted::Pasted),
}

/// A template directory holds at most this many files, each at most [`MAX_FILE`] bytes.
pub const MAX_FILES: usize = 256;
pub const MAX_FILE: usize = 1024 * 1024;

/// The chart files a genservice template directory gives after the service step, by path in
/// the chart: `Chart.yaml`, `values.yaml` (with the Meshfile's `{{...}}` still in it),
/// `templates/...` and `.helmignore`.
pub type Files = BTreeMap<String, String>;

/// Where the files of a template directory go in the chart: `values.template` becomes
/// `values.yaml`, `Chart.yaml.template` `Chart.yaml`, the templates under `templates/` or
/// `charts/templates/` go to `templates/`; others (genservice's earlier output in `charts/`)
/// are not part of the chart.
fn chart_path(path: &str) -> Option<String> {
    match path {
        "values.template" => return Some("values.yaml".into()),
        "Chart.yaml.template" => return Some("Chart.yaml".into()),
        ".helmignore" | "charts/.helmignore" => return Some(".helmignore".into()),
        _ => {}
    }
    let template = path
        .strip_prefix("templates/")
        .or_else(|| path.strip_prefix("charts/templates/"))?;
    Some(format!("templates/{template}"))
}

/// The service step: the directory's files (relative path to text) rendered with the
/// service manifest's variables (name to value) and `chartname` (its `build.name`).
pub fn render_templates(
    dir_files: &BTreeMap<String, String>,
    variables: &BTreeMap<String, String>,
    chartname: &str,
) -> Result<Files, TemplateError> {
    if !dir_files.contains_key("values.template") {
        return Err(TemplateError::NoValues);
    }
    let names: Vec<String> = (variables.keys().cloned())
        .chain(["chartname".to_owned()])
        .collect();
    let value = |name: &str| match name {
        "chartname" => Some(chartname.to_owned()),
        _ => variables.get(name).cloned(),
    };
    let mut files = Files::new();
    for (path, text) in dir_files {
        let Some(target) = chart_path(path) else {
            continue;
        };
        let mut rendered = if path.ends_with(".template") {
            let render = |lookup: crate::pasted::Lookup<'_>| {
                render_tera(path, text, &context_of(&names, lookup))
            };
            if matches!(target.as_str(), "values.yaml" | "Chart.yaml") {
                // The Meshfile's `{{name}}` left for the mesh step are text here, the same in
                // both renderings (`{{` would read as a YAML flow mapping).
                let rendered =
                    |lookup: crate::pasted::Lookup<'_>| -> Result<String, TemplateError> {
                        let text = render(lookup)?;
                        Ok(meshfile_manifest::refs::substitute_mesh(&text, &|_| {
                            Some("meshfilemeshvalue".into())
                        })
                        .unwrap_or(text))
                    };
                crate::pasted::check(path, &names, &value, &rendered)?;
            }
            render(&value)?
        } else {
            text.clone()
        };
        if target == "Chart.yaml" {
            rendered = last_key_wins(&rendered);
        }
        // `templates/` wins over genservice's `charts/templates/` copy of the same file.
        if files.contains_key(&target) && path.starts_with("charts/") {
            continue;
        }
        files.insert(target, rendered);
    }
    if !files.contains_key("Chart.yaml") {
        files.insert(
            "Chart.yaml".into(),
            format!(
                "apiVersion: v2\nname: {chartname}\ndescription: A Helm chart generated by scone genservice\ntype: application\nversion: 0.1.0\nappVersion: 0.1.0\n"
            ),
        );
    }
    if !files.keys().any(|p| p.starts_with("templates/")) {
        return Err(TemplateError::NoTemplates);
    }
    Ok(files)
}

/// A Tera context with the value of each of `names` that `lookup` has.
fn context_of(names: &[String], lookup: crate::pasted::Lookup<'_>) -> tera::Context {
    let mut context = tera::Context::new();
    for name in names {
        if let Some(value) = lookup(name) {
            context.insert(name.as_str(), &value);
        }
    }
    context
}

/// A Chart.yaml with each top-level key once, the last of its kind kept, as Helm reads it:
/// genservice's own Chart.yaml.template names `apiVersion`, `appVersion` and `description`
/// twice, which Helm takes (warning) and a strict YAML reader refuses.
fn last_key_wins(text: &str) -> String {
    // Top-level blocks: a line at column 0 that is neither a comment nor a continuation
    // starts one; the lines below it, until the next, belong to it.
    let mut blocks: Vec<(Option<&str>, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        let key = (!line.starts_with([' ', '\t', '#', '-']))
            .then(|| line.split_once(':').map(|(k, _)| k.trim()))
            .flatten();
        match (key, blocks.last_mut()) {
            (None, Some((_, lines))) => lines.push(line),
            _ => blocks.push((key, vec![line])),
        }
    }
    let mut out = String::with_capacity(text.len());
    for (i, (key, lines)) in blocks.iter().enumerate() {
        let later = key.is_some() && blocks[i + 1..].iter().any(|(k, _)| k == key);
        if !later {
            for line in lines {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// One Tera template, checked first ([`check_template`]) so that nothing but genservice's forms
/// reaches Tera: no loop, no function (Tera's `get_env` would read the environment into a
/// chart), no nesting its parser takes long over; a variable the manifest does not give is
/// named.
fn render_tera(path: &str, text: &str, context: &tera::Context) -> Result<String, TemplateError> {
    let form = |why: String| TemplateError::Form {
        path: path.to_owned(),
        why,
    };
    check_template(text).map_err(|why| form(why.0))?;
    let mut tera = tera::Tera::default();
    tera.autoescape_on(Vec::new());
    tera.add_raw_template(path, text)
        .map_err(|e| form(tera_error(&e)))?;
    tera.render(path, context).map_err(|e| form(tera_error(&e)))
}

/// What genservice's templates use, and all a template may hold: `{% raw %}` sections (their
/// text left as it is), `{# comments #}`, and expressions `{{ NAME }}` or
/// `{{ NAME | default(value="TEXT") }}`.
/// Why a template holds more than genservice's forms.
struct Unsupported(String);

impl From<&str> for Unsupported {
    fn from(why: &str) -> Unsupported {
        Unsupported(why.to_owned())
    }
}

impl From<String> for Unsupported {
    fn from(why: String) -> Unsupported {
        Unsupported(why)
    }
}

fn check_template(text: &str) -> Result<(), Unsupported> {
    const FORMS: &str = "genservice templates use `{% raw %}` sections and `{{ NAME }}` or `{{ NAME | default(value=\"...\") }}` expressions";
    let mut raw = false;
    let mut i = 0;
    while let Some(offset) = text[i..].find('{') {
        let at = i + offset;
        let rest = &text[at..];
        if let Some(inner) = rest.strip_prefix("{%") {
            // The closing `%}` after the opening one (`{%}` is not closed).
            let end = inner.find("%}").ok_or("a `{%` tag is not closed")?;
            let words: Vec<&str> = inner[..end]
                .trim_matches(|c: char| c == '-' || c.is_whitespace())
                .split_whitespace()
                .collect();
            match (raw, words.as_slice()) {
                (false, ["raw"]) => raw = true,
                (true, ["endraw"]) => raw = false,
                (true, _) => {}
                (false, _) => {
                    return Err(
                        format!("`{{% {} %}}` is not supported: {FORMS}", words.join(" ")).into(),
                    );
                }
            }
            i = at + 2 + end + 2;
        } else if raw {
            i = at + 1;
        } else if let Some(inner) = rest.strip_prefix("{#") {
            let end = inner.find("#}").ok_or("a `{#` comment is not closed")?;
            i = at + 2 + end + 2;
        } else if let Some(inner) = rest.strip_prefix("{{") {
            let end = expression_end(inner).ok_or("a `{{` expression is not closed")?;
            let expression = &inner[..end];
            if !is_genservice_expression(expression) {
                return Err(format!("`{{{{{expression}}}}}` is not supported: {FORMS}").into());
            }
            i = at + 2 + end + 2;
        } else {
            i = at + 1;
        }
    }
    if raw {
        return Err("a `{% raw %}` section is not closed with `{% endraw %}`".into());
    }
    Ok(())
}

/// Where an expression's `}}` is, a `}}` inside a quoted text not counting.
fn expression_end(text: &str) -> Option<usize> {
    let mut quoted = false;
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'}' if !quoted && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
    }
    None
}

/// `NAME` or `NAME | default(value="TEXT")`, spaces and whitespace control (`-`) allowed
/// around the parts, TEXT without `"` or `\`.
fn is_genservice_expression(expression: &str) -> bool {
    let is_name = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let e = expression
        .trim()
        .trim_start_matches('-')
        .trim_end_matches('-')
        .trim();
    let Some((name, filter)) = e.split_once('|') else {
        return is_name(e);
    };
    // The filter with the spaces outside its quoted text removed.
    let (before, quoted) = match filter.split_once('"') {
        Some((before, after)) => (before, Some(after)),
        None => (filter, None),
    };
    let Some(quoted) = quoted else {
        return false;
    };
    let Some((value, after)) = quoted.split_once('"') else {
        return false;
    };
    let compact = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    is_name(name.trim())
        && compact(before) == "default(value="
        && compact(after) == ")"
        && !value.contains('\\')
}

/// A Tera error with its causes, on one line.
fn tera_error(e: &tera::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.replace('\n', " ")
}

/// The mesh step: `values.yaml`'s `{{name}}` from the Meshfile through `lookup`; the first
/// name it does not know is the error.
pub fn render_values(
    files: &Files,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, Vec<u8>>, TemplateError> {
    let mut out = BTreeMap::new();
    for (path, text) in files {
        let text = if path == "values.yaml" {
            let render = |lookup: crate::pasted::Lookup<'_>| {
                meshfile_manifest::refs::substitute_mesh(text, lookup).map_err(|(name, at)| {
                    TemplateError::UnknownVariable {
                        line: text[..at].matches('\n').count() + 1,
                        name,
                    }
                })
            };
            let names: Vec<String> = meshfile_manifest::refs::mesh_references(text)
                .map(|(name, _)| name.to_owned())
                .collect();
            crate::pasted::check("values.template", &names, lookup, &render)?;
            render(lookup)?
        } else {
            text.clone()
        };
        out.insert(path.clone(), text.into_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(values: &str) -> BTreeMap<String, String> {
        [
            ("values.template", values),
            (
                "Chart.yaml.template",
                "apiVersion: v2\nname: {{chartname}}\nversion: 0.1.0\n",
            ),
            (
                "charts/templates/deployment.yaml",
                "kind: Deployment # {{ .Values.image }}\n",
            ),
            (
                "charts/values.yaml.template",
                "genservice's earlier output\n",
            ),
        ]
        .into_iter()
        .map(|(p, t)| (p.to_owned(), t.to_owned()))
        .collect()
    }

    #[test]
    fn two_stages_as_genservice_and_scone_mesh() {
        let values = "{% raw %}\nimage: {{image_name}}\napi: {{session}}/java\n{% endraw %}\n  scone_log: {{SCONE_LOG | default(value=\"error\")}}\n  port: {{PYTHON_SERVICE_PORT | default(value=\"{{APP_SERVICE_PORT}}\")}}\n";
        let vars = BTreeMap::from([("SCONE_LOG".to_owned(), "debug".to_owned())]);
        let files = render_templates(&dir(values), &vars, "java-hello-user").expect("renders");
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            ["Chart.yaml", "templates/deployment.yaml", "values.yaml"]
        );
        assert_eq!(
            files["values.yaml"],
            "\nimage: {{image_name}}\napi: {{session}}/java\n\n  scone_log: debug\n  port: {{APP_SERVICE_PORT}}\n"
        );
        assert!(files["Chart.yaml"].contains("name: java-hello-user\n"));
        let mesh = BTreeMap::from([
            ("image_name", "r/java:1"),
            ("session", "ns/javaapp"),
            ("APP_SERVICE_PORT", "443"),
        ]);
        let lookup = |name: &str| mesh.get(name).map(|v| (*v).to_owned());
        let chart = render_values(&files, &lookup).expect("mesh step");
        assert_eq!(
            String::from_utf8_lossy(&chart["values.yaml"]),
            "\nimage: r/java:1\napi: ns/javaapp/java\n\n  scone_log: debug\n  port: 443\n"
        );
        let missing = |_: &str| None;
        assert!(render_values(&files, &missing).is_err_and(|e| {
            e.to_string()
                .contains("line 2: `{{image_name}}` is no variable")
        }));
    }

    #[test]
    fn a_key_given_twice_in_chart_yaml_is_the_last_as_helm_reads_it() {
        let text = "apiVersion: v2\nname: svc\n# comment\ndescription: first\nversion: 0.1.0\nappVersion: 0.1.0\n\napiVersion: v2\nappVersion: 1.6.7\ndescription: second\nmaintainers:\n- email: a@b\n  name: A\n";
        assert_eq!(
            last_key_wins(text),
            "name: svc\n# comment\nversion: 0.1.0\napiVersion: v2\nappVersion: 1.6.7\ndescription: second\nmaintainers:\n- email: a@b\n  name: A\n"
        );
    }

    #[test]
    fn only_genservice_forms_reach_tera() {
        for ok in [
            "a: {{ X }}\n",
            "a: {{- X -}}\n",
            "a: {{X|default(value=\"{{APP_SERVICE_PORT}}\")}}\n",
            "{% raw %}{{ anything | upper }} {% for %}{% endraw %}{# note #}",
        ] {
            assert!(check_template(ok).is_ok(), "{ok}");
        }
        for bad in [
            "{{ get_env(name=\"HOME\") }}",
            "{{ range(end=100000000) | length }}",
            "{{ X | upper }}",
            "{{ (((((((((X))))))))) }}",
            "{{ X | default(value=\"a\\\"b\") }}",
            "{% raw %}never closed",
            "{{ X ",
            "a{%} {# x",
            "{#}",
        ] {
            assert!(check_template(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_variables_and_loops_are_refused() {
        let err = render_templates(&dir("a: {{ NOPE }}\n"), &BTreeMap::new(), "x");
        assert!(err.is_err_and(|e| {
            let e = e.to_string();
            e.contains("values.template") && e.contains("NOPE")
        }));
        let err = render_templates(
            &dir("{% for i in range(end=9999999) %}x{% endfor %}"),
            &BTreeMap::new(),
            "x",
        );
        assert!(err.is_err_and(|e| {
            e.to_string()
                .contains("`{% for i in range(end=9999999) %}` is not supported")
        }));
        assert!(render_templates(&BTreeMap::new(), &BTreeMap::new(), "x").is_err());
    }
}
