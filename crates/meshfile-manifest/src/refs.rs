//! The three kinds of reference a manifest string may hold, each resolved by someone else:
//!
//! - `$VAR` / `${VAR}`: the shell environment, when meshfile loads the file (`$$` is never one);
//! - `{{name}}`: mesh-time variables, when a mesh is compiled;
//! - `$$SCONE::name[:format][|escape(json)]$$`: run-time secrets, resolved by CAS in the enclave.
//!
//! [`scan`] splits a string into literal text and references, or says what is malformed.
//! Validation uses it to check syntax; compilation uses the same tokens to substitute.

use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    Literal(&'a str),
    /// `$NAME` or `${NAME}`.
    Env {
        name: &'a str,
        range: Range<usize>,
    },
    /// `{{ name }}`, the name trimmed.
    Mesh {
        name: &'a str,
        range: Range<usize>,
    },
    /// `$$SCONE::name:format|escape(json)$$`; the name may itself hold `{{var}}`.
    Scone(SconeRef<'a>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SconeRef<'a> {
    pub name: &'a str,
    /// After the first `:`, e.g. `crt` or `privatekey:pem`.
    pub format: Option<&'a str>,
    /// The legacy `.crt`/`.key`/`.chain`/`.hex` suffix, when the name was written with one.
    pub legacy_suffix: Option<&'a str>,
    pub escape_json: bool,
    pub range: Range<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefError {
    pub message: String,
    /// Byte offset in the scanned string.
    pub offset: usize,
    pub scone: bool,
}

/// A variable lookup: the value of a name, if it has one.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub const LEGACY_SUFFIXES: &[&str] = &["crt", "key", "chain", "hex"];

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Valid characters of a CAS secret or session path element.
pub fn is_cas_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'~'))
}

/// Valid mesh-time variable names: env names plus `.` and `-` (`{{cas.cas.cas_url}}`).
pub fn is_mesh_var_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && is_name_start(b[0])
        && b.iter()
            .all(|c| is_name_char(*c) || matches!(c, b'.' | b'-'))
}

/// Portable environment variable names: a letter or `_`, then letters, digits and `_`.
pub fn is_env_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && is_name_start(b[0]) && b.iter().all(|c| is_name_char(*c))
}

/// Where the reference opened at `start` (its opener `open_len` bytes long) is closed by `close`.
fn closing(text: &str, start: usize, open_len: usize, close: &str) -> Result<usize, RefError> {
    text[start + open_len..]
        .find(close)
        .map(|c| start + open_len + c)
        .ok_or_else(|| RefError {
            message: format!(
                "`{}` is not closed by `{close}`",
                &text[start..start + open_len]
            ),
            offset: start,
            scone: false,
        })
}

/// Splits `text` into literals and references.
pub fn scan<'a>(text: &'a str) -> Result<Vec<Token<'a>>, RefError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut lit = 0;
    let mut i = 0;
    let flush = |out: &mut Vec<Token<'a>>, from: usize, to: usize| {
        if to > from {
            out.push(Token::Literal(&text[from..to]));
        }
    };
    while i < b.len() {
        if text[i..].starts_with("$$SCONE::") {
            flush(&mut out, lit, i);
            let r = scone_ref(text, i)?;
            i = r.range.end;
            out.push(Token::Scone(r));
            lit = i;
        } else if text[i..].starts_with("$$") {
            // `$$` is an escaped dollar for the shell layer, and never starts a variable.
            i += 2;
        } else if b[i] == b'$' && b.get(i + 1) == Some(&b'{') {
            flush(&mut out, lit, i);
            let close = closing(text, i, 2, "}")?;
            let name = &text[i + 2..close];
            if !is_env_name(name) {
                return Err(RefError {
                    message: format!(
                        "`${{{name}}}` is not a valid variable name (letters, digits and `_`, not starting with a digit)"
                    ),
                    offset: i,
                    scone: false,
                });
            }
            out.push(Token::Env {
                name,
                range: i..close + 1,
            });
            i = close + 1;
            lit = i;
        } else if b[i] == b'$' && b.get(i + 1).is_some_and(|c| is_name_start(*c)) {
            flush(&mut out, lit, i);
            let end = b[i + 1..]
                .iter()
                .position(|c| !is_name_char(*c))
                .map_or(b.len(), |p| i + 1 + p);
            out.push(Token::Env {
                name: &text[i + 1..end],
                range: i..end,
            });
            i = end;
            lit = i;
        } else if text[i..].starts_with("{{") {
            flush(&mut out, lit, i);
            let close = closing(text, i, 2, "}}")?;
            let name = text[i + 2..close].trim();
            if !is_mesh_var_name(name) {
                return Err(RefError {
                    message: format!("`{{{{{name}}}}}` is not a valid mesh variable name"),
                    offset: i,
                    scone: false,
                });
            }
            out.push(Token::Mesh {
                name,
                range: i..close + 2,
            });
            i = close + 2;
            lit = i;
        } else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    flush(&mut out, lit, b.len());
    Ok(out)
}

