//! The real external tools: helm 3 and 4, kubernetes-validate, an OCI registry with skopeo and
//! umoci, installed by `scripts/install-test-tools` into `.tools/`. Missing locally: the test
//! says how to install them and passes; missing in CI (`CI=true`): the test fails.

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
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("skipped: {message}");
    None
}

/// Runs a tool with a private HOME so helm keeps its caches out of the user's.
pub fn run(program: &PathBuf, args: &[&str], home: &std::path::Path) -> (bool, String) {
    let out = Command::new(program)
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
