//! Headless Chromium (Debian's, linked into `.tools/bin` by `scripts/install-test-tools`):
//! a page's DOM after its scripts ran, a screenshot, and a small client of the DevTools
//! protocol over `--remote-debugging-pipe` that drives the page as a person would (mouse
//! events at a node's place), without a WebSocket or a network port.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// The flags that keep Chromium off the network and out of the user's profile (its
/// temporary files go to `TMPDIR`, which each run sets to a directory of its own).
fn flags(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--window-size=1400,900",
    ]
    .iter()
    .map(|f| f.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

fn url(page: &Path) -> String {
    format!("file://{}", page.display())
}

/// Runs Chromium once with `extra` flags on `page`; its standard output.
fn once(chromium: &Path, home: &Path, page: &Path, extra: &[String]) -> String {
    let profile = tempfile::tempdir().expect("profile");
    let mut command = Command::new(chromium);
    crate::isolate(&mut command, home);
    let out = command
        .env("TMPDIR", profile.path())
        .args(flags(profile.path()))
        .args(extra)
        .arg(url(page))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The DOM after the page's scripts ran (`--dump-dom`).
pub fn dump_dom(chromium: &Path, home: &Path, page: &Path) -> String {
    once(chromium, home, page, &["--dump-dom".into()])
}

/// A PNG of the page at 1400x900.
pub fn screenshot(chromium: &Path, home: &Path, page: &Path, png: &Path) {
    once(
        chromium,
        home,
        page,
        &[format!("--screenshot={}", png.display())],
    );
}

/// A browser driven over the DevTools protocol, one page attached.
pub struct Browser {
    child: Child,
    commands: std::fs::File,
    replies: mpsc::Receiver<Value>,
    next: u64,
    session: Option<String>,
    _dir: tempfile::TempDir,
}

const DEADLINE: Duration = Duration::from_secs(30);

impl Browser {
    /// Starts Chromium with the protocol on two FIFOs (its descriptors 3 and 4) and attaches
    /// to a new page.
    pub fn launch(chromium: &Path, home: &Path) -> Browser {
        let dir = tempfile::tempdir().expect("dir");
        let (input, output) = (dir.path().join("in"), dir.path().join("out"));
        for fifo in [&input, &output] {
            let made = Command::new("mkfifo").arg(fifo).status().expect("mkfifo");
            assert!(made.success());
        }
        let profile = dir.path().join("profile");
        let mut command = Command::new("sh");
        crate::isolate(&mut command, home);
        let child = command
            .env("TMPDIR", dir.path())
            .arg("-c")
            .arg("exec \"$0\" \"$@\" --remote-debugging-pipe 3<\"$IN\" 4>\"$OUT\"")
            .arg(chromium)
            .args(flags(&profile))
            .env("IN", &input)
            .env("OUT", &output)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromium");
        // The shell opens `in`, then `out`: opened in the same order here, neither waits forever.
        let commands = std::fs::OpenOptions::new()
            .write(true)
            .open(&input)
            .expect("in");
        let mut replies_pipe = std::fs::File::open(&output).expect("out");
        let (send, replies) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 65536];
            while let Ok(n) = replies_pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buffer.extend_from_slice(&chunk[..n]);
                while let Some(end) = buffer.iter().position(|&b| b == 0) {
                    let message: Vec<u8> = buffer.drain(..=end).collect();
                    if let Ok(value) = serde_json::from_slice(&message[..end])
                        && send.send(value).is_err()
                    {
                        return;
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            commands,
            replies,
            next: 0,
            session: None,
            _dir: dir,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        browser.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("sessionId")
                .to_owned(),
        );
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    /// Sends one command (to the attached page, once there is one) and waits for its answer.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("json");
        bytes.push(0);
        self.commands.write_all(&bytes).expect("write to chromium");
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let reply = self
                .replies
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("chromium did not answer {method} in {DEADLINE:?}"));
            if reply["id"] == json!(id) {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page; its value.
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Opens `page` and waits until its script has run.
    pub fn open(&mut self, page: &Path) {
        self.call("Page.navigate", json!({"url": url(page)}));
        let deadline = std::time::Instant::now() + DEADLINE;
        while self
            .evaluate("document.readyState === 'complete' && typeof window.meshGraph === 'object'")
            != json!(true)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the page did not load"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A left click at (x, y) of the viewport: the mouse pressed and released there.
    pub fn click(&mut self, x: f64, y: f64) {
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium as the project's script links it, or `None` (the test then fails or is skipped
/// as [`crate::tools::tool`] says).
pub fn chromium() -> Option<PathBuf> {
    crate::tools::tool("bin/chromium")
}
