//! A token service as registries such as Docker Hub use (the distribution spec's token
//! authentication): on 127.0.0.1, it mints ES256 JSON web tokens for the scopes a client asks
//! for, signed by a self-signed certificate the registry trusts (`x5c`). A client that sends
//! the user's password by Basic authentication gets every action it asks for; anyone else gets
//! `pull` only. Bounded: it serves a fixed number of requests.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine as _;

/// Requests the service answers before it stops accepting.
const REQUESTS: usize = 1000;

/// One request to the service: the scopes asked for, and whether it carried the user's
/// credentials.
pub type Asked = (Vec<String>, bool);

pub struct TokenService {
    pub realm: String,
    /// The issuer and service names the registry must be configured with.
    pub issuer: &'static str,
    pub service: &'static str,
    pub asked: Arc<Mutex<Vec<Asked>>>,
    /// The certificate the registry must trust, in its own directory.
    root: tempfile::TempDir,
}

impl TokenService {
    /// Starts the service, which trusts `user` (name, password).
    pub fn start(user: (&str, &str)) -> TokenService {
        let root = tempfile::tempdir().expect("root");
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let certificate = rcgen::CertificateParams::new(vec!["meshfile-test-token".into()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        std::fs::write(root.path().join("root.pem"), certificate.pem()).expect("root");
        let signer = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
        )
        .expect("signing key");
        let x5c = base64::engine::general_purpose::STANDARD.encode(certificate.der());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let realm = format!("http://{}/token", listener.local_addr().expect("address"));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", user.0, user.1))
        );
        let asked = Arc::new(Mutex::new(Vec::new()));
        let record = asked.clone();
        let (issuer, service) = ("meshfile-test-issuer", "meshfile-test");
        std::thread::spawn(move || {
            for stream in listener.incoming().take(REQUESTS) {
                let Ok(mut stream) = stream else { break };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut authorized = false;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        authorized = value.trim() == basic;
                    }
                }
                let target = request_line.split(' ').nth(1).unwrap_or_default();
                let scopes: Vec<String> = (target.split_once('?').map(|(_, q)| q))
                    .unwrap_or_default()
                    .split('&')
                    .filter_map(|pair| pair.strip_prefix("scope="))
                    .map(percent_decoded)
                    .collect();
                record
                    .lock()
                    .expect("asked")
                    .push((scopes.clone(), authorized));
                let token = mint(&signer, &x5c, issuer, service, &scopes, authorized);
                let body = serde_json::json!({"token": token, "access_token": token}).to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenService {
            realm,
            issuer,
            service,
            asked,
            root,
        }
    }

    /// The registry configuration that makes it trust this service's tokens.
    pub fn registry_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            self.realm,
            self.service,
            self.issuer,
            self.root.path().join("root.pem").display()
        )
    }
}

/// A token granting `scopes` (`repository:<name>:<actions>`): every action to the user,
/// `pull` to anyone else.
fn mint(
    signer: &aws_lc_rs::signature::EcdsaKeyPair,
    x5c: &str,
    issuer: &str,
    service: &str,
    scopes: &[String],
    authorized: bool,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let granted: Vec<&str> = actions
                .split(',')
                .filter(|a| authorized || *a == "pull")
                .collect();
            Some(serde_json::json!({"type": kind, "name": name, "actions": granted}))
        })
        .collect();
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": issuer, "sub": "alice", "aud": service, "exp": now + 600, "nbf": now - 60,
        "iat": now, "jti": format!("{now}-{}", scopes.len()), "access": access,
    });
    let signed = format!(
        "{}.{}",
        url.encode(header.to_string()),
        url.encode(claims.to_string())
    );
    let signature = signer
        .sign(&aws_lc_rs::rand::SystemRandom::new(), signed.as_bytes())
        .expect("sign");
    format!("{signed}.{}", url.encode(signature.as_ref()))
}

/// A query value with its `%XX` escapes and `+` decoded.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
