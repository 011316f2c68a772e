//! What the tests share: the builder for one run of `meshfile` (isolated `HOME`,
//! `DOCKER_CONFIG`, `XDG_CONFIG_HOME`), the real tools, a served development CAS, a test
//! registry, the examples pointed at them, and the loopback proxies and raw TLS clients the
//! hostile tests use.

pub mod browser;
pub mod language;
pub mod mesh;
pub mod oci;
pub mod proxy;
pub mod raw;
pub mod server;
pub mod token;
pub mod tools;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A builder for one run of `meshfile`, in the style of `just`'s tests.
pub struct Test {
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    /// Environment variables each run gets (a script's `export`s).
    envs: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Default for Test {
    fn default() -> Self {
        Test::new()
    }
}

impl Test {
    pub fn new() -> Test {
        Test {
            args: Vec::new(),
            stdin: None,
            envs: Vec::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Writes `name` in the test's directory and passes nothing; use `path` to refer to it.
    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Test {
        std::fs::write(self.dir.path().join(name), contents).expect("write test file");
        self
    }

    /// Writes a private key file readable by its owner only, as meshfile requires of one.
    pub fn private_file(&self, name: &str, contents: impl AsRef<[u8]>) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(self.dir.path().join(name))
            .and_then(|mut f| f.write_all(contents.as_ref()))
            .expect("write private test file");
    }

    /// Makes the fixture signing key and client identity this test's user's own (in its
    /// isolated config directory, where meshfile looks by default) and puts copies in the
    /// test's directory (`signing.pem`, `identity.pem`): signed output is the same on every run.
    pub fn signing_fixtures(&self) {
        let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/keys");
        let config = self.dir.path().join(".home/.config/meshfile");
        std::fs::create_dir_all(&config).expect("config dir");
        for (name, default) in [
            ("signing.pem", "signing-key.pem"),
            ("identity.pem", "identity.pem"),
        ] {
            let pem = std::fs::read(keys.join(name)).expect("fixture key");
            self.private_file(name, &pem);
            self.private_file(&format!(".home/.config/meshfile/{default}"), &pem);
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The test's working directory (where `target/` is written).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Exports `name=value` to every run, as a script does before calling meshfile.
    pub fn env(mut self, name: &str, value: &str) -> Test {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Test {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs another command in the same directory (e.g. a compile after an apply).
    pub fn rerun(&mut self, args: &[&str]) -> Output {
        self.args = args.iter().map(|a| (*a).to_owned()).collect();
        self.run()
    }

    pub fn run(&self) -> Output {
        self.with(&self.args)
    }

    /// Runs `meshfile ARGS` in the test's directory, the builder's own arguments left as they are.
    pub fn with<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        let mut child = meshfile(self.dir.path())
            .envs(self.envs.iter().map(|(n, v)| (n, v)))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run meshfile");
        if let Some(bytes) = &self.stdin {
            // meshfile may stop reading early (an oversized input): a broken pipe is expected.
            let _ = child.stdin.take().expect("stdin").write_all(bytes);
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("wait");
        let output = Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !output.stderr.contains("panicked"),
            "meshfile panicked:\n{}",
            output.stderr
        );
        output
    }
}

/// The CAS client, blocking: tests read straight down, one request after another.
pub mod client {
    use std::sync::Arc;

    pub use meshfile_cas::Error;
    pub use meshfile_cas::client::{ReadSession, Trust};

    #[derive(Clone)]
    pub struct Client {
        runtime: Arc<tokio::runtime::Runtime>,
        inner: meshfile_cas::client::Client,
    }

    impl Client {
        pub fn new(address: &str, ca: &str, identity: &str) -> Result<Client, Error> {
            let trust = Trust::Ca {
                ca,
                name: meshfile_cas::pki::CAS_NAME,
            };
            Client::with_trust(address, trust, identity)
        }

        pub fn with_trust(
            address: &str,
            trust: Trust<'_>,
            identity: &str,
        ) -> Result<Client, Error> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            Ok(Client {
                runtime: Arc::new(runtime),
                inner: meshfile_cas::client::Client::with_trust(address, trust, identity)?,
            })
        }

        pub fn write(&self, yaml: &str) -> Result<meshfile_cas::Written, Error> {
            self.runtime.block_on(self.inner.write(yaml))
        }

        pub fn write_signed(&self, json: &str) -> Result<meshfile_cas::Written, Error> {
            self.runtime.block_on(self.inner.write_signed(json))
        }

        pub fn read(&self, name: &str, hash: Option<&str>) -> Result<ReadSession, Error> {
            self.runtime.block_on(self.inner.read(name, hash))
        }

        pub fn values(
            &self,
            session: &str,
            secret: Option<&str>,
        ) -> Result<std::collections::BTreeMap<String, meshfile_cas::client::SecretValue>, Error>
        {
            self.runtime.block_on(self.inner.values(session, secret))
        }

        pub fn version(&self) -> Result<serde_json::Value, Error> {
            self.runtime.block_on(self.inner.version())
        }

        pub fn preview(
            &self,
            config_id: &str,
            mrenclave: &str,
        ) -> Result<meshfile_cas::Preview, Error> {
            self.runtime
                .block_on(self.inner.preview(config_id, mrenclave))
        }
    }
}

/// The meshfile binary, run in `dir` with a home, Docker and XDG configuration of its own
/// under `dir`: nothing of the user's is read or changed. `MESHFILE_BIN` names another build
/// to run instead (an earlier commit's, to see a test fail before its fix).
pub fn meshfile(dir: &Path) -> Command {
    let binary =
        std::env::var_os("MESHFILE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_meshfile").into());
    let mut command = Command::new(binary);
    command.current_dir(dir);
    isolate(&mut command, dir);
    command
}

/// A process run to its end (or killed at a deadline), its resident memory read as it ran.
pub struct Measured {
    /// None when it had to be killed.
    pub status: Option<i32>,
    pub stderr: String,
    /// Its peak resident memory (VmHWM), in MiB, as last read while it ran.
    pub peak_mib: u64,
    pub elapsed: std::time::Duration,
}

/// The peak resident memory of a running process, in MiB (Linux's VmHWM); `None` once it is
/// gone.
pub fn peak_mib_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())?;
    Some(kib / 1024)
}

/// Runs `command` (standard input empty, output discarded, standard error kept), killed after
/// `deadline`.
pub fn measured(command: &mut Command, deadline: std::time::Duration) -> Measured {
    let started = std::time::Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let pid = child.id();
    let mut peak_mib = 0;
    let status = loop {
        // VmHWM only grows: the last reading before the process ends is its peak so far.
        if let Some(mib) = peak_mib_of(pid) {
            peak_mib = peak_mib.max(mib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let mut stderr = String::new();
    if let Some(err) = child.stderr.take() {
        use std::io::Read;
        let _ = err.take(1 << 20).read_to_string(&mut stderr);
    }
    Measured {
        status,
        stderr,
        peak_mib,
        elapsed: started.elapsed(),
    }
}

/// Points HOME, DOCKER_CONFIG and XDG_CONFIG_HOME of `command` below `dir`.
pub fn isolate(command: &mut Command, dir: &Path) {
    let home = dir.join(".home");
    command
        .env("HOME", &home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CACHE_HOME");
}

/// The repository's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The manifest corpus shared with meshfile-manifest's tests.
pub fn corpus(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../meshfile-manifest/tests/corpus")
        .join(dir)
}

/// A fixture of these tests (`tests/it/<relative>`).
pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it")
        .join(relative)
}
