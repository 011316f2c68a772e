//! What `docker login` left: `auths` entries in the Docker configuration, and the credential
//! helpers it names (`credHelpers` per registry, `credsStore` for all), run as Docker runs
//! them: `docker-credential-<name> get`, the server on standard input, JSON on standard output.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{DOCKER_HUB, RegistryError};

/// How long a credential helper may take (one that asks a keychain or a cloud is slow, not
/// minutes slow).
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
/// The Docker configuration is read up to this size (real ones are a few KiB).
const MAX_CONFIG: u64 = 4 * 1024 * 1024;
/// A helper's answer is read up to this size.
const MAX_HELPER_ANSWER: u64 = 64 * 1024;

/// The credentials of the Docker configuration. Secrets are never shown: not by `Debug`, not
/// in errors.
#[derive(Default)]
pub struct Credentials {
    /// `auths.<registry>.auth`: `user:password` in base64, by registry host.
    by_registry: BTreeMap<String, String>,
    /// `credHelpers`: the helper (the part after `docker-credential-`) by registry host.
    helpers: BTreeMap<String, String>,
    /// `credsStore`: the helper for every registry `credHelpers` does not name.
    store: Option<String>,
    /// What each registry's helper answered (`None`: it holds nothing for it), asked once.
    answered: Mutex<BTreeMap<String, Option<String>>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("registries", &self.by_registry.keys().collect::<Vec<_>>())
            .field("helpers", &self.helpers)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// The registry host a configuration key names: keys are hosts, or URLs such as Docker Hub's
/// `https://index.docker.io/v1/`.
fn host_of(key: &str) -> &str {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    match host {
        "index.docker.io" | "docker.io" => DOCKER_HUB,
        other => other,
    }
}

impl Credentials {
    /// From `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`; none when there is no
    /// such file.
    pub fn from_docker_config() -> Credentials {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")));
        let mut text = String::new();
        let read = dir.map(|d| {
            std::fs::File::open(d.join("config.json"))
                .and_then(|f| f.take(MAX_CONFIG).read_to_string(&mut text))
        });
        match read {
            Some(Ok(_)) => Credentials::from_json(&text),
            _ => Credentials::default(),
        }
    }

    pub(crate) fn from_json(text: &str) -> Credentials {
        let json: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let entries = |field: &str| {
            json[field]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, value)| (host_of(key).to_owned(), value))
                .collect::<Vec<_>>()
        };
        let by_registry = (entries("auths").into_iter())
            .filter_map(|(host, entry)| Some((host, entry["auth"].as_str()?.to_owned())))
            .collect();
        let helpers = (entries("credHelpers").into_iter())
            .filter_map(|(host, helper)| Some((host, helper.as_str()?.to_owned())))
            .collect();
        let store = json["credsStore"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Credentials {
            by_registry,
            helpers,
            store,
            answered: Mutex::default(),
        }
    }

    /// The `Authorization` value of `registry`'s credentials: its helper's (asked once), else
    /// its `auths` entry; `None` when there are none. A helper that fails is an error, as it
    /// is for Docker.
    pub(crate) fn basic(&self, registry: &str) -> Result<Option<String>, RegistryError> {
        let helper = self.helpers.get(registry).or(self.store.as_ref());
        let from_helper = match helper {
            Some(helper) => self.answer(helper, registry)?,
            None => None,
        };
        Ok(from_helper
            .or_else(|| self.by_registry.get(registry).cloned())
            .map(|auth| format!("Basic {auth}")))
    }

    /// What `helper` holds for `registry` (`user:secret` in base64), asked once however many
    /// requests want it at the same time (they wait for the one asking).
    fn answer(&self, helper: &str, registry: &str) -> Result<Option<String>, RegistryError> {
        let mut answered =
            (self.answered.lock()).unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(known) = answered.get(registry) {
            return Ok(known.clone());
        }
        let answer = ask_helper(helper, registry).map_err(|detail| RegistryError::Credentials {
            registry: registry.to_owned(),
            detail: format!("the credential helper docker-credential-{helper}: {detail}"),
        })?;
        answered.insert(registry.to_owned(), answer.clone());
        Ok(answer)
    }
}

