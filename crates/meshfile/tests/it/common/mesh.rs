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

/// A generated mesh of `n` services `s00`, `s01`, ...: each defines a password, a key and a
/// certificate, uses them, imports the certificate of the service before it (an even one for
/// the certificate only, an odd one with its key, as a client) and waits for it to start.
pub fn generated(n: usize) -> Test {
    let service = |i: usize| {
        let name = format!("s{i:02}");
        let mut env =
            format!("    - name: PASSWORD\n      value: \"$$SCONE::{name}_password$$\"\n");
        let mut files = format!(
            "  - path: /tls/own.crt\n    content: $$SCONE::{name}_cert:crt$$\n  - path: /tls/own.key\n    content: $$SCONE::{name}_cert:privatekey$$\n"
        );
        let mut imports = String::new();
        if i > 0 {
            let peer = format!("s{:02}", i - 1);
            imports = format!("  import:\n    - {peer}_cert\n");
            env += &format!(
                "    - name: INIT_CONTAINER1\n      value: {peer}\n    - name: INIT_CONTAINER1_PORT\n      value: \"8080\"\n"
            );
            files += &format!("  - path: /tls/peer.crt\n    content: $$SCONE::{peer}_cert:crt$$\n");
            if i % 2 == 1 {
                files += &format!(
                    "  - path: /tls/peer.key\n    content: $$SCONE::{peer}_cert:privatekey$$\n"
                );
            }
        }
        format!(
            "apiVersion: scone/5.8\nkind: genservice\nenvironment:\n  local:\n{env}injection_files:\n{files}secrets:\n  global:\n    - name: {name}_password\n      kind: ascii\n      size: 16\n    - name: {name}_key\n      kind: private-key\n    - name: {name}_cert\n      kind: x509\n      private_key: {name}_key\n{imports}build:\n  name: {name}\n  kind: python\n  to: registry.example.com/{name}:1\n  pwd: /app\n  command: python3 app.py\n"
        )
    };
    let services: String = (0..n)
        .map(|i| format!("  - name: s{i:02}\n    image: registry.example.com/s{i:02}:1\n"))
        .collect();
    let mesh = format!(
        "apiVersion: scone/5.8\nkind: mesh\ncas:\n  - name: cas\n    alias: [image, security, access, attestation]\n    cas_url: embedded\npolicy:\n  namespace: generated\nenv:\n  - service: global\n    env:\n      - name: APP_SERVICE_PORT\n        value: 8080\nservices:\n{services}"
    );
    let measurements: String = (0..n)
        .map(|i| format!("registry.example.com/s{i:02}:1: [\"{:064x}\"]\n", i + 1))
        .collect();
    let mut t = Test::new()
        .file("mesh.yaml", mesh)
        .file("measurements.yaml", measurements);
    for i in 0..n {
        t = t.file(&format!("s{i:02}.yaml"), service(i));
    }
    t
}
