//! The `access_log` sink: access events go into the stream's filter state, sealed in a chain of
//! their own, for Envoy's access log to write; the VM's other events stay in the proxy log.

use super::*;

const ACCESS_LOG: &str = r#"{
  "identity": {"trust_domains": ["cluster.local"]},
  "authorization": {"rules": [
    {"name": "checkout-may-charge", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/v1/charges"], "methods": ["POST"]}
  ]},
  "audit": {"sink": "access_log"}
}"#;

const KEY: &str = "0123456789abcdef";

struct Vm {
    shared: SharedAuditor,
    policy: Option<Arc<Policy>>,
}

impl Vm {
    fn start(host: &FakeHost) -> Vm {
        let shared = crate::audit::Auditor::new("vm".into(), Some(KEY)).shared();
        let policy = configure(host, ACCESS_LOG.as_bytes(), &shared);
        assert!(policy.is_some());
        Vm { shared, policy }
    }

    /// One request on a fresh stream; returns its verdict and the filter state it left.
    fn request(&self, host: &FakeHost) -> (Verdict, Option<String>) {
        host.state.borrow_mut().clear();
        let mut flow = RequestFlow::new(self.policy.clone(), self.shared.clone());
        let verdict = flow.on_request_headers(host, true);
        if verdict == Verdict::Continue {
            host.put(Map::ResponseHeaders, ":status", "200");
            flow.on_response_headers(host, true);
        }
        flow.on_done(host);
        (verdict, state(host))
    }
}

fn state(host: &FakeHost) -> Option<String> {
    host.state
        .borrow()
        .get("wasm.pmg_audit")
        .map(|v| String::from_utf8(v.clone()).unwrap())
}

#[test]
fn access_events_go_to_filter_state_sealed_in_their_own_chain() {
    let host = FakeHost::mtls(CHECKOUT);
    let vm = Vm::start(&host);
    let mut access_log = vec![];
    for _ in 0..3 {
        let (verdict, line) = vm.request(&host);
        assert_eq!(verdict, Verdict::Continue);
        access_log.push(line.expect("an event in filter state"));
    }
    // The proxy log has the config event only, naming the chain of the access log.
    let events = host.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"], "config");
    assert_eq!(events[0]["access_chain"], "vm.access");
    assert_eq!(events[0]["chain"], "vm");
    // The access log, as Envoy would write it, verifies alone: seq 1, 2, 3 of chain vm.access.
    let r = crate::audit::verify::verify(
        access_log.iter().map(String::as_str),
        Some(KEY.as_bytes()),
        false,
    );
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.chains.get("vm.access"), Some(&3));
    let first: serde_json::Value = serde_json::from_str(&access_log[0]).unwrap();
    assert_eq!(
        (first["event"].as_str(), first["status"].as_u64()),
        (Some("access"), Some(200))
    );
    assert_eq!(
        host.metrics.borrow()["outcome=.=emitted;.;pci_mesh_guard_audit_events_total"],
        4
    );
}

#[test]
fn a_denied_request_is_recorded_when_its_stream_ends() {
    let mut host = FakeHost::mtls("spiffe://cluster.local/ns/marketing/sa/newsletter");
    host.request("POST", "/v1/charges");
    let vm = Vm::start(&host);
    let mut flow = RequestFlow::new(vm.policy.clone(), vm.shared.clone());
    assert_eq!(flow.on_request_headers(&host, true), Verdict::Stop);
    assert_eq!(host.replies.borrow()[0].0, 403);
    assert_eq!(state(&host), None, "not sealed before the stream ends");
    // The filter's own reply passes untouched.
    host.put(Map::ResponseHeaders, ":status", "403");
    assert_eq!(flow.on_response_headers(&host, true), Verdict::Continue);
    flow.on_done(&host);
    let event: serde_json::Value = serde_json::from_str(&state(&host).unwrap()).unwrap();
    assert_eq!(
        (
            event["decision"].as_str(),
            event["status"].as_u64(),
            event["seq"].as_u64()
        ),
        (Some("deny"), Some(403), Some(1))
    );
    assert_eq!(
        host.events().len(),
        1,
        "only the config event in the proxy log"
    );
}

#[test]
fn with_the_log_off_requests_are_still_served_and_recorded() {
    let host = FakeHost::mtls(CHECKOUT);
    let vm = Vm::start(&host);
    host.log_off.set(true);
    let (verdict, line) = vm.request(&host);
    assert_eq!(verdict, Verdict::Continue);
    assert!(line.is_some_and(|l| l.contains(r#""decision":"allow""#)));
    assert!(!host
        .metrics
        .borrow()
        .contains_key("outcome=.=dropped;.;pci_mesh_guard_audit_events_total"));
}

#[test]
fn a_refused_filter_state_is_counted_and_reported() {
    let mut host = FakeHost::mtls(CHECKOUT);
    host.failing_state = true;
    let vm = Vm::start(&host);
    let (verdict, line) = vm.request(&host);
    assert_eq!((verdict, line), (Verdict::Continue, None));
    assert_eq!(
        host.metrics.borrow()["outcome=.=dropped;.;pci_mesh_guard_audit_events_total"],
        1
    );
    let failure = host
        .events()
        .into_iter()
        .find(|e| e["event"] == "audit_failure")
        .expect("reported in the proxy log");
    assert_eq!(failure["reason"], "state_unavailable");
    assert_eq!(failure["dropped"], 1);
}
