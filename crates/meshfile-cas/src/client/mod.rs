//! A typed client for a CAS over mTLS (ours, or SCONE's REST surface that we follow).
//!
//! Asynchronous: a caller keeps many requests in flight on one connection pool (a CAS far
//! away answers each in tens of milliseconds). Answers become the domain's [`Error`].

use serde::Deserialize;

use rustls::pki_types::CertificateDer;

use crate::{Error, Preview, Written};

mod tls;

pub use tls::{Accepted, Refused, Trust, check_chain};
use tls::{SeenChain, setup_error, tls_config};

/// Answers are read up to this size: sessions are at most the server's body limit (1 MiB)
/// and a SCONE CAS's of the same order; more is no answer of a CAS.
const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// An error body: ours (`{code, message, ...}`, with SCONE's `msg` beside it) or SCONE CAS's
/// (`{"msg": ["...", ...]}`); any other body falls back to the status and its text.
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
    /// SCONE's messages: a list of lines (a single string is taken too).
    msg: Option<serde_json::Value>,
    session: Option<String>,
    operation: Option<String>,
    caller: Option<String>,
    active_hash: Option<String>,
    predecessor: Option<String>,
    used: Option<u64>,
    limit: Option<u64>,
    unmet: Option<String>,
    service: Option<String>,
    mrenclave: Option<String>,
}

impl ErrorBody {
    /// SCONE's `msg` lines, one per line, as they are.
    fn msg_lines(msg: Option<&serde_json::Value>) -> Option<String> {
        let lines: Vec<String> = match msg? {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect(),
            serde_json::Value::String(line) => vec![line.clone()],
            other => vec![other.to_string()],
        };
        Some(lines.join("\n"))
    }

    /// The domain error the server meant, when the body says enough to rebuild it.
    fn into_error(self, status: u16) -> Error {
        let msg = ErrorBody::msg_lines(self.msg.as_ref());
        let message = self.message.or(msg).unwrap_or_default();
        match (self.code.as_deref(), self.session, self.active_hash) {
            (Some("invalid"), _, _) => Error::Invalid(message),
            (Some("not_found"), _, _) => Error::NotFound(message),
            (Some("damaged"), _, _) => Error::Damaged(message),
            (Some("timed_out"), _, _) => Error::TimedOut(message),
            (Some("quota_exceeded"), _, _) => Error::QuotaExceeded {
                caller: self.caller.unwrap_or_default(),
                used: self.used.unwrap_or_default(),
                limit: self.limit.unwrap_or_default(),
            },
            (Some("forbidden"), Some(session), _) => Error::Forbidden {
                session,
                operation: self.operation.unwrap_or_else(|| "access".into()),
                caller: self.caller.unwrap_or_default(),
            },
            (Some("not_attested"), Some(session), _) => Error::NotAttested {
                session,
                service: self.service.unwrap_or_default(),
                mrenclave: self.mrenclave.unwrap_or_default(),
            },
            (Some("unapproved"), Some(session), _) => Error::Unapproved {
                session,
                operation: self.operation.unwrap_or_else(|| "update".into()),
                unmet: self.unmet.unwrap_or(message),
            },
            (Some("exists"), Some(name), Some(active)) => Error::Exists { name, active },
            (Some("conflict"), Some(name), Some(active)) => Error::Conflict {
                name,
                active,
                given: self.predecessor.unwrap_or_default(),
            },
            _ => Error::Server { status, message },
        }
    }
}

/// One secret's value as the values endpoints answer it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SecretValue {
    /// The secret's kind (`ascii`, `x509`, ...), where the CAS says.
    #[serde(default)]
    pub kind: Option<String>,
    pub value: serde_json::Value,
    #[serde(default)]
    pub expires: Option<serde_json::Value>,
    #[serde(default)]
    pub renew: Option<serde_json::Value>,
}

/// The values of a values answer, in either of SCONE's shapes: all of a session's
/// (`{"values": {"<name>": {"value": ...}}}`) or one secret's (`{"kind", "value", "expires",
/// "renew"}`, named `secret`).
fn read_values(
    body: serde_json::Value,
    secret: Option<&str>,
) -> Result<std::collections::BTreeMap<String, SecretValue>, serde_json::Error> {
    #[derive(Deserialize)]
    struct All {
        values: std::collections::BTreeMap<String, SecretValue>,
    }
    if body.get("values").is_some() {
        return serde_json::from_value::<All>(body).map(|all| all.values);
    }
    let one: SecretValue = serde_json::from_value(body)?;
    Ok([(secret.unwrap_or_default().to_owned(), one)].into())
}

/// A session version as read back.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ReadSession {
    pub session: String,
    pub hash: String,
    pub predecessor: Option<String>,
    /// Key hash of the session's creator, where the CAS says (the development CAS does; what
    /// SCONE CAS answers is not public).
    #[serde(default)]
    pub creator: Option<String>,
}

