//! The plugin delivered as Istio delivers a WasmPlugin: through ECDS, to a sidecar whose inbound
//! listener is shaped as istiod builds it (Istio's RBAC after the plugin, the sidecar's log flags),
//! with no default configuration. A new configuration applies at run time without dropping a
//! request; one the plugin rejects is NACKed and the previous policy keeps enforcing; with none
//! accepted yet, nothing is served; every accepted change leaves a `config` audit event.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::time::Duration;

use mesh::{Mesh, Request};
use sha2::{Digest, Sha256};

/// checkout may read orders and charge; everybody else is denied.
const FIRST: &str = r#"{
  "identity": {"require_mtls": true, "trust_domains": ["cluster.local"]},
  "authorization": {"default_action": "deny", "rules": [
    {"name": "checkout-may-read-orders", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/v1/orders", "/v1/orders/*"], "methods": ["GET"]},
    {"name": "checkout-may-charge", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/v1/charges"], "methods": ["POST"]}
  ]}
}"#;

/// As FIRST, and newsletter may read orders too.
const SECOND: &str = r#"{
  "identity": {"require_mtls": true, "trust_domains": ["cluster.local"]},
  "authorization": {"default_action": "deny", "rules": [
    {"name": "checkout-may-read-orders", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/v1/orders", "/v1/orders/*"], "methods": ["GET"]},
    {"name": "checkout-may-charge", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/v1/charges"], "methods": ["POST"]},
    {"name": "newsletter-may-read-orders", "principals": ["spiffe://cluster.local/ns/marketing/sa/newsletter"],
     "paths": ["/v1/orders"], "methods": ["GET"]}
  ]}
}"#;

/// The plugin refuses it: a misspelt key.
const REJECTED: &str = r#"{
  "identity": {"require_mtls": true, "trust_domains": ["cluster.local"]},
  "authorization": {"default_action": "allow", "rulez": []}
}"#;

fn status(mesh: &Mesh, caller: &str, path: &str) -> u16 {
    mesh.send(caller, Request::get(path)).status
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `config` events of the server log that accepted the configuration `text`.
fn accepted(mesh: &Mesh, text: &str) -> usize {
    let want = sha256_hex(text);
    mesh.events()
        .iter()
        .filter(|e| e["event"] == "config" && e["accepted"] == true && e["config_sha256"] == want)
        .count()
}

fn stat(mesh: &Mesh, what: &str) -> u64 {
    mesh.server_stat(&format!(
        "extension_config_discovery.http_filter.payments.pci-mesh-guard.{what}"
    ))
}

#[test]
fn a_new_configuration_applies_at_run_time_without_dropping_a_request() {
    for envoy in mesh::envoys() {
        let v = &envoy;
        let mesh = Mesh::builder(&envoy, "ecds-update")
            .config(FIRST)
            .istio_shaped()
            .up();
        assert_eq!(status(&mesh, "checkout", "/v1/orders"), 200, "Envoy {v}");
        assert_eq!(status(&mesh, "newsletter", "/v1/orders"), 403, "Envoy {v}");
        // Istio's RBAC runs after the plugin, and still decides.
        assert_eq!(status(&mesh, "checkout", "/rbac-denied"), 403, "Envoy {v}");

        // A charge whose body trickles in while the configuration changes.
        let in_flight = std::thread::scope(|s| {
            let charge = s.spawn(|| {
                let chunks = (0..8).map(|i| match i {
                    7 => br#""card":"4111 1111 1111 1111"}"#.to_vec(),
                    0 => b"{".to_vec(),
                    _ => format!(r#""n{i}":{i},"#).into_bytes(),
                });
                mesh.send_chunked(
                    "checkout",
                    "POST",
                    "/v1/charges",
                    &[("x-request-id", "in-flight".into())],
                    chunks,
                    Duration::from_millis(300),
                )
            });
            std::thread::sleep(Duration::from_millis(500));
            mesh.deliver_plugin_config(SECOND);
            let applied = mesh::eventually(Duration::from_secs(10), || {
                (status(&mesh, "newsletter", "/v1/orders") == 200).then_some(())
            });
            assert!(
                applied.is_some(),
                "Envoy {v}: the new rule never applied:\n{}",
                mesh.log("server")
            );
            charge.join().expect("the charge thread")
        });
        assert_eq!(
            in_flight.status, 200,
            "Envoy {v}: the request in flight completes"
        );
        let received = mesh.received();
        let body = received
            .iter()
            .find(|r| {
                r["headers"].as_array().is_some_and(|h| {
                    h.iter()
                        .any(|kv| kv[0] == "x-request-id" && kv[1] == "in-flight")
                })
            })
            .map(|r| r["body"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("Envoy {v}: the charge never reached the backend"));
        assert!(
            body.contains("**** **** **** 1111"),
            "Envoy {v}: masked under either policy: {body}"
        );
        // The old rules are gone only where the new ones say so.
        assert_eq!(status(&mesh, "newsletter", "/v1/charges"), 403, "Envoy {v}");
        assert_eq!(status(&mesh, "checkout", "/v1/orders"), 200, "Envoy {v}");
        assert_eq!(stat(&mesh, "update_success"), 2, "Envoy {v}");
        assert_eq!(stat(&mesh, "config_fail"), 0, "Envoy {v}");
        // Each accepted configuration left its config event, tied to it by its digest.
        assert!(
            accepted(&mesh, FIRST) >= 1,
            "Envoy {v}: no config event for the first"
        );
        assert!(
            accepted(&mesh, SECOND) >= 1,
            "Envoy {v}: no config event for the second"
        );
        let (code, out) = mesh::verify_audit_cli(&mesh.dir.join("server.log"));
        assert_eq!(code, Some(0), "Envoy {v}: {out}");
        // Istio's stats inclusion list keeps the plugin's metrics, and its tags label them.
        let prometheus = mesh.prometheus();
        assert!(
            prometheus
                .lines()
                .any(|l| l.starts_with("pci_mesh_guard_requests_total{")
                    && l.contains(r#"decision="allow""#)
                    && l.contains(r#"reason="rule""#)),
            "Envoy {v}: the plugin's metrics under Istio's stats matcher:\n{prometheus}"
        );
    }
}

#[test]
fn a_rejected_configuration_is_nacked_and_the_previous_policy_keeps_enforcing() {
    for envoy in mesh::envoys() {
        let v = &envoy;
        let mesh = Mesh::builder(&envoy, "ecds-nack")
            .config(FIRST)
            .istio_shaped()
            .up();
        assert_eq!(status(&mesh, "newsletter", "/v1/orders"), 403, "Envoy {v}");
        mesh.deliver_plugin_config(REJECTED);
        let nacked = mesh::eventually(Duration::from_secs(10), || {
            (stat(&mesh, "config_fail") >= 1).then_some(())
        });
        assert!(
            nacked.is_some(),
            "Envoy {v}: not NACKed:\n{}",
            mesh.log("server")
        );
        assert_eq!(stat(&mesh, "update_rejected"), 1, "Envoy {v}");
        assert_eq!(
            stat(&mesh, "update_success"),
            1,
            "Envoy {v}: only the first"
        );
        // The rejected configuration would have allowed everything: the first still enforces.
        for _ in 0..3 {
            assert_eq!(status(&mesh, "newsletter", "/v1/orders"), 403, "Envoy {v}");
            assert_eq!(status(&mesh, "checkout", "/v1/orders"), 200, "Envoy {v}");
        }
        assert!(
            mesh.log("server").contains("authorization.rulez"),
            "Envoy {v}: the operator is told which key:\n{}",
            mesh.log("server")
        );
        assert_eq!(accepted(&mesh, REJECTED), 0, "Envoy {v}");
        // A good configuration after it is taken as usual.
        mesh.deliver_plugin_config(SECOND);
        let applied = mesh::eventually(Duration::from_secs(10), || {
            (status(&mesh, "newsletter", "/v1/orders") == 200).then_some(())
        });
        assert!(
            applied.is_some(),
            "Envoy {v}: the next good one never applied"
        );
    }
}

#[test]
fn with_no_accepted_configuration_nothing_is_served() {
    for envoy in mesh::envoys() {
        let v = &envoy;
        let mesh = Mesh::builder(&envoy, "ecds-first-rejected")
            .config(REJECTED)
            .istio_shaped()
            .up();
        assert_eq!(stat(&mesh, "update_success"), 0, "Envoy {v}");
        for caller in ["checkout", "newsletter"] {
            let got = status(&mesh, caller, "/v1/orders");
            assert!(
                got >= 500,
                "Envoy {v}: {caller} was answered {got} with no accepted configuration"
            );
        }
        assert!(
            mesh.received().is_empty(),
            "Envoy {v}: the backend was reached: {:?}",
            mesh.received()
        );
        // The first good configuration opens the listener to what it allows, and no more.
        mesh.deliver_plugin_config(FIRST);
        let served = mesh::eventually(Duration::from_secs(10), || {
            (status(&mesh, "checkout", "/v1/orders") == 200).then_some(())
        });
        assert!(
            served.is_some(),
            "Envoy {v}: never served after a good configuration"
        );
        assert_eq!(status(&mesh, "newsletter", "/v1/orders"), 403, "Envoy {v}");
    }
}
