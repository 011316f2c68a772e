//! `cas serve` and the client as a hostile client and a careless operator meet them: silent and
//! half-sent connections, requests no HTTP client writes, damaged state, a squatted namespace,
//! an answer lost on the way, a CAS that never answers, the wrong trust.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::Test;
use crate::mesh::{args, example_for, trust_files};
use crate::proxy::{Behaviour, Proxy};
use crate::raw;
use crate::server::Server;

/// A TLS connection to `server` with `identity`, its handshake done.
fn tls_as(server: &Server, identity: &str) -> raw::Tls {
    raw::connect(&server.address, &server.file("ca.pem"), identity).expect("TLS connection")
}

/// One create and one read by the owner, each timed.
fn owner_round(server: &Server, name: &str) -> (Duration, Duration) {
    let owner = server.owner();
    let start = Instant::now();
    owner
        .write(&format!("name: {name}\nversion: \"0.3.10\"\n"))
        .expect("create");
    let created = start.elapsed();
    let start = Instant::now();
    owner.read(name, None).expect("read");
    (created, start.elapsed())
}

#[test]
fn silent_and_half_sent_connections_delay_no_one_and_are_closed() {
    let server = Server::start_with(
        tempfile::tempdir().expect("state"),
        &["--idle-timeout", "1"],
    );
    // Connections that never start a handshake, one idle after its handshake, one holding
    // half a request head.
    let silent: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(&server.address).expect("connect"))
        .collect();
    let owner_pem = server.file("owner.pem");
    let mut idle = tls_as(&server, &owner_pem);
    let mut half = tls_as(&server, &owner_pem);
    half.write_all(b"GET /v1/version HTTP/1.1\r\nHost: cas\r\nX-Slow: ")
        .expect("half a head");
    half.flush().expect("flush");
    let (created, read) = owner_round(&server, "quick");
    assert!(
        created < Duration::from_secs(1) && read < Duration::from_secs(1),
        "with 50 silent connections open: create {created:?}, read {read:?}"
    );
    assert!(
        raw::closed_within(&mut idle, Duration::from_secs(5)),
        "an idle connection is closed after --idle-timeout"
    );
    assert!(
        raw::closed_within(&mut half, Duration::from_secs(5)),
        "a connection that does not finish its request head is closed"
    );
    drop(silent);
}

#[test]
fn connections_are_capped_per_identity_and_in_all_and_the_log_says_so() {
    let server = Server::start_with(
        tempfile::tempdir().expect("state"),
        &[
            "--max-connections-per-identity",
            "2",
            "--max-connections",
            "5",
        ],
    );
    let stranger = meshfile_cas::pki::client_identity("stranger", None).expect("identity");
    // Three connections of one identity: one is closed. Which one depends on the order in
    // which the server finishes their handshakes, not on the order they were opened in.
    let mut three: Vec<raw::Tls> = (0..3).map(|_| tls_as(&server, &stranger)).collect();
    let mut closed = std::collections::BTreeSet::new();
    let started = std::time::Instant::now();
    while closed.is_empty() && started.elapsed() < Duration::from_secs(5) {
        for (i, connection) in three.iter_mut().enumerate() {
            if raw::closed_within(connection, Duration::from_millis(50)) {
                closed.insert(i);
            }
        }
    }
    assert_eq!(
        closed.len(),
        1,
        "one of three connections of one identity is closed"
    );
    let log = server.log();
    assert!(
        log.contains(
            "has 2 connections open, the most one identity may (--max-connections-per-identity)"
        ),
        "{log}"
    );
    // Another identity is still served.
    server.owner().version().expect("the owner is served");
    // Fill the server up to its cap with clients' connections (silent peers that never
    // finish a handshake take no place): the next client is closed at once.
    let owner_pem = server.file("owner.pem");
    let other = meshfile_cas::pki::client_identity("other", None).expect("identity");
    let _full: Vec<raw::Tls> = [&owner_pem, &owner_pem, &other]
        .into_iter()
        .map(|identity| tls_as(&server, identity))
        .collect();
    let _silent: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(&server.address).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let late = meshfile_cas::pki::client_identity("late", None).expect("identity");
    let mut over = tls_as(&server, &late);
    assert!(
        raw::closed_within(&mut over, Duration::from_secs(5)),
        "a connection over --max-connections is closed"
    );
    let log = server.log();
    assert!(
        log.contains("connections are open, the most this server keeps (--max-connections)"),
        "{log}"
    );
}

