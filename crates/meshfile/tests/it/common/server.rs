//! `meshfile cas serve` as a real process over mTLS on 127.0.0.1, for the tests that talk to
//! one.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use crate::client::Client;
use meshfile_cas::pki;

pub const NAMESPACE: &str = "name: team\nversion: \"0.3.10\"\naccess_policy:\n  read: [CREATOR]\n  update: [CREATOR]\n  create_sessions: [CREATOR]\n";

/// A running server; killed when dropped.
pub struct Server {
    pub child: Child,
    pub address: String,
    pub state: tempfile::TempDir,
    /// What the server wrote to stderr: its log.
    log: tempfile::NamedTempFile,
}

/// A server that did not start: its exit status and what it said.
#[derive(Debug)]
pub struct Refused {
    pub status: i32,
    pub stderr: String,
    pub state: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        Server::start_in(tempfile::tempdir().expect("state dir"))
    }

    pub fn start_in(state: tempfile::TempDir) -> Server {
        Server::start_with(state, &[])
    }

    /// A server started with further `cas serve` arguments (such as `--name`).
    pub fn start_with(state: tempfile::TempDir, extra: &[&str]) -> Server {
        Server::try_start(state, extra)
            .unwrap_or_else(|r| panic!("the server did not start: {r:?}"))
    }

    /// A server, or why it refused to start.
    pub fn try_start(state: tempfile::TempDir, extra: &[&str]) -> Result<Server, Refused> {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let mut child = crate::meshfile(state.path())
            .args(["cas", "serve", "--listen", "127.0.0.1:0", "--state"])
            .arg(state.path())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("log"))
            .spawn()
            .expect("start server");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("server says where it listens");
        if first.is_empty() {
            let status = child.wait().expect("wait").code().unwrap_or(-1);
            let stderr = std::fs::read_to_string(log.path()).expect("log");
            assert!(!stderr.contains("panicked"), "{stderr}");
            return Err(Refused {
                status,
                stderr,
                state,
            });
        }
        let address = first
            .trim()
            .rsplit("https://")
            .next()
            .expect("address")
            .to_owned();
        assert!(
            address.starts_with("127.0.0.1:"),
            "unexpected first line: {first}"
        );
        Ok(Server {
            child,
            address,
            state,
            log,
        })
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).expect("log")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.state.path().join(name)).expect("state file")
    }

    /// A client with the owner identity the server wrote on first start.
    pub fn owner(&self) -> Client {
        Client::new(&self.address, &self.file("ca.pem"), &self.file("owner.pem")).expect("client")
    }

    /// A client with a fresh, self-signed identity that no policy names.
    pub fn stranger(&self) -> (Client, String) {
        let identity = pki::client_identity("stranger", None).expect("identity");
        let hash = pki::key_hash_of_pem(&identity).expect("hash");
        (
            Client::new(&self.address, &self.file("ca.pem"), &identity).expect("client"),
            hash,
        )
    }

    /// Kills the process at once, as a crash would.
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let state = tempfile::tempdir().expect("placeholder");
        std::mem::replace(&mut self.state, state)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
