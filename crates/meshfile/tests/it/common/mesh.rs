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

/// A mesh of three services (`a`, `b`, `c`; `b` and `c` import `a`'s certificate), each
/// with its service manifest and measurement, on the embedded store.
pub fn three_services() -> Test {
    let service = |name: &str, imports: &str| {
        format!(
            "apiVersion: scone/5.8\nkind: genservice\nenvironment:\n  local:\n    - name: GREETING\n      value: \"{{{{greeting}}}}\"\n    - name: CERT\n      value: \"$$SCONE::{name}_cert:crt$$\"\n  global:\n    - name: greeting\nsecrets:\n  global:\n    - name: {name}_key\n      kind: private-key\n    - name: {name}_cert\n      kind: x509\n      private_key: {name}_key\n{imports}build:\n  name: {name}\n  kind: python\n  to: registry.example.com/{name}:1\n  command: python3 app.py\n"
        )
    };
    let imports = "  import:\n    - a_cert\n";
    let mesh = "apiVersion: scone/5.8\nkind: mesh\ncas:\n  - name: cas\n    alias: [image, security, access, attestation]\n    cas_url: embedded\npolicy:\n  namespace: review\nenv:\n  - service: global\n    env:\n      - name: greeting\n        value: hello\n  - service: b\n    env:\n      - name: greeting\n        value: hi\nservices:\n  - name: a\n    image: registry.example.com/a:1\n  - name: b\n    image: registry.example.com/b:1\n  - name: c\n    image: registry.example.com/c:1\n";
    let measurements: String = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "registry.example.com/{n}:1: [\"{}\"]\n",
                format!("{i}").repeat(64)
            )
        })
        .collect();
    let t = Test::new()
        .file("mesh.yaml", mesh)
        .file("a.yaml", service("a", ""))
        .file("b.yaml", service("b", imports))
        .file("c.yaml", service("c", imports))
        .file("measurements.yaml", measurements);
    t.signing_fixtures();
    t
}
