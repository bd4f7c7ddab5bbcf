//! Where the audit trail goes when the proxy's log level hides `info` (Istio's sidecars run at
//! `warning`), is changed at run time, or is off: no event is lost without the requests stopping,
//! and every event is a JSON object that names each key once.

use super::*;

/// A VM: one chain, one accepted configuration, requests from `host`.
struct Vm {
    shared: SharedAuditor,
    policy: Option<Arc<Policy>>,
}

impl Vm {
    fn start(host: &FakeHost, json: &str) -> Vm {
        let shared = crate::audit::Auditor::new("vm".into(), Some("0123456789abcdef")).shared();
        let policy = configure(host, json.as_bytes(), &shared);
        assert!(policy.is_some(), "configuration accepted");
        Vm { shared, policy }
    }

    /// One request without body: its verdict, and its access event written at the end.
    fn request(&self, host: &FakeHost) -> Verdict {
        let mut flow = RequestFlow::new(self.policy.clone(), self.shared.clone());
        let verdict = flow.on_request_headers(host, true);
        flow.on_done(host);
        verdict
    }
}

/// The audit events the proxy log kept, with the level each was written at.
fn events_at(host: &FakeHost) -> Vec<(LogLevel, serde_json::Value)> {
    host.logs
        .borrow()
        .iter()
        .filter_map(|(l, m)| Some((*l, serde_json::from_str(m).ok()?)))
        .collect()
}

fn verifies(host: &FakeHost) -> crate::audit::verify::Report {
    let logs = host.logs.borrow();
    let r = crate::audit::verify::verify(
        logs.iter().map(|(_, l)| l.as_str()),
        Some(b"0123456789abcdef"),
        false,
    );
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    r
}

fn metric(host: &FakeHost, metric: Metric) -> u64 {
    host.metrics
        .borrow()
        .get(&metric.name())
        .copied()
        .unwrap_or(0)
}

#[test]
fn at_istios_warning_level_every_event_is_written_at_warning() {
    let host = FakeHost::mtls(CHECKOUT);
    host.level.set(Some(LogLevel::Warn));
    let vm = Vm::start(&host, POLICY);
    assert_eq!(vm.request(&host), Verdict::Continue);
    let mut denied = FakeHost::mtls("spiffe://cluster.local/ns/other/sa/x");
    denied.level.set(Some(LogLevel::Warn));
    denied.request("GET", "/v1/charges");
    assert_eq!(vm.request(&denied), Verdict::Stop);

    let events = events_at(&host);
    let kinds: Vec<_> = events
        .iter()
        .map(|(l, e)| (*l, e["event"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (LogLevel::Warn, "config".into()),
            (LogLevel::Warn, "access".into())
        ]
    );
    assert_eq!(events_at(&denied)[0].0, LogLevel::Warn);
    assert_eq!(events_at(&denied)[0].1["decision"], "deny");
    assert_eq!(verifies(&host).events, 2);
    // Said once, where the operator looks: why the audit lines are not at info.
    let notices: Vec<_> = host
        .logs
        .borrow()
        .iter()
        .filter(|(_, m)| m.contains("audit events are written at warning"))
        .map(|(l, _)| *l)
        .collect();
    assert_eq!(notices, [LogLevel::Warn]);
}

#[test]
fn at_info_or_below_events_are_written_at_info_without_a_notice() {
    let host = FakeHost::mtls(CHECKOUT);
    host.level.set(Some(LogLevel::Debug));
    let vm = Vm::start(&host, POLICY);
    vm.request(&host);
    assert!(events_at(&host).iter().all(|(l, _)| *l == LogLevel::Info));
    assert_eq!(events_at(&host).len(), 2);
    assert!(!host
        .logs
        .borrow()
        .iter()
        .any(|(_, m)| m.contains("audit events are written at")));
}

#[test]
fn a_level_raised_during_a_request_is_met_when_its_event_is_written() {
    let host = FakeHost::mtls(CHECKOUT);
    let vm = Vm::start(&host, POLICY);
    let mut flow = RequestFlow::new(vm.policy.clone(), vm.shared.clone());
    assert_eq!(flow.on_request_headers(&host, true), Verdict::Continue);
    // `istioctl proxy-config log --level wasm:error` while the request is in flight.
    host.level.set(Some(LogLevel::Error));
    flow.on_done(&host);
    let events = events_at(&host);
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[1].0, events[1].1["event"].as_str()),
        (LogLevel::Error, Some("access"))
    );
    host.level.set(Some(LogLevel::Critical));
    vm.request(&host);
    assert_eq!(events_at(&host)[2].0, LogLevel::Critical);
    verifies(&host);
}

