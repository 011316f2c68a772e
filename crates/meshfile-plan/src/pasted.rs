//! Text pasted into YAML stays text. genservice and scone_mesh paste values into
//! `values.template` and `Chart.yaml.template` as they are; a value holding a line break,
//! `---`, a tag or a quote would add keys, documents or types of its own to the chart (a
//! service manifest's variable giving another service's pod a `securityContext`, say). Here
//! the file is rendered twice, once with a neutral stand-in for each value and once with the
//! values, and the two must parse to the same tree, each scalar the stand-in's text with the
//! values put in: a value may fill a scalar, never shape the YAML around it.

use meshfile_yaml::{Limits, Node, Value};

/// A value that would not stay one value where it is pasted.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Pasted {
    #[error(
        "{file} line {line}: the value of `{name}` would not stay one YAML value there (a line break, `---`, a tag, a quote or `: ` in it adds YAML of its own); refused rather than pasted into the chart"
    )]
    NotOneValue {
        file: String,
        line: usize,
        name: String,
    },
    #[error(
        "{file}: the values pasted into it, together, change its YAML (keys, documents or tags of their own)"
    )]
    ValuesTogether { file: String },
}

/// A lookup of values by name.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The stand-in of the `i`-th name: plain YAML text no template holds, none a part of another.
fn standin(i: usize) -> String {
    format!("meshfilestandin{i}z")
}

/// Checks that rendering `file` (through `render`, given a lookup) with the values of `names`
/// (`value`) pastes each as text only; the error names the first value that does not, and the
/// line where it goes.
pub fn check<E: From<Pasted>>(
    file: &str,
    names: &[String],
    value: Lookup<'_>,
    render: &dyn Fn(Lookup<'_>) -> Result<String, E>,
) -> Result<(), E> {
    let index = |name: &str| names.iter().position(|n| n == name);
    let standins = |name: &str| index(name).map(standin);
    let neutral = render(&standins)?;
    let real = render(value)?;
    // The values that the file holds, with their stand-ins.
    let pasted: Vec<(String, &String, String)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let token = standin(i);
            neutral
                .contains(&token)
                .then(|| value(name).map(|v| (token, name, v)))
                .flatten()
        })
        .collect();
    let limits = Limits::default();
    let Ok(shape) = meshfile_yaml::parse(&neutral, &limits) else {
        // Not YAML even with neutral values: Helm says what is wrong with the template; a
        // line break is still no value's to add.
        return match pasted.iter().find(|(_, _, v)| v.contains(['\n', '\r'])) {
            Some((token, name, _)) => Err(refused(file, &neutral, token, name).into()),
            None => Ok(()),
        };
    };
    let same = |text: &str| -> bool {
        meshfile_yaml::parse(text, &limits).is_ok_and(|tree| same_tree(&shape, &tree, &pasted))
    };
    if same(&real) {
        return Ok(());
    }
    // The first value that alone changes the tree is the one to name.
    for (token, name, _) in &pasted {
        let only = |n: &str| {
            if n == name.as_str() {
                value(n)
            } else {
                standins(n)
            }
        };
        let text = render(&only)?;
        let alone: Vec<(String, &String, String)> = pasted
            .iter()
            .map(|(t, n, v)| {
                let v = if n == name { v.clone() } else { t.clone() };
                (t.clone(), *n, v)
            })
            .collect();
        let kept =
            meshfile_yaml::parse(&text, &limits).is_ok_and(|tree| same_tree(&shape, &tree, &alone));
        if !kept {
            return Err(refused(file, &neutral, token, name).into());
        }
    }
    Err(Pasted::ValuesTogether {
        file: file.to_owned(),
    }
    .into())
}

fn refused(file: &str, neutral: &str, token: &str, name: &str) -> Pasted {
    Pasted::NotOneValue {
        file: file.to_owned(),
        line: neutral
            .find(token)
            .map_or(0, |at| neutral[..at].matches('\n').count() + 1),
        name: name.to_owned(),
    }
}

/// Whether `real` is `shape` with each stand-in's text replaced by its value: the same
/// mappings with the same keys, sequences of the same length, the same tags.
fn same_tree(shape: &Node, real: &Node, pasted: &[(String, &String, String)]) -> bool {
    if shape.tag != real.tag {
        return false;
    }
    match (&shape.value, &real.value) {
        (Value::Scalar { text: a, .. }, Value::Scalar { text: b, .. }) => {
            let mut expected = a.to_string();
            for (token, _, value) in pasted {
                expected = expected.replace(token.as_str(), value);
            }
            expected == *b
        }
        (Value::Sequence(a), Value::Sequence(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_tree(x, y, pasted))
        }
        (Value::Mapping(a), Value::Mapping(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| {
                    same_tree(&x.key, &y.key, pasted) && same_tree(&x.value, &y.value, pasted)
                })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paste(template: &str, value: &str) -> Result<(), Pasted> {
        let names = vec!["X".to_owned(), "Y".to_owned()];
        let values = |n: &str| match n {
            "X" => Some(value.to_owned()),
            "Y" => Some("plain".to_owned()),
            _ => None,
        };
        let render = |lookup: Lookup<'_>| -> Result<String, Pasted> {
            Ok(template
                .replace("{{X}}", &lookup("X").unwrap_or_default())
                .replace("{{Y}}", &lookup("Y").unwrap_or_default()))
        };
        check("values.template", &names, &values, &render)
    }

    #[test]
    fn a_value_fills_a_scalar_and_nothing_else() {
        let template = "image: {{X}}\nname: \"{{Y}}-svc\"\nlist:\n  - {{X}}\n";
        for ok in ["python:3.11", "1", "true", "a b", "with 'quote'"] {
            assert_eq!(paste(template, ok), Ok(()), "{ok}");
        }
        for bad in [
            "x\nsecurityContext:\n  privileged: true",
            "x\n---\nkind: Pod",
            "!!binary aGk=",
            "a: b",
            "x # hidden",
            "[1, 2]",
            "&anchor x",
        ] {
            let refused = paste(template, bad).expect_err(bad).to_string();
            assert!(
                refused.starts_with("values.template line 1: the value of `X`"),
                "{bad}: {refused}"
            );
        }
        let refused = paste("a: \"{{X}}\"\n", "x\" , \"b\": \"c")
            .expect_err("quote")
            .to_string();
        assert!(refused.contains("`X`"), "{refused}");
    }

    #[test]
    fn a_template_that_is_no_yaml_still_takes_no_line_break() {
        assert_eq!(paste("{{X}}: [\n", "x"), Ok(()));
        assert!(paste("{{X}}: [\n", "x\ny").is_err());
    }
}