#[test]
fn every_error_answer_is_json_and_logged_paths_cannot_forge_lines() {
    let server = Server::start();
    let owner_pem = server.file("owner.pem");
    let ask = |request: &[u8]| {
        let mut tls = tls_as(&server, &owner_pem);
        raw::exchange(&mut tls, request).expect("an answer")
    };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "an unknown method",
            b"DELETE /v1/sessions/x HTTP/1.1\r\nHost: cas\r\nConnection: close\r\n\r\n".to_vec(),
            405,
        ),
        (
            "a long target",
            format!(
                "GET /v1/sessions/{} HTTP/1.1\r\nHost: cas\r\nConnection: close\r\n\r\n",
                "a".repeat(9000)
            )
            .into_bytes(),
            414,
        ),
        (
            "large headers",
            format!(
                "GET /v1/version HTTP/1.1\r\nHost: cas\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
                "b".repeat(40 * 1024)
            )
            .into_bytes(),
            431,
        ),
        (
            "a body that is not UTF-8",
            b"POST /v1/sessions HTTP/1.1\r\nHost: cas\r\nContent-Length: 2\r\nConnection: close\r\n\r\n\xff\xfe".to_vec(),
            400,
        ),
        (
            "a path that is not UTF-8",
            b"GET /v1/sessions/%FF%FE HTTP/1.1\r\nHost: cas\r\nConnection: close\r\n\r\n".to_vec(),
            400,
        ),
        (
            "a bad query",
            b"GET /v1/sessions/x?hash=a&hash=b HTTP/1.1\r\nHost: cas\r\nConnection: close\r\n\r\n".to_vec(),
            400,
        ),
        (
            "an unknown path",
            b"GET /nowhere HTTP/1.1\r\nHost: cas\r\nConnection: close\r\n\r\n".to_vec(),
            404,
        ),
    ];
    for (what, request, status) in cases {
        let answer = ask(&request);
        assert_eq!(answer.status, status, "{what}: {answer:?}");
        let body = answer.json();
        assert!(
            body["code"].is_string() && body["msg"].is_array(),
            "{what}: {body}"
        );
    }
    // A body announced over the limit is refused at once, not after the request timeout.
    let start = Instant::now();
    let answer = ask(
        b"POST /v1/sessions HTTP/1.1\r\nHost: cas\r\nContent-Length: 100000000\r\n\r\nname: x\n",
    );
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.json()["code"], "too_large");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // A newline or NUL in a path is logged escaped: no forged line.
    let answer = ask(
        b"GET /v1/sessions/x%0aFORGED-LINE%00 HTTP/1.1\r\nHost: cas\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.status >= 400, "{answer:?}");
    answer.json();
    std::thread::sleep(Duration::from_millis(100));
    let log = server.log();
    assert!(log.contains("FORGED-LINE"), "the request is logged: {log}");
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED-LINE")) && !log.contains('\0'),
        "{log}"
    );
}

#[test]
fn existence_and_active_hashes_are_told_only_to_who_may_know() {
    let server = Server::start();
    let owner = server.owner();
    owner.write(crate::server::NAMESPACE).expect("namespace");
    owner
        .write("name: team/app\nversion: \"0.3.10\"\n")
        .expect("app");
    let (stranger, _) = server.stranger();
    let answer = |name: &str| match stranger.read(name, None) {
        Err(e) => (e.status(), e.to_string().replace(name, "NAME")),
        Ok(read) => panic!("a stranger read {name}: {read:?}"),
    };
    assert_eq!(
        answer("team/app"),
        answer("team/missing"),
        "an existing and a missing session look alike to a stranger"
    );
    match stranger.write("name: team/app\nversion: \"0.3.10\"\n") {
        Err(e) => assert!(
            e.active_hash().is_none() && e.status() != 409,
            "a conflict would tell the active hash: {e}"
        ),
        Ok(w) => panic!("a stranger wrote team/app: {w:?}"),
    }
}