fn scone_ref(text: &str, start: usize) -> Result<SconeRef<'_>, RefError> {
    let body_start = start + "$$SCONE::".len();
    let err = |message: String| RefError {
        message,
        offset: start,
        scone: true,
    };
    let close = text[body_start..]
        .find("$$")
        .map(|c| body_start + c)
        .ok_or_else(|| err("`$$SCONE::` is not closed by `$$`".into()))?;
    let mut body = &text[body_start..close];
    let mut escape_json = false;
    if let Some((head, filter)) = body.split_once('|') {
        if filter != "escape(json)" {
            return Err(err(format!(
                "unknown filter `|{filter}`; the only filter is `|escape(json)`"
            )));
        }
        escape_json = true;
        body = head;
    }
    let (name_part, format) = match body.split_once(':') {
        Some((n, f)) => (n, Some(f)),
        None => (body, None),
    };
    // `{{var}}` inside a name is filled in at mesh time; check what is around it.
    let plain_name = strip_mesh_vars(name_part);
    if plain_name.is_empty() && !name_part.contains("{{") {
        return Err(err("`$$SCONE::$$` names no secret".into()));
    }
    if !plain_name.is_empty()
        && !plain_name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'~'))
    {
        return Err(err(format!("`{name_part}` is not a valid secret name")));
    }
    if let Some(f) = format
        && (f.is_empty()
            || !f
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b':' | b'-')))
    {
        return Err(err(format!("`{f}` is not a valid format")));
    }
    let (name, legacy_suffix) = match name_part.rsplit_once('.') {
        Some((n, suffix)) if format.is_none() && LEGACY_SUFFIXES.contains(&suffix) => {
            (n, Some(suffix))
        }
        _ => (name_part, None),
    };
    Ok(SconeRef {
        name,
        format,
        legacy_suffix,
        escape_json,
        range: start..close + 2,
    })
}

fn strip_mesh_vars(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        match rest[open..].find("}}") {
            Some(close) => rest = &rest[open + close + 2..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The current spelling of a legacy suffix: `.crt` is `:crt`, `.key` is `:privatekey`.
pub fn modern_format(legacy: &str) -> &'static str {
    match legacy {
        "crt" => "crt",
        "key" => "privatekey",
        "chain" => "chain",
        _ => "hex",
    }
}

/// Whether `text` names an environment variable (`$VAR`, `${VAR}`): a value known only once
/// the environment is.
pub fn names_env(text: &str) -> bool {
    text.contains('$')
        && scan(text).is_ok_and(|tokens| tokens.iter().any(|t| matches!(t, Token::Env { .. })))
}

/// Replaces every `$VAR`/`${VAR}` of `text`; `$$` stays as written. Returns the names
/// `lookup` did not know, in order of appearance.
pub fn substitute_env(text: &str, lookup: Lookup<'_>) -> Result<String, Vec<String>> {
    let Ok(tokens) = scan(text) else {
        return Ok(text.to_owned()); // malformed references are reported by validation
    };
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut last = 0;
    for token in &tokens {
        if let Token::Env { name, range } = token {
            out.push_str(&text[last..range.start]);
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => missing.push((*name).to_owned()),
            }
            last = range.end;
        }
    }
    out.push_str(&text[last..]);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

/// Every `{{ name }}` of `text`, also inside `$$SCONE::...$$` names: the trimmed name and the
/// byte range of the whole reference. An unclosed `{{` ends the walk (validation reports it).
pub fn mesh_references(text: &str) -> impl Iterator<Item = (&str, Range<usize>)> {
    let mut offset = 0;
    std::iter::from_fn(move || {
        let rest = &text[offset..];
        let open = rest.find("{{")?;
        let close = rest[open + 2..].find("}}")?;
        let name = rest[open + 2..open + 2 + close].trim();
        let start = offset + open;
        offset = start + 2 + close + 2;
        Some((name, start..offset))
    })
}

/// Replaces every `{{ name }}` of `text`, also inside `$$SCONE::...$$` names. Returns the
/// first unknown name and its byte offset.
pub fn substitute_mesh(text: &str, lookup: Lookup<'_>) -> Result<String, (String, usize)> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (name, range) in mesh_references(text) {
        out.push_str(&text[last..range.start]);
        match lookup(name) {
            Some(value) => out.push_str(&value),
            None => return Err((name.to_owned(), range.start)),
        }
        last = range.end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_all_three_kinds() {
        let t = scan("a $X ${Y} {{ z }} $$SCONE::s:crt$$ $$ b").expect("scans");
        let kinds: Vec<_> = t
            .iter()
            .filter_map(|t| match t {
                Token::Env { name, .. } => Some(format!("env:{name}")),
                Token::Mesh { name, .. } => Some(format!("mesh:{name}")),
                Token::Scone(r) => Some(format!("scone:{}:{:?}", r.name, r.format)),
                Token::Literal(_) => None,
            })
            .collect();
        assert_eq!(kinds, ["env:X", "env:Y", "mesh:z", "scone:s:Some(\"crt\")"]);
    }

    #[test]
    fn legacy_suffix_and_mesh_names() {
        let t = scan("$$SCONE::flask.crt$$").expect("scans");
        let Token::Scone(r) = &t[0] else {
            panic!("scone ref expected")
        };
        assert_eq!((r.name, r.legacy_suffix), ("flask", Some("crt")));
        let t = scan("$$SCONE::{{BACKEND_CERT}}:crt$$").expect("scans");
        let Token::Scone(r) = &t[0] else {
            panic!("scone ref expected")
        };
        assert_eq!(r.name, "{{BACKEND_CERT}}");
    }

    #[test]
    fn reports_malformed() {
        assert!(scan("${X").is_err());
        assert!(scan("${1X}").is_err());
        assert!(scan("{{ x").is_err());
        assert!(scan("$$SCONE::x").is_err());
        assert!(scan("$$SCONE::x|upper$$").is_err());
        assert!(scan("cost $5 and 100%").is_ok());
    }
}
