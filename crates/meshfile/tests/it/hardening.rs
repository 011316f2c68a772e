//! Hostile inputs from the user's own machine: files named on the command line that never
//! end, outputs that are not regular files, control characters. Each runs the real binary.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::Test;

/// Runs meshfile in `t`'s directory with `args`, killed after 20 s: its status (None when it
/// had to be killed) and standard error.
fn bounded(t: &Test, args: &[&str]) -> (Option<i32>, String) {
    let mut child = crate::meshfile(t.dir())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run meshfile");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(err) = child.stderr.take() {
        use std::io::Read;
        let _ = err.take(1 << 20).read_to_string(&mut stderr);
    }
    (status, stderr)
}

/// The hello-world example in `SignedManifest` mode at `cas_url`, templated: signed sessions
/// under `target/session_files` to add a signature to (the key made first, as a user would on
/// any build).
fn signed_hello_world(cas_url: &str) -> Test {
    let dir = crate::workspace().join("examples/hello-world");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("example");
    let mesh = read("mesh.yaml").replace(
        "cas_url: embedded",
        &format!("cas_url: {cas_url}\n    mode: SignedManifest"),
    );
    let mut t = Test::new()
        .file("mesh.yaml", mesh)
        .file("service.yaml", read("service.yaml"))
        .file("measurements.yaml", read("measurements.yaml"));
    assert_eq!(t.rerun(&["key", "generate"]).status, 0);
    let out = t.rerun(&["template", "-n", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    t
}

#[test]
fn files_named_on_the_command_line_are_read_no_further_than_a_key_can_be() {
    let t = signed_hello_world("127.0.0.1:9").file("sig", "x");
    let zero = "/dev/zero";
    for args in [
        &["key", "show", "--key", zero][..],
        &["cas", "key-hash", zero],
        &["template", "-n", "-f", ".", "--descriptor-key", zero],
        &["plan", "-n", "-f", ".", "--upload", "--cas-ca", zero],
        &["verify-images", "-n", "-f", ".", "--key", zero],
        &["publish", "-n", "-f", "service.yaml", "--key", zero],
        &[
            "sign",
            "--session",
            "hello-world-demo/pythonservice",
            "--signer",
            zero,
            "--signature",
            "sig",
        ],
    ] {
        let (status, stderr) = bounded(&t, args);
        assert!(
            matches!(status, Some(1..=3)),
            "{args:?} did not end with an error in 20 s ({status:?}): {stderr}"
        );
        // A private key is refused for its mode before it is read (a device is world-readable).
        let why = if args[0] == "key" {
            "accessible to others"
        } else {
            "is larger than 256 KiB"
        };
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
}

#[test]
fn an_exported_message_is_written_only_to_a_regular_file() {
    let t = signed_hello_world("cas.example");
    let export = |t: &Test, to: &str| {
        bounded(
            t,
            &[
                "sign",
                "--session",
                "hello-world-demo/pythonservice",
                "--export-message",
                to,
            ],
        )
    };
    // A FIFO (which would hang), a link (which would write elsewhere), a device.
    let fifo = t.dir().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    let elsewhere = t.dir().join("elsewhere");
    std::fs::write(&elsewhere, "keep").expect("write");
    std::os::unix::fs::symlink(&elsewhere, t.dir().join("link")).expect("link");
    for (path, what) in [
        (fifo.display().to_string(), "a device, FIFO or socket"),
        ("link".to_owned(), "a symbolic link"),
        ("/dev/null".to_owned(), "a device, FIFO or socket"),
    ] {
        let (status, stderr) = export(&t, &path);
        assert_eq!(status, Some(2), "{path}: {stderr}");
        assert!(
            stderr.contains(&format!("{path} is {what}, not a regular file")),
            "{path}: {stderr}"
        );
    }
    assert_eq!(std::fs::read_to_string(&elsewhere).expect("read"), "keep");
    assert!(
        t.dir()
            .join("link")
            .symlink_metadata()
            .expect("link")
            .file_type()
            .is_symlink()
    );
    // A new file and a regular file are written.
    for path in ["message.bin", "message.bin"] {
        let (status, stderr) = export(&t, path);
        assert_eq!(status, Some(0), "{stderr}");
    }
    assert!(
        std::fs::metadata(t.dir().join("message.bin"))
            .expect("written")
            .len()
            > 27
    );
}

#[test]
fn state_that_encryption_depends_on_is_never_silently_replaced() {
    use crate::server::Server;
    let server = Server::start();
    server
        .owner()
        .write("name: ns\nversion: \"0.3.10\"\n")
        .expect("a session");
    let state = server.kill();
    let key = state.path().join("session-encryption-key");
    let kept = std::fs::read(&key).expect("key");
    // The key gone beside a session: the start and `cas check` refuse, and make no new key.
    std::fs::remove_file(&key).expect("remove");
    let Err(refused) = Server::try_start(state, &[]) else {
        panic!("started without its key");
    };
    assert!(
        refused
            .stderr
            .contains("session-encryption-key is missing, but the store holds 1 session(s)")
            && refused.stderr.contains("Restore the file from a backup"),
        "{}",
        refused.stderr
    );
    let state = refused.state;
    assert!(!key.exists(), "a new key was made");
    let t = Test::new();
    let state_dir = state.path().display().to_string();
    let out = crate::meshfile(t.dir())
        .args(["cas", "check", "--state", &state_dir])
        .output()
        .expect("check");
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("damaged:") && said.contains("session-encryption-key is missing"),
        "{said}"
    );
    // With the key back, and ca.pem lost: ca.pem is made again from the CA's key, and a
    // client trusts the server through it as before.
    std::fs::write(&key, kept).expect("restore");
    std::fs::remove_file(state.path().join("ca.pem")).expect("remove ca");
    let server = Server::start_in(state);
    server
        .owner()
        .read("ns", None)
        .expect("trusted through the recreated ca.pem");
    // Without the CA's key as well, the start refuses, naming both.
    let state = server.kill();
    std::fs::remove_file(state.path().join("ca.pem")).expect("remove ca");
    std::fs::remove_file(state.path().join("ca-key.pem")).expect("remove ca key");
    let Err(refused) = Server::try_start(state, &[]) else {
        panic!("started without a CA");
    };
    assert!(
        refused
            .stderr
            .contains("ca.pem is missing, and so is the CA's key"),
        "{}",
        refused.stderr
    );
}

/// The peak resident memory of a process, in MiB (Linux's VmHWM).
fn peak_mib(pid: u32) -> u64 {
    crate::peak_mib_of(pid).expect("VmHWM")
}

#[test]
fn secrets_are_counted_before_they_are_generated() {
    use crate::server::Server;
    let server = Server::start_with(tempfile::tempdir().expect("state"), &["--quota-mib", "1"]);
    let owner = server.owner();
    owner
        .write("name: ns\nversion: \"0.3.10\"\n")
        .expect("namespace");
    // 20,000 secrets of the largest size in a request of under a megabyte: 1.3 GB to make.
    let mut many = String::from("name: ns/many\nversion: \"0.3.10\"\nsecrets:\n");
    for i in 0..20_000 {
        many.push_str(&format!("- {{name: s{i}, kind: ascii, size: 65536}}\n"));
    }
    assert!(many.len() < 1 << 20);
    let started = Instant::now();
    let refused = owner.write(&many).expect_err("1.3 GB of secrets");
    assert!(
        refused
            .to_string()
            .contains("bytes of secrets, more than the 16 MiB one session may hold"),
        "{refused}"
    );
    // Within what one session may hold, but more than the identity has left (1 MiB here).
    let mut over_quota = String::from("name: ns/big\nversion: \"0.3.10\"\nsecrets:\n");
    for i in 0..32 {
        over_quota.push_str(&format!("- {{name: s{i}, kind: ascii, size: 65536}}\n"));
    }
    let refused = owner
        .write(&over_quota)
        .expect_err("2 MiB for an identity with 1 MiB");
    assert!(
        refused.to_string().contains("bytes of storage"),
        "{refused}"
    );
    // Many keys: the count is bounded too.
    let mut keys = String::from("name: ns/keys\nversion: \"0.3.10\"\nsecrets:\n");
    for i in 0..17 {
        keys.push_str(&format!(
            "- {{name: k{i}, kind: private-key, key_type: RSA-3072}}\n"
        ));
    }
    let refused = owner.write(&keys).expect_err("17 RSA keys");
    assert!(refused.to_string().contains("17 RSA keys"), "{refused}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refusing took {:?}: the secrets were made first",
        started.elapsed()
    );
    let peak = peak_mib(server.pid());
    assert!(
        peak < 128,
        "the server grew to {peak} MiB for requests it refused"
    );
    // A session within bounds is still written.
    owner
        .write(
            "name: ns/ok\nversion: \"0.3.10\"\nsecrets:\n- {name: s, kind: ascii, size: 65536}\n",
        )
        .expect("within bounds");
}

#[test]
fn a_value_aliased_many_times_is_refused_not_stored_expanded() {
    use crate::server::Server;
    let server = Server::start();
    let owner = server.owner();
    owner
        .write("name: ns\nversion: \"0.3.10\"\n")
        .expect("namespace");
    // A 480 KB value anchored once and aliased 400 times: 192 MB once expanded.
    let long = "x".repeat(480 * 1024);
    let aliases = vec!["*v"; 400].join(", ");
    let bomb = format!(
        "name: ns/bomb\nversion: \"0.3.10\"\nservices:\n- name: a\n  environment: {{A: &v {long}}}\n  command: [{aliases}]\n"
    );
    assert!(bomb.len() < 1 << 20);
    let refused = owner.write(&bomb).expect_err("stored expanded");
    assert!(
        refused
            .to_string()
            .contains("expands to more than 1048576 bytes"),
        "{refused}"
    );
    let peak = peak_mib(server.pid());
    assert!(
        peak < 128,
        "the server grew to {peak} MiB for a request it refused"
    );
    assert!(owner.read("ns/bomb", None).is_err(), "nothing was stored");
}

#[test]
fn idle_connections_without_a_certificate_lock_no_one_out() {
    use crate::server::Server;
    use std::net::TcpStream;
    let server = Server::start();
    let owner = server.owner();
    owner
        .write("name: flood\nversion: \"0.3.10\"\n")
        .expect("namespace");
    // 1,030 connections that never start a handshake, from the owner's own address, kept
    // open (more than --max-connections, 1,024) while the owner works.
    let mut flood: Vec<TcpStream> = Vec::new();
    let (mut failed, mut slow) = (0, Duration::ZERO);
    for round in 0..10 {
        for _ in 0..103 {
            if let Ok(c) = TcpStream::connect(&server.address) {
                flood.push(c);
            }
        }
        let started = Instant::now();
        let done = owner
            .write(&format!("name: flood/s{round}\nversion: \"0.3.10\"\n"))
            .and_then(|_| owner.read(&format!("flood/s{round}"), None));
        slow = slow.max(started.elapsed());
        failed += usize::from(done.is_err());
    }
    assert!(flood.len() >= 1_000, "{} connections opened", flood.len());
    assert_eq!(failed, 0, "the owner's requests failed under the flood");
    assert!(slow < Duration::from_secs(1), "the owner waited {slow:?}");
    // A thousand failed handshakes, a line: the next line, a window later, counts them.
    drop(flood);
    std::thread::sleep(Duration::from_millis(10_500));
    let again: Vec<TcpStream> = (0..17)
        .filter_map(|_| TcpStream::connect(&server.address).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    drop(again);
    let log = server.log();
    let about_closing: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("closed") || l.contains("handshake failed"))
        .collect();
    assert!(
        about_closing.len() <= 4,
        "{} lines:\n{log}",
        about_closing.len()
    );
    let counted = about_closing.iter().find_map(|l| {
        l.split("(and ")
            .nth(1)?
            .split(' ')
            .next()?
            .parse::<usize>()
            .ok()
    });
    assert!(
        counted.is_some_and(|n| n >= 900),
        "the flood is not counted:\n{log}"
    );
}

/// Text with a line break, `---`, a YAML tag or Helm's braces, given wherever a Meshfile or a
/// service manifest puts text into the generated chart (a runtime variable of the pod, a
/// service to wait for, an image pull secret, a `helm_extra_values` value), reaches the
/// rendered manifests as that text: no resource, key or type of its own.
#[test]
fn text_with_yaml_of_its_own_reaches_the_chart_as_text() {
    let (Some(helm), Some(kval)) = (
        crate::tools::tool("bin/helm4"),
        crate::tools::tool("kval/bin/kubernetes-validate"),
    ) else {
        panic!("helm4 and kubernetes-validate are installed by scripts/install-test-tools");
    };
    // As written in the YAML files: double-quoted, `\n` an escape.
    let hostile = r"x\n---\nkind: Secret\nmetadata:\n  name: stolen";
    let unescaped = hostile.replace(r"\n", "\n");
    let dir = crate::workspace().join("examples/hello-world");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("example");
    let manifest = read("service.yaml").replace(
        "    - name: SCONE_LOG\n      value: error\n",
        &format!("    - name: SCONE_LOG\n      value: \"{hostile}\"\n    - name: INIT_CONTAINER1\n      value: \"{hostile}\"\n    - name: INIT_CONTAINER1_PORT\n      value: 80\n"),
    );
    let note = r"!!binary aGk= {{ .Values }}\n---\nkind: Secret";
    let mesh = read("mesh.yaml").replace("value: sconeapps", &format!("value: \"{hostile}\""))
        + &format!(
            "helm_extra_values:\n  pythonservice:\n    nodeSelector:\n      note: \"{note}\"\n"
        );
    let mut t = crate::Test::new()
        .file("mesh.yaml", mesh)
        .file("service.yaml", manifest)
        .file("measurements.yaml", read("measurements.yaml"));
    let out = t.rerun(&["apply", "-n", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let chart = t.dir().join("target/helm").display().to_string();
    let (rendered, manifests) = crate::tools::run(
        &helm,
        &[
            "template",
            "demo",
            &chart,
            "--kube-version",
            "1.35.0",
            "--set",
            "global.casAddr=cas",
        ],
        t.dir(),
    );
    assert!(rendered, "helm template:\n{manifests}");
    let documents: Vec<meshfile_yaml::Node> = manifests
        .split("\n---\n")
        .filter(|d| d.lines().any(|l| l.starts_with("kind: ")))
        .map(|d| meshfile_yaml::parse(d, &Default::default()).expect("a rendered manifest"))
        .collect();
    let kinds: Vec<&str> = documents
        .iter()
        .filter_map(|d| d.scalar_at("kind"))
        .collect();
    assert_eq!(kinds, ["Service", "Deployment"], "{manifests}");
    let pod = ["spec", "template", "spec"]
        .iter()
        .try_fold(&documents[1], |node, key| node.get(key).map(|e| &e.value))
        .expect("the pod spec");
    let at = |path: &[&str]| -> Vec<String> {
        let mut nodes = vec![pod];
        for key in path {
            nodes = nodes
                .into_iter()
                .flat_map(|n| match &n.value {
                    meshfile_yaml::Value::Sequence(items) => items.iter().collect::<Vec<_>>(),
                    _ => vec![n],
                })
                .filter_map(|n| n.get(key).map(|e| &e.value))
                .collect();
        }
        nodes
            .iter()
            .filter_map(|n| n.as_scalar().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        at(&["imagePullSecrets", "name"]),
        std::slice::from_ref(&unescaped)
    );
    assert_eq!(at(&["nodeSelector", "note"]), [note.replace(r"\n", "\n")]);
    assert!(
        at(&["containers", "env", "value"]).contains(&unescaped),
        "SCONE_LOG:\n{manifests}"
    );
    fn scalars(node: &meshfile_yaml::Node, out: &mut Vec<String>) {
        match &node.value {
            meshfile_yaml::Value::Scalar { text, .. } => out.push(text.to_string()),
            meshfile_yaml::Value::Sequence(items) => items.iter().for_each(|n| scalars(n, out)),
            meshfile_yaml::Value::Mapping(entries) => {
                entries.iter().for_each(|e| scalars(&e.value, out))
            }
        }
    }
    let mut waits = Vec::new();
    scalars(&pod.get("initContainers").expect("waits").value, &mut waits);
    assert!(waits.contains(&unescaped), "{manifests}");
    let file = t.dir().join("rendered.yaml");
    std::fs::write(&file, &manifests).expect("rendered");
    let (valid, text) = crate::tools::run(
        &kval,
        &["--strict", "-k", "1.35", &file.display().to_string()],
        t.dir(),
    );
    assert!(valid, "kubernetes-validate:\n{text}");
}

/// A cosign key file whose scrypt parameters ask for much memory or time is refused before
/// any is spent: each hostile variant of a real key file (made by `key generate --cosign`) is
/// refused within a second, with the parameters named, and the process stays small.
#[test]
fn a_cosign_key_file_cannot_ask_for_much_memory_or_time() {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let t = crate::Test::new();
    let out = crate::meshfile(t.dir())
        .args(["key", "generate", "--cosign", "--out", "cosign.key"])
        .env("COSIGN_PASSWORD", "pw")
        .output()
        .expect("run meshfile");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read_to_string(t.dir().join("cosign.key")).expect("key");
    let (label, body) = {
        let mut lines = pem.lines();
        let label = lines.next().expect("begin").to_owned();
        let body: String = lines.take_while(|l| !l.starts_with("-----END")).collect();
        (label, body)
    };
    let sealed: serde_json::Value =
        serde_json::from_slice(&engine.decode(body).expect("base64")).expect("json");
    assert_eq!(
        sealed["kdf"]["params"],
        serde_json::json!({"N": 32768, "r": 8, "p": 1})
    );
    for (n, r, p) in [
        (1u64 << 30, 8, 1),     // 1 TiB of memory
        (1 << 20, 8, 1),        // 1 GiB
        (1 << 17, 8, 16),       // 128 MiB sixteen times over: seconds of work
        (1 << 15, 1 << 20, 1),  // r alone asks for 4 TiB
        (1 << 15, 8, u32::MAX), // p without end
        (32769, 8, 1),          // N no power of two
        (0, 8, 1),
        (1 << 15, 8, 0),
        (u64::MAX, u32::MAX, u32::MAX),
    ] {
        let mut hostile = sealed.clone();
        hostile["kdf"]["params"] = serde_json::json!({"N": n, "r": r, "p": p});
        let text = format!(
            "{label}\n{}\n{}\n",
            engine.encode(hostile.to_string()),
            label.replace("BEGIN", "END")
        );
        t.private_file("hostile.key", text);
        let run = crate::measured(
            crate::meshfile(t.dir())
                .args([
                    "publish",
                    "-n",
                    "--key",
                    "hostile.key",
                    "-f",
                    "service.yaml",
                ])
                .env("COSIGN_PASSWORD", "pw"),
            Duration::from_secs(20),
        );
        let (stderr, peak) = (&run.stderr, run.peak_mib);
        assert!(
            run.status.is_some_and(|code| code != 0),
            "N={n} r={r} p={p}: {stderr}"
        );
        assert!(
            stderr.contains(
                "error[E217]: hostile.key: the key file's scrypt parameters are out of bounds"
            ),
            "N={n} r={r} p={p}: {stderr}"
        );
        assert!(
            run.elapsed < Duration::from_secs(1),
            "N={n} r={r} p={p}: refused after {:?}",
            run.elapsed
        );
        assert!(peak < 64, "N={n} r={r} p={p}: {peak} MiB");
    }
}
