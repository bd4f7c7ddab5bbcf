//! A host answering the request flow from fixed data, and the policy the benchmarks run: shared by
//! `benches/request_flow.rs` (natively) and `examples/flow_under_v8.rs` (the same flow in V8).

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pci_mesh_guard::host::{
    Direction, Gauge, Headers, Host, HostError, LogLevel, Map, Metric, Property,
};

pub const CHECKOUT: &str = "spiffe://cluster.local/ns/shop/sa/checkout";

/// A host that answers every call from fixed data.
pub struct BenchHost {
    request: Vec<(String, Vec<u8>)>,
    response: Vec<(String, Vec<u8>)>,
    /// Bytes logged, so that building the log line cannot be optimised away.
    pub logged: Cell<usize>,
}

impl BenchHost {
    pub fn new(path: &str) -> BenchHost {
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
    fn property(&self, property: Property) -> Result<Option<Vec<u8>>, HostError> {
        Ok(Some(match property {
            // A sidecar: no waypoint filter state.
            Property::IstioPeerPrincipal | Property::IstioLocalPrincipal => return Ok(None),
            Property::ConnectionId => 42u64.to_le_bytes().to_vec(),
            Property::Mtls => vec![1],
            Property::TlsVersion => b"TLSv1.3".to_vec(),
            Property::PeerUriSan => CHECKOUT.as_bytes().to_vec(),
            Property::LocalUriSan => b"spiffe://cluster.local/ns/payments/sa/payments-api".to_vec(),
            Property::SourceAddress => b"10.1.2.3:41234".to_vec(),
            Property::PeerSubject => b"CN=checkout,O=shop".to_vec(),
            Property::PeerCertSha256 => b"ab".repeat(32),
        }))
    }
    fn header(&self, map: Map, name: &str) -> Option<Vec<u8>> {
        self.headers(map).get(name).map(<[u8]>::to_vec)
    }
    fn headers(&self, map: Map) -> Headers {
        match map {
            Map::RequestHeaders => self.request.iter().map(|(k, v)| (k, v)).collect(),
            Map::ResponseHeaders => self.response.iter().map(|(k, v)| (k, v)).collect(),
            _ => Headers::default(),
        }
    }
    fn set_header(&self, _: Map, _: &str, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn add_header(&self, _: Map, _: &str, _: &[u8]) -> Result<(), HostError> {
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
    fn count_denial(&self, _: &str, _: &str, _: bool) {}
    fn set_gauge(&self, _: Gauge, _: u64) {}
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
pub fn policy_json() -> String {
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
