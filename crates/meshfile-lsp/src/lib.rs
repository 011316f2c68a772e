//! `meshfile lsp`: the language server. Diagnostics with meshfile's codes, positions and
//! hints as the user types, across the files of a mesh directory (a service manifest's change
//! re-checks the Meshfile that uses it); hover (a field's documentation, a variable's
//! effective value and origin, a secret's definer and kind); go to definition (a secret, a
//! variable, a service's manifest); completion of fields and values from the specification;
//! quick fixes for near misses.
//!
//! Synchronous on one thread: each change is checked before the next message is read, and
//! changes that arrived meanwhile are taken together, so a burst of typing costs one check.

mod complete;
mod diagnostics;
mod navigate;
mod position;
mod schema;
pub mod transport;
mod workspace;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::Notification as _;
use lsp_types::request::Request as _;
use lsp_types::{Url, notification, request};

use workspace::{Analysis, Buffers};

#[derive(Debug, thiserror::Error)]
pub enum LspError {
    #[error("the language server's connection failed: {0}")]
    Protocol(#[from] lsp_server::ProtocolError),
    #[error("the language server's connection closed: {0}")]
    Closed(String),
    #[error("the language server's input or output failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the language server's input: {0}")]
    Transport(transport::TransportError),
}

impl LspError {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            LspError::Transport(_) => {
                "the client sent what the protocol does not allow; restart the editor's language client, and report it if it happens again"
            }
            _ => "the editor ended the connection; it starts `meshfile lsp` again",
        }
    }
}

/// Serves the protocol on standard input and output until the client says `exit`.
pub fn run_stdio() -> Result<(), LspError> {
    // Two threads block on standard input and output, as lsp-server's own stdio transport
    // does: waiting on a pipe is neither CPU work (rayon) nor network work (the runtime).
    let (server, client) = Connection::memory();
    let Connection { sender, receiver } = client;
    let reader = std::thread::spawn(move || transport::read_stdin(sender));
    let writer = std::thread::spawn(move || transport::write_stdout(receiver));
    let served = serve(&server);
    drop(server);
    writer
        .join()
        .map_err(|_| LspError::Closed("the writer stopped".into()))??;
    // A reader still waiting for input ends with the process.
    if reader.is_finished()
        && let Ok(Err(e)) = reader.join()
    {
        return Err(LspError::Transport(e));
    }
    served
}

fn capabilities() -> lsp_types::ServerCapabilities {
    use lsp_types::*;
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![":".into(), " ".into(), "{".into()]),
            ..CompletionOptions::default()
        }),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..CodeActionOptions::default()
        })),
        ..ServerCapabilities::default()
    }
}

/// The protocol on `connection`: the handshake, then requests and notifications until `exit`.
pub fn serve(connection: &Connection) -> Result<(), LspError> {
    let capabilities = serde_json::to_value(capabilities()).unwrap_or_default();
    let (id, _) = connection.initialize_start()?;
    connection.initialize_finish(
        id,
        serde_json::json!({
            "capabilities": capabilities,
            "serverInfo": {"name": "meshfile", "version": env!("CARGO_PKG_VERSION")},
        }),
    )?;
    let mut server = Server::default();
    loop {
        let Ok(first) = connection.receiver.recv() else {
            return Err(LspError::Closed(
                "the client went away without `exit`".into(),
            ));
        };
        // Whatever else has arrived is taken with it: one check for a burst of changes.
        let batch: Vec<Message> = std::iter::once(first)
            .chain(connection.receiver.try_iter())
            .collect();
        for message in batch {
            match message {
                Message::Request(req) => {
                    if connection.handle_shutdown(&req)? {
                        return Ok(());
                    }
                    server.check_dirty(connection)?;
                    let response = server.answer(req);
                    connection
                        .sender
                        .send(Message::Response(response))
                        .map_err(|e| LspError::Closed(e.to_string()))?;
                }
                Message::Notification(n) if n.method == notification::Exit::METHOD => return Ok(()),
                Message::Notification(n) => server.notified(n),
                Message::Response(_) => {}
            }
        }
        server.check_dirty(connection)?;
    }
}

#[derive(Default)]
struct Server {
    buffers: Buffers,
    analyses: BTreeMap<PathBuf, Analysis>,
    /// Directories changed since they were last checked.
    dirty: BTreeSet<PathBuf>,
    schemas: schema::Schemas,
}

