//! Configuration preview (development only): what an attested program would receive.

use std::collections::BTreeMap;

use meshfile_yaml::Limits;
use serde::{Deserialize, Serialize};

use crate::session::{get, list, text};
use crate::{Error, Store, secrets};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub config_id: String,
    pub command: Option<String>,
    pub pwd: Option<String>,
    pub environment: BTreeMap<String, String>,
    /// Path and content of each injected file.
    pub injection_files: BTreeMap<String, String>,
}

impl Store {
    /// `config_id` is `<session>/<service>`; `mrenclave` the program's measurement.
    pub fn preview(
        &self,
        caller: &str,
        config_id: &str,
        mrenclave: &str,
    ) -> Result<Preview, Error> {
        let (session_name, service_name) = config_id.rsplit_once('/').ok_or_else(|| {
            Error::Invalid(format!(
                "`{config_id}` is not a config id `<namespace>/<session>/<service>`"
            ))
        })?;
        let version = self.active_for(caller, session_name)?;
        let tree = meshfile_yaml::parse(&version.session, &Limits::default())
            .map_err(|e| Error::Internal(e.to_string()))?;
        let service = list(get(&tree, "services"))
            .iter()
            .find(|s| text(s, "name") == Some(service_name))
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "session `{session_name}` has no service `{service_name}`"
                ))
            })?;
        let attestation = get(service, "attestation");
        let measured: Vec<&str> = match attestation.and_then(|a| get(a, "mrenclave")) {
            Some(node) if node.as_scalar().is_some() => node.as_scalar().into_iter().collect(),
            node => list(node)
                .iter()
                .filter_map(meshfile_yaml::Node::as_scalar)
                .collect(),
        };
        if !measured.iter().any(|m| m.eq_ignore_ascii_case(mrenclave)) {
            return Err(Error::NotAttested {
                session: session_name.to_owned(),
                service: service_name.to_owned(),
                mrenclave: mrenclave.to_owned(),
            });
        }
        let resolve = |value: &str| -> Result<String, Error> { self.substitute(&version, value) };
        // A command given as words is shown as a line, the words resolved one by one.
        let command = match get(service, "command").map(|n| &n.value) {
            Some(meshfile_yaml::Value::Sequence(words)) => Some(
                words
                    .iter()
                    .filter_map(meshfile_yaml::Node::as_scalar)
                    .map(resolve)
                    .collect::<Result<Vec<_>, _>>()?
                    .join(" "),
            ),
            _ => text(service, "command").map(resolve).transpose()?,
        };
        let mut environment = BTreeMap::new();
        if let Some(meshfile_yaml::Value::Mapping(entries)) =
            get(service, "environment").map(|n| &n.value)
        {
            for e in entries {
                environment.insert(
                    e.key_text().to_owned(),
                    resolve(e.value.as_scalar().unwrap_or_default())?,
                );
            }
        }
        let mut injection_files = BTreeMap::new();
        if let Some(image) = text(service, "image_name") {
            for img in list(get(&tree, "images"))
                .iter()
                .filter(|i| text(i, "name") == Some(image))
            {
                for f in list(get(img, "injection_files")) {
                    if let (Some(path), Some(content)) = (text(f, "path"), text(f, "content")) {
                        injection_files.insert(path.to_owned(), resolve(content)?);
                    }
                }
            }
        }
        Ok(Preview {
            config_id: config_id.to_owned(),
            command,
            pwd: text(service, "pwd").map(str::to_owned),
            environment,
            injection_files,
        })
    }

    fn substitute(&self, version: &crate::Version, value: &str) -> Result<String, Error> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(start) = rest.find("$$SCONE::") {
            out.push_str(&rest[..start]);
            let body_start = start + "$$SCONE::".len();
            let end = rest[body_start..]
                .find("$$")
                .map(|e| body_start + e)
                .ok_or_else(|| Error::Invalid(format!("unclosed `$$SCONE::` in `{value}`")))?;
            let mut body = &rest[body_start..end];
            let escape_json = body.ends_with("|escape(json)");
            body = body.trim_end_matches("|escape(json)");
            let (name_part, format) = match body.split_once(':') {
                Some((n, f)) => (n, Some(f)),
                None => (body, None),
            };
            let (name, legacy) = match name_part.rsplit_once('.') {
                Some((n, s))
                    if format.is_none()
                        && ["crt", "key", "chain", "hex"].contains(&s)
                        && !version.secrets.contains_key(name_part) =>
                {
                    (n, Some(s))
                }
                _ => (name_part, None),
            };
            let secret = self.secret_of(version, name)?;
            let rendered = secrets::render(name, &secret, format, legacy)?;
            if escape_json {
                let quoted = serde_json::to_string(&rendered).unwrap_or_default();
                out.push_str(&quoted[1..quoted.len() - 1]);
            } else {
                out.push_str(&rendered);
            }
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}
