//! Raw connections to `cas serve`, for what a well-behaved client never sends: a connection
//! that stays silent, a request head cut off, bytes no HTTP client would write.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `address` trusting `ca_pem` for the name `cas`, presenting
/// `identity_pem` (certificate and key), with the handshake done.
pub fn connect(address: &str, ca_pem: &str, identity_pem: &str) -> std::io::Result<Tls> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(identity_pem.as_bytes())
            .map(|c| c.expect("identity certificate"))
            .collect();
    let key = PrivateKeyDer::from_pem_slice(identity_pem.as_bytes()).expect("identity key");
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client certificate");
    let name = ServerName::try_from(meshfile_cas::pki::CAS_NAME).expect("name");
    let connection =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(address)?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// An answer: its status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body as JSON; panics (the test fails) when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "a {} body that is not JSON ({e}): {:?}",
                self.status, self.body
            )
        })
    }
}

/// Sends `request` as it is and reads the answer until the server closes the connection
/// (requests here ask for `Connection: close`) or the body its `Content-Length` announces is in.
pub fn exchange(tls: &mut Tls, request: &[u8]) -> std::io::Result<Answer> {
    tls.write_all(request)?;
    tls.flush()?;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(answer) = parse(&bytes) {
            return Ok(answer);
        }
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            // A server that answers and closes without TLS's close_notify.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
    }
    parse(&bytes).ok_or_else(|| {
        std::io::Error::other(format!(
            "no whole answer: {:?}",
            String::from_utf8_lossy(&bytes)
        ))
    })
}

/// A whole HTTP/1.1 answer in `bytes` with a `Content-Length` body.
fn parse(bytes: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    (body.len() >= length).then(|| Answer {
        status,
        body: body[..length].to_owned(),
    })
}

/// Whether the server has closed `tls` (an end of stream or a reset) within `wait`; a
/// connection still open then answers false.
pub fn closed_within(tls: &mut Tls, wait: Duration) -> bool {
    tls.sock.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 1024];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}