fn path_of(uri: &Url) -> Option<PathBuf> {
    uri.to_file_path().ok()
}

fn directory(path: &Path) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

impl Server {
    fn notified(&mut self, n: Notification) {
        match n.method.as_str() {
            notification::DidOpenTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(n.params)
                    && let Some(path) = path_of(&p.text_document.uri)
                {
                    self.touched(&path);
                    self.buffers.insert(path, p.text_document.text);
                }
            }
            notification::DidChangeTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(n.params)
                    && let Some(path) = path_of(&p.text_document.uri)
                    && let Some(change) = p.content_changes.into_iter().last()
                {
                    self.touched(&path);
                    self.buffers.insert(path, change.text);
                }
            }
            notification::DidSaveTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidSaveTextDocumentParams>(n.params)
                    && let Some(path) = path_of(&p.text_document.uri)
                {
                    self.touched(&path);
                }
            }
            notification::DidCloseTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(n.params)
                    && let Some(path) = path_of(&p.text_document.uri)
                {
                    self.touched(&path);
                    self.buffers.remove(&path);
                }
            }
            _ => {}
        }
    }

    /// Marks the directories a change to `path` concerns: its own, and each checked directory
    /// above it, whose Meshfile may name it (an `env` file or a template in a subdirectory).
    fn touched(&mut self, path: &Path) {
        let own = directory(path);
        let above = (self.analyses.keys()).filter(|dir| own.starts_with(dir));
        self.dirty.extend(above.cloned());
        self.dirty.insert(own);
    }

    /// Checks each changed directory and publishes its files' diagnostics.
    fn check_dirty(&mut self, connection: &Connection) -> Result<(), LspError> {
        for dir in std::mem::take(&mut self.dirty) {
            let workspace::Check { checked, notes } = workspace::check(&dir, &self.buffers);
            let previous = self.analyses.remove(&dir);
            let (model, mut published, mut last_valid) = match previous {
                Some(a) => (a.model, a.published, a.last_valid),
                None => (None, Vec::new(), None),
            };
            if checked.iter().all(|c| c.is_valid()) {
                last_valid = Some(self.buffers.clone());
            }
            let now: Vec<PathBuf> = checked.iter().map(|c| PathBuf::from(&c.file)).collect();
            for c in &checked {
                let text = self.text_of(Path::new(&c.file), c.source.as_deref());
                let notes: Vec<_> = (notes.iter())
                    .filter(|n| n.file == c.file)
                    .map(|n| n.diagnostic.clone())
                    .collect();
                if let Some(params) =
                    diagnostics::publish(Path::new(&c.file), &text, &c.diagnostics, &notes)
                {
                    send_notification::<notification::PublishDiagnostics>(connection, params)?;
                }
            }
            for gone in published.drain(..).filter(|p| !now.contains(p)) {
                if let Ok(uri) = Url::from_file_path(&gone) {
                    let params = lsp_types::PublishDiagnosticsParams {
                        uri,
                        diagnostics: Vec::new(),
                        version: None,
                    };
                    send_notification::<notification::PublishDiagnostics>(connection, params)?;
                }
            }
            self.analyses.insert(
                dir,
                Analysis {
                    checked,
                    published: now,
                    model,
                    model_stale: true,
                    last_valid,
                },
            );
        }
        Ok(())
    }

    /// The text of a file: its buffer, else what was read of it.
    fn text_of(&self, path: &Path, read: Option<&str>) -> String {
        match self.buffers.get(path) {
            Some(text) => text.clone(),
            None => read
                .map(str::to_owned)
                .or_else(|| std::fs::read_to_string(path).ok())
                .unwrap_or_default(),
        }
    }

    fn answer(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let result = match req.method.as_str() {
            request::HoverRequest::METHOD => self.with_position(req, |server, path, text, pos| {
                let analysis = analysis_of(&mut server.analyses, &server.buffers, path, true)?;
                navigate::hover(analysis, &server.schemas, path, text, pos)
                    .map(|h| serde_json::to_value(h).unwrap_or_default())
            }),
            request::GotoDefinition::METHOD => {
                self.with_position(req, |server, path, text, pos| {
                    let analysis = analysis_of(&mut server.analyses, &server.buffers, path, true)?;
                    navigate::definition(analysis, path, text, pos)
                        .map(|l| serde_json::to_value(l).unwrap_or_default())
                })
            }
            request::Completion::METHOD => self.with_position(req, |server, path, text, pos| {
                let items = match complete::wanted(text, pos) {
                    Some(wanted) => {
                        let analysis =
                            analysis_of(&mut server.analyses, &server.buffers, path, true)?;
                        complete::names(wanted, &navigate::names(analysis, path))
                    }
                    None => complete::complete(&server.schemas, text, pos),
                };
                Some(serde_json::to_value(items).unwrap_or_default())
            }),
            request::CodeActionRequest::METHOD => {
                match serde_json::from_value::<lsp_types::CodeActionParams>(req.params) {
                    Ok(params) => {
                        Ok(serde_json::to_value(diagnostics::quick_fixes(&params))
                            .unwrap_or_default())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            _ => {
                return Response::new_err(
                    id,
                    ErrorCode::MethodNotFound as i32,
                    format!(
                        "meshfile's language server does not answer `{}`",
                        req.method
                    ),
                );
            }
        };
        match result {
            Ok(value) => Response::new_ok(id, value),
            Err(why) => Response::new_err(id, ErrorCode::InvalidParams as i32, why),
        }
    }

    /// Runs `answer` on a request that names a document and a position in it.
    fn with_position(
        &mut self,
        req: Request,
        answer: impl FnOnce(&mut Server, &Path, &str, meshfile_yaml::Pos) -> Option<serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        let params: lsp_types::TextDocumentPositionParams =
            serde_json::from_value(position_params(req.params)).map_err(|e| e.to_string())?;
        let path = path_of(&params.text_document.uri).ok_or("not a file: URI")?;
        let text = self.text_of(&path, None);
        let pos = position::from_lsp(&text, params.position);
        Ok(answer(self, &path, &text, pos).unwrap_or(serde_json::Value::Null))
    }
}

/// What a document's text alone answers at a position, without its mesh: the completions
/// there and the hover (the field's documentation). Pure: for the fuzzer, and what the server
/// answers before a directory was checked.
pub fn text_answers(
    text: &str,
    position: lsp_types::Position,
) -> (Vec<lsp_types::CompletionItem>, Option<lsp_types::Hover>) {
    static SCHEMAS: std::sync::OnceLock<schema::Schemas> = std::sync::OnceLock::new();
    let schemas = SCHEMAS.get_or_init(schema::Schemas::default);
    let pos = position::from_lsp(text, position);
    let completions = complete::complete(schemas, text, pos);
    let hover = navigate::hover(&Analysis::default(), schemas, Path::new(""), text, pos);
    (completions, hover)
}

/// The analysis of `path`'s directory (checked now if it never was), its model brought up
/// to date when asked.
fn analysis_of<'a>(
    analyses: &'a mut BTreeMap<PathBuf, Analysis>,
    buffers: &Buffers,
    path: &Path,
    with_model: bool,
) -> Option<&'a Analysis> {
    let dir = directory(path);
    let analysis = analyses.entry(dir.clone()).or_insert_with(|| {
        let checked = workspace::check(&dir, buffers).checked;
        let valid = checked.iter().all(|c| c.is_valid());
        Analysis {
            checked,
            published: Vec::new(),
            model: None,
            model_stale: true,
            last_valid: valid.then(|| buffers.clone()),
        }
    });
    if with_model && analysis.model_stale {
        // The buffers as they are; while they do not compile, the last ones that did.
        let made = workspace::model(&dir, buffers).or_else(|| {
            let valid = analysis.last_valid.as_ref()?;
            analysis
                .model
                .is_none()
                .then(|| workspace::model(&dir, valid))?
        });
        if let Some(model) = made {
            analysis.model = Some(model);
        }
        analysis.model_stale = false;
    }
    Some(analysis)
}

/// The `textDocument` and `position` of a request's parameters (completion's carry more).
fn position_params(params: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "textDocument": params.get("textDocument").cloned().unwrap_or_default(),
        "position": params.get("position").cloned().unwrap_or_default(),
    })
}

fn send_notification<N: lsp_types::notification::Notification>(
    connection: &Connection,
    params: N::Params,
) -> Result<(), LspError> {
    let message = Notification::new(N::METHOD.to_owned(), params);
    connection
        .sender
        .send(Message::Notification(message))
        .map_err(|e| LspError::Closed(e.to_string()))
}