/// Damages copies of `state` as a disk or a careless operator does (truncated, bytes flipped
/// or overwritten, identity files deleted) and checks that each copy either is refused with a
/// clear error, its identity files untouched, or starts as a verified store that still holds
/// every acknowledged version (a sample of at most 300 of them): never a silent change.
pub fn damaged_copies_end_clearly(state: &Path, acknowledged: &[(String, String)]) {
    let store = Path::new("store/sessions.redb");
    let size = std::fs::metadata(state.join(store)).expect("store").len();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    type Damage = Box<dyn Fn(&Path)>;
    let mut damages: Vec<(String, Damage)> = vec![
        (
            "store truncated to 0 bytes".into(),
            Box::new(move |d: &Path| truncate(&d.join(store), 0)),
        ),
        (
            "store truncated to half".into(),
            Box::new(move |d: &Path| truncate(&d.join(store), size / 2)),
        ),
    ];
    for round in 0..4 {
        let offsets: Vec<u64> = (0..8).map(|_| next() % size).collect();
        damages.push((
            format!("8 bytes flipped (round {round}, at {offsets:?})"),
            Box::new(move |d: &Path| flip(&d.join(store), &offsets)),
        ));
    }
    for round in 0..2 {
        let at = next() % size.saturating_sub(4096).max(1);
        let bytes: Vec<u8> = (0..4096).map(|_| next() as u8).collect();
        damages.push((
            format!("4 KiB of noise at {at} (round {round})"),
            Box::new(move |d: &Path| overwrite(&d.join(store), at, &bytes)),
        ));
    }
    for file in ["server.pem", "owner.pem", "ca-key.pem"] {
        damages.push((
            format!("{file} deleted"),
            Box::new(move |d: &Path| std::fs::remove_file(d.join(file)).expect("remove")),
        ));
    }
    let identity = [
        "ca.pem",
        "ca-key.pem",
        "server.pem",
        "server-key.pem",
        "owner.pem",
    ];
    let sample: Vec<&(String, String)> = acknowledged
        .iter()
        .step_by(acknowledged.len().div_ceil(300).max(1))
        .chain(acknowledged.last())
        .collect();
    let (ca, owner) = (
        std::fs::read_to_string(state.join("ca.pem")).expect("CA"),
        std::fs::read_to_string(state.join("owner.pem")).expect("owner"),
    );
    for (what, damage) in &damages {
        let copy = tempfile::tempdir().expect("copy");
        copy_tree(state, copy.path());
        damage(copy.path());
        let before: Vec<Option<Vec<u8>>> = identity
            .iter()
            .map(|f| std::fs::read(copy.path().join(f)).ok())
            .collect();
        let check = crate::meshfile(copy.path())
            .args(["cas", "check", "--state"])
            .arg(copy.path())
            .output()
            .expect("cas check");
        let check_text = String::from_utf8_lossy(&check.stderr).into_owned()
            + &String::from_utf8_lossy(&check.stdout);
        assert!(!check_text.contains("panicked"), "{what}: {check_text}");
        match Server::try_start(copy, &[]) {
            Err(refused) => {
                assert_ne!(refused.status, 0, "{what}");
                assert!(
                    refused.stderr.contains("error[E2")
                        && refused
                            .stderr
                            .contains(&refused.state.path().display().to_string()),
                    "{what}: a refusal names the state and what to do: {}",
                    refused.stderr
                );
                let store_damaged = !what.ends_with("deleted");
                assert!(
                    !store_damaged || !check.status.success(),
                    "{what}: cas check agrees with the refusal: {check_text}"
                );
                let after: Vec<Option<Vec<u8>>> = identity
                    .iter()
                    .map(|f| std::fs::read(refused.state.path().join(f)).ok())
                    .collect();
                assert!(before == after, "{what}: identity files were changed");
            }
            Ok(server) => {
                assert!(
                    check.status.success(),
                    "{what}: served although cas check found damage: {check_text}"
                );
                // The owner's own copy of its key: the state's may be the file deleted.
                let owner =
                    crate::client::Client::new(&server.address, &ca, &owner).expect("client");
                for (name, hash) in &sample {
                    let read = owner
                        .read(name, Some(hash))
                        .unwrap_or_else(|e| panic!("{what}: {name} {hash} lost: {e}"));
                    assert_eq!(&read.hash, hash, "{what}");
                }
            }
        }
    }
}

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .expect("truncate");
}

fn flip(path: &Path, offsets: &[u64]) {
    let mut bytes = std::fs::read(path).expect("read");
    for &at in offsets {
        bytes[at as usize] ^= 0x5a;
    }
    std::fs::write(path, bytes).expect("write");
}

fn overwrite(path: &Path, at: u64, noise: &[u8]) {
    let mut bytes = std::fs::read(path).expect("read");
    let at = at as usize;
    let end = (at + noise.len()).min(bytes.len());
    bytes[at..end].copy_from_slice(&noise[..end - at]);
    std::fs::write(path, bytes).expect("write");
}

