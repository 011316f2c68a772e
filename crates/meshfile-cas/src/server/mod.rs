//! `meshfile cas serve`: the store over HTTPS with mandatory client certificates. A caller is
//! known by the hash of its certificate's public key, as SCONE CAS knows its clients; any
//! certificate is accepted (the handshake proves possession of its key), access policies decide.
//!
//! Every resource a client can ask for is bounded: handshakes run concurrently with their own
//! deadline, a connection that sends no complete request head within the idle timeout is
//! closed, connections are capped in all and per identity, bodies and heads are limited
//! before they are read, uploads are parsed a few at a time with expansion bounded by their
//! size, and each identity has a storage quota.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use serde::Deserialize;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::pki::{self, StateFiles};
use crate::store::{Quota, Upload};
use crate::{Error, Store};

mod state;
mod transport;

pub use state::{check_state, open_state};
use transport::{Connections, accept_loop, fit_to_file_limit, short, tls_config};

use crate::BODY_LIMIT;
/// Longest accepted request target (path and query).
pub const URI_LIMIT: usize = 8 * 1024;
/// Most bytes of request headers accepted.
pub const HEADERS_LIMIT: usize = 32 * 1024;
/// What the HTTP parser buffers of a request head at most; beyond it, hyper itself answers
/// 431 without a body. Above [`HEADERS_LIMIT`] so that our JSON answer comes first.
const HEAD_BUFFER: usize = 64 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request (reading its body included) that takes longer is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A write is committed only if it can still be answered within [`REQUEST_TIMEOUT`].
const COMMIT_MARGIN: Duration = Duration::from_secs(2);
/// Uploads parsed at once: each may hold a tree about the size of its text.
const PARSES_AT_ONCE: usize = 4;

/// Uploads of at most this many bytes are parsed with permits of their own ([`App`]).
const SMALL_UPLOAD: usize = 64 * 1024;

/// Larger uploads parsed at once: one core at most, whoever sends them, so that handshakes
/// and ordinary requests keep the rest.
const LARGE_PARSES_AT_ONCE: usize = 1;

/// What the server bounds, set by `cas serve`'s flags.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Connections open at once, handshakes included.
    pub max_connections: usize,
    /// Connections open at once by one client identity.
    pub max_connections_per_identity: usize,
    /// How long a connection may take to send a request head, and stay idle between requests.
    pub idle_timeout: Duration,
    pub quota: Quota,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_connections: 1024,
            max_connections_per_identity: 64,
            idle_timeout: Duration::from_secs(10),
            quota: Quota::default(),
        }
    }
}

fn json_error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        axum::Json(json!({ "code": code, "message": message, "msg": [message] })),
    )
        .into_response()
}

async fn request_timeout(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => json_error(
            StatusCode::REQUEST_TIMEOUT,
            "timed_out",
            format!(
                "the request took longer than {} s; a write that took this long is not committed",
                REQUEST_TIMEOUT.as_secs()
            ),
        ),
    }
}

/// Refuses what is too big before anything of it is read: a body announced larger than
/// [`BODY_LIMIT`], a long request target, large headers.
async fn limit_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > BODY_LIMIT as u64) {
        let mut response = json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body may be at most {BODY_LIMIT} bytes"),
        );
        // The connection carries no other request. What the client sends meanwhile is read
        // and dropped for a while, so that it sees this answer rather than a reset.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        tokio::spawn(discard(request.into_body()));
        return response;
    }
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > URI_LIMIT {
        return json_error(
            StatusCode::URI_TOO_LONG,
            "too_large",
            format!("the request target may be at most {URI_LIMIT} bytes"),
        );
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers > HEADERS_LIMIT {
        return json_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "too_large",
            format!("the request headers may be at most {HEADERS_LIMIT} bytes"),
        );
    }
    next.run(request).await
}

/// Reads and drops a refused body: at most twice the limit, for at most 5 s.
async fn discard(body: axum::body::Body) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut left = 2 * BODY_LIMIT;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(frame)) = body.frame().await {
            let n = frame.data_ref().map_or(0, |d| d.len());
            left = match left.checked_sub(n) {
                Some(left) => left,
                None => break,
            };
        }
    })
    .await;
}

/// Every error answer is JSON: what the framework answers by itself (a body that is not
/// UTF-8, a bad query, a body over the limit) is rewrapped as `{code, message, msg}`.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        s if s.is_client_error() => "invalid",
        _ => "internal",
    };
    json_error(status, code, message)
}

/// Who is calling: the connection's address and the key hash of its client certificate.
#[derive(Clone, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    pub key_hash: String,
}

