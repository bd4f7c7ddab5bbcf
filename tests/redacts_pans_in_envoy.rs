//! Under real Envoy: card numbers are masked as the other side receives them, in request bodies,
//! response bodies, custom headers, query strings and cookies, also when a PAN is split across
//! chunks sent apart; a granted caller's PANs pass untouched; compressed responses are handled as
//! `compressed_body` says.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::time::Duration;

use mesh::{Mesh, Request};

const POLICY: &str = r#"{
  "identity": {"trust_domains": ["cluster.local"]},
  "authorization": {"rules": [
    {"name": "risk-may-move-card-data", "namespaces": ["risk"], "pan": ["request", "response"]},
    {"name": "shop", "namespaces": ["shop"]}
  ]}
}"#;

fn start(envoy: &mesh::Envoy, name: &str, config: &str) -> Mesh {
    Mesh::builder(envoy, name).config(config).up()
}

fn header<'a>(record: &'a serde_json::Value, name: &str) -> &'a str {
    record["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == name)
        .and_then(|h| h[1].as_str())
        .unwrap_or("")
}

#[test]
fn pans_in_body_headers_query_and_cookies_are_masked_before_the_backend() {
    for envoy in mesh::envoys() {
        let mesh = start(&envoy, "request-pans", POLICY);
        let sent = r#"{"card":{"number":"5555 5555 5555 4444","cvc":"123"},"amount":1299}"#;
        let resp = mesh.send(
            "checkout",
            Request::post(
                "/v1/charges?card=4111%201111%201111%201111&amount=1299",
                sent,
            )
            .header("x-request-id", "req-pans")
            .header("x-card-number", "378282246310005")
            .header("cookie", "sid=abc; last=6011-0009-9013-9424"),
        );
        assert_eq!(resp.status, 200, "Envoy {}: {}", envoy, resp.text());
        let got = &mesh.received()[0];
        assert_eq!(
            got["path"],
            "/v1/charges?card=****%20****%20****%201111&amount=1299"
        );
        assert_eq!(
            got["body"],
            r#"{"card":{"number":"**** **** **** 4444","cvc":"123"},"amount":1299}"#
        );
        assert_eq!(header(got, "x-card-number"), "***********0005");
        assert_eq!(header(got, "cookie"), "sid=abc; last=****-****-****-9424");
        assert_eq!(
            header(got, "content-length"),
            sent.len().to_string(),
            "length kept"
        );
        assert_eq!(got["body_bytes"], sent.len());
        let event = mesh.access_event("req-pans");
        assert_eq!(event["pan"]["request_headers"]["redacted"], 3);
        assert_eq!(event["pan"]["request_body"]["brands"]["mastercard"], 1);
        assert_eq!(
            event["request"]["path"],
            "/v1/charges?card=****%20****%20****%201111&amount=1299"
        );
        let token =
            |pan: &str| pci_mesh_guard::pan::token(mesh::TOKEN_KEY.as_bytes(), pan.as_bytes());
        let tokens = event["pan_tokens"].as_array().expect("pan tokens");
        for pan in [
            "4111111111111111",
            "378282246310005",
            "6011000990139424",
            "5555555555554444",
        ] {
            assert!(
                tokens.contains(&serde_json::json!(token(pan))),
                "Envoy {}: a token for each card: {tokens:?}",
                envoy
            );
        }
    }
}

#[test]
fn pans_in_response_bodies_are_masked_before_the_caller() {
    for envoy in mesh::envoys() {
        let mesh = start(&envoy, "response-pans", POLICY);
        let resp = mesh.send(
            "checkout",
            Request::get("/fixture/card-on-file.json").header("x-request-id", "resp-pans"),
        );
        assert_eq!(resp.status, 200, "Envoy {}", envoy);
        let body: serde_json::Value = serde_json::from_slice(&resp.body).expect("still JSON");
        assert_eq!(body["card"]["number"], "************1111");
        assert_eq!(header(&mesh.received()[0], "accept-encoding"), "identity");
        let event = mesh.access_event("resp-pans");
        assert_eq!(event["pan"]["response_body"]["redacted"], 1);
    }
}

#[test]
fn pan_split_across_chunks_sent_300ms_apart_is_masked() {
    for envoy in mesh::envoys() {
        let mesh = start(&envoy, "split-pan", POLICY);
        let chunks = [
            b"{\"note\":\"card 4111 1111 11".to_vec(),
            b"11 1111 thanks\"}".to_vec(),
        ];
        let resp = mesh.send_chunked(
            "checkout",
            "POST",
            "/v1/charges",
            &[
                ("x-request-id", "split".into()),
                ("content-type", "application/json".into()),
            ],
            chunks.into_iter(),
            Duration::from_millis(300),
        );
        assert_eq!(resp.status, 200, "Envoy {}", envoy);
        assert_eq!(
            mesh.received()[0]["body"],
            r#"{"note":"card **** **** **** 1111 thanks"}"#
        );
    }
}

#[test]
fn granted_caller_moves_pans_untouched() {
    for envoy in mesh::envoys() {
        let mesh = start(&envoy, "granted", POLICY);
        let body = r#"{"pan":"4111111111111111"}"#;
        let resp = mesh.send(
            "fraud",
            Request::post("/v1/score", body).header("x-request-id", "granted"),
        );
        assert_eq!(resp.status, 200, "Envoy {}", envoy);
        assert_eq!(mesh.received()[0]["body"], body);
        let resp = mesh.send("fraud", Request::get("/fixture/card-on-file.json"));
        assert!(resp.text().contains("4111111111111111"), "response grant");
        let event = mesh.access_event("granted");
        assert_eq!(event["rule"], "risk-may-move-card-data");
        assert_eq!(event["pan"]["request_body"]["passed"], 1);
        assert!(
            !event.to_string().contains("4111111111111111"),
            "the audit never holds the PAN"
        );
    }
}

#[test]
fn gzip_response_is_blocked_or_passed_as_compressed_body_says() {
    for envoy in mesh::envoys() {
        let mesh = start(&envoy, "gzip-block", POLICY);
        let resp = mesh.send(
            "checkout",
            Request::get("/fixture/card-on-file.json?encoding=gzip").header("x-request-id", "gz-1"),
        );
        assert_eq!(resp.status, 502, "Envoy {}: blocked", envoy);
        let event = mesh.access_event("gz-1");
        assert_eq!(event["reason"], "unscannable_body");
        drop(mesh);

        let pass = POLICY.replacen('{', r#"{"redaction":{"compressed_body":"pass"},"#, 1);
        let mesh = start(&envoy, "gzip-pass", &pass);
        let resp = mesh.send(
            "checkout",
            Request::get("/fixture/card-on-file.json?encoding=gzip").header("x-request-id", "gz-2"),
        );
        assert_eq!(resp.status, 200, "Envoy {}: passed", envoy);
        assert_eq!(resp.header("content-encoding"), Some("gzip"));
        assert_eq!(
            &resp.body[..2],
            &[0x1f, 0x8b],
            "the gzip body arrives as sent"
        );
        let event = mesh.access_event("gz-2");
        assert_eq!(event["unscannable"], serde_json::json!(["response_body"]));
    }
}