#[test]
fn with_the_log_off_requests_are_refused_and_the_loss_is_reported_when_it_returns() {
    let host = FakeHost::mtls(CHECKOUT);
    let vm = Vm::start(&host, POLICY);
    host.log_off.set(true);
    for _ in 0..2 {
        assert_eq!(vm.request(&host), Verdict::Stop);
        assert_eq!(host.replies.borrow().last().unwrap().0, 503);
    }
    assert_eq!(metric(&host, Metric::Denied("audit_unavailable")), 2);
    assert_eq!(metric(&host, Metric::AuditDropped), 2);
    assert_eq!(
        events_at(&host).len(),
        1,
        "only the config event, from before"
    );

    host.log_off.set(false);
    host.level.set(Some(LogLevel::Warn));
    assert_eq!(vm.request(&host), Verdict::Continue);
    let events: Vec<_> = events_at(&host).into_iter().map(|(_, e)| e).collect();
    assert_eq!(events.len(), 3);
    assert_eq!(
        (
            events[1]["event"].as_str(),
            events[1]["reason"].as_str(),
            events[1]["dropped"].as_u64()
        ),
        (Some("audit_failure"), Some("log_unavailable"), Some(2))
    );
    assert_eq!(events[2]["decision"], "allow");
    // The lost events were never sealed: the chain has no gap, the failure event says what's missing.
    assert_eq!(verifies(&host).events, 3);
    assert_eq!(metric(&host, Metric::AuditDropped), 2, "counted once");
}

#[test]
fn with_the_log_off_dry_run_serves_and_still_counts_what_it_loses() {
    let host = FakeHost::mtls(CHECKOUT);
    let vm = Vm::start(&host, &POLICY.replace("{\n", "{\"mode\": \"dry_run\",\n"));
    host.log_off.set(true);
    assert_eq!(vm.request(&host), Verdict::Continue);
    assert_eq!(metric(&host, Metric::AuditDropped), 1);
}

#[test]
fn with_the_otlp_sink_the_log_off_loses_nothing_and_refuses_nothing() {
    let host = FakeHost::mtls(CHECKOUT);
    let vm = Vm::start(&host, OTLP);
    host.log_off.set(true);
    assert_eq!(vm.request(&host), Verdict::Continue);
    assert_eq!(metric(&host, Metric::AuditDropped), 0);
    let body = audit_tick(&host, &vm.shared).expect("config and access events make a batch");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let records = &v["resourceLogs"][0]["scopeLogs"][0]["logRecords"];
    assert_eq!(records.as_array().map(Vec::len), Some(2));
    assert!(records[1]["body"]["stringValue"]
        .as_str()
        .unwrap()
        .contains(r#""event":"access""#));
}

#[test]
fn every_kind_of_event_names_each_key_once() {
    // The richest events: a config event with linter findings and key warnings, access events with
    // XFCC identity, certificate facts, tokens and an unscannable body, and an audit_failure event.
    let mut host = FakeHost::mtls(CHECKOUT);
    host.properties.insert(
        "connection.subject_peer_certificate".into(),
        b"CN=checkout".to_vec(),
    );
    host.properties.insert(
        "connection.sha256_peer_certificate_digest".into(),
        b"ab".repeat(32),
    );
    host.properties.insert(
        "connection.uri_san_local_certificate".into(),
        b"spiffe://cluster.local/ns/pay/sa/api".to_vec(),
    );
    host.request("POST", "/v1/charges?pan=4111111111111111");
    host.put(Map::RequestHeaders, "x-card", "4111 1111 1111 1111");
    host.put(Map::RequestHeaders, "content-encoding", "gzip");
    let shared = crate::audit::Auditor::new("vm".into(), None)
        .with_token_key(Some("token-key-0123456789"))
        .shared();
    let json = r#"{"authorization": {"default_action": "allow", "rules": [
        {"name": "any", "pan": ["response"]}]},
        "redaction": {"compressed_body": "pass"}}"#;
    let policy = configure(&host, json.as_bytes(), &shared);
    let mut flow = RequestFlow::new(policy.clone(), shared.clone());
    flow.on_request_headers(&host, false);
    host.put(Map::ResponseHeaders, ":status", "200");
    flow.on_response_headers(&host, true);
    flow.on_done(&host);
    assert!(configure(&host, OTLP.as_bytes(), &shared).is_some());
    assert!(
        configure(&host, b"{}", &shared).is_some(),
        "drops the queue"
    );
    assert!(configure(&host, b"{\"mode\": 1}", &shared).is_none());

    let logs = host.logs.borrow();
    let texts: Vec<&str> = logs
        .iter()
        .filter_map(|(_, l)| crate::audit::verify::event_text(l))
        .collect();
    let mut kinds = std::collections::BTreeSet::new();
    for text in &texts {
        let v = crate::audit::json::parse_unique(text).unwrap_or_else(|e| panic!("{e}: {text}"));
        kinds.insert(v["event"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["access", "audit_failure", "config"]
    );
    let config = crate::audit::json::parse_unique(texts[0]).unwrap();
    assert!(config["findings"].as_array().is_some_and(|f| !f.is_empty()));
    assert!(config["warnings"].as_array().is_some_and(|w| !w.is_empty()));
    let access = crate::audit::json::parse_unique(texts[1]).unwrap();
    assert!(access["pan_tokens"]
        .as_array()
        .is_some_and(|t| !t.is_empty()));
    assert_eq!(access["unscannable"][0], "request_body");
}
