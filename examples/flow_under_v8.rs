//! The request flow run many times as a plain program, built for wasm32-wasip1 and run under Node,
//! whose V8 is the engine Envoy embeds: `scripts/profile-v8.sh` profiles it with `node --cpu-prof`,
//! which names the module's functions, so the cost of each part of the flow inside V8 shows
//! (Envoy's own build is stripped, and its JIT frames carry no names).
//!
//! Arguments: requests to run (default 200000), and `denied` for the denied shape.

use std::time::Instant;

use pci_mesh_guard::audit::Auditor;
use pci_mesh_guard::filter::{configure, ConnectionCache, RequestFlow};

#[path = "../benches/support/bench_host.rs"]
mod bench_host;
use bench_host::{policy_json, BenchHost};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let path = if args.iter().any(|a| a == "denied") {
        "/admin"
    } else {
        "/get"
    };
    let json = policy_json().replace(
        r#""identity""#,
        r#""audit":{"sink":"access_log"},"identity""#,
    );
    let auditor = Auditor::new("v8".into(), Some("bench-audit-key-0123456789")).shared();
    let host = BenchHost::new(path);
    let Some(policy) = configure(&host, json.as_bytes(), &auditor) else {
        eprintln!("configuration rejected");
        std::process::exit(2);
    };
    let connections = ConnectionCache::shared();
    let started = Instant::now();
    for _ in 0..n {
        let mut flow = RequestFlow::new(Some(policy.clone()), auditor.clone())
            .with_connections(connections.clone());
        flow.on_request_headers(&host, true);
        flow.on_response_headers(&host, true);
        flow.on_done(&host);
    }
    let ns = started.elapsed().as_nanos() / u128::from(n.max(1));
    println!(
        "{n} requests ({path}): {ns} ns each, {} bytes of events",
        host.logged.get()
    );
}
