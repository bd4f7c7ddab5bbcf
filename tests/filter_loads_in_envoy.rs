//! Under real Envoy: the filter loads, and a request from an allowed identity reaches the backend
//! while one from another namespace is answered 403 by the filter and never reaches it.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use mesh::{Mesh, Request};

const POLICY: &str = r#"{
  "identity": {"trust_domains": ["cluster.local"]},
  "authorization": {"rules": [
    {"name": "checkout-may-charge", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/v1/charges", "/v1/charges/*"], "methods": ["POST"]}
  ]}
}"#;

#[test]
fn filter_loads_and_logs_its_accepted_configuration() {
    for envoy in mesh::envoys() {
        let mesh = Mesh::builder(&envoy, "loads").config(POLICY).up();
        let log = mesh.log("server");
        assert!(
            log.contains(
                "pci-mesh-guard: configuration accepted: mode enforce, 1 rules, 0 linter findings"
            ),
            "Envoy {}: no start-up line\n{log}",
            envoy
        );
        let config = mesh.events().into_iter().find(|e| e["event"] == "config");
        let config = config.unwrap_or_else(|| panic!("Envoy {}: no config event", envoy));
        assert_eq!(config["accepted"], true);
        assert_eq!(config["schema"], "pci-mesh-guard/audit/v1");
        assert_eq!(
            config["alg"], "hmac-sha256",
            "the key reached the VM environment"
        );
    }
}

#[test]
fn allowed_identity_reaches_the_backend() {
    for envoy in mesh::envoys() {
        let mesh = Mesh::builder(&envoy, "allowed").config(POLICY).up();
        let resp = mesh.send(
            "checkout",
            Request::post("/v1/charges", r#"{"amount":1299}"#).header("x-request-id", "allowed-1"),
        );
        assert_eq!(resp.status, 200, "Envoy {}: {}", envoy, resp.text());
        let received = mesh.received();
        assert_eq!(received.len(), 1, "Envoy {}", envoy);
        assert_eq!(received[0]["path"], "/v1/charges");
        assert_eq!(received[0]["body"], r#"{"amount":1299}"#);
        let xfcc = received[0]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == "x-forwarded-client-cert")
            .map(|h| h[1].as_str().unwrap().to_string())
            .unwrap_or_default();
        assert!(
            xfcc.contains("URI=spiffe://cluster.local/ns/shop/sa/checkout"),
            "{xfcc}"
        );

        let event = mesh.access_event("allowed-1");
        assert_eq!(event["decision"], "allow");
        assert_eq!(event["enforced"], true);
        assert_eq!(event["rule"], "checkout-may-charge");
        assert_eq!(
            event["principal"],
            "spiffe://cluster.local/ns/shop/sa/checkout"
        );
        assert_eq!(event["status"], 200);
        assert_eq!(
            event["workload"],
            "spiffe://cluster.local/ns/payments/sa/payments-api"
        );
        assert!(event["duration_ms"].is_u64());
        assert!(event["tls_version"]
            .as_str()
            .unwrap_or("")
            .starts_with("TLSv1."));

        // The whole log, as Envoy wrote it, verifies with the CLI: every event sealed in its chain.
        let (code, stdout) = mesh::verify_audit_cli(&mesh.dir.join("server.log"));
        assert_eq!(code, Some(0), "Envoy {}: {stdout}", envoy);
        assert!(stdout.contains(" 0 problems"), "{stdout}");
        let report = mesh.verify_audit();
        assert!(
            report.events >= 2,
            "Envoy {}: {} events",
            envoy,
            report.events
        );
        // Edit one byte of the real log: the CLI names the line.
        let log = std::fs::read_to_string(mesh.dir.join("server.log")).unwrap();
        let edited = log.replacen(r#""decision":"allow""#, r#""decision":"deny""#, 1);
        assert_ne!(edited, log);
        std::fs::write(mesh.dir.join("edited.log"), edited).unwrap();
        let (code, stdout) = mesh::verify_audit_cli(&mesh.dir.join("edited.log"));
        assert_eq!(code, Some(1), "the edit is caught");
        assert!(stdout.contains(": altered: "));
    }
}

#[test]
fn identity_from_another_namespace_is_denied_before_the_backend() {
    for envoy in mesh::envoys() {
        let mesh = Mesh::builder(&envoy, "denied").config(POLICY).up();
        let resp = mesh.send(
            "newsletter",
            Request::post("/v1/charges", "{}").header("x-request-id", "denied-1"),
        );
        assert_eq!(resp.status, 403, "Envoy {}", envoy);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        assert_eq!(
            resp.text(),
            r#"{"error":"forbidden","request_id":"denied-1"}"#
        );
        let event = mesh.access_event("denied-1");
        assert_eq!(event["decision"], "deny");
        assert_eq!(event["reason"], "default");
        assert_eq!(
            event["principal"],
            "spiffe://cluster.local/ns/marketing/sa/newsletter"
        );
        assert!(
            mesh.received().is_empty(),
            "Envoy {}: backend saw a denied request",
            envoy
        );
    }
}
