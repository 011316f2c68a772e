//! 1,000 session creations over HTTPS with keep-alive, each durable before it is answered.
//! Target (issue 4): under 2 s on the project's 2-core machine.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use meshfile_cas::client::Client;

fn creations(c: &mut Criterion) {
    let state = tempfile::tempdir().expect("state");
    let dir = state.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        meshfile_cas::server::serve(
            "127.0.0.1:0".parse().expect("addr"),
            None,
            &dir,
            &["127.0.0.1".into()],
            meshfile_cas::server::Bounds::default(),
            |listening| {
                let _ = tx.send(listening.addr);
            },
        )
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server started");
    let read = |name: &str| std::fs::read_to_string(state.path().join(name)).expect("state file");
    let client =
        Client::new(&addr.to_string(), &read("ca.pem"), &read("owner.pem")).expect("client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut round = 0;
    let mut group = c.benchmark_group("cas");
    group.sample_size(10);
    group.bench_function("1000 session creations over HTTPS", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                round += 1;
                let namespace = format!("bench{round}");
                runtime
                    .block_on(client.write(&format!("name: {namespace}\n")))
                    .expect("namespace");
                let start = Instant::now();
                for i in 0..1_000 {
                    let session = format!("name: {namespace}/s{i}\nversion: \"0.3.10\"\nsecrets:\n  - name: pw\n    kind: ascii\n");
                    runtime.block_on(client.write(&session)).expect("create");
                }
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, creations);
criterion_main!(benches);