/// The JSON error body: `{code, message}` and the fields that let a client rebuild the
/// [`Error`] (the active hash of a conflict, the session and operation a caller was refused).
fn error_response(e: &Error) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // SCONE CAS answers errors as `{"msg": [...]}`; ours carry that and more.
    let mut body = json!({ "code": e.code(), "message": e.to_string(), "msg": [e.to_string()] });
    match e {
        Error::Forbidden {
            session,
            operation,
            caller,
        } => {
            body["session"] = json!(session);
            body["operation"] = json!(operation);
            body["caller"] = json!(caller);
        }
        Error::Unapproved {
            session,
            operation,
            unmet,
        } => {
            body["session"] = json!(session);
            body["operation"] = json!(operation);
            body["unmet"] = json!(unmet);
        }
        Error::NotAttested {
            session,
            service,
            mrenclave,
        } => {
            body["session"] = json!(session);
            body["service"] = json!(service);
            body["mrenclave"] = json!(mrenclave);
        }
        Error::Exists { name, active } => {
            body["session"] = json!(name);
            body["active_hash"] = json!(active);
        }
        Error::Conflict {
            name,
            active,
            given,
        } => {
            body["session"] = json!(name);
            body["active_hash"] = json!(active);
            body["predecessor"] = json!(given);
        }
        Error::QuotaExceeded {
            caller,
            used,
            limit,
        } => {
            body["caller"] = json!(caller);
            body["used"] = json!(used);
            body["limit"] = json!(limit);
        }
        Error::Invalid(message) | Error::NotFound(message) | Error::TimedOut(message) => {
            body["message"] = json!(message);
            body["msg"] = json!([message]);
        }
        _ => {}
    }
    (status, axum::Json(body)).into_response()
}

/// What every request handler shares.
pub struct App {
    store: Store,
    /// Encrypted sessions are made for this key.
    encryption: meshfile_sign::EncryptionKey,
    /// Permits to parse an upload: bound the memory parsing takes at once. Uploads of at most
    /// [`SMALL_UPLOAD`] bytes (every session meshfile writes is) have permits of their own,
    /// so they are never queued behind large ones: a client sending megabyte uploads as fast
    /// as it can delays no ordinary session.
    parses: Semaphore,
    small_parses: Semaphore,
}

impl App {
    pub fn new(store: Store, encryption: meshfile_sign::EncryptionKey) -> Arc<App> {
        Arc::new(App {
            store,
            encryption,
            parses: Semaphore::new(LARGE_PARSES_AT_ONCE),
            small_parses: Semaphore::new(PARSES_AT_ONCE),
        })
    }
}

type Shared = Arc<App>;

/// Runs a store operation off the async threads (redb commits fsync) and logs its outcome,
/// from the operation's own thread, so that the log says what happened even when the client
/// was answered 408 before it ended: method, what (escaped), status and the caller's key
/// hash; never a body.
async fn blocking<T: serde::Serialize + Send + 'static>(
    what: String,
    peer: &Peer,
    ok: StatusCode,
    op: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Response {
    let started = Instant::now();
    let caller = short(&peer.key_hash).to_owned();
    let task = tokio::task::spawn_blocking(move || {
        let result = op();
        let status = result.as_ref().map_or_else(Error::status, |_| ok.as_u16());
        let late = if started.elapsed() >= REQUEST_TIMEOUT {
            " (after the client was answered 408)"
        } else {
            ""
        };
        eprintln!(
            "{} -> {status}{late} (client {caller}…)",
            what.escape_debug()
        );
        result
    });
    match task.await {
        Ok(Ok(value)) => (ok, axum::Json(value)).into_response(),
        Ok(Err(e)) => error_response(&e),
        Err(_) => error_response(&Error::Internal("the operation failed".into())),
    }
}

/// How an upload's body is written.
#[derive(Clone, Copy)]
enum Form {
    /// `POST /v1/sessions`: session YAML, or a signed session's JSON.
    PlainOrSigned,
    /// `PUT /v1/encrypted_sessions`: an encrypted session's JSON.
    Encrypted,
}

async fn create(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: String,
) -> Response {
    upload(app, peer, body, Form::PlainOrSigned, "POST /v1/sessions").await
}

async fn create_encrypted(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: String,
) -> Response {
    upload(
        app,
        peer,
        body,
        Form::Encrypted,
        "PUT /v1/encrypted_sessions",
    )
    .await
}

