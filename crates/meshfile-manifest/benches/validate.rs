//! Validating generated Meshfiles of growing size: the cost must grow linearly.
//! Target (issue 2): a 10,000-service Meshfile validates in under 50 ms.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// A Meshfile with `n` services; with `env_per_service`, each also gets its own env section.
pub fn generated_mesh(n: usize, env_per_service: bool) -> String {
    let mut text = String::from(
        "apiVersion: scone/5.8\nkind: mesh\ncas:\n  - name: cas\n    alias: [\"image\", \"security\", \"access\", \"attestation\"]\n    cas_url: cas.example.com\npolicy:\n  namespace: bench-ns\n  tolerate: \"outdated-tcb, hyperthreading\"\nenv:\n  - service: global\n    env:\n      - name: imagePullSecrets\n        value: sconeapps\n      - name: APP_SERVICE_PORT\n        value: 443\n",
    );
    for i in (0..n).filter(|_| env_per_service) {
        text.push_str(&format!(
            "  - service: svc-{i}\n    env:\n      - name: DB_HOST\n        value: \"db-{i}.example\"\n"
        ));
    }
    text.push_str("services:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  - name: svc-{i}\n    image: registry.example.com/app/svc-{i}:1.{i}\n"
        ));
    }
    text
}

fn validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    group.sample_size(20);
    for (shape, env) in [("services", false), ("services+env", true)] {
        for n in [100, 1_000, 10_000] {
            let text = generated_mesh(n, env);
            let loaded = meshfile_manifest::load(text.as_bytes());
            assert!(!loaded.has_errors(), "{:?}", &loaded.diagnostics[..1]);
            group.throughput(Throughput::Bytes(text.len() as u64));
            group.bench_with_input(BenchmarkId::new(shape, n), &text, |b, text| {
                b.iter(|| meshfile_manifest::load(text.as_bytes()))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, validate);
criterion_main!(benches);
