//! Under real Envoy: a plugin configuration with an unknown key lets no request through, and
//! Envoy's log names the key.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::net::TcpStream;
use std::time::Duration;

use mesh::Mesh;

const BAD: &str = r#"{"authorization": {"rules": [
  {"name": "checkout", "principalz": ["spiffe://cluster.local/ns/shop/sa/checkout"]}
]}}"#;

#[test]
fn unknown_key_keeps_every_request_from_the_backend_and_the_log_names_it() {
    for envoy in mesh::envoys() {
        let port = mesh::free_port();
        let err = match Mesh::builder(&envoy, "bad-config")
            .config(BAD)
            .mtls_port(port)
            .start()
        {
            Ok(mesh) => panic!(
                "Envoy {} started with a bad plugin configuration:\n{}",
                envoy,
                mesh.log("server")
            ),
            Err(e) => e,
        };
        assert!(
            err.log.contains(
                "pci-mesh-guard: configuration rejected: authorization.rules[0].principalz: unknown field `principalz`"
            ),
            "Envoy {}: the log does not name the key\n{}",
            envoy,
            err.log
        );
        // Nothing serves the inbound port, so no request can reach the backend through it.
        let connect =
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1));
        assert!(
            connect.is_err(),
            "Envoy {}: inbound port {port} accepts connections",
            envoy
        );
        assert!(
            err.received.is_empty(),
            "Envoy {}: the backend saw {:?}",
            envoy,
            err.received
        );
        let rejected = mesh::audit_events(&err.log)
            .into_iter()
            .find(|e| e["event"] == "config")
            .expect("a config event");
        assert_eq!(rejected["accepted"], false);
        assert!(rejected["error"]
            .as_str()
            .unwrap()
            .starts_with("authorization.rules[0].principalz"));
    }
}
