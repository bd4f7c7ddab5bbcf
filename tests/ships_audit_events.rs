//! Under real Envoy: the `otlp_http` sink delivers every event to an OTLP/HTTP receiver that
//! validates each request against the opentelemetry-proto schema; with the collector down events
//! are dropped with counters and `audit_failure` events while requests keep flowing; under
//! `required` requests are refused while the queue is full; a slow collector does not slow requests;
//! a collector answering 500 loses its batch at once, one answering 429 is retried with backoff
//! before the batch is dropped, one slower than the timeout loses it: each loss counted and
//! recorded, and requests served all along. The wasm build's sink: the native build refuses it by
//! name (`the_native_build_refuses_the_otlp_sink_by_name`).
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
    for envoy in mesh::wasm_envoys() {
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
        .unwrap_or_else(|| panic!("Envoy {}: receiver got {:?}", envoy, mesh.otlp_received()));
        for req in mesh.otlp_received() {
            assert_eq!(req["valid"], true, "Envoy {}: {req}", envoy);
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
            envoy,
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
    for envoy in mesh::wasm_envoys() {
        let mesh = start(&envoy, "otlp-down", &config(""), None);
        for i in 0..3 {
            let r = mesh.send(
                "checkout",
                Request::get("/v1/x").header("x-request-id", format!("d{i}")),
            );
            assert_eq!(r.status, 200, "Envoy {}: requests keep flowing", envoy);
        }
        let failure = mesh::eventually(Duration::from_secs(20), || {
            mesh.events()
                .into_iter()
                .find(|e| e["event"] == "audit_failure")
        })
        .unwrap_or_else(|| panic!("Envoy {}: no audit_failure\n{}", envoy, mesh.log("server")));
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
    for envoy in mesh::wasm_envoys() {
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
        assert!(statuses.contains(&200), "Envoy {}: {statuses:?}", envoy);
        assert!(
            statuses.contains(&503),
            "Envoy {}: the full queue refuses: {statuses:?}",
            envoy
        );
        let refused = mesh
            .events()
            .into_iter()
            .find(|e| e["reason"] == "audit_unavailable");
        assert!(refused.is_some(), "Envoy {}", envoy);
        assert!(stat(&mesh, "decision=.=deny;.;reason=.=audit_unavailable;.;dry_run=.=false;.;pci_mesh_guard_requests_total") >= 1);
    }
}

#[test]
fn a_slow_collector_does_not_slow_requests() {
    for envoy in mesh::wasm_envoys() {
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
            envoy
        );
        assert!(
            !mesh.otlp_received().is_empty(),
            "the export was on its way"
        );
    }
}

/// The batches the receiver got: each one's records (event bodies).
fn batches(mesh: &Mesh) -> Vec<Vec<String>> {
    mesh.otlp_received()
        .iter()
        .map(|b| {
            b["records"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

/// Sends three requests, all served, then waits for an `audit_failure` event, checks that it
/// says `delivery_failed` with `detail` in its detail.
fn serve_then_failure(mesh: &Mesh, v: &mesh::Envoy, detail: &str) {
    for i in 0..3 {
        let r = mesh.send(
            "checkout",
            Request::get("/v1/x").header("x-request-id", format!("f{i}")),
        );
        assert_eq!(r.status, 200, "Envoy {v}: requests keep flowing");
    }
    let failure = mesh::eventually(Duration::from_secs(30), || {
        mesh.events()
            .into_iter()
            .find(|e| e["event"] == "audit_failure")
    })
    .unwrap_or_else(|| panic!("Envoy {v}: no audit_failure\n{}", mesh.log("server")));
    assert_eq!(failure["reason"], "delivery_failed", "Envoy {v}: {failure}");
    assert!(
        failure["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(detail),
        "Envoy {v}: {failure}"
    );
}

#[test]
fn a_collector_answering_500_loses_the_batch_at_once_and_says_so() {
    for envoy in mesh::wasm_envoys() {
        let v = &envoy;
        let mesh = start(&envoy, "otlp-500", &config(""), Some("500"));
        serve_then_failure(&mesh, v, "500");
        // Not retried: no batch reached the receiver twice.
        let got = batches(&mesh);
        let mut unique = got.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), got.len(), "Envoy {v}: a 500 was retried");
        assert!(
            stat(
                &mesh,
                "outcome=.=dropped;.;pci_mesh_guard_audit_events_total"
            ) >= 1
        );
        assert_eq!(
            stat(&mesh, "outcome=.=sent;.;pci_mesh_guard_audit_events_total"),
            0
        );
    }
}

#[test]
fn a_collector_answering_429_is_retried_with_backoff_then_the_batch_is_dropped() {
    for envoy in mesh::wasm_envoys() {
        let v = &envoy;
        let mesh = start(&envoy, "otlp-429", &config(""), Some("429"));
        serve_then_failure(&mesh, v, "429 5 times");
        // The first batch went out five times, each wait twice the one before (from 200 ms).
        // (Each VM, the main thread's and the worker's, ships its own batches.)
        let attempts_of_first = || {
            let received = mesh.otlp_received();
            let first = received.first()?["records"].clone();
            let times: Vec<f64> = received
                .iter()
                .filter(|r| r["records"] == first)
                .filter_map(|r| r["at"].as_f64())
                .collect();
            (times.len() >= 5).then_some(times)
        };
        let times = mesh::eventually(Duration::from_secs(20), attempts_of_first)
            .unwrap_or_else(|| panic!("Envoy {v}: {:#?}", mesh.otlp_received()));
        assert_eq!(times.len(), 5, "Envoy {v}: attempts of the first batch");
        for (k, pair) in times.windows(2).enumerate() {
            let wait = pair[1] - pair[0];
            let floor = 0.2 * f64::from(1u32 << k);
            assert!(
                wait >= floor * 0.9,
                "Envoy {v}: attempt {} came {wait:.3} s after the one before, want {floor} s",
                k + 2
            );
        }
        assert!(stat(&mesh, "pci_mesh_guard_audit_sink_errors_total") >= 5);
    }
}

#[test]
fn a_collector_slower_than_the_timeout_loses_the_batch_while_requests_flow() {
    for envoy in mesh::wasm_envoys() {
        let v = &envoy;
        let mesh = start(
            &envoy,
            "otlp-timeout",
            &config(r#","timeout_ms":300"#),
            Some("slow"),
        );
        let t = Instant::now();
        // No answer within the timeout: the detail names no status.
        serve_then_failure(&mesh, v, "");
        assert!(t.elapsed() < Duration::from_secs(15), "Envoy {v}");
        assert!(
            stat(
                &mesh,
                "outcome=.=dropped;.;pci_mesh_guard_audit_events_total"
            ) >= 1
        );
    }
}

#[test]
fn the_native_build_refuses_the_otlp_sink_by_name() {
    for envoy in mesh::envoys().into_iter().filter(|e| e.is_native()) {
        let err = match Mesh::builder(&envoy, "otlp-native")
            .config(&config(""))
            .start()
        {
            Ok(mesh) => panic!(
                "Envoy {envoy} started the native build with the otlp_http sink:\n{}",
                mesh.log("server")
            ),
            Err(e) => e,
        };
        assert!(
            err.log.contains(
                "pci-mesh-guard: configuration rejected: audit.sink: \"otlp_http\" is not available in the native build"
            ),
            "Envoy {envoy}: the log does not name the key\n{}",
            err.log
        );
        assert!(err.received.is_empty(), "Envoy {envoy}: {:?}", err.received);
    }
}
