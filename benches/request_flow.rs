//! The request flow's own cost, natively, per request shape: what runs inside the VM, without the
//! host's side of each call (which `scripts/bench-envoy.sh` measures in Envoy). The host here
//! answers from fixed data and keeps nothing, so the figures are the flow's work alone.
//!
//!     cargo bench --bench request_flow
//!
//! The same binary runs under callgrind for a profile of one shape:
//!     valgrind --tool=callgrind target/release/deps/request_flow-* --bench --profile-time 5 'GET allowed'

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use pci_mesh_guard::audit::Auditor;
use pci_mesh_guard::filter::{configure, ConnectionCache, RequestFlow};
use pci_mesh_guard::host::{Direction, Host, HostError, LogLevel, Map, Metric};

const CHECKOUT: &str = "spiffe://cluster.local/ns/shop/sa/checkout";

/// A host that answers every call from fixed data.
struct BenchHost {
    request: Vec<(String, Vec<u8>)>,
    response: Vec<(String, Vec<u8>)>,
    /// Bytes logged, so that building the log line cannot be optimised away.
    logged: Cell<usize>,
}

impl BenchHost {
    fn new(path: &str) -> BenchHost {
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect()
        };
        BenchHost {
            request: pairs(&[
                (":method", "GET"),
                (":path", path),
                (":authority", "payments-api"),
                (":scheme", "https"),
                ("user-agent", "checkout/2.3.1"),
                ("accept", "application/json"),
                ("x-request-id", "4f1c2a9e-7d3b-4c55-9e1a-0b2f6c8d9e10"),
                ("x-forwarded-proto", "https"),
                (
                    "x-forwarded-client-cert",
                    "By=spiffe://cluster.local/ns/payments/sa/payments-api;Hash=ab12;URI=spiffe://cluster.local/ns/shop/sa/checkout",
                ),
            ]),
            response: pairs(&[
                (":status", "200"),
                ("content-type", "application/json"),
                ("content-length", "2"),
                ("date", "Wed, 25 Nov 2026 07:36:16 GMT"),
                ("server", "envoy"),
            ]),
            logged: Cell::new(0),
        }
    }
}

impl Host for BenchHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        Ok(Some(match path {
            ["connection", "id"] => 42u64.to_le_bytes().to_vec(),
            ["connection", "mtls"] => vec![1],
            ["connection", "tls_version"] => b"TLSv1.3".to_vec(),
            ["connection", "uri_san_peer_certificate"] => CHECKOUT.as_bytes().to_vec(),
            ["connection", "uri_san_local_certificate"] => {
                b"spiffe://cluster.local/ns/payments/sa/payments-api".to_vec()
            }
            ["source", "address"] => b"10.1.2.3:41234".to_vec(),
            ["connection", "subject_peer_certificate"] => b"CN=checkout,O=shop".to_vec(),
            ["connection", "sha256_peer_certificate_digest"] => b"ab".repeat(32),
            _ => return Ok(None),
        }))
    }
    fn header(&self, map: Map, name: &str) -> Option<Vec<u8>> {
        self.headers(map)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
    fn headers(&self, map: Map) -> Vec<(String, Vec<u8>)> {
        match map {
            Map::RequestHeaders => self.request.clone(),
            Map::ResponseHeaders => self.response.clone(),
            _ => vec![],
        }
    }
    fn set_header(&self, _: Map, _: &str, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn body(&self, _: Direction, _: usize, _: usize) -> Option<Vec<u8>> {
        Some(vec![])
    }
    fn set_body(&self, _: Direction, _: usize, _: usize, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn send_local_reply(&self, _: u32, _: &[(&str, &str)], _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn set_filter_state(&self, _: &str, value: &[u8]) -> Result<(), HostError> {
        self.logged.set(self.logged.get() + value.len());
        Ok(())
    }
    fn reset(&self, _: Direction) {}
    fn increment(&self, _: Metric, _: u64) {}
    fn log(&self, _: LogLevel, message: &str) {
        self.logged.set(self.logged.get() + message.len());
    }
    fn log_level(&self) -> Option<LogLevel> {
        Some(LogLevel::Info)
    }
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_795_567_323_045)
    }
}

/// 20 rules, the caller matching the last allow rule, everything on: as `scripts/bench-envoy.sh`.
fn policy_json() -> String {
    let mut rules = vec![serde_json::json!(
        {"name": "nobody-reaches-admin", "action": "deny", "paths": ["/admin", "/admin/*"]})];
    for i in 0..18 {
        rules.push(
            serde_json::json!({"name": format!("team{i}-may-call-svc{i}"),
            "principals": [format!("spiffe://cluster.local/ns/team{i}/sa/svc{i}")],
            "paths": [format!("/v1/svc{i}"), format!("/v1/svc{i}/*")], "methods": ["GET", "POST"]}),
        );
    }
    rules.push(
        serde_json::json!({"name": "checkout-may-call", "principals": [CHECKOUT],
        "paths": ["/get", "/post", "/orders"], "methods": ["GET", "POST"]}),
    );
    serde_json::json!({"identity": {"trust_domains": ["cluster.local"]},
        "authorization": {"rules": rules}})
    .to_string()
}

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
