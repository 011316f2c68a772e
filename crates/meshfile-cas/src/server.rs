//! `meshfile cas serve`: the store over HTTPS with mandatory client certificates. A caller is
//! known by the hash of its certificate's public key, as SCONE CAS knows its clients; any
//! certificate is accepted (the handshake proves possession of its key), access policies decide.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use serde::Deserialize;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::pki::{self, StateFiles};
use crate::{Error, Store};

/// Largest accepted request body: sessions are kilobytes.
pub const BODY_LIMIT: usize = 1024 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request (reading its body included) that takes longer is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

async fn request_timeout(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, axum::Json(json!({ "code": "timeout", "message": format!("the request took longer than {} s", REQUEST_TIMEOUT.as_secs()), "msg": [format!("the request took longer than {} s", REQUEST_TIMEOUT.as_secs())] }))).into_response(),
    }
}

/// Who is calling: the connection's address and the key hash of its client certificate.
#[derive(Clone, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    pub key_hash: String,
}

/// Accepts any client certificate whose handshake signature verifies: identity is the key.
#[derive(Debug)]
struct AnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The server's TLS: with `client_auth`, every connection must present a client certificate.
fn tls_config(files: &StateFiles, client_auth: bool) -> Result<rustls::ServerConfig, Error> {
    let bad = |e: &dyn std::fmt::Display| Error::Internal(format!("TLS setup: {e}"));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.server_cert)
        .map_err(|e| bad(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&e))?;
    let key = PrivateKeyDer::from_pem_file(&files.server_key).map_err(|e| bad(&e))?;
    let verifier = Arc::new(AnyClientCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let builder =
        rustls::ServerConfig::builder_with_provider(provider.clone() as Arc<CryptoProvider>)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e))?;
    let builder = if client_auth {
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    builder.with_single_cert(certs, key).map_err(|e| bad(&e))
}

/// TCP accept plus TLS handshake. Handshakes run concurrently, each with its own deadline,
/// off the accept path: a client that connects and sends nothing, or a far one whose handshake
/// takes round trips, delays nobody else. On the main listener, connections without a valid
/// client certificate never reach the router; on the public one, callers are anonymous.
struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, Peer)>,
    local: Peer,
    /// Ends the accepting task with the listener.
    _accepting: tokio::task::JoinHandle<()>,
}

/// Handshakes in progress at once on one listener; a connection beyond that is closed at once.
const MAX_HANDSHAKES: usize = 256;

/// The identity of callers on the public listener, which no access policy can name.
pub const ANONYMOUS: &str = "anonymous";

impl TlsListener {
    fn new(tcp: TcpListener, acceptor: TlsAcceptor, anonymous: bool) -> std::io::Result<Self> {
        let local = Peer {
            addr: tcp.local_addr()?,
            key_hash: String::new(),
        };
        let (done, ready) = tokio::sync::mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
            loop {
                let (tcp, addr) = match tcp.accept().await {
                    Ok(conn) => conn,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                    eprintln!("{addr}: closed: {MAX_HANDSHAKES} TLS handshakes are in progress");
                    continue;
                };
                let (acceptor, done) = (acceptor.clone(), done.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Some(accepted) = handshake(&acceptor, tcp, addr, anonymous).await {
                        let _ = done.send(accepted).await;
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            local,
            _accepting: accepting,
        })
    }
}

/// One TLS handshake within [`HANDSHAKE_TIMEOUT`], and who the caller is.
async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    addr: SocketAddr,
    anonymous: bool,
) -> Option<(TlsStream<TcpStream>, Peer)> {
    let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
        eprintln!("{addr}: TLS handshake failed (a client certificate is required)");
        return None;
    };
    if anonymous {
        let key_hash = ANONYMOUS.into();
        return Some((tls, Peer { addr, key_hash }));
    }
    let key_hash = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| pki::key_hash_of_der(c).ok());
    match key_hash {
        Some(key_hash) => Some((tls, Peer { addr, key_hash })),
        None => {
            eprintln!("{addr}: client certificate unreadable");
            None
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended (it does not, while the listener lives): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local.clone())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
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
        Error::Invalid(message) | Error::NotFound(message) => {
            body["message"] = json!(message);
            body["msg"] = json!([message]);
        }
        _ => {}
    }
    (status, axum::Json(body)).into_response()
}

type Shared = Arc<Store>;

