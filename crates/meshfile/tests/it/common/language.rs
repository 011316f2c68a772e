//! A client of `meshfile lsp` speaking the protocol's framing over the process's pipes:
//! requests answered in order, notifications (diagnostics) collected as they come.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct Client {
    child: Child,
    stdin: ChildStdin,
    messages: mpsc::Receiver<Value>,
    next: u64,
    /// The last diagnostics published per URI, and how many times each was published.
    pub diagnostics: BTreeMap<String, (Value, usize)>,
}

const DEADLINE: Duration = Duration::from_secs(30);

pub fn uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

impl Client {
    /// Starts `meshfile lsp` in `dir` and initializes it with `dir` as the workspace.
    pub fn start(dir: &Path) -> Client {
        let mut child = crate::meshfile(dir)
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start meshfile lsp");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (send, messages) = mpsc::channel();
        std::thread::spawn(move || {
            loop {
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        length = n.parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                if stdout.read_exact(&mut body).is_err() {
                    return;
                }
                let Ok(value) = serde_json::from_slice(&body) else {
                    return;
                };
                if send.send(value).is_err() {
                    return;
                }
            }
        });
        let mut client = Client {
            child,
            stdin,
            messages,
            next: 0,
            diagnostics: BTreeMap::new(),
        };
        let root = uri(dir);
        let answer = client.request(
            "initialize",
            json!({"processId": null, "rootUri": root, "capabilities": {}}),
        );
        assert!(
            answer["capabilities"]["hoverProvider"] == json!(true),
            "{answer}"
        );
        client.notify("initialized", json!({}));
        client
    }

    fn send(&mut self, message: &Value) {
        let body = serde_json::to_vec(message).expect("json");
        write!(self.stdin, "Content-Length: {}\r\n\r\n", body.len()).expect("write");
        self.stdin.write_all(&body).expect("write");
        self.stdin.flush().expect("flush");
    }

    /// Writes bytes as they are, framing or not.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).expect("write");
        self.stdin.flush().expect("flush");
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Takes one message, keeping diagnostics; `None` at the deadline.
    fn receive(&mut self, until: Instant) -> Option<Value> {
        let left = until.saturating_duration_since(Instant::now());
        let message = self.messages.recv_timeout(left).ok()?;
        if message["method"] == "textDocument/publishDiagnostics" {
            let uri = message["params"]["uri"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let entry = self.diagnostics.entry(uri).or_insert((Value::Null, 0));
            entry.0 = message["params"]["diagnostics"].clone();
            entry.1 += 1;
        }
        Some(message)
    }

    /// Sends a request and waits for its answer (its `result`; an error answer panics).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let answer = self.request_raw(method, params);
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// Sends a request and waits for its whole answer.
    pub fn request_raw(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let until = Instant::now() + DEADLINE;
        loop {
            let message = self
                .receive(until)
                .unwrap_or_else(|| panic!("no answer to {method} in {DEADLINE:?}"));
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    /// Waits until diagnostics for `uri` were published `count` times in all; the last ones.
    pub fn diagnostics_after(&mut self, uri: &str, count: usize) -> Value {
        let until = Instant::now() + DEADLINE;
        while self.diagnostics.get(uri).is_none_or(|(_, n)| *n < count) {
            if self.receive(until).is_none() {
                panic!(
                    "no diagnostics for {uri} (publication {count}) in {DEADLINE:?}: {:?}",
                    self.diagnostics.keys()
                );
            }
        }
        self.diagnostics[uri].0.clone()
    }

    pub fn open(&mut self, path: &Path) {
        let text = std::fs::read_to_string(path).expect("text");
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri(path), "languageId": "yaml", "version": 1, "text": text}}),
        );
    }

    pub fn change(&mut self, path: &Path, version: u32, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri(path), "version": version}, "contentChanges": [{"text": text}]}),
        );
    }

    /// `method` at line and character (both from 0) of `path`.
    pub fn at(&mut self, method: &str, path: &Path, line: u32, character: u32) -> Value {
        self.request(
            method,
            json!({"textDocument": {"uri": uri(path)}, "position": {"line": line, "character": character}}),
        )
    }

    /// Ends the session as an editor does; the process's exit status.
    pub fn shut_down(mut self) -> i32 {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let until = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < until, "meshfile lsp did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
