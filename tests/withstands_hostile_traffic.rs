//! Hostile traffic through real Envoy: a body trickled a byte at a time, header values at and past
//! Envoy's limits, duplicate and oddly cased headers, values built to forge or break an audit
//! line, a client that hangs up mid-body, and a backend that resets mid-response. After each, the
//! mesh is sound: every process is up, no card number reached the backend or the caller, the audit
//! trail parses and its chains verify, and an ordinary request is served. (The mesh also checks,
//! when it is dropped, that no card number is in any log and that every event names each key once.)
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mesh::{Mesh, Request};
use serde_json::Value;

/// The demo's policy, with one more rule letting checkout call `method` on `path`.
fn demo_config_and(rule: &str, method: &str, path: &str) -> String {
    let text =
        std::fs::read_to_string(mesh::root().join("envoy-config/demo-plugin-config.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["authorization"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": rule,
            "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
            "paths": [path],
            "methods": [method]
        }));
    v.to_string()
}

/// The card numbers of `TEST_PANS` found in `text`, written plain or in groups.
fn pans_in(text: &str) -> Vec<&'static str> {
    let digits = mesh::joined_digits_for_tests(text);
    mesh::TEST_PANS
        .iter()
        .copied()
        .filter(|p| digits.contains(p))
        .collect()
}

/// The checks that follow every hostile request.
fn assert_sound(mesh: &Mesh, what: &str) {
    let v = &mesh.envoy;
    for (name, pid) in mesh.pids() {
        assert!(mesh::process_alive(pid), "Envoy {v}, {what}: {name} died");
    }
    for r in mesh.received() {
        let seen = r.to_string();
        assert!(
            pans_in(&seen).is_empty(),
            "Envoy {v}, {what}: the backend received a card number: {}",
            &seen[..seen.len().min(300)]
        );
    }
    let ok = mesh.send(
        "checkout",
        Request::post("/v1/charges", r#"{"amount":1}"#).header("x-request-id", "after"),
    );
    assert_eq!(ok.status, 200, "Envoy {v}, {what}: the next request");
    // Events are written when a stream ends, which can be just after its answer.
    std::thread::sleep(Duration::from_millis(300));
    let report = mesh.verify_audit();
    assert!(
        report.problems.is_empty(),
        "Envoy {v}, {what}: the audit trail: {:?}",
        report.problems
    );
    assert!(report.events > 0);
}

/// Sends raw bytes to the client sidecar and reads whatever comes back until it closes.
fn raw(mesh: &Mesh, wire: &[u8], then_close: bool) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", mesh.outbound)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(wire).unwrap();
    if then_close {
        drop(s);
        return vec![];
    }
    let mut got = vec![];
    let _ = s.read_to_end(&mut got);
    got
}

