//! The compiler's session of one service: its command, environment, injection files,
//! secrets and volumes as the session language writes them, and the CAS that attests it.

use super::*;

impl<'a> Compiler<'a> {
    pub(super) fn session(
        &mut self,
        unit: &Unit<'_>,
        scope: &Scope<'_>,
        owners: &BTreeMap<String, Vec<String>>,
    ) -> Option<Document> {
        let manifest = &unit.descriptor.manifest;
        let file = unit.descriptor.file.as_str();
        let namespace = self.mesh.policy.namespace.as_str();
        let session_name = service_session_name(namespace, &unit.name);
        if let Some(path) = &unit.service.image_policy {
            return self.policy_template(path, scope, &session_name);
        }
        let image_name = format!("{}_image", unit.name);

        let mut environment = BTreeMap::new();
        for kv in unit.environment.local.iter().flatten() {
            let name = kv.name.as_str();
            if ENCLAVE_CREATION_VARIABLES.contains(&name) || read_by_runtime(name) {
                continue;
            }
            let value = self.substitute(scope, &unit.env_file, &kv.value);
            environment.insert(kv.name.as_str().to_owned(), value);
        }
        for g in
            (unit.environment.global.iter().flatten()).filter(|g| !read_by_runtime(g.name.as_str()))
        {
            match scope.lookup(g.name.as_str()) {
                Some((value, _)) => {
                    environment.insert(g.name.as_str().to_owned(), value);
                }
                None => self.error(
                    &unit.env_file,
                    Code::MissingGlobalValue,
                    g.name.span,
                    format!("service `{}` needs `{}`, and the Meshfile gives it no value", unit.name, g.name),
                    format!("add `- name: {}` with a value to the `global` env section, or to a `service: {}` section of {}", g.name, unit.name, self.mesh_file),
                ),
            }
        }
        let command = match &manifest.build.command {
            meshfile_manifest::service::Command::Line(line) => {
                meshfile_session::Command::Line(self.substitute(scope, file, line))
            }
            meshfile_manifest::service::Command::Words(words) => meshfile_session::Command::Words(
                words
                    .iter()
                    .map(|w| self.substitute(scope, file, w))
                    .collect(),
            ),
        };
        // SCONE requires a working directory; `/` is in every image (lint says so, W107).
        let pwd = Some(manifest.build.pwd.as_ref().map_or_else(
            || DEFAULT_PWD.to_owned(),
            |p| self.substitute(scope, file, p),
        ));
        let jars: Vec<&str> = (manifest.build.copy.iter().flatten())
            .map(|c| c.as_str())
            .filter(|c| c.ends_with(".jar"))
            .collect();
        let command = with_class_path(command, pwd.as_deref().unwrap_or(DEFAULT_PWD), &jars);
        let injection_files: Vec<InjectionFile> = manifest
            .injection_files
            .iter()
            .flatten()
            .map(|f| InjectionFile {
                path: self.substitute(scope, file, &f.path),
                content: f.content.as_ref().map(|c| self.substitute(scope, file, c)),
                permission: f.permission.as_ref().map(|p| p.as_str().to_owned()),
            })
            .collect();

        let mut secrets = match &unit.service.image_secrets {
            Some(path) => self.secrets_template(path, scope)?,
            None => manifest
                .secrets_defined()
                .map(|s| self.secret(s, scope, file, namespace))
                .collect(),
        };
        let mut known: BTreeMap<String, Option<SecretKind>> = manifest
            .secrets_defined()
            .filter_map(|s| {
                scope
                    .substitute(s.name.as_str())
                    .ok()
                    .map(|n| (n, Some(s.kind.value)))
            })
            .collect();
        known.extend(secrets.iter().map(|s| (s.name.clone(), None)));
        for import in manifest.secrets_imported() {
            let name = self.substitute(scope, file, import);
            // An `image_secrets` template that gives this secret says where it comes from.
            if secrets.iter().any(|s| s.name == name) {
                continue;
            }
            match owners.get(&name).map(Vec::as_slice) {
                Some([owner]) => secrets.push(Secret {
                    name: name.clone(),
                    kind: None,
                    fields: Vec::new(),
                    export: Vec::new(),
                    import: Some(Import { session: format!("{namespace}/{owner}"), secret: name.clone() }),
                }),
                Some(several) => self.error(
                    file,
                    Code::AmbiguousSecret,
                    import.span,
                    format!(
                        "service `{}` imports secret `{name}`, which {} define: which one it gets is not said",
                        unit.name,
                        listed(several)
                    ),
                    format!(
                        "rename the secret in all but one of their service manifests, or give `{}` an `image_secrets` file in the Meshfile that imports `{name}` from one session by name (`import: {{session: {namespace}/{}, secret: {name}}}`)",
                        unit.name, several[0]
                    ),
                ),
                None => self.error(
                    file,
                    Code::UnexportedImport,
                    import.span,
                    format!("service `{}` imports secret `{name}`, which no service of the mesh defines", unit.name),
                    "define it under `secrets.global` of the service that should own it, or remove the import",
                ),
            }
            known.insert(name, None);
        }
        let contents: Vec<String> = injection_files_contents(&injection_files);
        self.check_secret_references(
            environment.values().chain(command.texts()).chain(&contents),
            &known,
            unit,
        );

        let (volumes, mounts) = self.volumes(manifest, scope, file);
        let session = Session {
            name: session_name,
            services: vec![meshfile_session::Service {
                name: scope.program.to_owned(),
                image_name: Some(image_name.clone()),
                mrenclaves: unit.descriptor.mrenclaves.clone(),
                command: Some(command),
                pwd,
                environment,
            }],
            images: vec![Image {
                name: image_name,
                injection_files,
                volumes: mounts,
            }],
            volumes,
            secrets,
            access_policy: service_access_policy(self.mesh),
            security: self.security(),
        };
        Some(session.into_document())
    }

    pub(super) fn security(&self) -> Option<Security> {
        let policy = &self.mesh.policy;
        let mut tolerate: Vec<String> = policy
            .tolerate
            .iter()
            .flat_map(|t| split_list(t.as_str()))
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        if self.options.mode == Mode::Debug && !tolerate.iter().any(|t| t == "debug-mode") {
            tolerate.push("debug-mode".into());
        }
        let ignore_advisories = match &policy.ignore_advisories {
            None => Advisories::None,
            Some(a) if a.as_str().trim() == "*" => Advisories::All,
            Some(a) => Advisories::List(
                split_list(a.as_str())
                    .into_iter()
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
        };
        let security = Security {
            mode: policy.maa.as_ref().map(|_| "maa".to_owned()),
            url: policy.maa.as_ref().map(|m| m.as_str().to_owned()),
            tolerate,
            ignore_advisories,
        };
        (security != Security::default()).then_some(security)
    }
}
