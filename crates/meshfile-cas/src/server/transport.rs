//! The transport of `cas serve`: TLS with any client certificate (the key is the identity),
//! handshakes with their own deadline and queue, connections capped per address while silent,
//! per identity and in all, and the accept loop that serves HTTP over each.

use super::*;

/// Accepts any client certificate whose handshake signature verifies: identity is the key.
#[derive(Debug)]
pub(super) struct AnyClientCertificate {
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
pub(super) fn tls_config(
    files: &StateFiles,
    client_auth: bool,
) -> Result<rustls::ServerConfig, Error> {
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

/// Handshakes in progress at once on one listener; a connection beyond that is closed at once.
pub(super) const MAX_HANDSHAKES: usize = 256;

/// Connections from one address that have sent nothing yet: one more from there ends the
/// oldest, so a peer that opens connections and sends nothing holds at most these. A client
/// starts its handshake at once and so leaves this queue before anyone can end it: one behind
/// the same address (a NAT, loopback) still gets through.
pub(super) const MAX_SILENT_PER_ADDRESS: usize = 16;

/// How often a kind of closed connection is logged: once per window, with the count of those
/// closed meanwhile, so that a flood cannot flood the log.
pub(super) const LOG_WINDOW: Duration = Duration::from_secs(10);

/// The identity of callers on the public listener, which no access policy can name.
pub const ANONYMOUS: &str = "anonymous";

/// Open connections: authenticated ones in all and per identity, handshakes in progress in
/// all and per address. A connection takes one of `total` only once its handshake proved who
/// it is: unauthenticated peers never take the places of clients.
pub(super) struct Connections {
    total: Arc<Semaphore>,
    handshakes: Arc<Semaphore>,
    /// Connections that have sent nothing yet, from all addresses.
    silent: Arc<Semaphore>,
    per_identity: Mutex<HashMap<String, usize>>,
    per_address: Mutex<HashMap<std::net::IpAddr, HandshakeQueue>>,
    next_handshake: std::sync::atomic::AtomicU64,
    log: ClosedLog,
    bounds: Bounds,
}

/// One address's handshakes in progress, oldest first: an id and what ends it.
pub(super) type HandshakeQueue = std::collections::VecDeque<(u64, Arc<tokio::sync::Notify>)>;

/// A place among one address's handshakes in progress, given back when the handshake ends;
/// `ended` is notified when a newer handshake from the address takes the place.
pub(super) struct Handshaking {
    connections: Arc<Connections>,
    address: std::net::IpAddr,
    id: u64,
    ended: Arc<tokio::sync::Notify>,
}

impl Drop for Handshaking {
    fn drop(&mut self) {
        let mut open = (self.connections.per_address.lock()).unwrap_or_else(|e| e.into_inner());
        if let Some(queue) = open.get_mut(&self.address) {
            queue.retain(|(id, _)| *id != self.id);
            if queue.is_empty() {
                open.remove(&self.address);
            }
        }
    }
}

/// Lines about closed connections, at most one per reason and [`LOG_WINDOW`]: the first of a
/// window is written with how many were closed since the last line.
pub(super) struct ClosedLog {
    seen: Mutex<HashMap<&'static str, (Option<std::time::Instant>, u64)>>,
}

impl ClosedLog {
    /// Notes one connection closed for `reason`; writes `line()` when the window allows.
    pub(super) fn closed(&self, reason: &'static str, line: impl FnOnce() -> String) {
        let now = std::time::Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let entry = seen.entry(reason).or_insert((None, 0));
        entry.1 += 1;
        if entry
            .0
            .is_none_or(|last| now.duration_since(last) >= LOG_WINDOW)
        {
            let more = entry.1 - 1;
            let also = if more > 0 {
                format!(" (and {more} more closed for this since the last such line)")
            } else {
                String::new()
            };
            eprintln!("{}{also}", line());
            *entry = (Some(now), 0);
        }
    }
}

/// One connection's place in the per-identity count, given back when it closes.
pub(super) struct Admitted {
    connections: Arc<Connections>,
    identity: String,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .per_identity
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.identity) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.identity);
            }
        }
    }
}

