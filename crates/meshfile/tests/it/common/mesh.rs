//! The examples pointed at a served CAS, and the arguments that trust it.

use crate::server::Server;
use crate::{Test, workspace};

/// The multi-service example, pointed at `server`.
pub fn example_for(t: &Test, server: &Server) {
    let src = workspace().join("examples/flask-redis");
    for entry in std::fs::read_dir(&src).expect("example") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let text = text.replace("cas_url: embedded", &format!("cas_url: {}", server.address));
        std::fs::write(t.dir().join(path.file_name().expect("name")), text).expect("write");
    }
    trust_files(t, server);
}

/// The server's CA certificate and the owner's identity, as `ca.pem` and `owner.pem`.
pub fn trust_files(t: &Test, server: &Server) {
    std::fs::write(t.dir().join("ca.pem"), server.file("ca.pem")).expect("ca");
    t.private_file("owner.pem", server.file("owner.pem"));
}

const CAS: &[&str] = &["--identity", "owner.pem", "--cas-ca", "ca.pem"];

pub fn args<'a>(verb: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    // `-n`: no registry is asked; nothing leaves 127.0.0.1.
    let mut v = vec![verb, "-n", "-f", "."];
    v.extend(CAS);
    v.extend(extra);
    v
}

/// The public session encryption key of a running development CAS.
pub fn server_encryption_key(server: &Server) -> String {
    let private = hex::decode(server.file("session-encryption-key").trim()).expect("hex");
    meshfile_sign::EncryptionKey::from_private(&private)
        .expect("key")
        .public_hex()
}