/// Why a credential helper gave no credentials (never its answer, which may hold the secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum HelperError {
    #[error("the helper's name may hold letters, digits, `-`, `_` and `.` only")]
    Name,
    #[error("{0} is not on PATH")]
    NotOnPath(String),
    #[error("cannot run it: {0}")]
    Run(String),
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("cannot wait for it: {0}")]
    Wait(String),
    #[error("cannot read its answer: {0}")]
    Read(String),
    #[error("it failed ({0})")]
    Failed(String),
    #[error("its answer is not the JSON of the protocol")]
    NotJson,
    #[error("its answer lacks Username or Secret")]
    Incomplete,
    #[error(
        "it holds an identity token (an OAuth refresh token), which meshfile does not exchange; `docker login` with a user name and password or access token stores credentials meshfile uses"
    )]
    IdentityToken,
}

/// Runs `docker-credential-<helper> get` for `registry`: `user:secret` in base64, or `None`
/// when the helper holds nothing for it; why not otherwise (never the helper's answer, which
/// may hold the secret).
fn ask_helper(helper: &str, registry: &str) -> Result<Option<String>, HelperError> {
    use base64::Engine as _;
    if helper.is_empty()
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(HelperError::Name);
    }
    // Docker Hub's credentials are stored under its v1 URL.
    let server = if registry == DOCKER_HUB {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => HelperError::NotOnPath(program.clone()),
            _ => HelperError::Run(e.to_string()),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits before reading is judged by its exit status below.
        let _ = stdin.write_all(server.as_bytes());
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < HELPER_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HelperError::Timeout(HELPER_TIMEOUT.as_secs()));
            }
            Err(e) => return Err(HelperError::Wait(e.to_string())),
        }
    };
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(MAX_HELPER_ANSWER)
            .read_to_end(&mut out)
            .map_err(|e| HelperError::Read(e.to_string()))?;
    }
    if !status.success() {
        // The helpers' protocol: this text on standard output when they hold nothing.
        if String::from_utf8_lossy(&out).contains("credentials not found") {
            return Ok(None);
        }
        return Err(HelperError::Failed(status.to_string()));
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&out).map_err(|_| HelperError::NotJson)?;
    let (Some(user), Some(secret)) = (answer["Username"].as_str(), answer["Secret"].as_str())
    else {
        return Err(HelperError::Incomplete);
    };
    if user == "<token>" {
        return Err(HelperError::IdentityToken);
    }
    Ok(Some(
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_helpers_and_the_store_are_read_and_no_secret_is_shown() {
        let c = Credentials::from_json(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"127.0.0.1:5056":{"auth":"bTpw"}},
                "credHelpers":{"gcr.io":"gcloud"},"credsStore":"desktop"}"#,
        );
        assert_eq!(c.by_registry[DOCKER_HUB], "dTpw");
        assert_eq!(c.by_registry["127.0.0.1:5056"], "bTpw");
        assert_eq!(c.helpers["gcr.io"], "gcloud");
        assert_eq!(c.store.as_deref(), Some("desktop"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("dTpw") && shown.contains("127.0.0.1:5056"),
            "{shown}"
        );
        let plain = Credentials::from_json(r#"{"auths":{"127.0.0.1:5056":{"auth":"bTpw"}}}"#);
        assert_eq!(plain.basic("127.0.0.1:5056"), Ok(Some("Basic bTpw".into())));
        assert_eq!(plain.basic("other"), Ok(None));
    }

    #[test]
    fn a_helper_with_a_strange_name_is_not_run() {
        let c = Credentials::from_json(r#"{"credsStore":"../../bin/sh"}"#);
        let error = c.basic("127.0.0.1:5056").expect_err("refused");
        assert!(error.to_string().contains("letters, digits"), "{error}");
    }
}
