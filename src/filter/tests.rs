//! The whole request flow against a fake host: decisions, local replies, redaction of headers and
//! streamed bodies (with the proxy's buffering emulated), and audit lines.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::host::{Gauge, Headers, HostError, Property};

const CHECKOUT: &str = "spiffe://cluster.local/ns/shop/sa/checkout";

/// A local reply as the fake host recorded it: status, headers, body.
type Reply = (u32, Vec<(String, String)>, String);
/// One header map's entries.
type Entries = Vec<(String, Vec<u8>)>;

#[derive(Default)]
struct FakeHost {
    properties: HashMap<String, Vec<u8>>,
    failing_properties: bool,
    /// One property (`connection.mtls`, ...) whose read fails while the others work.
    failing_property: Option<&'static str>,
    maps: RefCell<HashMap<String, Entries>>,
    /// The body bytes the proxy currently holds for each direction.
    bodies: RefCell<HashMap<String, Vec<u8>>>,
    replies: RefCell<Vec<Reply>>,
    resets: RefCell<Vec<Direction>>,
    metrics: RefCell<HashMap<String, u64>>,
    /// Filter state set by the flow (`set_filter_state`), by name, as Envoy keeps it: one value
    /// per stream and name (the tests use one host per stream, or clear it between streams).
    state: RefCell<HashMap<String, Vec<u8>>>,
    /// Refuse `set_filter_state`.
    failing_state: bool,
    /// The lines the proxy log kept: like Envoy, the fake drops those below its level.
    logs: RefCell<Vec<(LogLevel, String)>>,
    /// The proxy's log level for the plugin (`info` when unset), and whether the log is off.
    level: Cell<Option<LogLevel>>,
    log_off: Cell<bool>,
    /// Host calls made, by `Host` method, and the bytes each direction of them carried across
    /// the VM boundary (what the cost guards of `tests/cost.rs` count).
    calls: RefCell<std::collections::BTreeMap<&'static str, u64>>,
    bytes: Cell<u64>,
    /// Answer `adds_body_at_trailers` as the native build's host does.
    adds_at_trailers: bool,
    /// How far the clock has been moved on from its fixed start.
    later: Cell<Duration>,
    /// Answer `has_timer` as the native build's host does.
    no_timer: bool,
}

impl FakeHost {
    fn count(&self, call: &'static str, bytes: usize) {
        *self.calls.borrow_mut().entry(call).or_default() += 1;
        self.bytes.set(self.bytes.get() + bytes as u64);
    }
}

fn key<T: std::fmt::Debug>(t: T) -> String {
    format!("{t:?}")
}

impl FakeHost {
    fn mtls(id: &str) -> FakeHost {
        let mut h = FakeHost::default();
        h.properties.insert("connection.mtls".into(), vec![1]);
        h.properties
            .insert("connection.tls_version".into(), b"TLSv1.3".to_vec());
        h.properties.insert(
            "connection.uri_san_peer_certificate".into(),
            id.as_bytes().to_vec(),
        );
        h.properties
            .insert("source.address".into(), b"127.0.0.1:5555".to_vec());
        h.request("POST", "/v1/charges");
        h
    }

    fn request(&mut self, method: &str, path: &str) {
        self.put(Map::RequestHeaders, ":method", method);
        self.put(Map::RequestHeaders, ":path", path);
        self.put(Map::RequestHeaders, ":authority", "payments-api");
        self.put(Map::RequestHeaders, "x-request-id", "req-1");
    }

    /// Sets a header as the proxy would before a callback (not counted as a host call).
    fn put(&self, map: Map, name: &str, value: &str) {
        self.insert(map, name, value.as_bytes());
    }

    fn insert(&self, map: Map, name: &str, value: &[u8]) {
        let mut maps = self.maps.borrow_mut();
        let entries = maps.entry(key(map)).or_default();
        match entries.iter_mut().find(|(k, _)| k == name) {
            Some(e) => e.1 = value.to_vec(),
            None => entries.push((name.to_string(), value.to_vec())),
        }
    }

    /// One more entry of `name`, after the others (a header sent more than once).
    fn add(&self, map: Map, name: &str, value: &[u8]) {
        let mut maps = self.maps.borrow_mut();
        let entries = maps.entry(key(map)).or_default();
        let after = entries
            .iter()
            .rposition(|(k, _)| k == name)
            .map_or(entries.len(), |i| i + 1);
        entries.insert(after, (name.to_string(), value.to_vec()));
    }

    fn shown(&self) -> Option<LogLevel> {
        (!self.log_off.get()).then(|| self.level.get().unwrap_or(LogLevel::Info))
    }

    fn get(&self, map: Map, name: &str) -> Option<String> {
        self.header(map, name)
            .map(|v| String::from_utf8(v).unwrap())
    }