/// Parses (decrypting and verifying signatures as the form asks) off the async threads,
/// a bounded number at once, then writes.
async fn upload(app: Shared, peer: Peer, body: String, form: Form, what: &str) -> Response {
    let deadline = Instant::now() + REQUEST_TIMEOUT - COMMIT_MARGIN;
    let caller = peer.key_hash.clone();
    let lane = if body.len() <= SMALL_UPLOAD {
        &app.small_parses
    } else {
        &app.parses
    };
    let Ok(permit) = lane.acquire().await else {
        return error_response(&Error::Internal("the server is shutting down".into()));
    };
    let parsing = app.clone();
    let parse = tokio::task::spawn_blocking(move || match form {
        Form::PlainOrSigned if body.trim_start().starts_with('{') => Upload::parse_signed(&body),
        Form::PlainOrSigned => Upload::parse(&body),
        Form::Encrypted => Upload::parse_encrypted(&body, &parsing.encryption),
    })
    .await;
    drop(permit);
    let upload = match parse {
        Ok(Ok(upload)) => upload,
        Ok(Err(e)) => {
            eprintln!("{what} -> {} (client {}…)", e.status(), short(&caller));
            return error_response(&e);
        }
        Err(_) => return error_response(&Error::Internal("parsing failed".into())),
    };
    blocking(what.into(), &peer, StatusCode::CREATED, move || {
        app.store.write_upload(&caller, &upload, Some(deadline))
    })
    .await
}

#[derive(Deserialize)]
struct HashQuery {
    hash: Option<String>,
}

async fn read(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<HashQuery>,
) -> Response {
    let caller = peer.key_hash.clone();
    blocking(format!("GET /v1/sessions/{name}"), &peer, StatusCode::OK, move || {
        let (version, hash) = app.store.read(&caller, &name, q.hash.as_deref())?;
        Ok(json!({ "session": version.session, "hash": hash, "predecessor": version.predecessor, "creator": version.creator }))
    })
    .await
}

/// `session=<name>[,secret=<name>]`, as SCONE's CLI writes it.
fn parse_value_spec(spec: &str) -> Result<(String, Option<String>), Error> {
    let mut session = None;
    let mut secret = None;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("session", v)) => session = Some(v.to_owned()),
            Some(("secret", v)) => secret = Some(v.to_owned()),
            _ => {
                return Err(Error::Invalid(format!(
                    "`{spec}`: expected `session=<name>[,secret=<name>]`"
                )));
            }
        }
    }
    Ok((
        session.ok_or_else(|| Error::Invalid(format!("`{spec}` names no session")))?,
        secret,
    ))
}

async fn values(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    UrlPath(spec): UrlPath<String>,
) -> Response {
    blocking(format!("GET /v1/values/{spec}"), &peer, StatusCode::OK, move || {
        let (session, secret) = parse_value_spec(&spec)?;
        let values = app.store.public_values(&session, secret.as_deref())?;
        // SCONE's shapes: one secret as `{kind, value, expires, renew}` (this store keeps no
        // expiry or renewal, so those are null), all of them as `{"values": {name: {value}}}`.
        Ok(match secret {
            Some(s) => {
                let (kind, value) = values.get(&s).cloned().unwrap_or_default();
                json!({ "kind": kind, "value": value, "expires": null, "renew": null })
            }
            None => json!({ "values": values.into_iter().map(|(k, (kind, v))| (k, json!({ "kind": kind, "value": v }))).collect::<BTreeMap<_, _>>() }),
        })
    })
    .await
}

#[derive(Deserialize)]
struct PreviewQuery {
    mrenclave: String,
}

async fn preview(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    UrlPath(config_id): UrlPath<String>,
    Query(q): Query<PreviewQuery>,
) -> Response {
    let caller = peer.key_hash.clone();
    blocking(
        format!("GET /v1/preview/{config_id}"),
        &peer,
        StatusCode::OK,
        move || app.store.preview(&caller, &config_id, &q.mrenclave),
    )
    .await
}

/// What this server is; says so plainly so nobody mistakes it for SCONE CAS.
pub fn version_info() -> serde_json::Value {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "implementation": "meshfile development CAS",
        "warning": "development and CI store: no SGX, no attestation; not SCONE CAS",
    })
}

/// What a client needs to make sessions for this CAS: its session encryption key.
async fn identification(State(app): State<Shared>) -> Response {
    axum::Json(json!({
        "session_encryption_key": app.encryption.public_hex(),
        "session_encryption": "HPKE (RFC 9180) base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305",
    }))
    .into_response()
}