/// Hashes and measurements are hex; anything else would need escaping in a URL.
fn hex_only(value: &str) -> Result<&str, Error> {
    if value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err(Error::Invalid(format!("`{value}` is not hexadecimal")))
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    address: String,
    /// The chain the server presented last (kept by the pinning and unchecked trusts).
    seen: SeenChain,
    /// This client's key hash, as access policies and the CAS name it.
    key_hash: String,
    timeout: std::time::Duration,
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Most requests a client keeps in flight: enough to hide a far CAS's latency, few enough
/// that a CAS serving a team is not swamped by one apply.
pub const IN_FLIGHT: usize = 64;

/// How long one request may take by default, connecting included.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Client {
    /// `address` is `host:port`; `ca_pem` the CA that signed the server's certificate, which is
    /// for the name `cas`; `identity_pem` the client certificate and key (one PEM text).
    pub fn new(address: &str, ca_pem: &str, identity_pem: &str) -> Result<Client, Error> {
        let trust = Trust::Ca {
            ca: ca_pem,
            name: crate::pki::CAS_NAME,
        };
        Client::with_trust(address, trust, identity_pem)
    }

    pub fn with_trust(
        address: &str,
        trust: Trust<'_>,
        identity_pem: &str,
    ) -> Result<Client, Error> {
        Client::with_timeout(address, trust, identity_pem, DEFAULT_TIMEOUT)
    }

    /// A client whose every request (connection and handshake included) ends within `timeout`:
    /// a CAS that accepts and never answers is given up on, not waited for.
    pub fn with_timeout(
        address: &str,
        trust: Trust<'_>,
        identity_pem: &str,
        timeout: std::time::Duration,
    ) -> Result<Client, Error> {
        let seen = SeenChain::default();
        let config = tls_config(&trust, seen.clone(), identity_pem)?;
        let key_hash = crate::pki::key_hash_of_pem(identity_pem)
            .map_err(|e| setup_error("the client identity", &e.to_string()))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .timeout(timeout)
            .connect_timeout(timeout.min(std::time::Duration::from_secs(10)))
            // Below the development CAS's idle timeout, so that a pooled connection is not
            // reused just as the server closes it.
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .pool_max_idle_per_host(IN_FLIGHT)
            .build()
            .map_err(|e| setup_error("HTTPS client", &chain(&e)))?;
        Ok(Client {
            http,
            base: format!("https://{address}"),
            address: address.to_owned(),
            seen,
            key_hash,
            timeout,
        })
    }

    /// This client's key hash.
    pub fn key_hash(&self) -> &str {
        &self.key_hash
    }

    /// `host:port` of the CAS.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// With [`Trust::AnyServer`] or [`Trust::PinnedKey`]: the chain the server presented
    /// last (once connected), end entity first.
    pub fn presented_chain(&self) -> Vec<CertificateDer<'static>> {
        self.seen.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The key hash of the server answered last, as [`Client::presented_chain`] has it.
    pub fn unverified_server_key(&self) -> Option<String> {
        let chain = self.presented_chain();
        crate::pki::key_hash_of_der(chain.first()?).ok()
    }

    fn transport(&self, e: &reqwest::Error) -> Error {
        if e.is_timeout() {
            return Error::NoAnswer {
                address: self.address.clone(),
                seconds: self.timeout.as_secs(),
            };
        }
        let detail = chain(e);
        // A certificate the configured trust refuses is no network failure: retrying will not
        // make it trusted.
        let untrusted = [
            "certificate",
            "pin mismatch",
            "UnknownIssuer",
            "NotValidForName",
        ]
        .iter()
        .any(|word| detail.contains(word));
        if untrusted {
            Error::Untrusted {
                address: self.address.clone(),
                detail,
            }
        } else {
            Error::Unreachable {
                address: self.address.clone(),
                detail,
            }
        }
    }

    /// An answer's body, read no further than [`MAX_ANSWER`].
    async fn answer(&self, mut response: reqwest::Response) -> Result<Vec<u8>, Error> {
        let status = response.status().as_u16();
        let too_large = || Error::Server {
            status,
            message: format!("an answer larger than {} MiB", MAX_ANSWER >> 20),
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER as u64)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(&e))? {
            if bytes.len() + chunk.len() > MAX_ANSWER {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Sends a request; a GET whose pooled connection the server had closed is sent once more.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        idempotent: bool,
    ) -> Result<T, Error> {
        let retry = request.try_clone().filter(|_| idempotent);
        let response = match (request.send().await, retry) {
            (Ok(response), _) => response,
            (Err(_), Some(again)) => again.send().await.map_err(|e| self.transport(&e))?,
            (Err(e), None) => return Err(self.transport(&e)),
        };
        let status = response.status();
        let bytes = self.answer(response).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| Error::Server {
                status: status.as_u16(),
                message: format!("an answer this client does not understand: {e}"),
            });
        }
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => body.into_error(status.as_u16()),
            Err(_) => Error::Server {
                status: status.as_u16(),
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            },
        })
    }

    /// Creates or updates (with `predecessor`) a session.
    pub async fn write(&self, session_yaml: &str) -> Result<Written, Error> {
        self.upload(
            reqwest::Method::POST,
            "sessions",
            "application/yaml",
            session_yaml,
        )
        .await
    }

    /// Creates or updates a session with a signed session's JSON.
    pub async fn write_signed(&self, json: &str) -> Result<Written, Error> {
        self.upload(reqwest::Method::POST, "sessions", "application/json", json)
            .await
    }

    /// Uploads an encrypted session's JSON.
    pub async fn write_encrypted(&self, json: &str) -> Result<Written, Error> {
        self.upload(
            reqwest::Method::PUT,
            "encrypted_sessions",
            "application/json",
            json,
        )
        .await
    }

    /// Sends a session (never again on its own: a write is not idempotent).
    async fn upload(
        &self,
        method: reqwest::Method,
        endpoint: &str,
        content_type: &str,
        body: &str,
    ) -> Result<Written, Error> {
        let url = format!("{}/v1/{endpoint}", self.base);
        let request = self
            .http
            .request(method, &url)
            .header("content-type", content_type)
            .body(body.to_owned());
        self.send(request, false).await
    }

    pub async fn read(&self, name: &str, hash: Option<&str>) -> Result<ReadSession, Error> {
        let mut url = format!("{}/v1/sessions/{name}", self.base);
        if let Some(h) = hash {
            url = format!("{url}?hash={}", hex_only(h)?);
        }
        self.send(self.http.get(&url), true).await
    }

    pub async fn preview(&self, config_id: &str, mrenclave: &str) -> Result<Preview, Error> {
        let url = format!(
            "{}/v1/preview/{config_id}?mrenclave={}",
            self.base,
            hex_only(mrenclave)?
        );
        self.send(self.http.get(&url), true).await
    }

    /// A session's exported values, or one secret's: by name, in either answer's shape.
    pub async fn values(
        &self,
        session: &str,
        secret: Option<&str>,
    ) -> Result<std::collections::BTreeMap<String, SecretValue>, Error> {
        let spec = match secret {
            Some(s) => format!("session={session},secret={s}"),
            None => format!("session={session}"),
        };
        let url = format!("{}/v1/values/{spec}", self.base);
        let body: serde_json::Value = self.send(self.http.get(&url), true).await?;
        // A values answer is never shown: it holds secrets.
        read_values(body, secret).map_err(|e| Error::Server {
            status: 200,
            message: format!("a values answer this client does not understand: {e}"),
        })
    }

    pub async fn version(&self) -> Result<serde_json::Value, Error> {
        let url = format!("{}/v1/version", self.base);
        self.send(self.http.get(&url), true).await
    }

    /// The session encryption key the CAS says it has (`GET /v1/identification`, hex);
    /// `None` when it does not say (no such endpoint, or no such field).
    pub async fn session_encryption_key(&self) -> Result<Option<String>, Error> {
        let url = format!("{}/v1/identification", self.base);
        match self
            .send::<serde_json::Value>(self.http.get(&url), true)
            .await
        {
            Ok(answer) => Ok(answer["session_encryption_key"].as_str().map(str::to_owned)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(Error::Server { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_values_shapes_read_alike() {
        let all = read_values(json!({"values": {"pw": {"value": "x"}}}), None).expect("all");
        let one = read_values(
            json!({"kind": "ascii", "value": "x", "expires": null, "renew": null}),
            Some("pw"),
        )
        .expect("one");
        assert_eq!(all["pw"].value, one["pw"].value);
        assert_eq!(one["pw"].kind.as_deref(), Some("ascii"));
        assert!(read_values(json!({"nothing": 1}), None).is_err());
    }

    #[test]
    fn scone_error_bodies_keep_their_messages() {
        let body: ErrorBody =
            serde_json::from_value(json!({"msg": ["Session not found", "Try again"]}))
                .expect("body");
        assert_eq!(
            body.into_error(404),
            Error::Server {
                status: 404,
                message: "Session not found\nTry again".into()
            }
        );
        let ours: ErrorBody = serde_json::from_value(
            json!({"code": "conflict", "message": "m", "msg": ["m"], "session": "a", "active_hash": "h", "predecessor": "p"}),
        )
        .expect("body");
        assert!(matches!(ours.into_error(409), Error::Conflict { active, .. } if active == "h"));
    }
}