/// Runs a store operation off the async threads (redb commits fsync) and logs the outcome:
/// method, what, status and the caller's key hash; never a body.
async fn blocking<T: serde::Serialize + Send + 'static>(
    what: String,
    peer: &Peer,
    ok: StatusCode,
    op: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Response {
    let result = tokio::task::spawn_blocking(op)
        .await
        .unwrap_or_else(|e| Err(Error::Internal(e.to_string())));
    let response = match &result {
        Ok(value) => (ok, axum::Json(value)).into_response(),
        Err(e) => error_response(e),
    };
    let short = peer.key_hash.get(..12).unwrap_or(&peer.key_hash);
    eprintln!("{what} -> {} (client {short}…)", response.status().as_u16());
    response
}

async fn create(
    State(store): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: String,
) -> Response {
    let caller = peer.key_hash.clone();
    blocking(
        "POST /v1/sessions".into(),
        &peer,
        StatusCode::CREATED,
        move || store.write(&caller, &body),
    )
    .await
}

#[derive(Deserialize)]
struct HashQuery {
    hash: Option<String>,
}

async fn read(
    State(store): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<HashQuery>,
) -> Response {
    let caller = peer.key_hash.clone();
    blocking(format!("GET /v1/sessions/{name}"), &peer, StatusCode::OK, move || {
        let (version, hash) = store.read(&caller, &name, q.hash.as_deref())?;
        Ok(json!({ "session": version.session, "hash": hash, "predecessor": version.predecessor }))
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
    State(store): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    UrlPath(spec): UrlPath<String>,
) -> Response {
    blocking(format!("GET /v1/values/{spec}"), &peer, StatusCode::OK, move || {
        let (session, secret) = parse_value_spec(&spec)?;
        let values = store.public_values(&session, secret.as_deref())?;
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
    State(store): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    UrlPath(config_id): UrlPath<String>,
    Query(q): Query<PreviewQuery>,
) -> Response {
    let caller = peer.key_hash.clone();
    blocking(
        format!("GET /v1/preview/{config_id}"),
        &peer,
        StatusCode::OK,
        move || store.preview(&caller, &config_id, &q.mrenclave),
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

/// What anyone may read: `export_public` values, the version and health.
fn public_routes() -> Router<Shared> {
    Router::new()
        .route("/v1/values/{*spec}", get(values))
        .route("/v1/version", get(|| async { axum::Json(version_info()) }))
        .route(
            "/health",
            get(|| async { axum::Json(json!({ "status": "ok" })) }),
        )
}

/// Limits every request: body size and total time.
fn limited(routes: Router<Shared>, store: Shared) -> Router {
    routes
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(request_timeout))
        .with_state(store)
}

/// The public listener's routes (no client certificate there).
pub fn public_router(store: Shared) -> Router {
    limited(public_routes(), store)
}

/// The main listener's routes: sessions and the preview, plus the public ones.
pub fn router(store: Shared) -> Router {
    let routes = public_routes()
        .route("/v1/sessions", post(create))
        .route("/v1/sessions/{*name}", get(read))
        .route("/v1/preview/{*config_id}", get(preview));
    limited(routes, store)
}

/// Where the server listens once it runs.
pub struct Listening<'a> {
    pub addr: SocketAddr,
    /// The listener without client authentication, for public values, when asked for.
    pub public: Option<SocketAddr>,
    pub files: &'a StateFiles,
    /// Whether this start created the CA, certificates and owner identity.
    pub created: bool,
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Invalid(format!("cannot listen on {addr}: {e}")))?;
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
    ready: impl FnOnce(Listening<'_>) + Send,
) -> Result<(), Error> {
    let created = pki::init_state(state, names)?;
    let files = StateFiles::in_dir(state);
    let store = Arc::new(Store::open(&files.store)?);
    let config = Arc::new(tls_config(&files, true)?);
    let public_config = Arc::new(tls_config(&files, false)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(e.to_string()))?;
    runtime.block_on(async move {
        let (tcp, addr) = bind(listen).await?;
        let public = match public {
            Some(p) => Some(bind(p).await?),
            None => None,
        };
        ready(Listening {
            addr,
            public: public.as_ref().map(|(_, a)| *a),
            files: &files,
            created,
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let main = axum::serve(
            TlsListener::new(tcp, TlsAcceptor::from(config), false)
                .map_err(|e| Error::Internal(e.to_string()))?,
            router(store.clone()).into_make_service_with_connect_info::<Peer>(),
        )
        .with_graceful_shutdown(stopped(stop_rx.clone()));
        let public = async {
            match public {
                Some((tcp, _)) => {
                    axum::serve(
                        TlsListener::new(tcp, TlsAcceptor::from(public_config), true)?,
                        public_router(store.clone()).into_make_service_with_connect_info::<Peer>(),
                    )
                    .with_graceful_shutdown(stopped(stop_rx.clone()))
                    .await
                }
                None => Ok(()),
            }
        };
        let (main, public) = tokio::join!(main, public);
        main.and(public).map_err(|e| Error::Internal(e.to_string()))
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