impl Connections {
    pub(super) fn new(bounds: Bounds) -> Arc<Connections> {
        Arc::new(Connections {
            total: Arc::new(Semaphore::new(bounds.max_connections)),
            handshakes: Arc::new(Semaphore::new(MAX_HANDSHAKES.min(bounds.max_connections))),
            silent: Arc::new(Semaphore::new(bounds.max_connections)),
            per_identity: Mutex::new(HashMap::new()),
            per_address: Mutex::new(HashMap::new()),
            next_handshake: std::sync::atomic::AtomicU64::new(0),
            log: ClosedLog {
                seen: Mutex::new(HashMap::new()),
            },
            bounds,
        })
    }

    /// A place for one more handshake from `address`; when it has its share in progress, the
    /// oldest of them is told to end.
    pub(super) fn handshaking(self: &Arc<Self>, address: std::net::IpAddr) -> Handshaking {
        let id = (self.next_handshake).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ended = Arc::new(tokio::sync::Notify::new());
        let mut open = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        let queue = open.entry(address).or_default();
        if queue.len() >= MAX_SILENT_PER_ADDRESS
            && let Some((_, oldest)) = queue.pop_front()
        {
            oldest.notify_one();
        }
        queue.push_back((id, ended.clone()));
        Handshaking {
            connections: self.clone(),
            address,
            id,
            ended,
        }
    }

    /// A place for one more connection of `identity`, unless it has its share open.
    pub(super) fn admit(self: &Arc<Self>, identity: &str) -> Option<Admitted> {
        let mut open = self.per_identity.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(identity.to_owned()).or_insert(0);
        if *n >= self.bounds.max_connections_per_identity {
            return None;
        }
        *n += 1;
        Some(Admitted {
            connections: self.clone(),
            identity: identity.to_owned(),
        })
    }
}

/// A key hash as logged: its start.
pub(super) fn short(key_hash: &str) -> &str {
    key_hash.get(..12).unwrap_or(key_hash)
}

