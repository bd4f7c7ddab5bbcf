//! Envoy draining the server sidecar's listeners (`/drain_listeners`, as on shutdown or a
//! listener update) while requests carrying card numbers flow: every request is either served
//! through the filter or refused before it (the caller's sidecar answers 503), never passed
//! unchecked; every request the server sidecar took has exactly one access event, and the
//! audit trail verifies.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::collections::BTreeMap;
use std::time::Duration;

use mesh::{Mesh, Request};

#[test]
fn a_drain_during_traffic_loses_no_event_and_lets_nothing_through_unchecked() {
    let config =
        std::fs::read_to_string(mesh::root().join("envoy-config/demo-plugin-config.json")).unwrap();
    for envoy in mesh::envoys() {
        let v = &envoy;
        let mesh = Mesh::builder(&envoy, "drain").config(&config).up();
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        for i in 0..200 {
            if i == 40 {
                let r = mesh.server_admin_post("/drain_listeners");
                assert_eq!(r.status, 200, "Envoy {v}: /drain_listeners");
            }
            if i > 40 {
                // Past the connection manager's drain timeout (5 s) over the remaining requests.
                std::thread::sleep(Duration::from_millis(40));
            }
            let r = mesh.send(
                "checkout",
                Request::post("/v1/charges", r#"{"card":"4111 1111 1111 1111"}"#)
                    .header("x-request-id", format!("drain-{i}")),
            );
            *statuses.entry(r.status).or_default() += 1;
        }
        assert!(
            statuses.keys().all(|s| *s == 200 || *s == 503),
            "Envoy {v}: {statuses:?}"
        );
        assert!(
            statuses.get(&200).is_some_and(|n| *n >= 40),
            "Envoy {v}: {statuses:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
        let served = mesh.server_stat("http.inbound.downstream_rq_total");
        let events = mesh
            .events()
            .into_iter()
            .filter(|e| e["event"] == "access")
            .count() as u64;
        let counted: u64 = mesh
            .stats("pci_mesh_guard_requests_total")
            .into_iter()
            .map(|(_, n)| n)
            .sum();
        assert_eq!(
            (events, counted),
            (served, served),
            "Envoy {v}: {statuses:?}"
        );
        assert_eq!(
            mesh.received().len() as u64,
            *statuses.get(&200).unwrap_or(&0) as u64,
            "Envoy {v}: the backend saw only what was served"
        );
        for r in mesh.received() {
            assert!(
                !mesh::joined_digits_for_tests(&r.to_string()).contains("4111111111111111"),
                "Envoy {v}: a card number passed"
            );
        }
        let report = mesh.verify_audit();
        assert!(
            report.problems.is_empty(),
            "Envoy {v}: {:?}",
            report.problems
        );
        eprintln!("Envoy {v}: answers during the drain: {statuses:?}; {served} requests audited");
    }
}
