//! The request flow's own cost, natively, per request shape: what runs inside the VM, without the
//! host's side of each call (which `scripts/bench-envoy.sh` measures in Envoy). The host here
//! answers from fixed data and keeps nothing, so the figures are the flow's work alone.
//!
//!     cargo bench --bench request_flow
//!
//! The same binary runs under callgrind for a profile of one shape:
//!     valgrind --tool=callgrind target/release/deps/request_flow-* --bench --profile-time 5 'GET allowed'

use criterion::{criterion_group, criterion_main, Criterion};
use pci_mesh_guard::audit::Auditor;
use pci_mesh_guard::filter::{configure, ConnectionCache, RequestFlow};

#[path = "support/bench_host.rs"]
mod bench_host;
use bench_host::{policy_json, BenchHost};

fn request_flow(c: &mut Criterion) {
    let auditor = Auditor::new("bench".into(), Some("bench-audit-key-0123456789")).shared();
    let host = BenchHost::new("/get");
    let policy = configure(&host, policy_json().as_bytes(), &auditor);
    assert!(policy.is_some());
    let connections = ConnectionCache::shared();
    let mut group = c.benchmark_group("request_flow");
    for (name, path) in [("GET allowed", "/get"), ("GET denied", "/admin")] {
        let host = BenchHost::new(path);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut flow = RequestFlow::new(policy.clone(), auditor.clone())
                    .with_connections(connections.clone());
                flow.on_request_headers(&host, true);
                flow.on_response_headers(&host, true);
                flow.on_done(&host);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, request_flow);
criterion_main!(benches);
