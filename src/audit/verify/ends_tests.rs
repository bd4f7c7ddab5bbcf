//! Where chains end: a VM's proxy-log chain with heartbeats that vouch for its access chain, cut
//! in each way a log is lost, and ended by a `stop`.

use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::audit::{parse_rfc3339_millis, rfc3339_millis, Auditor};

const KEY: &str = "test-key-0123456789";
const T0: u64 = 1_796_000_000;

/// The proxy log and the access log of one VM: a `config` event at T0 with a 60 s heartbeat, an
/// access event every 10 s for 5 minutes with a heartbeat each minute, then a `stop` if `stop`.
fn trail(stop: bool) -> (Vec<String>, Vec<String>) {
    let mut a = Auditor::new("vm".into(), Some(KEY));
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(T0 + s);
    a.set_heartbeat(Some(Duration::from_secs(60)), at(0));
    let mut proxy = vec![a.line_json(format!(
        r#"{{"schema":"{SCHEMA}","ts":"{}","event":"config","heartbeat_s":60}}"#,
        rfc3339_millis(at(0))
    ))];
    let mut access = Vec::new();
    for s in (10..=300).step_by(10) {
        access.push(a.access_chain.seal(format!(
            r#"{{"schema":"{SCHEMA}","ts":"{}","event":"access"}}"#,
            rfc3339_millis(at(s))
        )));
        if a.heartbeat_due(at(s)) {
            let beat = a.lifecycle(at(s), None);
            proxy.push(a.line(&beat));
        }
    }
    if stop {
        let end = a.lifecycle(at(305), Some("shutdown"));
        proxy.push(a.line(&end));
    }
    (proxy, access)
}

fn until(s: u64) -> i64 {
    parse_rfc3339_millis(&rfc3339_millis(UNIX_EPOCH + Duration::from_secs(T0 + s))).unwrap()
}

fn check(logs: &[&[String]], end: Option<u64>) -> Vec<Problem> {
    let ring = Keyring::single(KEY.as_bytes());
    let mut v = Verifier::new(&ring, false);
    if let Some(s) = end {
        v = v.until(until(s));
    }
    for line in logs.iter().flat_map(|l| l.iter()) {
        v.feed(line);
    }
    v.finish().problems
}

#[test]
fn a_whole_trail_of_a_running_proxy_is_whole_up_to_a_period_after_its_last_heartbeat() {
    let (proxy, access) = trail(false);
    assert!(proxy.len() >= 6, "{} proxy events", proxy.len());
    assert_eq!(check(&[&proxy, &access], None), vec![]);
    // The last heartbeat came at 300 s: up to 60 s (and the tolerance) later the trail is whole.
    assert_eq!(check(&[&proxy, &access], Some(362)), vec![]);
    let late = check(&[&proxy, &access], Some(400));
    assert_eq!(late.len(), 2, "both chains went silent: {late:?}");
    assert!(late.iter().all(|p| p.kind == "truncated"));
}

#[test]
fn an_access_log_cut_while_its_proxy_log_is_whole_is_truncated_from_the_first_lost_seq() {
    let (proxy, mut access) = trail(false);
    access.truncate(26);
    let problems = check(&[&proxy, &access], None);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind, "truncated");
    assert!(
        problems[0]
            .message
            .contains("chain vm.access ends at seq 26")
            && problems[0].message.contains("seq 27 to 30 are missing"),
        "{}",
        problems[0].message
    );
    // Only its last event lost: the heartbeat written after it named it.
    let (proxy, mut access) = trail(false);
    access.truncate(29);
    let heartbeat_at_29 = check(&[&proxy, &access], None);
    assert!(heartbeat_at_29.iter().any(|p| p.kind == "truncated"));
}

#[test]
fn a_proxy_log_cut_at_its_end_is_truncated_once_a_period_has_passed() {
    let (mut proxy, access) = trail(false);
    // The heartbeats of minutes 4 and 5 are lost; the proxy still ran at 300 s.
    proxy.truncate(proxy.len() - 2);
    let problems = check(&[&proxy, &access], Some(301));
    assert!(
        problems
            .iter()
            .any(|p| p.kind == "truncated" && p.message.starts_with("chain vm:")),
        "{problems:?}"
    );
    // Without the period's end only the access chain's own evidence counts: nothing says more.
    assert_eq!(check(&[&proxy, &access], None), vec![]);
}

#[test]
fn a_stop_closes_both_chains_for_good_and_losing_it_shows() {
    let (proxy, access) = trail(true);
    assert_eq!(check(&[&proxy, &access], Some(100_000)), vec![]);
    let mut cut = proxy.clone();
    cut.pop();
    let problems = check(&[&cut, &access], Some(100_000));
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn with_the_periods_end_a_chain_named_by_a_checkpoint_but_absent_is_truncated() {
    let (proxy, _) = trail(true);
    assert_eq!(check(&[&proxy], None), vec![], "the access log not given");
    let problems = check(&[&proxy], Some(400));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("chain vm.access has no event"));
    // A checkpoint written after the period's end says nothing of the period.
    let (proxy, access) = trail(false);
    let early: Vec<String> = access.iter().take(5).cloned().collect();
    let problems = check(&[&proxy, &early], Some(55));
    assert_eq!(
        problems,
        vec![],
        "the first heartbeat (60 s) is after the period"
    );
}
