//! Heartbeats and stops: the timer writes a `heartbeat` a period after the last one, naming the
//! access chain's last seq and mac; a `stop` ends the chain; a host without a timer promises none.

use super::*;
use crate::audit::verify::{Keyring, Verifier};

const KEY: &str = "0123456789abcdef";
const CONFIG: &str = r#"{
  "identity": {"trust_domains": ["cluster.local"]},
  "authorization": {"rules": [
    {"name": "checkout-may-charge", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/v1/charges"], "methods": ["POST"]}
  ]},
  "audit": {"sink": "access_log", "heartbeat_s": 30}
}"#;

fn events(host: &FakeHost) -> Vec<serde_json::Value> {
    host.logs
        .borrow()
        .iter()
        .filter_map(|(_, m)| serde_json::from_str(m).ok())
        .collect()
}

fn request(host: &FakeHost, policy: &Option<Arc<Policy>>, shared: &SharedAuditor) -> String {
    host.state.borrow_mut().clear();
    let mut flow = RequestFlow::new(policy.clone(), shared.clone());
    flow.on_request_headers(host, true);
    flow.on_done(host);
    let line = host.state.borrow().get("wasm.pmg_audit").cloned();
    String::from_utf8(line.expect("an access event")).expect("text")
}

#[test]
fn the_timer_writes_a_heartbeat_each_period_naming_the_access_chain() {
    let host = FakeHost::mtls(CHECKOUT);
    let shared = crate::audit::Auditor::new("vm".into(), Some(KEY)).shared();
    let policy = configure(&host, CONFIG.as_bytes(), &shared);
    assert_eq!(events(&host)[0]["heartbeat_s"], 30);
    let mut access = vec![request(&host, &policy, &shared)];
    host.later.set(Duration::from_secs(29));
    audit_tick(&host, &shared);
    assert_eq!(events(&host).len(), 1, "not due before 30 s");
    access.push(request(&host, &policy, &shared));
    host.later.set(Duration::from_secs(30));
    audit_tick(&host, &shared);
    let beat = events(&host).pop().unwrap();
    assert_eq!(beat["event"], "heartbeat");
    let last: serde_json::Value = serde_json::from_str(&access[1]).unwrap();
    assert_eq!(
        (
            &beat["chains"][0]["chain"],
            &beat["chains"][0]["seq"],
            &beat["chains"][0]["mac"]
        ),
        (
            &serde_json::json!("vm.access"),
            &serde_json::json!(2),
            &last["mac"]
        )
    );
    audit_tick(&host, &shared);
    assert_eq!(events(&host).len(), 2, "one heartbeat per period");

    // The trail is whole until a period (and the tolerance) after the heartbeat, then it is not.
    let ring = Keyring::single(KEY.as_bytes());
    let at = |s: u64| {
        let t = host.now() - host.later.get() + Duration::from_secs(s);
        crate::audit::parse_rfc3339_millis(&crate::audit::rfc3339_millis(t)).unwrap()
    };
    let problems = |until: i64| {
        let logs = host.logs.borrow();
        let mut v = Verifier::new(&ring, false).until(until);
        for line in logs
            .iter()
            .map(|(_, l)| l.as_str())
            .chain(access.iter().map(String::as_str))
        {
            v.feed(line);
        }
        v.finish().problems
    };
    assert_eq!(problems(at(63)), vec![], "30 s and a tolerance of 3 s");
    assert_eq!(problems(at(64)).len(), 2, "{:?}", problems(at(64)));

    // A stop ends both chains: the trail stays whole however late the period ends.
    host.later.set(Duration::from_secs(45));
    audit_stop(&host, &shared, "shutdown");
    let stop = events(&host).pop().unwrap();
    assert_eq!(
        (&stop["event"], &stop["reason"]),
        (&serde_json::json!("stop"), &serde_json::json!("shutdown"))
    );
    assert_eq!(problems(at(100_000)), vec![]);
}

#[test]
fn a_host_without_a_timer_promises_no_heartbeat() {
    let host = FakeHost {
        no_timer: true,
        ..FakeHost::mtls(CHECKOUT)
    };
    let shared = crate::audit::Auditor::new("vm".into(), Some(KEY)).shared();
    let _policy = configure(&host, CONFIG.as_bytes(), &shared);
    let config = events(&host).pop().unwrap();
    assert_eq!(config["heartbeat_s"], 0);
    assert!(
        config["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("audit.heartbeat_s")),
        "{config}"
    );
    host.later.set(Duration::from_secs(3600));
    audit_tick(&host, &shared);
    assert_eq!(events(&host).len(), 1);
}