/// Copies a state directory (files and one level of directories), modes kept.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("state") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("dir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn damaged_state_is_refused_clearly_or_served_whole() {
    let server = Server::start();
    let owner = server.owner();
    owner
        .write("name: team\nversion: \"0.3.10\"\n")
        .expect("namespace");
    let mut acknowledged = Vec::new();
    for i in 0..40 {
        let name = format!("team/s{i}");
        let written = owner
            .write(&format!(
                "name: {name}\nversion: \"0.3.10\"\nsecrets:\n  - name: k\n    kind: ascii\n"
            ))
            .expect("write");
        acknowledged.push((name, written.hash));
    }
    let state = server.kill();
    damaged_copies_end_clearly(state.path(), &acknowledged);
}

#[test]
fn a_namespace_another_identity_created_stops_plan_and_apply_before_anything_is_written() {
    let server = Server::start();
    let (squatter, squatter_hash) = server.stranger();
    squatter
        .write("name: flask-redis-demo\nversion: \"0.3.10\"\naccess_policy:\n  read: [ANY]\n  update: [ANY]\n  create_sessions: [ANY]\n")
        .expect("the squatter creates the namespace first");
    let mut t = Test::new();
    example_for(&t, &server);
    for verb in ["plan", "apply"] {
        let out = t.rerun(&args(verb, &[]));
        assert_eq!(out.status, 1, "{verb}: {}", out.stderr);
        assert!(
            out.stderr.contains(&squatter_hash),
            "{verb} names the creator's key hash: {}",
            out.stderr
        );
    }
    let namespace = squatter.read("flask-redis-demo", None).expect("namespace");
    assert!(
        namespace.predecessor.is_none(),
        "the namespace was not updated"
    );
    for service in ["flask", "redis"] {
        let name = format!("flask-redis-demo/{service}");
        assert!(
            squatter.read(&name, None).is_err(),
            "{name} was not written"
        );
    }
}

/// `apply` through a proxy that loses the answer to the one large request, flask's session
/// (made large here): the proxy lost it, and the apply succeeded all the same.
fn apply_losing_the_large_answer(t: &mut Test, server: &Server) -> crate::Output {
    let proxy = Proxy::start(server.address.clone(), Behaviour::LoseOneLargeAnswer);
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    let mesh = mesh
        .replace(&server.address, &proxy.address)
        .replace("\"10.96.0.10\"", &format!("\"{}\"", "1".repeat(20_000)));
    std::fs::write(t.dir().join("mesh.yaml"), mesh).expect("mesh");
    let out = t.rerun(&args("apply", &["-v"]));
    assert!(
        proxy.lost.load(Ordering::SeqCst),
        "the proxy lost an answer: {}",
        out.stderr
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    out
}

#[test]
fn a_write_whose_answer_was_lost_is_retried_and_counted_as_done() {
    let server = Server::start();
    let mut t = Test::new();
    example_for(&t, &server);
    // flask's session carries a large value: its create is the request whose answer is lost.
    apply_losing_the_large_answer(&mut t, &server);
    let flask = server
        .owner()
        .read("flask-redis-demo/flask", None)
        .expect("flask");
    assert!(
        flask.predecessor.is_none(),
        "written once, not twice: {flask:?}"
    );
    let out = t.rerun(&args("plan", &[]));
    assert_eq!(out.status, 0, "{}", out.stderr);
}

#[test]
fn a_cas_that_never_answers_or_is_not_trusted_stops_the_run_at_once() {
    let server = Server::start();
    let mut t = Test::new();
    example_for(&t, &server);
    // Accepts and never answers.
    let mute = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mute_address = mute.local_addr().expect("address").to_string();
    let held = std::thread::spawn(move || {
        mute.incoming()
            .take(4)
            .filter_map(Result::ok)
            .collect::<Vec<_>>()
    });
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    std::fs::write(
        t.dir().join("mesh.yaml"),
        mesh.replace(&server.address, &mute_address),
    )
    .expect("mesh");
    let start = Instant::now();
    let out = t.rerun(&args("plan", &["--cas-timeout", "2"]));
    assert_eq!(out.status, 3, "{}", out.stderr);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "gave up after {:?}",
        start.elapsed()
    );
    assert!(out.stderr.contains("2 s"), "{}", out.stderr);
    drop(held);

    // The wrong CA: no retries, no "check that the CAS runs".
    std::fs::write(t.dir().join("mesh.yaml"), mesh).expect("mesh");
    let other = Server::start();
    std::fs::write(t.dir().join("ca.pem"), other.file("ca.pem")).expect("other CA");
    let start = Instant::now();
    let out = t.rerun(&args("plan", &[]));
    assert_eq!(out.status, 3, "{}", out.stderr);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(
        !out.stderr.contains("runs") && out.stderr.contains("certificate"),
        "{}",
        out.stderr
    );
    trust_files(&t, &server);
    let out = t.rerun(&args("plan", &["--cas-pin", "zz"]));
    assert_eq!(
        out.status, 2,
        "a malformed pin is a usage error: {}",
        out.stderr
    );
}

