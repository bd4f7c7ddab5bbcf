//! The facts of a connection are read once and kept by connection id: a request on a known
//! connection makes one property call, while another connection, a failed read and each request's
//! XFCC header are never answered from what was kept.

use super::*;

fn on_connection(host: &mut FakeHost, id: u64) {
    host.properties
        .insert("connection.id".into(), id.to_le_bytes().to_vec());
}

/// One request through a flow sharing `cache`: its verdict, its access event, and the property
/// calls it made.
fn request(
    host: &FakeHost,
    policy: &Option<Arc<Policy>>,
    cache: &SharedConnections,
) -> (Verdict, serde_json::Value, u64) {
    let before = host.calls.borrow().get("property").copied().unwrap_or(0);
    let mut flow = RequestFlow::new(policy.clone(), auditor()).with_connections(cache.clone());
    let verdict = flow.on_request_headers(host, true);
    flow.on_done(host);
    let after = host.calls.borrow().get("property").copied().unwrap_or(0);
    let event = host.events().pop().expect("an access event");
    (verdict, event, after - before)
}

#[test]
fn a_second_request_on_a_connection_reads_only_its_id() {
    let mut host = FakeHost::mtls(CHECKOUT);
    host.properties.insert(
        "connection.subject_peer_certificate".into(),
        b"CN=checkout".to_vec(),
    );
    on_connection(&mut host, 7);
    let (policy, cache) = (policy(POLICY), ConnectionCache::shared());
    let (v1, e1, reads1) = request(&host, &policy, &cache);
    let (v2, e2, reads2) = request(&host, &policy, &cache);
    assert_eq!((v1, v2), (Verdict::Continue, Verdict::Continue));
    assert_eq!((reads1, reads2), (8, 1), "id + 7 facts, then the id alone");
    for key in [
        "principal",
        "peer_subject",
        "source",
        "tls_version",
        "decision",
    ] {
        assert_eq!(e1[key], e2[key], "{key}");
    }
    assert_eq!(cache.borrow().len(), 1);
}

#[test]
fn another_connection_is_judged_by_its_own_certificate() {
    let mut host = FakeHost::mtls(CHECKOUT);
    on_connection(&mut host, 1);
    let (policy, cache) = (policy(POLICY), ConnectionCache::shared());
    assert_eq!(request(&host, &policy, &cache).0, Verdict::Continue);
    host.properties.insert(
        "connection.uri_san_peer_certificate".into(),
        b"spiffe://cluster.local/ns/marketing/sa/newsletter".to_vec(),
    );
    on_connection(&mut host, 2);
    let (verdict, event, reads) = request(&host, &policy, &cache);
    assert_eq!(verdict, Verdict::Stop);
    assert_eq!(
        event["principal"],
        "spiffe://cluster.local/ns/marketing/sa/newsletter"
    );
    assert_eq!(reads, 8);
}

#[test]
fn without_a_connection_id_every_request_reads_the_facts() {
    let host = FakeHost::mtls(CHECKOUT);
    let (policy, cache) = (policy(POLICY), ConnectionCache::shared());
    for _ in 0..2 {
        let (verdict, _, reads) = request(&host, &policy, &cache);
        assert_eq!((verdict, reads), (Verdict::Continue, 8));
    }
    assert!(cache.borrow().is_empty());
}

#[test]
fn a_failed_read_is_refused_and_not_kept() {
    let mut host = FakeHost::mtls(CHECKOUT);
    on_connection(&mut host, 3);
    host.failing_property = Some("connection.tls_version");
    let (policy, cache) = (policy(POLICY), ConnectionCache::shared());
    let (verdict, event, _) = request(&host, &policy, &cache);
    assert_eq!(
        (verdict, event["reason"].as_str()),
        (Verdict::Stop, Some("weak_tls"))
    );
    assert!(cache.borrow().is_empty(), "nothing kept from a failed read");
    host.failing_property = None;
    let (verdict, _, reads) = request(&host, &policy, &cache);
    assert_eq!((verdict, reads), (Verdict::Continue, 8));
}

#[test]
fn the_oldest_connection_is_forgotten_first() {
    let mut host = FakeHost::mtls(CHECKOUT);
    let (policy, cache) = (policy(POLICY), ConnectionCache::shared());
    for id in 0..=CONNECTIONS_KEPT as u64 {
        on_connection(&mut host, id);
        request(&host, &policy, &cache);
        host.logs.borrow_mut().clear();
    }
    assert_eq!(cache.borrow().len(), CONNECTIONS_KEPT);
    on_connection(&mut host, CONNECTIONS_KEPT as u64);
    assert_eq!(request(&host, &policy, &cache).2, 1, "the newest is kept");
    on_connection(&mut host, 0);
    assert_eq!(
        request(&host, &policy, &cache).2,
        8,
        "the oldest was forgotten"
    );
}

#[test]
fn xfcc_is_read_per_request_even_on_a_known_connection() {
    let json = r#"{"identity": {"trust_xfcc": true},
        "authorization": {"rules": [{"name": "checkout", "principals": [
            "spiffe://cluster.local/ns/shop/sa/checkout"]}]}}"#;
    let mut host = FakeHost::mtls(CHECKOUT);
    // A front proxy's connection: its certificate names no workload.
    host.properties
        .remove("connection.uri_san_peer_certificate");
    on_connection(&mut host, 9);
    let (policy, cache) = (policy(json), ConnectionCache::shared());
    host.put(
        Map::RequestHeaders,
        "x-forwarded-client-cert",
        &format!("URI={CHECKOUT}"),
    );
    let (verdict, event, _) = request(&host, &policy, &cache);
    assert_eq!(
        (verdict, event["identity_source"].as_str()),
        (Verdict::Continue, Some("xfcc"))
    );
    host.put(
        Map::RequestHeaders,
        "x-forwarded-client-cert",
        "URI=spiffe://cluster.local/ns/marketing/sa/newsletter",
    );
    let (verdict, event, reads) = request(&host, &policy, &cache);
    assert_eq!(reads, 1);
    assert_eq!(verdict, Verdict::Stop);
    assert_eq!(
        event["principal"],
        "spiffe://cluster.local/ns/marketing/sa/newsletter"
    );
}
