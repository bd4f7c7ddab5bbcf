//! Under real Envoy in Istio ambient's shape: callers' traffic reaches a waypoint over HBONE (HTTP/2
//! CONNECT over mTLS, from a ztunnel stand-in presenting each caller's own certificate), and the
//! plugin runs on the waypoint's internal listener with `identity.source: istio_waypoint`. There
//! the connection carries no TLS: the caller is the tunnel's peer, as the waypoint's HBONE listener
//! recorded it in filter state. Every decision, mask and event of a sidecar holds here too.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mesh::{Mesh, Request, Response};

const CHECKOUT: &str = "spiffe://cluster.local/ns/shop/sa/checkout";
const NEWSLETTER: &str = "spiffe://cluster.local/ns/marketing/sa/newsletter";
const FRAUD: &str = "spiffe://cluster.local/ns/risk/sa/fraud-scoring";
const WAYPOINT: &str = "spiffe://cluster.local/ns/payments/sa/waypoint";

const POLICY: &str = r#"{
  "identity": {"source": "istio_waypoint", "trust_domains": ["cluster.local"]},
  "authorization": {"rules": [
    {"name": "checkout-may-use-v1", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/v1/*", "/fixture/*"]},
    {"name": "fraud-reads-cards", "principals": ["spiffe://cluster.local/ns/risk/sa/fraud-scoring"],
     "paths": ["/fixture/*"], "methods": ["GET"], "pan": ["response"]},
    {"name": "nobody-reaches-admin", "action": "deny", "paths": ["/admin/*"]}
  ]}
}"#;

fn start(envoy: &mesh::Envoy, name: &str) -> Mesh {
    Mesh::builder(envoy, name).config(POLICY).ambient().up()
}

/// The waypoint's audit trail holds events, and every chain of it verifies.
fn trail_verifies(mesh: &Mesh) {
    let report = mesh.verify_audit();
    assert!(
        report.problems.is_empty() && report.events > 0,
        "Envoy {}: {} events, problems {:?}",
        mesh.envoy,
        report.events,
        report.problems
    );
}

fn get(mesh: &Mesh, caller: &str, path: &str, id: &str) -> Response {
    mesh.send(caller, Request::get(path).header("x-request-id", id))
}

/// Caller, path, status, and the event's decision, reason and principal.
type Case = (
    &'static str,
    &'static str,
    u16,
    &'static str,
    &'static str,
    Option<&'static str>,
);

#[test]
fn callers_are_judged_by_the_identity_of_their_tunnel() {
    let cases: &[Case] = &[
        (
            "checkout",
            "/v1/charges",
            200,
            "allow",
            "rule",
            Some(CHECKOUT),
        ),
        (
            "newsletter",
            "/v1/charges",
            403,
            "deny",
            "default",
            Some(NEWSLETTER),
        ),
        (
            "checkout",
            "/admin/users",
            403,
            "deny",
            "rule",
            Some(CHECKOUT),
        ),
        (
            "foreign",
            "/v1/charges",
            403,
            "deny",
            "untrusted_identity",
            None,
        ),
        // No tunnel, so no tunnel identity: refused as plaintext is in a sidecar.
        ("plaintext", "/v1/charges", 403, "deny", "no_mtls", None),
    ];
    for envoy in mesh::envoys() {
        let mesh = start(&envoy, "ambient-authz");
        for (i, (caller, path, status, decision, reason, principal)) in cases.iter().enumerate() {
            let id = format!("ambient-{i}");
            let before = mesh.received().len();
            let resp = get(&mesh, caller, path, &id);
            let what = format!("Envoy {envoy}: {caller} {path}");
            assert_eq!(resp.status, *status, "{what}: {}", resp.text());
            assert_eq!(mesh.received().len() > before, *status == 200, "{what}");
            let e = mesh.access_event(&id);
            assert_eq!(
                (e["decision"].as_str(), e["reason"].as_str()),
                (Some(*decision), Some(*reason)),
                "{what}: {e}"
            );
            assert_eq!(e["principal"].as_str(), *principal, "{what}");
            // The waypoint's own identity comes with the tunnel, as the caller's does.
            let workload = (*caller != "plaintext").then_some(WAYPOINT);
            assert_eq!(e["workload"].as_str(), workload, "{what}");
            let source = principal.map(|_| "istio_waypoint");
            assert_eq!(e["identity_source"].as_str(), source, "{what}");
            // The internal listener's connection has no TLS of its own to report.
            assert_eq!(e["tls_version"], serde_json::Value::Null, "{what}");
        }
        // A tunnel client whose certificate is not from the mesh CA never gets a tunnel.
        let rogue = mesh::http::send(
            mesh.tunnel("rogue"),
            &Request::get("/v1/charges").header("x-request-id", "ambient-rogue"),
        );
        assert!(
            rogue.as_ref().map_or(true, |r| r.status != 200),
            "Envoy {envoy}: {:?}",
            rogue.map(|r| r.status)
        );
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !mesh
                .events()
                .iter()
                .any(|e| e["request"]["id"] == "ambient-rogue"),
            "Envoy {envoy}: the handshake fails before the filter"
        );
        trail_verifies(&mesh);
    }
}

#[test]
fn card_numbers_are_masked_both_ways_through_the_tunnel_unless_granted() {
    for envoy in mesh::envoys() {
        let mesh = start(&envoy, "ambient-pan");
        // Request headers and body, on their way to the backend.
        let resp = mesh.send(
            "checkout",
            Request::post(
                "/v1/charges",
                r#"{"card":"4111 1111 1111 1111","amount":1299}"#,
            )
            .header("x-request-id", "pan-req")
            .header("x-card", "5555555555554444"),
        );
        assert_eq!(resp.status, 200, "Envoy {envoy}: {}", resp.text());
        let got = mesh.received().pop().expect("the backend got the request");
        let seen = got.to_string();
        assert!(
            !seen.contains("4111 1111 1111 1111"),
            "Envoy {envoy}: {seen}"
        );
        assert!(
            seen.contains("**** **** **** 1111"),
            "Envoy {envoy}: {seen}"
        );
        assert!(!seen.contains("5555555555554444"), "Envoy {envoy}: {seen}");
        let e = mesh.access_event("pan-req");
        assert_eq!(e["pan"]["request_body"]["redacted"], 1, "{e}");
        assert_eq!(e["pan"]["request_headers"]["redacted"], 1, "{e}");

        // A streamed body, the card number split across chunks that arrive apart.
        let body = br#"{"note":"pay with 6011 0009 9013 9424 today"}"#;
        let chunks = body.chunks(7).map(<[u8]>::to_vec);
        let headers = [("x-request-id", "pan-stream".to_string())];
        let pause = Duration::from_millis(20);
        let resp = mesh.send_chunked("checkout", "POST", "/v1/notes", &headers, chunks, pause);
        assert_eq!(resp.status, 200, "Envoy {envoy}");
        let seen = mesh
            .received()
            .pop()
            .expect("the streamed request")
            .to_string();
        assert!(
            seen.contains("**** **** **** 9424"),
            "Envoy {envoy}: {seen}"
        );

        // A response with a card number in a header and one split across streamed chunks.
        let streamed = get(&mesh, "checkout", "/v1/stream-card", "pan-resp-stream");
        assert_eq!(streamed.status, 200, "Envoy {envoy}");
        assert_eq!(streamed.header("x-card-on-file"), Some("************4444"));
        assert_eq!(
            streamed.text(),
            "card on file: **** **** **** 1111, thank you"
        );
        let e = mesh.access_event("pan-resp-stream");
        assert_eq!(e["pan"]["response_headers"]["redacted"], 1, "{e}");
        assert_eq!(e["pan"]["response_body"]["redacted"], 1, "{e}");

        // The response: masked for checkout, in clear for fraud-scoring's grant.
        let masked = get(&mesh, "checkout", "/fixture/card-on-file.json", "pan-resp");
        assert_eq!(masked.status, 200, "Envoy {envoy}");
        assert!(
            masked.text().contains("************1111"),
            "{}",
            masked.text()
        );
        let granted = get(&mesh, "fraud", "/fixture/card-on-file.json", "pan-grant");
        assert_eq!(granted.status, 200, "Envoy {envoy}");
        assert!(granted.text().contains("4111111111111111"), "Envoy {envoy}");
        let e = mesh.access_event("pan-grant");
        assert_eq!(e["rule"], "fraud-reads-cards", "{e}");
        assert_eq!(e["principal"], FRAUD, "{e}");
        assert_eq!(e["pan"]["response_body"]["passed"], 1, "{e}");
        trail_verifies(&mesh);
    }
}

#[test]
fn headers_claiming_another_caller_change_nothing() {
    for envoy in mesh::envoys() {
        let mesh = start(&envoy, "ambient-spoof");
        // On the inner request: Istio's filter state key as a header, and a forged XFCC.
        let resp = mesh.send(
            "newsletter",
            Request::get("/v1/charges")
                .header("x-request-id", "spoof-inner")
                .header("io.istio.peer_principal", CHECKOUT)
                .header("x-forwarded-client-cert", format!("URI={CHECKOUT}")),
        );
        assert_eq!(resp.status, 403, "Envoy {envoy}");
        let e = mesh.access_event("spoof-inner");
        assert_eq!(
            (&e["principal"], &e["reason"]),
            (&NEWSLETTER.into(), &"default".into())
        );
        // On the CONNECT request: the same claims for fraud-scoring, whose grant would let card
        // numbers through; the tunnel's certificate (checkout) still decides.
        let resp = get(
            &mesh,
            "checkout-spoofing",
            "/fixture/card-on-file.json",
            "spoof-connect",
        );
        assert_eq!(resp.status, 200, "Envoy {envoy}");
        assert!(!resp.text().contains("4111111111111111"), "Envoy {envoy}");
        let e = mesh.access_event("spoof-connect");
        assert_eq!(e["principal"], CHECKOUT, "{e}");
        assert_eq!(e["rule"], "checkout-may-use-v1", "{e}");
    }
}

/// One HTTP/1.1 request on a kept-alive connection, and its status (the response is read whole
/// by its content-length).
fn exchange(stream: &mut TcpStream, path: &str, id: &str) -> u16 {
    let req = format!("GET {path} HTTP/1.1\r\nhost: payments-api\r\nx-request-id: {id}\r\n\r\n");
    stream.write_all(req.as_bytes()).expect("write the request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream
            .read_exact(&mut byte)
            .expect("read the response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a content-length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("read the body");
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status")
}

#[test]
fn interleaved_tunnels_keep_their_own_identities() {
    for envoy in mesh::envoys() {
        let mesh = start(&envoy, "ambient-interleave");
        let open = |caller: &str| {
            let s = TcpStream::connect(("127.0.0.1", mesh.tunnel(caller))).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(20))).ok();
            s
        };
        // Two long-lived tunnels, one request on each in turn, then a third tunnel meanwhile.
        let (mut checkout, mut newsletter) = (open("checkout"), open("newsletter"));
        for round in 0..4 {
            let a = exchange(&mut checkout, "/v1/charges", &format!("c-{round}"));
            let b = exchange(&mut newsletter, "/v1/charges", &format!("n-{round}"));
            assert_eq!((a, b), (200, 403), "Envoy {envoy}: round {round}");
            if round == 1 {
                let mut fraud = open("fraud");
                assert_eq!(exchange(&mut fraud, "/v1/charges", "f-1"), 403);
            }
        }
        for round in 0..4 {
            let c = mesh.access_event(&format!("c-{round}"));
            let n = mesh.access_event(&format!("n-{round}"));
            assert_eq!(
                (&c["principal"], &n["principal"]),
                (&CHECKOUT.into(), &NEWSLETTER.into())
            );
        }
        assert_eq!(mesh.access_event("f-1")["principal"], FRAUD);
        // One event per request: nine requests, nine access events.
        let access = mesh
            .events()
            .iter()
            .filter(|e| e["event"] == "access")
            .count();
        assert_eq!(access, 9, "Envoy {envoy}");
    }
}
