//! The compiler's templates: a Meshfile's `image_policy` and `image_secrets` files, checked
//! and merged into the session.

use super::*;

/// The service a session template declares first: the program its pods run, which their
/// `SCONE_CONFIG_ID` names.
pub(super) fn template_program(node: &meshfile_yaml::Node) -> Option<String> {
    let meshfile_yaml::Value::Sequence(services) = &node.get("services")?.value.value else {
        return None;
    };
    Some(services.first()?.scalar_at("name")?.to_owned())
}

/// Names as a sentence lists them: "`a` and `b`", "`a`, `b` and `c`".
pub(super) fn listed(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A template secret's `import: {session, secret}`, when it is one.
pub(super) fn template_import(node: &meshfile_yaml::Node) -> Option<Import> {
    let meshfile_yaml::Value::Mapping(entries) = &node.value else {
        return None;
    };
    (entries.len() == 2).then_some(())?;
    Some(Import {
        session: node.scalar_at("session")?.to_owned(),
        secret: node.scalar_at("secret")?.to_owned(),
    })
}

impl<'a> Compiler<'a> {
    /// A session from an `image_policy` template is checked as a generated one is: each
    /// `$$SCONE::name$$` it holds names a secret it defines or imports, and it declares the
    /// service its pods run (their `SCONE_CONFIG_ID` names it). Problems are located in the
    /// template file.
    pub(super) fn check_policy_template(
        &mut self,
        node: &meshfile_yaml::Node,
        file: &str,
        path: &Text,
    ) {
        let known: BTreeSet<&str> = match node.get("secrets").map(|e| &e.value.value) {
            Some(meshfile_yaml::Value::Sequence(items)) => items
                .iter()
                .filter_map(|item| item.scalar_at("name"))
                .collect(),
            _ => BTreeSet::new(),
        };
        let mut scalars = vec![node];
        let mut unknown: Vec<(String, Span)> = Vec::new();
        while let Some(n) = scalars.pop() {
            match &n.value {
                meshfile_yaml::Value::Scalar { text, .. } => {
                    for token in refs::scan(text).unwrap_or_default() {
                        if let Token::Scone(r) = token
                            && !known.contains(r.name)
                            && !unknown.iter().any(|(name, _)| name == r.name)
                        {
                            unknown.push((r.name.to_owned(), n.span));
                        }
                    }
                }
                meshfile_yaml::Value::Sequence(items) => scalars.extend(items.iter().rev()),
                meshfile_yaml::Value::Mapping(entries) => {
                    scalars.extend(entries.iter().rev().map(|e| &e.value))
                }
            }
        }
        for (name, span) in unknown {
            self.error(
                file,
                Code::UnknownSecretRef,
                span,
                format!("the session in `{path}` refers to `$$SCONE::{name}$$`, which its `secrets` neither define nor import"),
                "add the secret to the template's `secrets` (with `import:` for another session's), or correct the name",
            );
        }
        if template_program(node).is_none() {
            self.error(
                file,
                Code::OverrideFile,
                node.span,
                format!("the session in `{path}` declares no service: pods find their configuration by `SCONE_CONFIG_ID`, which names one"),
                "add `services: [{name: <program>, image_name: ..., mrenclaves: [...], command: ...}]`",
            );
        }
    }

    /// An `image_policy` template: a whole session, after substitution; its name is ours.
    pub(super) fn policy_template(
        &mut self,
        path: &Text,
        scope: &Scope<'_>,
        session_name: &str,
    ) -> Option<Document> {
        let (mut node, file) = self.template(path, scope)?;
        self.check_policy_template(&node, &file, path);
        let meshfile_yaml::Value::Mapping(entries) = &mut node.value else {
            self.error(
                self.mesh_file,
                Code::OverrideFile,
                path.span,
                format!("`{path}` must hold a session (a mapping)"),
                "start it with `name:` and `version:`",
            );
            return None;
        };
        entries.retain(|e| e.key_text() != "name");
        entries.insert(
            0,
            meshfile_yaml::Entry {
                key: meshfile_yaml::Node::scalar("name", Style::Plain),
                value: meshfile_yaml::Node::scalar(session_name.to_owned(), Style::DoubleQuoted),
            },
        );
        Some(Document::from_tree(session_name.to_owned(), node))
    }

    /// A template file named by the Meshfile, `{{name}}` substituted, then parsed; with the
    /// file's name as diagnostics give it.
    pub(super) fn template(
        &mut self,
        path: &Text,
        scope: &Scope<'_>,
    ) -> Option<(meshfile_yaml::Node, String)> {
        let (text, file) = match self.override_text(path) {
            Ok(found) => found,
            Err(errors) => {
                self.errors.extend(errors);
                return None;
            }
        };
        let text = match scope.substitute_block(&text) {
            Ok(text) => text,
            Err((name, offset)) => {
                let line = text[..offset].matches('\n').count() as u32 + 1;
                let pos = meshfile_yaml::Pos { line, column: 1 };
                self.errors
                    .push(Located::new(&file, scope.undefined(&name, Span::at(pos))));
                return None;
            }
        };
        match meshfile_yaml::parse(&text, &meshfile_manifest::limits()) {
            Ok(node) => Some((node, file)),
            Err(e) => {
                self.errors
                    .push(Located::new(&file, meshfile_manifest::parse_diagnostic(&e)));
                None
            }
        }
    }
}