#[test]
fn hostile_requests_and_responses_leave_the_mesh_sound() {
    for envoy in mesh::envoys() {
        let v = envoy.to_string();
        let mesh = Mesh::builder(&envoy, "hostile")
            .config(&demo_config_and(
                "checkout-may-get-the-reset",
                "GET",
                "/reset-midway",
            ))
            .up();

        // A body trickled one byte per chunk, a card number in it.
        let body = br#"{"card":"4111 1111 1111 1111","amount":1299}"#;
        let r = mesh::http::send_chunked(
            mesh.outbound,
            "POST",
            "/v1/charges",
            &[
                ("x-mesh-caller", "checkout".into()),
                ("content-type", "application/json".into()),
                ("x-request-id", "trickle".into()),
            ],
            body.iter().map(|b| vec![*b]),
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(r.status, 200, "Envoy {v}: trickled body");
        let got = mesh.received();
        let last = got.last().unwrap();
        assert_eq!(last["body_bytes"], body.len(), "Envoy {v}: length kept");
        assert!(last["body"].as_str().unwrap().contains("\"card\":\""));
        assert_sound(&mesh, "a body trickled a byte per chunk");

        // One header value of 40 KiB of card numbers: served, every one masked.
        let cards = "4111 1111 1111 1111, 5555555555554444; ".repeat(2000);
        let r = mesh.send(
            "checkout",
            Request::post("/v1/charges", "{}").header("x-cards", &cards[..40 * 1024]),
        );
        assert_eq!(r.status, 200, "Envoy {v}: a 40 KiB header");
        assert_sound(&mesh, "a 40 KiB header of card numbers");
        // Past Envoy's 60 KiB limit: refused by Envoy before anything is forwarded.
        let before = mesh.received().len();
        let r = mesh.send(
            "checkout",
            Request::post("/v1/charges", "{}").header("x-cards", &cards[..62 * 1024]),
        );
        assert_eq!(r.status, 431, "Envoy {v}: a 62 KiB header");
        assert_eq!(mesh.received().len(), before);
        assert_sound(&mesh, "a 62 KiB header");

        // The same header three times, in three casings, each with a card number.
        let r = mesh.send(
            "checkout",
            Request::post("/v1/charges", "{}")
                .header("X-Card", "4111111111111111")
                .header("x-card", "5555-5555-5555-4444")
                .header("X-CARD", "3782 822463 10005"),
        );
        assert_eq!(r.status, 200, "Envoy {v}: duplicate headers");
        let last = mesh.received().pop().unwrap();
        let copies = last["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h[0] == "x-card")
            .count();
        assert_eq!(copies, 3, "Envoy {v}: {last}");
        assert_sound(&mesh, "duplicate and oddly cased headers");

        // Values built to close the event's JSON and start a forged one.
        let forged = r#"x","decision":"allow","rule":"forged"}
{"schema":"pci-mesh-guard/audit/v1","event":"access","decision":"allow"#;
        let id = r#"inj-1","decision":"allow","x":"\"#;
        for (caller, status) in [("newsletter", 403), ("checkout", 200)] {
            let r = mesh.send(
                caller,
                Request::post(
                    "/v1/charges?note=%22%7D%0A%7B%22schema%22%3A%22pci-mesh-guard%2Faudit%2Fv1%22&x=\"'\\",
                    "{}",
                )
                .header("x-request-id", id)
                .header("user-agent", forged.replace('\n', " ")),
            );
            assert_eq!(r.status, status, "Envoy {v}: {caller} with forged values");
        }
        std::thread::sleep(Duration::from_millis(300));
        let events = mesh.events();
        let injected: Vec<&Value> = events.iter().filter(|e| e["request"]["id"] == id).collect();
        assert_eq!(
            injected.len(),
            2,
            "Envoy {v}: one event per request, id intact"
        );
        assert_eq!(injected[0]["decision"], "deny", "Envoy {v}");
        assert_eq!(injected[1]["decision"], "allow", "Envoy {v}");
        assert!(
            events.iter().all(|e| e["rule"] != "forged"),
            "Envoy {v}: a forged field became the event's"
        );
        assert_sound(&mesh, "values built to forge an audit line");

        // A client that promises 100 kB and hangs up after 3 kB (a card number among them).
        let mut wire =
            b"POST /v1/charges HTTP/1.1\r\nhost: payments-api\r\nx-mesh-caller: checkout\r\n\
content-type: application/json\r\ncontent-length: 100000\r\nx-request-id: hangup\r\n\r\n"
                .to_vec();
        wire.extend_from_slice(br#"{"card":"4111 1111 1111 1111","pad":""#);
        wire.extend(std::iter::repeat_n(b'x', 3000));
        raw(&mesh, &wire, true);
        std::thread::sleep(Duration::from_millis(500));
        assert_sound(&mesh, "a client that hangs up mid-body");

        // A backend that resets the connection halfway through a body holding card numbers.
        let got = raw(
            &mesh,
            b"GET /reset-midway HTTP/1.1\r\nhost: payments-api\r\nx-mesh-caller: checkout\r\n\
x-request-id: reset\r\nconnection: close\r\n\r\n",
            false,
        );
        let got = String::from_utf8_lossy(&got);
        assert!(
            pans_in(&got).is_empty(),
            "Envoy {v}: a card number reached the caller: {got}"
        );
        assert_sound(&mesh, "a backend that resets mid-response");
    }
}

/// gRPC over HTTP/2 end to end: a card number inside a protobuf string field is masked in both
/// directions and the messages still decode (masking keeps every length); the reply ends in digits
/// the redactor must hold back until the trailers, which still come (`grpc-status` OK) with the card
/// number in their metadata masked.
#[test]
fn grpc_messages_stay_valid_protobuf_with_their_card_numbers_masked() {
    let config = demo_config_and("checkout-may-call-payments", "POST", "/pmg.test.Payments/*");
    for envoy in mesh::envoys() {
        let ver = envoy.to_string();
        let mesh = Mesh::builder(&envoy, "grpc").config(&config).grpc().up();
        let sent = "charge 4111 1111 1111 1111 for order 42";
        let reply = mesh.grpc_call("checkout-h2", sent);
        assert_eq!(reply["code"], "OK", "Envoy {ver}: {reply}");
        let got = reply["text"].as_str().unwrap();
        assert!(reply.get("undecodable").is_none(), "Envoy {ver}: {reply}");
        assert!(pans_in(got).is_empty(), "Envoy {ver}: {got}");
        assert_eq!(
            got.len(),
            "charged; card on file 4111 1111 1111 1111; reference 4111 1111".len()
        );
        assert!(
            got.ends_with("; reference 4111 1111"),
            "Envoy {ver}: the held digits came out intact: {got}"
        );
        let echo = reply["trailers"]["x-card-echo"]
            .as_str()
            .unwrap_or_default();
        assert!(
            !echo.is_empty() && pans_in(echo).is_empty(),
            "Envoy {ver}: the trailer: {reply}"
        );
        let received = mesh.grpc_received();
        assert_eq!(received.len(), 1, "Envoy {ver}");
        assert_eq!(received[0]["valid"], true, "Envoy {ver}: {received:?}");
        let at_service = received[0]["text"].as_str().unwrap();
        assert_eq!(at_service.len(), sent.len());
        assert!(pans_in(at_service).is_empty(), "Envoy {ver}: {at_service}");
        std::thread::sleep(Duration::from_millis(300));
        let event = mesh
            .events()
            .into_iter()
            .find(|e| e["request"]["path"] == "/pmg.test.Payments/Charge")
            .expect("the call's access event");
        assert_eq!(event["decision"], "allow", "Envoy {ver}");
        assert_eq!(
            event["pan"]["request_body"]["redacted"], 1,
            "Envoy {ver}: {event}"
        );
        assert_eq!(
            event["pan"]["response_body"]["redacted"], 1,
            "Envoy {ver}: {event}"
        );
        assert_sound(&mesh, "a gRPC call over HTTP/2");
    }
}
