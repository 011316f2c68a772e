//! The real external tools: helm 3 and 4, kubernetes-validate, an OCI registry with skopeo and
//! umoci (and a skopeo built with sigstore), openssl, installed by `scripts/install-test-tools`
//! into `.tools/`. A test that needs a missing tool fails, saying how to install it, unless the
//! developer asks to skip such tests with `MESHFILE_SKIP_TOOL_TESTS=1` (then it says so and
//! passes).

use std::path::PathBuf;
use std::process::Command;

use crate::workspace;

pub fn tool(relative: &str) -> Option<PathBuf> {
    let path = workspace().join(".tools").join(relative);
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "{} is missing: run `bash scripts/install-test-tools`",
        path.display()
    );
    let skip = std::env::var("MESHFILE_SKIP_TOOL_TESTS").as_deref() == Ok("1");
    assert!(
        skip,
        "{message} (or set MESHFILE_SKIP_TOOL_TESTS=1 to skip the tests that need it)"
    );
    eprintln!("skipped (MESHFILE_SKIP_TOOL_TESTS=1): {message}");
    record_skip(&message);
    None
}

/// Where skipped tests are listed, one line each, for `.ci/run` to name at its end.
pub const SKIPPED_LIST: &str = "skipped-tool-tests.txt";

/// Lists the running test as skipped, with why, in [`SKIPPED_LIST`] under Cargo's target
/// temporary directory: a skipped test passes, so the list is what says it did not run.
fn record_skip(why: &str) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let list = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(SKIPPED_LIST);
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(list)
    {
        let _ = writeln!(file, "{test}: {why}");
    }
}

/// Runs a tool with a private HOME so helm keeps its caches out of the user's.
pub fn run(program: &PathBuf, args: &[&str], home: &std::path::Path) -> (bool, String) {
    let mut command = Command::new(program);
    crate::isolate(&mut command, home);
    let out = command
        .args(args)
        .env("HOME", home)
        .output()
        .expect("run tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
