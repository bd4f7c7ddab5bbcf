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

/// A waypoint's internal connection: no TLS of its own, the tunnel's identities in filter state.
fn waypoint_connection(id: u64, peer: Option<&str>) -> FakeHost {
    let mut host = FakeHost::default();
    host.request("GET", "/v1/orders");
    on_connection(&mut host, id);
    host.properties
        .insert("source.address".into(), b"127.0.0.6:40001".to_vec());
    if let Some(peer) = peer {
        host.properties.insert(
            "filter_state.io.istio.peer_principal".into(),
            peer.as_bytes().to_vec(),
        );
    }
    host.properties.insert(
        "filter_state.io.istio.local_principal".into(),
        b"spiffe://cluster.local/ns/payments/sa/waypoint".to_vec(),
    );
    host
}

const WAYPOINT_POLICY: &str = r#"{"identity": {"source": "istio_waypoint"},
    "authorization": {"rules": [{"name": "checkout", "principals": [
        "spiffe://cluster.local/ns/shop/sa/checkout"]}]}}"#;

#[test]
fn in_a_waypoint_each_tunnel_is_judged_by_its_own_peer_and_read_once() {
    let (policy, cache) = (policy(WAYPOINT_POLICY), ConnectionCache::shared());
    let mut host = waypoint_connection(21, Some(CHECKOUT));
    // A certificate on the connection itself is not what names a waypoint's caller.
    host.properties.insert(
        "connection.uri_san_peer_certificate".into(),
        b"spiffe://cluster.local/ns/marketing/sa/newsletter".to_vec(),
    );
    let (v1, e1, reads1) = request(&host, &policy, &cache);
    let (v2, _, reads2) = request(&host, &policy, &cache);
    assert_eq!((v1, v2), (Verdict::Continue, Verdict::Continue), "{e1}");
    assert_eq!(
        (reads1, reads2),
        (4, 1),
        "id, peer, source, workload; then the id"
    );
    assert_eq!(e1["principal"], CHECKOUT);
    assert_eq!(e1["identity_source"], "istio_waypoint");
    assert_eq!(
        e1["workload"],
        "spiffe://cluster.local/ns/payments/sa/waypoint"
    );
    assert_eq!(e1["source"], "127.0.0.6:40001");
    assert_eq!(e1["tls_version"], serde_json::Value::Null);

    // Another tunnel, another caller, interleaved with the first.
    let other = waypoint_connection(
        22,
        Some("spiffe://cluster.local/ns/marketing/sa/newsletter"),
    );
    let (v3, e3, _) = request(&other, &policy, &cache);
    assert_eq!((v3, &e3["reason"]), (Verdict::Stop, &"default".into()));
    assert_eq!(request(&host, &policy, &cache).0, Verdict::Continue);

    // A stream that came through no tunnel: no identity, refused as plaintext is.
    let bare = waypoint_connection(23, None);
    let (v4, e4, _) = request(&bare, &policy, &cache);
    assert_eq!((v4, &e4["reason"]), (Verdict::Stop, &"no_mtls".into()));
    assert_eq!(e4["identity_source"], serde_json::Value::Null);
}

#[test]
fn facts_kept_for_one_identity_source_are_read_again_for_the_other() {
    let cache = ConnectionCache::shared();
    let mut host = waypoint_connection(31, Some(CHECKOUT));
    host.properties.insert("connection.mtls".into(), vec![1]);
    host.properties
        .insert("connection.tls_version".into(), b"TLSv1.3".to_vec());
    host.properties.insert(
        "connection.uri_san_peer_certificate".into(),
        b"spiffe://cluster.local/ns/marketing/sa/newsletter".to_vec(),
    );
    let sidecar = policy(POLICY);
    let (_, e1, _) = request(&host, &sidecar, &cache);
    assert_eq!(e1["identity_source"], "certificate");
    let (_, e2, reads) = request(&host, &policy(WAYPOINT_POLICY), &cache);
    assert_eq!(
        (&e2["principal"], &e2["identity_source"], reads),
        (&CHECKOUT.into(), &"istio_waypoint".into(), 4)
    );
}