    fn events(&self) -> Vec<serde_json::Value> {
        self.logs
            .borrow()
            .iter()
            .filter_map(|(_, l)| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Host for FakeHost {
    fn property(&self, property: Property) -> Result<Option<Vec<u8>>, HostError> {
        let name = property.name();
        if self.failing_properties || self.failing_property == Some(name.as_str()) {
            return Err(HostError("BadArgument".into()));
        }
        let v = self.properties.get(&name).cloned();
        self.count("property", name.len() + v.as_ref().map_or(0, Vec::len));
        Ok(v)
    }
    fn header(&self, map: Map, name: &str) -> Option<Vec<u8>> {
        let maps = self.maps.borrow();
        let v = maps
            .get(&key(map))
            .and_then(|e| e.iter().find(|(k, _)| k == name))
            .map(|(_, v)| v.clone());
        self.count("header", name.len() + v.as_ref().map_or(0, Vec::len));
        v
    }
    fn headers(&self, map: Map) -> Headers {
        let all = self
            .maps
            .borrow()
            .get(&key(map))
            .cloned()
            .unwrap_or_default();
        self.count("headers", all.iter().map(|(k, v)| k.len() + v.len()).sum());
        all.into_iter().collect()
    }
    /// As Envoy does: every entry of `name` goes, one takes the place of the first.
    fn set_header(&self, map: Map, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.count("set_header", name.len() + value.len());
        let mut maps = self.maps.borrow_mut();
        let entries = maps.entry(key(map)).or_default();
        let at = entries.iter().position(|(k, _)| k == name);
        entries.retain(|(k, _)| k != name);
        let at = at.unwrap_or(entries.len()).min(entries.len());
        entries.insert(at, (name.to_string(), value.to_vec()));
        Ok(())
    }
    fn add_header(&self, map: Map, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.count("add_header", name.len() + value.len());
        self.add(map, name, value);
        Ok(())
    }
    fn body(&self, dir: Direction, start: usize, len: usize) -> Option<Vec<u8>> {
        let bodies = self.bodies.borrow();
        let b = bodies.get(&key(dir)).cloned().unwrap_or_default();
        let v = b.get(start..(start + len).min(b.len()))?.to_vec();
        self.count("body", v.len());
        Some(v)
    }
    /// Envoy's rules: at 0 the first `len` bytes are replaced; at the end, data is appended.
    fn set_body(
        &self,
        dir: Direction,
        start: usize,
        len: usize,
        data: &[u8],
    ) -> Result<(), HostError> {
        self.count("set_body", data.len());
        let mut bodies = self.bodies.borrow_mut();
        let b = bodies.entry(key(dir)).or_default();
        if start == 0 {
            b.splice(..len.min(b.len()), data.iter().copied());
        } else if start >= b.len() {
            b.extend_from_slice(data);
        } else {
            return Err(HostError("BadArgument".into()));
        }
        Ok(())
    }
    fn send_local_reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.count("send_local_reply", body.len());
        let body = String::from_utf8(body.to_vec()).unwrap();
        self.replies.borrow_mut().push((status, headers, body));
        Ok(())
    }
    fn set_filter_state(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.count("set_filter_state", name.len() + value.len());
        if self.failing_state {
            return Err(HostError("NotFound".into()));
        }
        self.state
            .borrow_mut()
            .insert(format!("wasm.{name}"), value.to_vec());
        Ok(())
    }
    fn reset(&self, dir: Direction) {
        self.count("reset", 0);
        self.resets.borrow_mut().push(dir);
    }
    fn increment(&self, metric: Metric, by: u64) {
        self.count("increment", 0);
        *self.metrics.borrow_mut().entry(metric.name()).or_default() += by;
        assert!(metric.index().is_some(), "{metric:?} is defined");
    }
    fn count_denial(&self, caller: &str, reason: &str, dry_run: bool) {
        self.count("increment", 0);
        *self
            .metrics
            .borrow_mut()
            .entry(denial_stat_name(caller, reason, dry_run))
            .or_default() += 1;
    }
    fn set_gauge(&self, gauge: Gauge, value: u64) {
        self.count("set_gauge", 0);
        self.metrics
            .borrow_mut()
            .insert(gauge.name().to_owned(), value);
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.count("log", message.len());
        if self.shown().is_some_and(|shown| level >= shown) {
            self.logs.borrow_mut().push((level, message.to_owned()));
        }
    }
    fn log_level(&self) -> Option<LogLevel> {
        self.count("log_level", 0);
        self.shown()
    }
    fn adds_body_at_trailers(&self) -> bool {
        self.adds_at_trailers
    }
    fn has_timer(&self) -> bool {
        !self.no_timer
    }
    fn now(&self) -> SystemTime {
        self.count("now", 0);
        UNIX_EPOCH + Duration::from_millis(1_795_567_323_045) + self.later.get()
    }
}

/// Streams `chunks` through the flow as Envoy does: data a callback paused stays in the proxy's
/// buffer and is passed in again with the next chunk; data let go is what the other side gets.
/// `trailers` ends the body with a trailers callback instead of end-of-stream.
fn stream_body(
    host: &FakeHost,
    flow: &mut RequestFlow,
    dir: Direction,
    chunks: &[&[u8]],
    trailers: bool,
) -> Vec<u8> {
    let mut delivered = vec![];
    let k = key(dir);
    for (i, chunk) in chunks.iter().enumerate() {
        let end = !trailers && i + 1 == chunks.len();
        host.bodies
            .borrow_mut()
            .entry(k.clone())
            .or_default()
            .extend_from_slice(chunk);
        let size = host.bodies.borrow()[&k].len();
        let verdict = match dir {
            Direction::Request => flow.on_request_body(host, size, end),
            Direction::Response => flow.on_response_body(host, size, end),
        };
        if verdict == Verdict::Continue {
            delivered.append(host.bodies.borrow_mut().get_mut(&k).unwrap());
        }
    }
    if trailers {
        let verdict = match dir {
            Direction::Request => flow.on_request_trailers(host),
            Direction::Response => flow.on_response_trailers(host),
        };
        assert_eq!(verdict, Verdict::Continue);
        delivered.append(host.bodies.borrow_mut().get_mut(&k).unwrap());
    }
    delivered
}

const POLICY: &str = r#"{
  "identity": {"trust_domains": ["cluster.local"]},
  "authorization": {"rules": [
    {"name": "checkout-may-charge", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/v1/charges"], "methods": ["POST"]}
  ]}
}"#;

fn auditor() -> SharedAuditor {
    crate::audit::Auditor::new("test-chain".into(), None).shared()
}

fn policy(json: &str) -> Option<Arc<Policy>> {
    configure(&FakeHost::default(), json.as_bytes(), &auditor())
}

fn run(host: &mut FakeHost, json: &str) -> Verdict {
    let mut flow = RequestFlow::new(policy(json), auditor());
    let verdict = flow.on_request_headers(host, true);
    if verdict == Verdict::Continue {
        host.put(Map::ResponseHeaders, ":status", "200");
        flow.on_response_headers(host, true);
    }
    flow.on_done(host);
    verdict
}

#[test]
fn allowed_caller_continues_and_is_audited_with_its_rule() {
    let mut host = FakeHost::mtls(CHECKOUT);
    assert_eq!(run(&mut host, POLICY), Verdict::Continue);
    assert!(host.replies.borrow().is_empty());
    let events = host.events();
    assert_eq!(events.len(), 1, "one access event per request");
    let e = &events[0];
    assert_eq!(e["event"], "access");
    assert_eq!(e["decision"], "allow");
    assert_eq!(e["enforced"], true);
    assert_eq!(e["reason"], "rule");
    assert_eq!(e["rule"], "checkout-may-charge");
    assert_eq!(e["principal"], CHECKOUT);
    assert_eq!(e["source"], "127.0.0.1:5555");
    assert_eq!(e["status"], 200);
    assert_eq!(e["request"]["method"], "POST");
    assert_eq!(e["request"]["id"], "req-1");
    assert_eq!(e["ts"], "2026-11-25T00:42:03.045Z");
    assert_eq!(e["identity_source"], "certificate");
    assert_eq!(
        e["redaction"],
        serde_json::json!({"request": "mask", "response": "mask"})
    );
    assert_eq!(e["duration_ms"], 0, "the fake clock stands still");
    assert_eq!(
        host.metrics.borrow()
            ["decision=.=allow;.;reason=.=rule;.;dry_run=.=false;.;pci_mesh_guard_requests_total"],
        1
    );
    assert!(
        !host
            .metrics
            .borrow()
            .keys()
            .any(|k| k.ends_with("pci_mesh_guard_denied_callers_total")),
        "an allowed caller is not counted as denied"
    );
}

#[test]
fn denied_caller_gets_the_spec_403_naming_nothing() {
    let mut host = FakeHost::mtls("spiffe://cluster.local/ns/marketing/sa/newsletter");
    assert_eq!(run(&mut host, POLICY), Verdict::Stop);
    let replies = host.replies.borrow();
    let (status, headers, body) = &replies[0];
    assert_eq!(*status, 403);
    assert_eq!(
        headers,
        &[("content-type".to_string(), "application/json".to_string())]
    );
    assert_eq!(body, r#"{"error":"forbidden","request_id":"req-1"}"#);
    let events = host.events();
    assert_eq!(events.len(), 1, "written at denial, not again at the end");
    assert_eq!(events[0]["decision"], "deny");
    assert_eq!(events[0]["reason"], "default");
    assert_eq!(events[0]["status"], 403);
    assert_eq!(events[0]["redaction"]["request"], "none");
    assert_eq!(
        host.metrics.borrow()["decision=.=deny;.;reason=.=default;.;dry_run=.=false;.;pci_mesh_guard_requests_total"],
        1
    );
    assert_eq!(
        host.metrics.borrow()["caller=.=spiffe://cluster.local/ns/marketing/sa/newsletter;.;\
                               reason=.=default;.;dry_run=.=false;.;pci_mesh_guard_denied_callers_total"],
        1
    );
}

#[test]
fn request_id_is_escaped_in_the_denial_body() {
    let mut host = FakeHost::mtls("spiffe://cluster.local/ns/x/sa/y");
    host.put(Map::RequestHeaders, "x-request-id", "a\"b");
    run(&mut host, POLICY);
    let body = host.replies.borrow()[0].2.clone();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["request_id"], "a\"b");
}

#[test]
fn plaintext_connection_is_denied_as_no_mtls() {
    let mut host = FakeHost::default();
    host.request("POST", "/v1/charges");
    assert_eq!(run(&mut host, POLICY), Verdict::Stop);
    assert_eq!(host.events()[0]["reason"], "no_mtls");
    assert_eq!(host.events()[0]["principal"], serde_json::Value::Null);
    assert_eq!(
        host.metrics.borrow()["caller=.=unauthenticated;.;reason=.=no_mtls;.;dry_run=.=false;.;\
                               pci_mesh_guard_denied_callers_total"],
        1
    );
}

#[test]
fn failing_property_reads_fail_closed() {
    let mut host = FakeHost::mtls(CHECKOUT);
    host.failing_properties = true;
    assert_eq!(run(&mut host, POLICY), Verdict::Stop);
    assert_eq!(host.events()[0]["reason"], "no_mtls");
}

#[test]
fn dry_run_lets_a_denied_request_through_and_marks_it() {
    let json = POLICY.replacen('{', r#"{"mode":"dry_run","#, 1);
    let mut host = FakeHost::mtls("spiffe://cluster.local/ns/marketing/sa/newsletter");
    assert_eq!(run(&mut host, &json), Verdict::Continue);
    assert!(host.replies.borrow().is_empty());
    let e = &host.events()[0];
    assert_eq!(
        (e["decision"].as_str(), e["enforced"].as_bool()),
        (Some("deny"), Some(false))
    );
    assert_eq!(e["mode"], "dry_run");
    assert_eq!(e["status"], 200);
    assert_eq!(
        host.metrics.borrow()
            ["decision=.=deny;.;reason=.=default;.;dry_run=.=true;.;pci_mesh_guard_requests_total"],
        1
    );
    assert!(!host.metrics.borrow().contains_key(
        "decision=.=deny;.;reason=.=default;.;dry_run=.=false;.;pci_mesh_guard_requests_total"
    ));
    assert_eq!(
        host.metrics.borrow()["caller=.=spiffe://cluster.local/ns/marketing/sa/newsletter;.;\
                               reason=.=default;.;dry_run=.=true;.;pci_mesh_guard_denied_callers_total"],
        1
    );
}

#[test]
fn without_accepted_configuration_every_request_is_refused() {
    let mut host = FakeHost::mtls(CHECKOUT);
    assert_eq!(run(&mut host, r#"{"nope":1}"#), Verdict::Stop);
    assert_eq!(host.replies.borrow()[0].0, 503);
}

#[test]
fn rejected_configuration_logs_one_error_line_naming_the_key() {
    let host = FakeHost::default();
    let bad = r#"{"authorization":{"rules":[{"name":"a","nmae":"b"}]}}"#;
    assert!(configure(&host, bad.as_bytes(), &auditor()).is_none());
    let logs = host.logs.borrow();
    let errors: Vec<_> = logs.iter().filter(|(l, _)| *l == LogLevel::Error).collect();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].1.starts_with(
            "pci-mesh-guard: configuration rejected: authorization.rules[0].nmae: unknown field"
        ),
        "{}",
        errors[0].1
    );
    let events = host.events();
    assert_eq!(events[0]["event"], "config");
    assert_eq!(events[0]["accepted"], false);
    let metrics = host.metrics.borrow();
    assert_eq!(metrics[&Metric::Configurations(false).name()], 1);
    assert!(!metrics.contains_key(&Metric::Configurations(true).name()));
}

#[test]
fn an_accepted_configuration_is_counted_with_its_linter_findings_as_a_gauge() {
    let host = FakeHost::default();
    // A rule that can never match anything the default would not already allow: a finding.
    let json =
        r#"{"authorization":{"default_action":"allow","rules":[{"name":"a","paths":["/x"]}]}}"#;
    let policy = configure(&host, json.as_bytes(), &auditor()).expect("accepted");
    assert!(!policy.findings.is_empty(), "the linter finds something");
    let metrics = host.metrics.borrow();
    assert_eq!(metrics[&Metric::Configurations(true).name()], 1);
    assert_eq!(
        metrics[Gauge::LintFindings.name()],
        policy.findings.len() as u64
    );
}

#[test]
fn audit_path_never_holds_a_pan() {
    let mut host = FakeHost::mtls(CHECKOUT);
    host.request("POST", "/v1/charges?pan=4111-1111-1111-1111");
    run(&mut host, POLICY);
    let logs = host.logs.borrow();
    assert!(logs.iter().all(|(_, l)| !l.contains("4111-1111")));
    assert_eq!(
        host.events()[0]["request"]["path"],
        "/v1/charges?pan=****-****-****-1111"
    );
}

const OPEN: &str = r#"{
  "authorization": {"rules": [
    {"name": "vault", "principals": ["spiffe://cluster.local/ns/vault/sa/tokenizer"],
     "pan": ["request", "response"]},
    {"name": "anyone", "principals": ["*"]}
  ]},
  "redaction": {"patterns": [{"name": "ssn", "regex": "\\b\\d{3}-\\d{2}-\\d{4}\\b"}]}
}"#;

/// Starts a request through the flow with the given policy; returns the flow for more stages.
fn start(host: &FakeHost, json: &str, end_of_stream: bool) -> RequestFlow {
    let mut flow = RequestFlow::new(policy(json), auditor());
    assert_eq!(
        flow.on_request_headers(host, end_of_stream),
        Verdict::Continue
    );
    flow
}

/// Found by the hostile-traffic end-to-end test: writing back one masked value of a header sent
/// three times left one entry where there had been three.
#[test]
fn a_header_sent_more_than_once_keeps_every_value_each_masked() {
    let mut host = FakeHost::mtls(CHECKOUT);
    host.request("GET", "/v1/cards");
    host.add(Map::RequestHeaders, "x-card", b"4111111111111111");
    host.add(Map::RequestHeaders, "x-other", b"plain");
    host.add(Map::RequestHeaders, "x-card", b"no card here");
    host.add(Map::RequestHeaders, "x-card", b"3782 822463 10005");
    let mut flow = start(&host, OPEN, true);
    let values = |map: Map, name: &str| -> Vec<String> {
        host.headers(map)
            .iter()
            .filter(|(k, _)| *k == name.as_bytes())
            .map(|(_, v)| String::from_utf8(v.to_vec()).unwrap())
            .collect()
    };
    assert_eq!(
        values(Map::RequestHeaders, "x-card"),
        ["************1111", "no card here", "**** ****** *0005"]
    );
    assert_eq!(values(Map::RequestHeaders, "x-other"), ["plain"]);
    // Set-Cookie is the header a response repeats most.
    host.put(Map::ResponseHeaders, ":status", "200");
    host.add(Map::ResponseHeaders, "set-cookie", b"a=1");
    host.add(
        Map::ResponseHeaders,
        "set-cookie",
        b"card=5555555555554444; Path=/",
    );
    flow.on_response_headers(&host, true);
    assert_eq!(
        values(Map::ResponseHeaders, "set-cookie"),
        ["a=1", "card=************4444; Path=/"]
    );
    flow.on_done(&host);
    assert_eq!(host.events()[0]["pan"]["request_headers"]["redacted"], 2);
}

#[test]
fn masks_pans_in_headers_query_string_and_cookies() {
    let mut host = FakeHost::mtls(CHECKOUT);
    host.request("GET", "/v1/cards?number=4111%201111%201111%201111&x=1");
    host.put(Map::RequestHeaders, "x-card", "5555-5555-5555-4444");
    host.put(
        Map::RequestHeaders,
        "cookie",
        "session=abc; last_card=378282246310005",
    );
    host.put(Map::RequestHeaders, "x-ssn", "123-45-6789");
    let mut flow = start(&host, OPEN, true);
    let get = |n| host.get(Map::RequestHeaders, n).unwrap();
    assert_eq!(
        get(":path"),
        "/v1/cards?number=****%20****%20****%201111&x=1"
    );
    assert_eq!(get("x-card"), "****-****-****-4444");
    assert_eq!(get("cookie"), "session=abc; last_card=***********0005");
    assert_eq!(get("x-ssn"), "***********");
    assert_eq!(
        get("accept-encoding"),
        "identity",
        "asks upstream for a readable body"
    );
    host.put(Map::ResponseHeaders, ":status", "200");
    host.put(Map::ResponseHeaders, "x-echo", "card 6011000990139424");
    flow.on_response_headers(&host, true);
    assert_eq!(
        host.get(Map::ResponseHeaders, "x-echo").unwrap(),
        "card ************9424"
    );
    flow.on_done(&host);
    let e = &host.events()[0];
    assert_eq!(e["pan"]["request_headers"]["found"], 3);
    assert_eq!(e["pan"]["request_headers"]["redacted"], 3);
    assert_eq!(e["pan"]["request_headers"]["patterns"], 1);
    assert_eq!(e["pan"]["request_headers"]["brands"]["amex"], 1);
    assert_eq!(e["pan"]["response_headers"]["brands"]["discover"], 1);
    assert_eq!(
        e["request"]["path"],
        "/v1/cards?number=****%20****%20****%201111&x=1"
    );
    assert_eq!(
        host.metrics.borrow()
            ["direction=.=request;.;outcome=.=redacted;.;pci_mesh_guard_pans_total"],
        3
    );
    assert_eq!(
        host.metrics.borrow()
            ["direction=.=response;.;outcome=.=redacted;.;pci_mesh_guard_pans_total"],
        1
    );
    let all_logs: String = host.logs.borrow().iter().map(|(_, l)| l.clone()).collect();
    assert!(!all_logs.contains("4111") && !all_logs.contains("378282246310005"));
}

#[test]
fn masks_a_pan_split_across_body_chunks_in_both_directions() {
    let host = FakeHost::mtls(CHECKOUT);
    host.put(Map::RequestHeaders, "content-type", "text/plain");
    let mut flow = start(&host, OPEN, false);
    let got = stream_body(
        &host,
        &mut flow,
        Direction::Request,
        &[b"pay 4111 11", b"11 1111 1111 now"],
        false,
    );
    assert_eq!(got, b"pay **** **** **** 1111 now".to_vec());
    host.put(Map::ResponseHeaders, ":status", "200");
    host.put(Map::ResponseHeaders, "content-type", "application/json");
    assert_eq!(flow.on_response_headers(&host, false), Verdict::Continue);
    let got = stream_body(
        &host,
        &mut flow,
        Direction::Response,
        &[
            br#"{"card":55555555"#,
            br#"55554444,"ssn":"123-4"#,
            br#"5-6789"}"#,
        ],
        false,
    );
    assert_eq!(
        got,
        br#"{"card":9999999999994444,"ssn":"***********"}"#.to_vec()
    );
    flow.on_done(&host);
    let e = &host.events()[0];
    assert_eq!(e["pan"]["request_body"]["redacted"], 1);
    assert_eq!(e["pan"]["response_body"]["brands"]["mastercard"], 1);
    assert_eq!(e["pan"]["response_body"]["patterns"], 1);
}

#[test]
fn held_tail_is_placed_before_trailers() {
    let host = FakeHost::mtls(CHECKOUT);
    let mut flow = start(&host, OPEN, false);
    let got = stream_body(
        &host,
        &mut flow,
        Direction::Request,
        &[b"abc ", b"4111 1111 1111 1111"],
        true,
    );
    assert_eq!(got, b"abc **** **** **** 1111".to_vec());
    assert!(host.resets.borrow().is_empty());
}

#[test]
fn granted_caller_moves_pans_untouched_but_counted() {
    let host = FakeHost::mtls("spiffe://cluster.local/ns/vault/sa/tokenizer");
    host.put(Map::RequestHeaders, "x-card", "4111111111111111");
    let mut flow = start(&host, OPEN, false);
    assert_eq!(
        host.get(Map::RequestHeaders, "x-card").unwrap(),
        "4111111111111111"
    );
    let got = stream_body(
        &host,
        &mut flow,
        Direction::Request,
        &[b"4111111111111111 123-45-6789"],
        false,
    );
    assert_eq!(
        got,
        b"4111111111111111 ***********".to_vec(),
        "patterns are not PANs: still masked"
    );
    flow.on_done(&host);
    let e = &host.events()[0];
    assert_eq!(e["rule"], "vault");
    assert_eq!(
        e["redaction"],
        serde_json::json!({"request": "grant", "response": "grant"})
    );
    assert_eq!(e["pan"]["request_body"]["passed"], 1);
    assert_eq!(e["pan"]["request_headers"]["passed"], 1);
    assert_eq!(
        host.metrics.borrow()
            ["direction=.=request;.;outcome=.=granted;.;pci_mesh_guard_pans_total"],
        2
    );
    assert!(!e.to_string().contains("4111111111111111"));
}

#[test]
fn dry_run_rewrites_nothing_but_counts_what_it_would_mask() {
    let json = OPEN.replacen('{', r#"{"mode":"dry_run","#, 1);
    let host = FakeHost::mtls(CHECKOUT);
    let mut flow = start(&host, &json, false);
    let got = stream_body(
        &host,
        &mut flow,
        Direction::Request,
        &[b"4111111111111111 123-45-6789"],
        false,
    );
    assert_eq!(got, b"4111111111111111 123-45-6789".to_vec());
    flow.on_done(&host);
    let e = &host.events()[0];
    assert_eq!(e["enforced"], false);
    assert_eq!(e["redaction"]["request"], "dry_run");
    assert_eq!(e["pan"]["request_body"]["found"], 1);
    assert_eq!(e["pan"]["request_body"]["passed"], 1);
    // A would-be leak, told apart from a granted one.
    let metrics = host.metrics.borrow();
    assert_eq!(metrics[&Metric::Pans("request", "dry_run").name()], 1);
    assert!(!metrics.contains_key(&Metric::Pans("request", "granted").name()));
}

#[test]
fn compressed_request_body_is_refused_with_415_when_blocking() {
    let host = FakeHost::mtls(CHECKOUT);
    host.put(Map::RequestHeaders, "content-encoding", "gzip");
    let mut flow = RequestFlow::new(policy(OPEN), auditor());
    assert_eq!(flow.on_request_headers(&host, false), Verdict::Stop);
    assert_eq!(host.replies.borrow()[0].0, 415);
    let e = &host.events()[0];
    assert_eq!(
        (e["decision"].as_str(), e["reason"].as_str()),
        (Some("deny"), Some("unscannable_body"))
    );
}

#[test]
fn compressed_bodies_pass_unscanned_and_audited_under_pass() {
    let json = OPEN.replacen(
        r#""redaction": {"#,
        r#""redaction": {"compressed_body":"pass","#,
        1,
    );
    let host = FakeHost::mtls(CHECKOUT);
    host.put(Map::RequestHeaders, "content-encoding", "gzip");
    let mut flow = start(&host, &json, false);
    let got = stream_body(
        &host,
        &mut flow,
        Direction::Request,
        &[b"\x1f\x8b 4111111111111111"],
        false,
    );
    assert_eq!(got, b"\x1f\x8b 4111111111111111".to_vec());
    host.put(Map::ResponseHeaders, ":status", "200");
    host.put(Map::ResponseHeaders, "content-encoding", "br");
    assert_eq!(flow.on_response_headers(&host, false), Verdict::Continue);
    flow.on_done(&host);
    let e = &host.events()[0];
    assert_eq!(e["decision"], "allow");
    assert_eq!(
        e["unscannable"],
        serde_json::json!(["request_body", "response_body"])
    );
    let metrics = host.metrics.borrow();
    assert_eq!(metrics[&Metric::Unscannable("request").name()], 1);
    assert_eq!(metrics[&Metric::Unscannable("response").name()], 1);
}

#[test]
fn compressed_response_is_replaced_by_502_when_blocking() {
    let host = FakeHost::mtls(CHECKOUT);
    let mut flow = start(&host, OPEN, true);
    host.put(Map::ResponseHeaders, ":status", "200");
    host.put(Map::ResponseHeaders, "content-encoding", "gzip");
    assert_eq!(flow.on_response_headers(&host, false), Verdict::Stop);
    assert_eq!(host.replies.borrow()[0].0, 502);
    flow.on_done(&host);
    let events = host.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["reason"], "unscannable_body");
    assert_eq!(events[0]["status"], 502);
}

#[test]
fn identity_encoding_is_readable() {
    let host = FakeHost::mtls(CHECKOUT);
    host.put(Map::RequestHeaders, "content-encoding", "identity");
    let mut flow = start(&host, OPEN, false);
    let got = stream_body(
        &host,
        &mut flow,
        Direction::Request,
        &[b"4111111111111111"],
        false,
    );
    assert_eq!(got, b"************1111".to_vec());
}

#[test]
fn switched_off_places_are_left_alone() {
    let json = r#"{"authorization":{"default_action":"allow"},"redaction":{"request_headers":false,"request_body":false}}"#;
    let host = FakeHost::mtls(CHECKOUT);
    host.put(Map::RequestHeaders, "x-card", "4111111111111111");
    let mut flow = start(&host, json, false);
    assert_eq!(
        host.get(Map::RequestHeaders, "x-card").unwrap(),
        "4111111111111111"
    );
    let got = stream_body(
        &host,
        &mut flow,
        Direction::Request,
        &[b"4111111111111111"],
        false,
    );
    assert_eq!(got, b"4111111111111111".to_vec());
}

/// Streams `chunks` (then trailers, or the end of the data) through a fresh flow on a host that
/// can or cannot add body bytes at the trailers, and returns what passed and each body verdict.
fn streamed_with(
    adds_at_trailers: bool,
    chunks: &[&[u8]],
    trailers: bool,
) -> (Vec<u8>, Vec<Verdict>) {
    let mut host = FakeHost::mtls(CHECKOUT);
    host.adds_at_trailers = adds_at_trailers;
    host.put(Map::RequestHeaders, "content-type", "text/plain");
    let mut flow = start(&host, OPEN, false);
    let k = key(Direction::Request);
    let (mut delivered, mut verdicts) = (vec![], vec![]);
    for (i, chunk) in chunks.iter().enumerate() {
        let end = !trailers && i + 1 == chunks.len();
        host.bodies
            .borrow_mut()
            .entry(k.clone())
            .or_default()
            .extend_from_slice(chunk);
        let size = host.bodies.borrow()[&k].len();
        let v = flow.on_request_body(&host, size, end);
        if v == Verdict::Continue {
            delivered.append(host.bodies.borrow_mut().get_mut(&k).unwrap());
        }
        verdicts.push(v);
    }
    if trailers {
        assert_eq!(flow.on_request_trailers(&host), Verdict::Continue);
        delivered.append(host.bodies.borrow_mut().entry(k).or_default());
    }
    assert!(host.resets.borrow().is_empty());
    (delivered, verdicts)
}

#[test]
fn a_host_that_adds_body_at_trailers_is_never_paused_and_gets_the_same_bytes() {
    let body = b"order 1 paid 4111 1111 1111 1111, refund to 5555555555554444 on 2026-11-25 ok";
    for trailers in [false, true] {
        for size in [1, 2, 3, 5, 7, 11, 16, 64] {
            let chunks: Vec<&[u8]> = body.chunks(size).collect();
            let (paused, _) = streamed_with(false, &chunks, trailers);
            let (straight, verdicts) = streamed_with(true, &chunks, trailers);
            assert_eq!(
                String::from_utf8_lossy(&straight),
                String::from_utf8_lossy(&paused),
                "chunks of {size}, trailers {trailers}"
            );
            assert!(
                verdicts.iter().all(|v| *v == Verdict::Continue),
                "chunks of {size}: {verdicts:?}"
            );
        }
    }
    let (got, _) = streamed_with(true, &[b"abc ", b"4111 1111 1111 1111"], true);
    assert_eq!(got, b"abc **** **** **** 1111".to_vec());
}

#[test]
fn past_the_pause_limit_a_host_that_adds_body_at_trailers_takes_the_tail_there() {
    let mut big = vec![b'x'; PAUSE_LIMIT + 1024];
    big.extend_from_slice(b" 4111 1111");
    let (got, verdicts) = streamed_with(true, &[&big, b" 1111 1111"], true);
    assert_eq!(verdicts, [Verdict::Continue, Verdict::Continue]);
    assert!(
        got.ends_with(b" **** **** **** 1111"),
        "{:?}",
        &got[got.len() - 30..]
    );
    assert_eq!(got.len(), big.len() + 10);
}

#[test]
fn tail_that_cannot_be_placed_before_trailers_aborts_the_stream() {
    let host = FakeHost::mtls(CHECKOUT);
    let mut flow = start(&host, OPEN, false);
    // Past the pause limit the data is let go while the undecided tail stays in the redactor.
    let mut big = vec![b'x'; PAUSE_LIMIT + 1024];
    big.extend_from_slice(b" 4111 1111");
    host.bodies
        .borrow_mut()
        .insert(key(Direction::Request), big.clone());
    assert_eq!(
        flow.on_request_body(&host, big.len(), false),
        Verdict::Continue
    );
    host.bodies.borrow_mut().clear();
    assert_eq!(flow.on_request_trailers(&host), Verdict::Stop);
    assert_eq!(*host.resets.borrow(), [Direction::Request]);
    flow.on_done(&host);
    assert_eq!(host.events()[0]["reason"], "body_failure");
}

#[test]
fn config_and_access_events_form_one_verifiable_chain() {
    let key = "0123456789abcdef-secret";
    let shared = crate::audit::Auditor::new("vm-1".into(), Some(key)).shared();
    let host = FakeHost::mtls(CHECKOUT);
    let policy = configure(&host, POLICY.as_bytes(), &shared);
    for _ in 0..2 {
        let mut flow = RequestFlow::new(policy.clone(), shared.clone());
        flow.on_request_headers(&host, true);
        flow.on_done(&host);
    }
    let logs = host.logs.borrow();
    let lines: Vec<&str> = logs.iter().map(|(_, l)| l.as_str()).collect();
    let report = crate::audit::verify::verify(lines.iter().copied(), Some(key.as_bytes()), false);
    assert_eq!(report.events, 3);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let events = host.events();
    assert_eq!(events[0]["alg"], "hmac-sha256");
    for text in lines
        .iter()
        .filter_map(|l| crate::audit::verify::event_text(l))
    {
        crate::audit::json::parse_unique(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    }
    assert_eq!(
        events[0]["config_sha256"],
        crate::audit::sha256_hex(POLICY.as_bytes())
    );
    assert!(events[0].get("warnings").is_none());
}

#[test]
fn without_a_key_the_config_event_warns_and_a_short_key_is_refused() {
    let host = FakeHost::default();
    assert!(configure(&host, b"{}", &auditor()).is_some());
    assert!(host.events()[0]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("PCI_MESH_GUARD_AUDIT_KEY"));
    let host = FakeHost::default();
    let short = crate::audit::Auditor::new("c".into(), Some("short")).shared();
    assert!(configure(&host, b"{}", &short).is_none());
    let logs = host.logs.borrow();
    assert!(logs.iter().any(|(l, m)| *l == LogLevel::Error
        && m.contains("configuration rejected: vm_config.environment_variables.PCI_MESH_GUARD_AUDIT_KEY: shorter than 16 bytes")));
}

#[test]
fn keyed_tokens_let_analysts_correlate_cards_without_seeing_them() {
    let key = "token-key-0123456789";
    let shared = crate::audit::Auditor::new("vm".into(), None)
        .with_token_key(Some(key))
        .shared();
    let host = FakeHost::mtls(CHECKOUT);
    host.put(Map::RequestHeaders, "x-card", "4111 1111 1111 1111");
    let mut flow = RequestFlow::new(policy(OPEN), shared);
    flow.on_request_headers(&host, false);
    stream_body(
        &host,
        &mut flow,
        Direction::Request,
        &[b"4111111111111111 and 5555555555554444"],
        false,
    );
    flow.on_done(&host);
    let e = &host.events()[0];
    let want = [
        crate::pan::token(key.as_bytes(), b"4111111111111111"),
        crate::pan::token(key.as_bytes(), b"5555555555554444"),
    ];
    assert_eq!(
        e["pan_tokens"],
        serde_json::json!(want),
        "one token per card, in order"
    );
    assert!(!e.to_string().contains("4111111111111111"));
    // Without a key: no tokens at all.
    let host = FakeHost::mtls(CHECKOUT);
    run(&mut FakeHost::mtls(CHECKOUT), OPEN);
    let mut flow = RequestFlow::new(policy(OPEN), auditor());
    flow.on_request_headers(&host, true);
    flow.on_done(&host);
    assert!(host.events()[0].get("pan_tokens").is_none());
    // A short token key refuses the configuration.
    let short = crate::audit::Auditor::new("vm".into(), None)
        .with_token_key(Some("short"))
        .shared();
    assert!(configure(&FakeHost::default(), b"{}", &short).is_none());
}

const OTLP: &str = r#"{"authorization":{"default_action":"allow"},
  "audit":{"sink":"otlp_http","cluster":"otel","max_batch":2,"max_queue":3,"required":true}}"#;

#[test]
fn otlp_sink_ships_batches_and_reports_what_it_loses() {
    let host = FakeHost::mtls(CHECKOUT);
    let shared = auditor();
    let policy = configure(&host, OTLP.as_bytes(), &shared);
    // The config event is queued; one request adds its access event: a full batch of 2.
    let mut flow = RequestFlow::new(policy.clone(), shared.clone());
    assert_eq!(flow.on_request_headers(&host, true), Verdict::Continue);
    flow.on_done(&host);
    let body = audit_tick(&host, &shared).expect("a batch is due");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let records = v["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array()
        .unwrap();
    assert_eq!(records.len(), 2);
    assert!(records[1]["body"]["stringValue"]
        .as_str()
        .unwrap()
        .contains(r#""event":"access""#));
    audit_answer(&host, &shared, Some(200), b"{}");
    assert_eq!(
        host.metrics.borrow()["outcome=.=sent;.;pci_mesh_guard_audit_events_total"],
        2
    );

    // The collector fails for good: the batch is dropped and an audit_failure event written.
    for _ in 0..2 {
        let mut flow = RequestFlow::new(policy.clone(), shared.clone());
        flow.on_request_headers(&host, true);
        flow.on_done(&host);
    }
    assert!(audit_tick(&host, &shared).is_some());
    audit_answer(&host, &shared, Some(400), b"bad request");
    let failure = host
        .events()
        .into_iter()
        .find(|e| e["event"] == "audit_failure")
        .expect("reported");
    assert_eq!(
        (failure["reason"].as_str(), failure["dropped"].as_u64()),
        (Some("delivery_failed"), Some(2))
    );
    assert_eq!(
        host.metrics.borrow()["outcome=.=dropped;.;pci_mesh_guard_audit_events_total"],
        2
    );
}

#[test]
fn required_sink_refuses_requests_while_its_queue_is_full() {
    let host = FakeHost::mtls(CHECKOUT);
    let shared = auditor();
    let policy = configure(&host, OTLP.as_bytes(), &shared);
    // Nobody flushes: the queue (3) fills with the config event and two access events.
    for _ in 0..2 {
        let mut flow = RequestFlow::new(policy.clone(), shared.clone());
        assert_eq!(flow.on_request_headers(&host, true), Verdict::Continue);
        flow.on_done(&host);
    }
    let mut flow = RequestFlow::new(policy.clone(), shared.clone());
    assert_eq!(flow.on_request_headers(&host, true), Verdict::Stop);
    assert_eq!(host.replies.borrow().last().unwrap().0, 503);
    let last = host.events().into_iter().last().unwrap();
    assert_eq!(last["reason"], "audit_unavailable");
    // The refused request's own event could not be queued either; the next tick reports it.
    audit_tick(&host, &shared);
    assert!(host
        .events()
        .iter()
        .any(|e| e["event"] == "audit_failure" && e["reason"] == "queue_full"));
}

#[test]
fn events_queued_for_a_sink_the_next_configuration_removes_are_reported_lost() {
    let host = FakeHost::mtls(CHECKOUT);
    let shared = auditor();
    let policy = configure(&host, OTLP.as_bytes(), &shared);
    let mut flow = RequestFlow::new(policy, shared.clone());
    flow.on_request_headers(&host, true);
    flow.on_done(&host);
    // Two events wait in the queue (config, access); the new configuration has no sink.
    assert!(configure(&host, b"{}", &shared).is_some());
    let failure = host
        .events()
        .into_iter()
        .find(|e| e["event"] == "audit_failure")
        .expect("reported at once");
    assert_eq!(failure["dropped"], 2);
}

mod access_log_sink;
mod audit_trail;
mod checkpoints;
mod connections;
pub(crate) mod cost;