/// A session of 8 levels of anchors, 9 references each: 9^8 (43 million) nodes once expanded.
fn alias_bomb(i: usize) -> String {
    let mut yaml =
        format!("name: bomb{i}\nversion: \"0.3.10\"\nl0: &l0 [x, x, x, x, x, x, x, x, x]\n");
    for level in 1..8 {
        let p = level - 1;
        yaml.push_str(&format!(
            "l{level}: &l{level} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]\n"
        ));
    }
    yaml
}

fn post(body: &str) -> Vec<u8> {
    format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: cas\r\nContent-Type: application/yaml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The server process's resident memory now, in bytes.
fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// What `scripts/hostile-load` runs and prints: for `HOSTILE_SECONDS` (default 20), 8 alias
/// bombs, 8 requests for oversized secrets, 50 connections that never handshake and 300 that
/// send their request head a byte every 2 s (6 identities), each reconnecting when refused or
/// closed; meanwhile the owner creates and reads a session every 200 ms. Each of its requests
/// is answered within 1 s, the server's resident memory stays under 512 MiB, and the server
/// is up afterwards. Loopback only; every loop ends at the deadline.
#[test]
#[ignore = "hostile-load suite: `scripts/hostile-load` (run by `.ci/run`) prints its figures"]
fn under_hostile_load_a_well_behaved_client_is_served_within_a_second() {
    const RSS_BOUND: u64 = 512 << 20;
    let seconds: u64 = std::env::var("HOSTILE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
        .clamp(5, 300);
    let server = Arc::new(Server::start());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let ca = server.file("ca.pem");
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let attempts = Arc::new(AtomicUsize::new(0));
    let (silent_opened, slow_opened) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut attackers = Vec::new();

    // 8 alias bombs, 8 oversized secrets, 8 requests for 20,000 secrets of the largest size
    // (1.3 GB from under 1 MB), 8 long values aliased 400 times (192 MB stored from 480 KB),
    // each thread its own identity.
    let many_secrets = {
        let mut body = String::from("name: many\nversion: \"0.3.10\"\nsecrets:\n");
        for i in 0..20_000 {
            body.push_str(&format!("- {{name: s{i}, kind: ascii, size: 65536}}\n"));
        }
        body
    };
    let amplified = format!(
        "name: amplified\nversion: \"0.3.10\"\nservices:\n- name: a\n  environment: {{A: &v {}}}\n  command: [{}]\n",
        "x".repeat(480 * 1024),
        vec!["*v"; 400].join(", ")
    );
    for i in 0..32 {
        let body = match i / 8 {
            0 => alias_bomb(i),
            1 => format!(
                "name: big{i}\nversion: \"0.3.10\"\nsecrets:\n  - name: s\n    kind: ascii\n    size: 100000000000\n"
            ),
            2 => many_secrets.clone(),
            _ => amplified.clone(),
        };
        let (address, ca, stop, refused, attempts) = (
            server.address.clone(),
            ca.clone(),
            stop.clone(),
            refused.clone(),
            attempts.clone(),
        );
        attackers.push(std::thread::spawn(move || {
            let identity = meshfile_cas::pki::client_identity("attacker", None).expect("identity");
            while !stop.load(Ordering::Relaxed) {
                attempts.fetch_add(1, Ordering::Relaxed);
                let answer = raw::connect(&address, &ca, &identity)
                    .and_then(|mut tls| raw::exchange(&mut tls, &post(&body)));
                match answer {
                    Ok(a) if a.status >= 400 => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(a) => panic!("the server accepted an attack: {a:?}"),
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }));
    }
    // 1,030 connections that never start their handshake (more than --max-connections, 1,024),
    // reopened when closed.
    {
        let (address, stop, opened) = (server.address.clone(), stop.clone(), silent_opened.clone());
        attackers.push(std::thread::spawn(move || {
            let mut silent: Vec<TcpStream> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                silent.retain(|s| {
                    s.set_nonblocking(true).ok();
                    let mut buf = [0u8; 1];
                    matches!((&*s).read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                });
                while silent.len() < 1_030 {
                    match TcpStream::connect(&address) {
                        Ok(s) => {
                            opened.fetch_add(1, Ordering::Relaxed);
                            silent.push(s)
                        }
                        Err(_) => break,
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }));
    }
    // 300 connections sending a request head one byte every 2 s, 50 per identity.
    let identities: Vec<String> = (0..6)
        .map(|_| meshfile_cas::pki::client_identity("slow", None).expect("identity"))
        .collect();
    for i in 0..300 {
        let (address, ca, stop, identity, opened) = (
            server.address.clone(),
            ca.clone(),
            stop.clone(),
            identities[i % 6].clone(),
            slow_opened.clone(),
        );
        attackers.push(std::thread::spawn(move || {
            let head = b"GET /v1/version HTTP/1.1\r\nHost: cas\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa";
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut tls) = raw::connect(&address, &ca, &identity) else {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                };
                opened.fetch_add(1, Ordering::Relaxed);
                for byte in head {
                    if stop.load(Ordering::Relaxed)
                        || tls.write_all(&[*byte]).and_then(|()| tls.flush()).is_err()
                    {
                        break;
                    }
                    for _ in 0..20 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        }));
    }
    // The server's memory, sampled.
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (pid, stop, peak) = (server.pid(), stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_of(pid) as usize, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    // Let the attack build up, then the well-behaved client, until the deadline.
    std::thread::sleep(Duration::from_secs(2));
    let (mut creates, mut reads) = (Vec::new(), Vec::new());
    let mut round = 0;
    while Instant::now() < deadline {
        let (created, read) = owner_round(&server, &format!("ok{round}"));
        creates.push(created);
        reads.push(read);
        round += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.join().expect("attacker");
    }
    sampler.join().expect("sampler");
    let up = server.owner().version().is_ok();
    let peak = peak.load(Ordering::Relaxed) as u64;
    creates.sort();
    reads.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "hostile load for {seconds} s: 8 alias bombs, 8 oversized secrets, 8 many-secrets requests and 8 stored amplifications ({} requests, {} refused), 1,030 silent connections without a certificate ({} opened), 300 slow-header connections ({} handshaken)",
        attempts.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        silent_opened.load(Ordering::Relaxed),
        slow_opened.load(Ordering::Relaxed)
    );
    println!(
        "well-behaved client, {round} rounds: create median {:.1} ms, p99 {:.1} ms, max {:.1} ms; read median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&creates, 0.5)),
        ms(percentile(&creates, 0.99)),
        ms(creates[creates.len() - 1]),
        ms(percentile(&reads, 0.5)),
        ms(percentile(&reads, 0.99)),
        ms(reads[reads.len() - 1]),
    );
    println!(
        "server: peak resident memory {:.0} MiB (bound {} MiB), up afterwards: {up}",
        peak as f64 / (1024.0 * 1024.0),
        RSS_BOUND >> 20
    );
    assert!(
        round >= 10,
        "the well-behaved client got through {round} rounds"
    );
    assert!(
        creates[creates.len() - 1] < Duration::from_secs(1)
            && reads[reads.len() - 1] < Duration::from_secs(1),
        "every request of the well-behaved client is answered within 1 s"
    );
    assert!(peak < RSS_BOUND, "peak RSS {peak} bytes");
    assert!(up, "the server is up afterwards");
}

#[test]
fn an_update_whose_answer_was_lost_is_retried_and_counted_as_done() {
    let server = Server::start();
    let mut t = Test::new();
    example_for(&t, &server);
    let out = t.rerun(&args("apply", &[]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    let before = server
        .owner()
        .read("flask-redis-demo/flask", None)
        .expect("flask")
        .hash;
    // The update of flask carries a large value: its request is the one whose answer is lost.
    let out = apply_losing_the_large_answer(&mut t, &server);
    assert!(out.stderr.contains("1 updated"), "{}", out.stderr);
    // One new version, whose predecessor is the one before: not two, not a conflict.
    let flask = server
        .owner()
        .read("flask-redis-demo/flask", None)
        .expect("flask");
    assert_eq!(
        flask.predecessor.as_deref(),
        Some(before.as_str()),
        "{flask:?}"
    );
    let out = t.rerun(&args("plan", &[]));
    assert!(
        out.stderr.contains("0 to create, 0 to update"),
        "{}",
        out.stderr
    );
}
