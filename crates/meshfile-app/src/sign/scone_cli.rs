//! SCONE's CLI as the signer: `scone session sign`, `encrypt` and `calculate-hash`, run with
//! the session on standard input.

use super::*;

/// SCONE's `scone` command line, for signing and encrypting sessions the way SCONE CAS
/// accepts them (its message format and cipher are not public). Each command it runs is
/// recorded, so that the caller can show it.
pub struct SconeCli {
    pub program: PathBuf,
    pub ran: std::sync::Mutex<Vec<String>>,
}

impl SconeCli {
    pub fn new(program: PathBuf) -> SconeCli {
        SconeCli {
            program,
            ran: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Runs `scone ARGS... FILE`, with `contents` in FILE (private, removed afterwards);
    /// its standard output, at most [`MAX_FILE`] bytes.
    pub(super) fn run(&self, args: &[&str], contents: &str) -> Result<String, Error> {
        use std::io::{Read, Write};
        let dir = tempfile::Builder::new()
            .prefix("meshfile-scone-")
            .tempdir()
            .map_err(|e| {
                Error::new(Code::WriteFailed, "cannot make a temporary directory").caused_by(e)
            })?;
        let file = dir.path().join("session");
        let mut f = std::fs::File::create(&file).map_err(|e| Error::write(&file, e))?;
        f.write_all(contents.as_bytes())
            .map_err(|e| Error::write(&file, e))?;
        drop(f);
        let shown = format!(
            "{} {} {}",
            self.program.display(),
            args.join(" "),
            file.display()
        );
        if let Ok(mut ran) = self.ran.lock() {
            ran.push(shown.clone());
        }
        let failed = |why: String| {
            Error::new(Code::SconeCli, format!("`{shown}` failed: {why}"))
                .hint("check that SCONE's CLI is installed, attested to the CAS and has its session signing key (`scone self show-session-signing-key`)")
        };
        let mut child = std::process::Command::new(&self.program)
            .args(args)
            .arg(&file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| failed(e.to_string()))?;
        let mut out = String::new();
        if let Some(stdout) = child.stdout.take() {
            stdout
                .take(MAX_FILE)
                .read_to_string(&mut out)
                .map_err(|e| failed(e.to_string()))?;
        }
        let mut err = String::new();
        if let Some(stderr) = child.stderr.take() {
            let _ = stderr.take(64 * 1024).read_to_string(&mut err);
        }
        let status = child.wait().map_err(|e| failed(e.to_string()))?;
        if !status.success() {
            return Err(failed(format!("{status}: {}", err.trim())));
        }
        Ok(out)
    }

    /// `scone session sign FILE`: the signed session's JSON, as it is.
    pub fn sign(&self, session_or_signed: &str) -> Result<SignedSession, Error> {
        let out = self.run(&["session", "sign"], session_or_signed)?;
        SignedSession::from_json(&out)
            .map_err(|e| Error::new(Code::SconeCli, format!("`scone session sign` printed {e}")))
    }

    /// `scone session encrypt --key KEY FILE`.
    pub fn encrypt(
        &self,
        signed: &SignedSession,
        cas_key: &str,
    ) -> Result<EncryptedSession, Error> {
        let out = self.run(&["session", "encrypt", "--key", cas_key], &signed.to_json())?;
        EncryptedSession::from_json(&out).map_err(|e| {
            Error::new(
                Code::SconeCli,
                format!("`scone session encrypt` printed {e}"),
            )
        })
    }

    /// `scone session calculate-hash FILE`: the hash SCONE CAS gives the session.
    pub fn hash(&self, signed: &SignedSession) -> Result<String, Error> {
        let out = self.run(&["session", "calculate-hash"], &signed.to_json())?;
        hex_line(Some(out)).ok_or_else(|| {
            Error::new(
                Code::SconeCli,
                "`scone session calculate-hash` printed no hash (64 hex digits)",
            )
        })
    }
}
