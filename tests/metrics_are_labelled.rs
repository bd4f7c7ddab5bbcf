//! The plugin's counters reach Prometheus as metrics with labels: after a mix of traffic through
//! real Envoy (with the `stats_tags` of the shipped sidecar config), `/stats/prometheus` has
//! `pci_mesh_guard_requests_total` by decision, reason and dry_run, `pci_mesh_guard_pans_total` by
//! direction and outcome, `pci_mesh_guard_denied_callers_total` by caller, and
//! `pci_mesh_guard_audit_events_total` by outcome, with the counts sent; `promtool check metrics`
//! accepts the output.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::collections::BTreeMap;

use mesh::{Mesh, Request};

/// The samples of `name` in Prometheus text: labels (sorted) to value.
fn samples(text: &str, name: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let mut labels: Vec<&str> = labels.split(',').filter(|s| !s.is_empty()).collect();
            labels.sort();
            Some((labels.join(","), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn counters_reach_prometheus_with_their_labels() {
    for envoy in mesh::envoys() {
        let v = &envoy;
        let config =
            std::fs::read_to_string(mesh::root().join("envoy-config/demo-plugin-config.json"))
                .unwrap();
        let mesh = Mesh::builder(&envoy, "metrics").config(&config).up();
        let charge = r#"{"card":"4111 1111 1111 1111","amount":1299}"#;
        assert_eq!(
            mesh.send("checkout", Request::post("/v1/charges", charge))
                .status,
            200
        );
        assert_eq!(
            mesh.send("checkout", Request::post("/v1/charges", charge))
                .status,
            200
        );
        assert_eq!(
            mesh.send("newsletter", Request::post("/v1/charges", "{}"))
                .status,
            403
        );
        // A compressed body cannot be scanned: refused (`compressed_body: block`).
        assert_eq!(
            mesh.send(
                "checkout",
                Request::post("/v1/charges", &b"\x1f\x8b\x08\x00 compressed"[..])
                    .header("content-encoding", "gzip")
            )
            .status,
            415
        );
        for _ in 0..3 {
            assert_eq!(
                mesh.send("plaintext", Request::post("/v1/charges", "{}"))
                    .status,
                403
            );
        }
        // Each request is counted when its stream ends, which may be just after its answer.
        let text = mesh::eventually(std::time::Duration::from_secs(5), || {
            let text = mesh.prometheus();
            let counted: f64 = samples(&text, "pci_mesh_guard_requests_total")
                .values()
                .sum();
            (counted >= 7.0).then_some(text)
        })
        .unwrap_or_else(|| mesh.prometheus());
        assert!(
            text.contains("# TYPE pci_mesh_guard_requests_total counter"),
            "Envoy {v}: no requests counter:\n{text}"
        );
        let requests = samples(&text, "pci_mesh_guard_requests_total");
        let want = [
            (r#"decision="allow",dry_run="false",reason="rule""#, 2.0),
            (r#"decision="deny",dry_run="false",reason="default""#, 1.0),
            (r#"decision="deny",dry_run="false",reason="no_mtls""#, 3.0),
            (r#"decision="deny",dry_run="true",reason="no_mtls""#, 0.0),
            (
                r#"decision="deny",dry_run="false",reason="unscannable_body""#,
                1.0,
            ),
        ];
        for (labels, n) in want {
            assert_eq!(
                requests.get(labels),
                Some(&n),
                "Envoy {v}: {labels} in {requests:#?}"
            );
        }
        let callers = samples(&text, "pci_mesh_guard_denied_callers_total");
        let want = [
            (
                r#"caller="spiffe://cluster.local/ns/marketing/sa/newsletter",dry_run="false",reason="default""#,
                1.0,
            ),
            (
                r#"caller="unauthenticated",dry_run="false",reason="no_mtls""#,
                3.0,
            ),
        ];
        for (labels, n) in want {
            assert_eq!(
                callers.get(labels),
                Some(&n),
                "Envoy {v}: {labels} in {callers:#?}"
            );
        }
        assert_eq!(
            callers.len(),
            3,
            "Envoy {v}: only denied callers: {callers:#?}"
        );
        let pans = samples(&text, "pci_mesh_guard_pans_total");
        assert_eq!(
            pans.get(r#"direction="request",outcome="redacted""#),
            Some(&2.0),
            "Envoy {v}: {pans:#?}"
        );
        assert_eq!(
            pans.get(r#"direction="response",outcome="granted""#),
            Some(&0.0)
        );
        assert_eq!(
            pans.get(r#"direction="request",outcome="dry_run""#),
            Some(&0.0)
        );
        let unscannable = samples(&text, "pci_mesh_guard_unscannable_bodies_total");
        assert_eq!(
            unscannable.get(r#"direction="request""#),
            Some(&1.0),
            "Envoy {v}"
        );
        assert_eq!(
            unscannable.get(r#"direction="response""#),
            Some(&0.0),
            "Envoy {v}"
        );
        let configs = samples(&text, "pci_mesh_guard_configurations_total");
        assert!(
            configs
                .get(r#"result="accepted""#)
                .is_some_and(|n| *n >= 1.0),
            "Envoy {v}: {configs:#?}"
        );
        assert_eq!(configs.get(r#"result="rejected""#), Some(&0.0), "Envoy {v}");
        assert!(
            text.contains("# TYPE pci_mesh_guard_lint_findings gauge")
                && text.contains("# TYPE pci_mesh_guard_audit_queue_depth gauge"),
            "Envoy {v}: the gauges:\n{text}"
        );
        let memory = samples(&text, "pci_mesh_guard_vm_memory_bytes");
        if envoy.is_native() {
            // No VM, no VM memory: the native module's heap is Envoy's.
            assert!(memory.is_empty(), "Envoy {v}: {memory:?}");
        } else {
            let bytes = memory.get("").copied().unwrap_or_default();
            assert!(
                bytes >= 65536.0 && bytes % 65536.0 == 0.0,
                "Envoy {v}: the VM's memory in whole wasm pages: {memory:?}"
            );
        }
        let audit = samples(&text, "pci_mesh_guard_audit_events_total");
        assert!(
            audit.get(r#"outcome="emitted""#).is_some_and(|n| *n >= 8.0),
            "Envoy {v}: {audit:#?}"
        );
        let lint = mesh::promtool_lint_of_plugin_metrics(&text);
        assert!(lint.is_empty(), "Envoy {v}: promtool's lint: {lint:#?}");
        // No name still carries an unextracted label.
        assert!(
            !text.contains("=.="),
            "Envoy {v}: a label left in a name:\n{text}"
        );
    }
}
