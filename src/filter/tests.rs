//! The whole request flow against a fake host: decisions, local replies and audit lines.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::host::HostError;

const CHECKOUT: &str = "spiffe://cluster.local/ns/shop/sa/checkout";

/// A local reply as the fake host recorded it: status, headers, body.
type Reply = (u32, Vec<(String, String)>, String);

#[derive(Default)]
struct FakeHost {
    properties: HashMap<String, Vec<u8>>,
    failing_properties: bool,
    request_headers: HashMap<String, String>,
    response_headers: HashMap<String, String>,
    replies: RefCell<Vec<Reply>>,
    logs: RefCell<Vec<(LogLevel, String)>>,
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
        self.request_headers.insert(":method".into(), method.into());
        self.request_headers.insert(":path".into(), path.into());
        self.request_headers
            .insert(":authority".into(), "payments-api".into());
        self.request_headers
            .insert("x-request-id".into(), "req-1".into());
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
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        if self.failing_properties {
            return Err(HostError("BadArgument".into()));
        }
        Ok(self.properties.get(&path.join(".")).cloned())
    }
    fn request_header(&self, name: &str) -> Option<String> {
        self.request_headers.get(name).cloned()
    }
    fn response_header(&self, name: &str) -> Option<String> {
        self.response_headers.get(name).cloned()
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
        let body = String::from_utf8(body.to_vec()).unwrap();
        self.replies.borrow_mut().push((status, headers, body));
        Ok(())
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_795_567_323_045)
    }
}

const POLICY: &str = r#"{
  "identity": {"trust_domains": ["cluster.local"]},
  "authorization": {"rules": [
    {"name": "checkout-may-charge", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/v1/charges"], "methods": ["POST"]}
  ]}
}"#;

fn policy(json: &str) -> Option<Rc<Policy>> {
    configure(&FakeHost::default(), json.as_bytes())
}

fn run(host: &mut FakeHost, json: &str) -> Verdict {
    let mut flow = RequestFlow::new(policy(json));
    let verdict = flow.on_request_headers(host);
    if verdict == Verdict::Continue {
        host.response_headers.insert(":status".into(), "200".into());
        flow.on_response_headers(host);
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
}

#[test]
fn request_id_is_escaped_in_the_denial_body() {
    let mut host = FakeHost::mtls("spiffe://cluster.local/ns/x/sa/y");
    host.request_headers
        .insert("x-request-id".into(), "a\"b".into());
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
    assert!(configure(&host, bad.as_bytes()).is_none());
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
        "/v1/charges?pan=****-****-****-****"
    );
}