/// Accepts connections until `stop`, each handshaken and served on a task of its own: a
/// client that connects and sends nothing, or a far one whose handshake takes round trips,
/// delays nobody else. On the main listener a connection without a valid client certificate
/// never reaches the router; on the public one callers are anonymous.
pub(super) async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    anonymous: bool,
    app: Router,
    connections: Arc<Connections>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = tcp.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let (tcp, addr) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to be given back.
                eprintln!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(waiting) = connections.silent.clone().try_acquire_owned() else {
            connections.log.closed("silent-total", || {
                format!(
                    "{addr}: closed: {} connections that sent nothing yet are open",
                    connections.bounds.max_connections
                )
            });
            continue;
        };
        let from_address = connections.handshaking(addr.ip());
        let (acceptor, app, connections) = (acceptor.clone(), app.clone(), connections.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // Silent until its first byte: then it is a handshake no newer connection ends.
            let ended = from_address.ended.clone();
            let mut first = [0u8; 1];
            let spoke = tokio::select! {
                // A connection that has spoken is a handshake, even if ended meanwhile.
                biased;
                // `peek`, not `readable`: the latter may report a false positive.
                spoke = tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first)) => {
                    matches!(spoke, Ok(Ok(_)))
                }
                // Told to make room: unless its first bytes are there already (the reactor
                // may not have said so yet), it goes.
                () = ended.notified(), if !has_spoken(&tcp) => {
                    connections.log.closed("per-address", || format!(
                        "{addr}: closed: it sent nothing, and a newer connection from this address took its place ({MAX_SILENT_PER_ADDRESS} silent ones are kept per address)"
                    ));
                    return;
                }
            };
            drop((from_address, waiting));
            if !spoke {
                connections.log.closed("silent", || {
                    format!(
                        "{addr}: closed: it sent nothing for {} s",
                        HANDSHAKE_TIMEOUT.as_secs()
                    )
                });
                return;
            }
            let Ok(handshaking) = connections.handshakes.clone().try_acquire_owned() else {
                connections.log.closed("handshakes", || {
                    format!("{addr}: closed: {MAX_HANDSHAKES} TLS handshakes are in progress")
                });
                return;
            };
            let shaken = handshake(&acceptor, tcp, addr, anonymous, &connections.log).await;
            drop(handshaking);
            let Some((tls, peer)) = shaken else {
                return;
            };
            // Only a caller whose handshake proved who it is takes a place among connections.
            let Ok(_open) = connections.total.clone().try_acquire_owned() else {
                connections.log.closed("total", || {
                    format!(
                        "{addr}: closed: {} connections are open, the most this server keeps (--max-connections)",
                        connections.bounds.max_connections
                    )
                });
                return;
            };
            let _admitted = if anonymous {
                None
            } else {
                match connections.admit(&peer.key_hash) {
                    Some(admitted) => Some(admitted),
                    None => {
                        connections.log.closed("per-identity", || {
                            format!(
                                "{addr}: closed: client {}… has {} connections open, the most one identity may (--max-connections-per-identity)",
                                short(&peer.key_hash),
                                connections.bounds.max_connections_per_identity
                            )
                        });
                        return;
                    }
                }
            };
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer.clone()));
                    app.clone().oneshot(request.map(axum::body::Body::new))
                },
            );
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(connections.bounds.idle_timeout)
                .max_buf_size(HEAD_BUFFER)
                .keep_alive(true);
            let connection = http.serve_connection(TokioIo::new(tls), service);
            // A connection that ends badly (reset, timeout) concerns only its client.
            let _ = watcher.watch(connection).await;
        });
    }
    // Requests in flight are finished; idle connections close at once.
    graceful.shutdown().await;
}

/// Whether bytes wait to be read on `tcp` (or it was closed), asked of the socket itself.
pub(super) fn has_spoken(tcp: &TcpStream) -> bool {
    use rustix::net::RecvFlags;
    let mut byte = [0u8; 1];
    matches!(
        rustix::net::recv(tcp, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT),
        Ok((0 | 1, _))
    )
}

/// One TLS handshake within [`HANDSHAKE_TIMEOUT`], and who the caller is.
pub(super) async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    addr: SocketAddr,
    anonymous: bool,
    log: &ClosedLog,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, Peer)> {
    let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
        log.closed("handshake", || {
            format!(
                "{addr}: TLS handshake failed or took over {} s (a client certificate is required)",
                HANDSHAKE_TIMEOUT.as_secs()
            )
        });
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
            log.closed("certificate", || {
                format!("{addr}: client certificate unreadable")
            });
            None
        }
    }
}

/// Connection caps that fit the process's file limit: the soft limit is raised to the hard
/// one, and caps above what it allows are lowered (said once, at start).
pub(super) fn fit_to_file_limit(mut bounds: Bounds) -> (Bounds, Option<String>) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
        limit = getrlimit(Resource::Nofile);
    }
    // Files beside connections: the store, listeners, standard streams, blocking threads.
    const RESERVED: u64 = 64;
    let files = limit.current.unwrap_or(u64::MAX);
    let room = usize::try_from(files.saturating_sub(RESERVED))
        .unwrap_or(usize::MAX)
        .max(1);
    if bounds.max_connections <= room {
        return (bounds, None);
    }
    let asked = bounds.max_connections;
    bounds.max_connections = room;
    bounds.max_connections_per_identity = bounds.max_connections_per_identity.min(room);
    (
        bounds,
        Some(format!(
            "--max-connections {asked} lowered to {room}: the process may open {files} files (ulimit -n)"
        )),
    )
}
