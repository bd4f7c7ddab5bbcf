//! Under real Envoy: the `otlp_http` sink delivers every event to an OTLP/HTTP receiver that
//! validates each request against the opentelemetry-proto schema; with the collector down events
//! are dropped with counters and `audit_failure` events while requests keep flowing; under
//! `required` requests are refused while the queue is full; a slow collector does not slow requests.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::time::{Duration, Instant};

use mesh::{Mesh, Request};

fn config(extra: &str) -> String {
    format!(
        r#"{{"authorization":{{"rules":[{{"name":"shop","namespaces":["shop"]}}]}},
            "audit":{{"sink":"otlp_http","cluster":"otel-collector","authority":"otel-collector:4318",
                      "flush_interval_ms":100{extra}}}}}"#
    )
}

fn start(envoy: &mesh::Envoy, name: &str, config: &str, otlp: Option<&'static str>) -> Mesh {
    let b = Mesh::builder(envoy, name).config(config);
    let b = match otlp {
        Some(mode) => b.otlp(mode),
        None => b,
    };
    b.up()
}

fn stat(mesh: &Mesh, name: &str) -> u64 {
    mesh.stats(name).into_iter().map(|(_, v)| v).sum()
}

#[test]
fn delivers_valid_otlp_requests_holding_the_sealed_events() {
    for envoy in mesh::envoys() {
        let mesh = start(&envoy, "otlp-ok", &config(""), Some("ok"));
        for i in 0..3 {
            let r = mesh.send(
                "checkout",
                Request::get("/v1/x").header("x-request-id", format!("o{i}")),
            );
            assert_eq!(r.status, 200);
        }
        let records = mesh::eventually(Duration::from_secs(10), || {
            let got = mesh.otlp_received();
            let records: Vec<String> = got
                .iter()
                .flat_map(|r| r["records"].as_array().cloned().unwrap_or_default())
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            (records
                .iter()
                .filter(|r| r.contains(r#""event":"access""#))
                .count()
                >= 3)
                .then_some(records)
        })
        .unwrap_or_else(|| {
            panic!(
                "Envoy {}: receiver got {:?}",
                envoy.version,
                mesh.otlp_received()
            )
        });
        for req in mesh.otlp_received() {
            assert_eq!(req["valid"], true, "Envoy {}: {req}", envoy.version);
            assert_eq!(req["path"], "/v1/logs");
            assert_eq!(req["content_type"], "application/json");
        }
        // What arrived is the sealed trail itself: it verifies as the log does.
        let report = pci_mesh_guard::audit::verify::verify(
            records.iter().map(String::as_str),
            Some(mesh::AUDIT_KEY.as_bytes()),
            true,
        );
        assert!(
            report.problems.is_empty(),
            "Envoy {}: {:?}",
            envoy.version,
            report.problems
        );
        assert!(
            stat(&mesh, "outcome=.=sent;.;pci_mesh_guard_audit_events_total") >= 4,
            "{:?}",
            mesh.stats("pci_mesh_guard_audit")
        );
    }
}

#[test]
fn collector_down_drops_with_counters_and_audit_failure_while_requests_flow() {
    for envoy in mesh::envoys() {
        let mesh = start(&envoy, "otlp-down", &config(""), None);
        for i in 0..3 {
            let r = mesh.send(
                "checkout",
                Request::get("/v1/x").header("x-request-id", format!("d{i}")),
            );
            assert_eq!(
                r.status, 200,
                "Envoy {}: requests keep flowing",
                envoy.version
            );
        }
        let failure = mesh::eventually(Duration::from_secs(20), || {
            mesh.events()
                .into_iter()
                .find(|e| e["event"] == "audit_failure")
        })
        .unwrap_or_else(|| {
            panic!(
                "Envoy {}: no audit_failure\n{}",
                envoy.version,
                mesh.log("server")
            )
        });
        assert!(failure["dropped"].as_u64().unwrap() >= 1);
        assert!(
            stat(
                &mesh,
                "outcome=.=dropped;.;pci_mesh_guard_audit_events_total"
            ) >= 1
        );
        assert!(stat(&mesh, "pci_mesh_guard_audit_sink_errors_total") >= 1);
    }
}

#[test]
fn required_sink_refuses_requests_while_the_slow_collector_holds_the_queue() {
    for envoy in mesh::envoys() {
        let cfg = config(r#","max_batch":2,"max_queue":4,"timeout_ms":20000,"required":true"#);
        let mesh = start(&envoy, "otlp-required", &cfg, Some("slow"));
        let mut statuses = vec![];
        for i in 0..12 {
            let r = mesh.send(
                "checkout",
                Request::get("/v1/x").header("x-request-id", format!("q{i}")),
            );
            statuses.push(r.status);
            std::thread::sleep(Duration::from_millis(150));
        }
        assert!(
            statuses.contains(&200),
            "Envoy {}: {statuses:?}",
            envoy.version
        );
        assert!(
            statuses.contains(&503),
            "Envoy {}: the full queue refuses: {statuses:?}",
            envoy.version
        );
        let refused = mesh
            .events()
            .into_iter()
            .find(|e| e["reason"] == "audit_unavailable");
        assert!(refused.is_some(), "Envoy {}", envoy.version);
        assert!(stat(&mesh, "decision=.=deny;.;reason=.=audit_unavailable;.;dry_run=.=false;.;pci_mesh_guard_requests_total") >= 1);
    }
}

#[test]
fn a_slow_collector_does_not_slow_requests() {
    for envoy in mesh::envoys() {
        let mesh = start(
            &envoy,
            "otlp-slow",
            &config(r#","timeout_ms":20000"#),
            Some("slow"),
        );
        let mut worst = Duration::ZERO;
        for i in 0..10 {
            let t = Instant::now();
            let r = mesh.send(
                "checkout",
                Request::get("/v1/x").header("x-request-id", format!("s{i}")),
            );
            worst = worst.max(t.elapsed());
            assert_eq!(r.status, 200);
            std::thread::sleep(Duration::from_millis(120));
        }
        // The export waits 5 s at the collector; requests never wait for it.
        assert!(
            worst < Duration::from_secs(2),
            "Envoy {}: a request took {worst:?}",
            envoy.version
        );
        assert!(
            !mesh.otlp_received().is_empty(),
            "the export was on its way"
        );
    }
}
