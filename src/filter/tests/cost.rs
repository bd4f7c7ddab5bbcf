//! What a request costs in host calls and in bytes copied across the VM boundary, counted with the
//! fake host per request shape. Each host call that returns a value also calls back into the
//! module's allocator, and `get_property` builds an expression context on the host per call, so
//! these counts are the part of the filter's cost that no native profile shows.
//!
//! `request_costs_stay_within_budget` fails when a change adds host calls or copies to the plain
//! allowed GET; `scripts/bench-envoy.sh` prints the table (`print_request_costs`).

use std::collections::BTreeMap;

use super::*;

/// Everything on, as `scripts/bench-envoy.sh` runs it: 20 rules, the caller matching the last
/// allow rule, all four redaction places, one audit event per request through `sink`.
pub(crate) fn bench_policy(sink: &str) -> String {
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
    serde_json::json!({
        "identity": {"trust_domains": ["cluster.local"]},
        "authorization": {"rules": rules},
        "audit": {"sink": sink},
    })
    .to_string()
}

/// The headers a sidecar's filter sees on an inbound request (as Envoy and a client set them).
fn inbound_request(host: &mut FakeHost, method: &str, path: &str) {
    host.request(method, path);
    for (k, v) in [
        (":scheme", "https"),
        ("user-agent", "checkout/2.3.1"),
        ("accept", "application/json"),
        ("x-forwarded-proto", "https"),
        (
            "x-forwarded-client-cert",
            "By=spiffe://cluster.local/ns/payments/sa/payments-api;Hash=ab12;URI=spiffe://cluster.local/ns/shop/sa/checkout",
        ),
    ] {
        host.put(Map::RequestHeaders, k, v);
    }
}

fn response_headers(host: &FakeHost, length: usize) {
    for (k, v) in [
        (":status", "200".to_string()),
        ("content-type", "application/json".into()),
        ("content-length", length.to_string()),
        ("date", "Wed, 25 Nov 2026 07:36:16 GMT".into()),
        ("server", "envoy".into()),
        ("x-envoy-upstream-service-time", "1".into()),
    ] {
        host.put(Map::ResponseHeaders, k, &v);
    }
}

/// Host calls by kind, their total, and the bytes they carried.
struct Cost {
    calls: BTreeMap<&'static str, u64>,
    bytes: u64,
}

impl Cost {
    fn total(&self) -> u64 {
        self.calls.values().sum()
    }
}

/// Runs one request of `shape` through a configured flow and counts its host calls.
fn measure(shape: &str) -> Cost {
    let config_host = FakeHost::default();
    let shared = auditor();
    let sink = if shape.ends_with("log sink") {
        "log"
    } else {
        "access_log"
    };
    let policy = configure(&config_host, bench_policy(sink).as_bytes(), &shared);
    assert!(policy.is_some());
    let mut host = FakeHost::mtls(CHECKOUT);
    host.properties
        .insert("connection.id".into(), 42u64.to_le_bytes().to_vec());
    let connections = ConnectionCache::shared();
    // Keep-alive, the mesh norm: the connection's first request has been served already.
    if shape != "GET allowed, new connection" {
        let mut first =
            RequestFlow::new(policy.clone(), shared.clone()).with_connections(connections.clone());
        inbound_request(&mut host, "GET", "/get");
        first.on_request_headers(&host, true);
        first.on_done(&host);
        host.logs.borrow_mut().clear();
        host.calls.borrow_mut().clear();
        host.bytes.set(0);
    }
    let body = |size: usize| -> Vec<u8> {
        let record = br#"{"order_id":100000123,"amount":{"value":129900,"currency":"EUR"},"email":"user@example.com","created":"2026-11-25T07:36:16Z"},"#;
        let mut b: Vec<u8> = record.iter().copied().cycle().take(size).collect();
        b[100..116].copy_from_slice(b"4111111111111111");
        b
    };
    let mut flow = RequestFlow::new(policy, shared).with_connections(connections);
    match shape {
        "GET allowed" | "GET allowed, new connection" | "GET allowed, log sink" | "GET denied" => {
            inbound_request(&mut host, "GET", "/get");
            if shape == "GET denied" {
                host.put(Map::RequestHeaders, ":path", "/admin");
            }
            if flow.on_request_headers(&host, true) == Verdict::Continue {
                response_headers(&host, 2);
                flow.on_response_headers(&host, true);
            }
        }
        "POST 16 KiB, 4 chunks" => {
            inbound_request(&mut host, "POST", "/post");
            assert_eq!(flow.on_request_headers(&host, false), Verdict::Continue);
            let b = body(16 << 10);
            let chunks: Vec<&[u8]> = b.chunks(4 << 10).collect();
            stream_body(&host, &mut flow, Direction::Request, &chunks, false);
            response_headers(&host, 11);
            flow.on_response_headers(&host, true);
        }
        "1 MiB response, 16 chunks" => {
            inbound_request(&mut host, "GET", "/orders");
            assert_eq!(flow.on_request_headers(&host, true), Verdict::Continue);
            response_headers(&host, 1 << 20);
            flow.on_response_headers(&host, false);
            let b = body(1 << 20);
            let chunks: Vec<&[u8]> = b.chunks(64 << 10).collect();
            stream_body(&host, &mut flow, Direction::Response, &chunks, false);
        }
        _ => unreachable!("unknown shape {shape}"),
    }
    flow.on_done(&host);
    let events = host.events().len() + host.state.borrow().len();
    assert_eq!(events, 1, "{shape}: one access event");
    let calls = host.calls.borrow().clone();
    Cost {
        calls,
        bytes: host.bytes.get(),
    }
}

const SHAPES: [&str; 6] = [
    "GET allowed, new connection",
    "GET allowed",
    "GET allowed, log sink",
    "GET denied",
    "POST 16 KiB, 4 chunks",
    "1 MiB response, 16 chunks",
];

#[test]
fn print_request_costs() {
    println!("| request shape | host calls | bytes across the boundary | calls by kind |");
    println!("|---|---:|---:|---|");
    for shape in SHAPES {
        let c = measure(shape);
        let kinds: Vec<String> = c.calls.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!(
            "| {shape} | {} | {} | {} |",
            c.total(),
            c.bytes,
            kinds.join(", ")
        );
    }
}

/// The budgets of the plain allowed GET on a keep-alive connection, per sink, and of a streamed
/// body (each byte read once; written back only in chunks that changed or held a tail): lower
/// them when a change makes requests cheaper.
const BUDGETS: [(&str, u64, u64); 4] = [
    ("GET allowed", 9, 1_310),
    ("GET allowed, log sink", 11, 1_300),
    ("POST 16 KiB, 4 chunks", 15, 21_900),
    ("1 MiB response, 16 chunks", 32, 1_640_000),
];

#[test]
fn request_costs_stay_within_budget() {
    for (shape, calls, bytes) in BUDGETS {
        let c = measure(shape);
        assert!(
            c.total() <= calls && c.bytes <= bytes,
            "{shape} now takes {} host calls and {} bytes (budget {calls} and {bytes}): {:?}",
            c.total(),
            c.bytes,
            c.calls
        );
    }
}
