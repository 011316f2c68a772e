//! The compiler's secrets: who defines each, references to them, the session's secrets and
//! volumes.

use super::*;

impl<'a> Compiler<'a> {
    /// Which service defines each secret name, after mesh-time substitution of the names.
    /// Which services define each secret. Several may (each session defines its own, as two
    /// services of one image do); an import is ambiguous only when it has several to choose from.
    pub(super) fn secret_owners(&mut self, units: &[Unit<'_>]) -> BTreeMap<String, Vec<String>> {
        let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for unit in units {
            let scope = Scope::new(self.mesh, &unit.name, &unit.environment, "");
            for secret in unit.descriptor.manifest.secrets_defined() {
                if let Ok(name) = scope.substitute(secret.name.as_str()) {
                    owners.entry(name).or_default().push(unit.name.clone());
                }
            }
        }
        owners
    }

    /// The service manifest's `build.volumes` in the session language's shape: each volume of
    /// the session (defined, perhaps exported; or imported), and where the image mounts it.
    /// Validation has checked that each has a name and a path, and is not both imported and
    /// exported.
    pub(super) fn volumes(
        &mut self,
        manifest: &meshfile_manifest::service::ServiceManifest,
        scope: &Scope<'_>,
        file: &str,
    ) -> (Vec<meshfile_session::Volume>, Vec<meshfile_session::Mount>) {
        let mut volumes = Vec::new();
        let mut mounts = Vec::new();
        let mut sub = |t: &Text| self.substitute(scope, file, t);
        for v in manifest.build.volumes.iter().flatten() {
            let (Some(name), Some(path)) = (&v.name, &v.path) else {
                continue;
            };
            let name = sub(name);
            let import = v.import.as_ref().and_then(|i| {
                Some(meshfile_session::VolumeImport {
                    session: sub(i.session.as_ref()?),
                    volume: sub(i.volume.as_ref()?),
                })
            });
            let mut export = Vec::new();
            for e in v.export.iter().flatten() {
                let Some(session) = &e.session else { continue };
                export.push(meshfile_session::VolumeExport {
                    session: sub(session),
                    session_hash: e.session_hash.as_ref().map(&mut sub),
                    update_policy: e.update_policy.as_ref().map(&mut sub),
                    volume_alias: e.volume_alias.as_ref().map(&mut sub),
                });
            }
            mounts.push(meshfile_session::Mount {
                name: name.clone(),
                path: sub(path),
            });
            volumes.push(meshfile_session::Volume {
                name,
                import,
                export,
            });
        }
        (volumes, mounts)
    }

    /// `$$SCONE::name$$` names that were built from mesh-time variables are checked here.
    pub(super) fn check_secret_references<'t>(
        &mut self,
        texts: impl Iterator<Item = &'t String>,
        known: &BTreeMap<String, Option<SecretKind>>,
        unit: &Unit<'_>,
    ) {
        let mut unknown = BTreeSet::new();
        for text in texts {
            for token in refs::scan(text).unwrap_or_default() {
                if let Token::Scone(r) = token
                    && !known.contains_key(r.name)
                    && !known.contains_key(
                        text[r.range.start + "$$SCONE::".len()..]
                            .split(['$', ':', '|'])
                            .next()
                            .unwrap_or_default(),
                    )
                {
                    unknown.insert(r.name.to_owned());
                }
            }
        }
        for name in unknown {
            self.error(
                &unit.descriptor.file,
                Code::UnknownSecretRef,
                Span::default(),
                format!("service `{}` refers to `$$SCONE::{name}$$`, which it neither defines nor imports once mesh variables are filled in", unit.name),
                "define the secret, or add its name to `secrets.import`",
            );
        }
    }

    pub(super) fn secret(
        &mut self,
        s: &ManifestSecret,
        scope: &Scope<'_>,
        file: &str,
        namespace: &str,
    ) -> Secret {
        let mut fields: Vec<(String, Value)> = Vec::new();
        if let Some(size) = &s.size {
            let size = self.substitute(scope, file, size);
            fields.push((
                "size".into(),
                size.parse::<u64>().map_or(Value::Text(size), Value::Int),
            ));
        }
        let texts = [
            ("value", &s.value),
            ("key_type", &s.key_type),
            ("private_key", &s.private_key),
            ("issuer", &s.issuer),
            ("common_name", &s.common_name),
            ("endpoint", &s.endpoint),
            ("valid_for", &s.valid_for),
            ("tenant_id", &s.tenant_id),
            ("client_id", &s.client_id),
            ("application_secret", &s.application_secret),
        ];
        for (key, v) in texts {
            if let Some(v) = v {
                fields.push((key.to_owned(), Value::Text(self.substitute(scope, file, v))));
            }
        }
        for (key, list) in [("dns", &s.dns), ("san", &s.san)] {
            if let Some(list) = list {
                let names = list
                    .iter()
                    .map(|d| self.substitute(scope, file, d))
                    .collect();
                fields.push((key.into(), Value::List(names)));
            }
        }
        for (key, v) in [("export_public", &s.export_public), ("migrate", &s.migrate)] {
            if let Some(v) = v {
                fields.push((key.to_owned(), Value::Bool(v.as_str() == "true")));
            }
        }
        Secret {
            name: self.substitute(scope, file, &s.name),
            kind: Some(s.kind.value.as_str().to_owned()),
            fields,
            export: vec![Export::Namespace(namespace.to_owned())],
            import: None,
        }
    }

    /// An `image_secrets` template: a YAML list of session secrets, after substitution.
    pub(super) fn secrets_template(
        &mut self,
        path: &Text,
        scope: &Scope<'_>,
    ) -> Option<Vec<Secret>> {
        let (node, _) = self.template(path, scope)?;
        let meshfile_yaml::Value::Sequence(items) = node.value else {
            self.error(
                self.mesh_file,
                Code::OverrideFile,
                path.span,
                format!("`{path}` must hold a YAML list of secrets"),
                "write one `- name: ...` entry per secret",
            );
            return None;
        };
        let mut secrets = Vec::new();
        for item in items {
            let meshfile_yaml::Value::Mapping(entries) = &item.value else {
                self.error(
                    self.mesh_file,
                    Code::OverrideFile,
                    path.span,
                    format!("`{path}`: each secret is a mapping"),
                    "write `- name: ...` entries",
                );
                return None;
            };
            let Some(name) = entries
                .iter()
                .find(|e| e.key_text() == "name")
                .and_then(|e| e.value.as_scalar())
            else {
                self.error(
                    self.mesh_file,
                    Code::OverrideFile,
                    path.span,
                    format!("`{path}`: a secret without `name`"),
                    "every secret needs a name",
                );
                return None;
            };
            let kind = entries
                .iter()
                .find(|e| e.key_text() == "kind")
                .and_then(|e| e.value.as_scalar())
                .map(str::to_owned);
            // `import: {session, secret}` is an import, so that delivery orders the sessions.
            let import = entries
                .iter()
                .find(|e| e.key_text() == "import")
                .and_then(|e| template_import(&e.value));
            let fields = entries
                .iter()
                .filter(|e| !matches!(e.key_text(), "name" | "kind"))
                .filter(|e| import.is_none() || e.key_text() != "import")
                .map(|e| (e.key_text().to_owned(), Value::Yaml(e.value.clone())))
                .collect();
            secrets.push(Secret {
                name: name.to_owned(),
                kind,
                fields,
                export: Vec::new(),
                import,
            });
        }
        Some(secrets)
    }
}