/// What anyone may read: `export_public` values, the version and health.
fn public_routes() -> Router<Shared> {
    Router::new()
        .route("/v1/values/{*spec}", get(values))
        .route("/v1/version", get(|| async { axum::Json(version_info()) }))
        .route("/v1/identification", get(identification))
        .route(
            "/health",
            get(|| async { axum::Json(json!({ "status": "ok" })) }),
        )
}

/// Bounds every request (size before reading, total time), answers every error as JSON,
/// routes nothing else (404 and 405 as JSON too).
fn limited(routes: Router<Shared>, app: Shared) -> Router {
    let unknown = || async {
        json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint; see /v1/version".into(),
        )
    };
    let wrong_method = || async {
        json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take that method".into(),
        )
    };
    routes
        .fallback(unknown)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(request_timeout))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn(limit_request))
        .with_state(app)
}

/// The public listener's routes (no client certificate there).
pub fn public_router(app: Shared) -> Router {
    limited(public_routes(), app)
}

/// The main listener's routes: sessions and the preview, plus the public ones.
pub fn router(app: Shared) -> Router {
    let routes = public_routes()
        .route("/v1/sessions", post(create))
        .route("/v1/encrypted_sessions", put(create_encrypted))
        .route("/v1/sessions/{*name}", get(read))
        .route("/v1/preview/{*config_id}", get(preview));
    limited(routes, app)
}

/// Where the server listens once it runs.
pub struct Listening<'a> {
    pub addr: SocketAddr,
    /// The listener without client authentication, for public values, when asked for.
    pub public: Option<SocketAddr>,
    pub files: &'a StateFiles,
    /// Whether this start created the CA, certificates and owner identity.
    pub created: bool,
    /// The bounds in force (the connection caps may be lowered to the file limit).
    pub bounds: Bounds,
    /// What the start-up check of the store found.
    pub checked: crate::store::Checked,
    /// The public session encryption key, hex (`cas_encryption_key` in a Meshfile).
    pub session_encryption_key: &'a str,
}

/// Connections the kernel queues for `accept`: as many as it allows (`somaxconn`). A burst of
/// connections from a flood must not fill the queue, or the kernel drops the SYN of a
/// well-behaved client, which then waits a second to send it again.
const LISTEN_BACKLOG: u32 = 4096;

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let listen = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    let tcp = listen().map_err(|e| Error::Listen {
        address: addr.to_string(),
        detail: e.to_string(),
    })?;
    let bound = tcp
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok((tcp, bound))
}

/// Serves until SIGTERM or Ctrl-C (finishing requests in flight); calls `ready` once listening.
pub fn serve(
    listen: SocketAddr,
    public: Option<SocketAddr>,
    state: &Path,
    names: &[String],
    bounds: Bounds,
    ready: impl FnOnce(Listening<'_>) + Send,
) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(e.to_string()))?;
    // The addresses first: a port in use stops the start before the state directory is
    // made or opened.
    let (tcp, addr, public) = runtime.block_on(async {
        let (tcp, addr) = bind(listen).await?;
        let public = match public {
            Some(p) => Some(bind(p).await?),
            None => None,
        };
        Ok::<_, Error>((tcp, addr, public))
    })?;
    let (store, created, checked) = open_state(state, names, bounds.quota)?;
    let (bounds, lowered) = fit_to_file_limit(bounds);
    if let Some(lowered) = lowered {
        eprintln!("{lowered}");
    }
    let files = StateFiles::in_dir(state);
    let encryption =
        crate::pki::session_encryption_key(&files.session_encryption_key, checked.sessions)?;
    let encryption_key = encryption.public_hex();
    let app = App::new(store, encryption);
    let config = Arc::new(tls_config(&files, true)?);
    let public_config = Arc::new(tls_config(&files, false)?);
    runtime.block_on(async move {
        ready(Listening {
            addr,
            public: public.as_ref().map(|(_, a)| *a),
            files: &files,
            created,
            bounds,
            checked,
            session_encryption_key: &encryption_key,
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let connections = Connections::new(bounds);
        let main = accept_loop(
            tcp,
            TlsAcceptor::from(config),
            false,
            router(app.clone()),
            connections.clone(),
            stop_rx.clone(),
        );
        let public = async {
            if let Some((tcp, _)) = public {
                let app = public_router(app.clone());
                let acceptor = TlsAcceptor::from(public_config);
                accept_loop(
                    tcp,
                    acceptor,
                    true,
                    app,
                    connections.clone(),
                    stop_rx.clone(),
                )
                .await;
            }
        };
        tokio::join!(main, public);
        Ok(())
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
    eprintln!("shutting down: finishing requests in flight");
}
