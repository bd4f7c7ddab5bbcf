//! Under real Envoy, with Istio's log flags and the shipped sidecar configuration: the `access_log`
//! sink puts each request's access event in the stream's filter state, and the sidecar's access
//! log writes it, one line per request, as a chain that `verify-audit` verifies alone; the config
//! event in the proxy log names that chain; a proxy log switched off stops nothing.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::time::Duration;

use mesh::{Mesh, Request};

/// The shipped demo configuration with the `access_log` sink.
fn config() -> String {
    let text = std::fs::read_to_string(mesh::root().join("envoy-config/demo-plugin-config.json"))
        .expect("read the shipped plugin configuration");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    v["audit"] = serde_json::json!({"sink": "access_log"});
    v.to_string()
}

fn send(mesh: &Mesh, i: usize) -> u16 {
    let id = format!("al-{i}");
    let req = match i % 3 {
        0 => Request::post("/v1/charges", r#"{"card":"4111 1111 1111 1111"}"#),
        1 => Request::get("/admin/users"),
        _ => Request::get("/fixture/order.json"),
    };
    mesh.send("checkout", req.header("x-request-id", id)).status
}

/// The access log's lines, once it holds `n` of them.
fn audit_lines(mesh: &Mesh, n: usize) -> Vec<String> {
    mesh::eventually(Duration::from_secs(10), || {
        let lines: Vec<String> = mesh.audit_log().lines().map(String::from).collect();
        (lines.len() >= n).then_some(lines)
    })
    .unwrap_or_else(|| panic!("audit.log has not {n} lines:\n{}", mesh.audit_log()))
}

#[test]
fn each_request_is_one_line_of_envoys_access_log() {
    for envoy in mesh::envoys() {
        let v = &envoy;
        let mesh = Mesh::builder(&envoy, "access-log-sink")
            .config(&config())
            .envoy_args(mesh::ISTIO_LOG_FLAGS)
            .up();
        for i in 0..9 {
            assert_eq!(send(&mesh, i), [200, 403, 200][i % 3], "Envoy {v}: al-{i}");
        }
        let lines = audit_lines(&mesh, 9);
        assert_eq!(lines.len(), 9, "Envoy {v}: one line per request");
        let events: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("each line is exactly one event"))
            .collect();
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e["event"], "access");
            assert_eq!(e["request"]["id"], format!("al-{i}"), "Envoy {v}: in order");
            assert_eq!(e["seq"], i as u64 + 1);
            assert_eq!(e["status"], [200, 403, 200][i % 3]);
        }
        assert_eq!(events[0]["pan"]["request_body"]["redacted"], 1);
        // The proxy log keeps the VM events; the config event of the worker's VM names the chain.
        let chain = events[0]["chain"].as_str().unwrap().to_string();
        assert!(chain.ends_with(".access"), "{chain}");
        let in_proxy_log = mesh.events();
        assert!(
            in_proxy_log
                .iter()
                .any(|e| e["event"] == "config" && e["access_chain"] == chain.as_str()),
            "Envoy {v}: no config event names {chain}"
        );
        assert!(
            !in_proxy_log.iter().any(|e| e["event"] == "access"),
            "Envoy {v}: access events stay out of the proxy log"
        );
        let (code, out) = mesh::verify_audit_cli(&mesh.dir.join("audit.log"));
        assert_eq!(code, Some(0), "Envoy {v}: {out}");
        assert!(out.contains(" 9 events in 1 chains, 0 problems"), "{out}");
        let (code, out) = mesh::verify_audit_cli(&mesh.dir.join("server.log"));
        assert_eq!(
            code,
            Some(0),
            "Envoy {v}: the proxy log's chains verify too: {out}"
        );

        // With the proxy log off, requests are still served and recorded.
        mesh.set_server_log_level(&format!("{}=off", envoy.filter_logger()));
        assert_eq!(send(&mesh, 2), 200, "Envoy {v}");
        let lines = audit_lines(&mesh, 10);
        assert!(lines[9].contains(r#""seq":10,"#), "Envoy {v}: {}", lines[9]);
    }
}

/// The access log filter of `envoy-config/server-sidecar.yaml`: an expression over the filter
/// state, which selects the events of either build.
const EXPRESSION_FILTER: &str = r#"              extension_filter:
                name: envoy.access_loggers.extension_filters.cel
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter
                  expression: "'wasm.pmg_audit' in filter_state""#;

/// What the native build lets an access log use instead: its mark in the dynamic metadata.
const METADATA_FILTER: &str = r#"              metadata_filter:
                match_if_key_not_found: false
                matcher:
                  filter: pci_mesh_guard
                  path: [ { key: audit_event } ]
                  value: { bool_match: true }"#;

#[test]
fn the_native_build_marks_each_event_for_an_access_log_metadata_filter() {
    for envoy in mesh::envoys().into_iter().filter(|e| e.is_native()) {
        let v = &envoy;
        let mesh = Mesh::builder(&envoy, "access-log-metadata")
            .config(&config())
            .server_edit(EXPRESSION_FILTER, METADATA_FILTER)
            .up();
        for i in 0..9 {
            assert_eq!(send(&mesh, i), [200, 403, 200][i % 3], "Envoy {v}: al-{i}");
        }
        // Every request, allowed or denied, is selected: one line each, in order, verified.
        let lines = audit_lines(&mesh, 9);
        assert_eq!(lines.len(), 9, "Envoy {v}: one line per request");
        for (i, l) in lines.iter().enumerate() {
            let e: serde_json::Value = serde_json::from_str(l).expect("one event per line");
            assert_eq!(e["request"]["id"], format!("al-{i}"), "Envoy {v}");
        }
        let (code, out) = mesh::verify_audit_cli(&mesh.dir.join("audit.log"));
        assert_eq!(code, Some(0), "Envoy {v}: {out}");
        assert!(out.contains(" 9 events in 1 chains, 0 problems"), "{out}");
    }
}
