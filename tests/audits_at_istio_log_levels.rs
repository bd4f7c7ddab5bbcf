//! Under real Envoy started as Istio's pilot-agent starts it (`--log-level warning
//! --component-log-level misc:error`, the injection defaults) with the shipped plugin
//! configuration: every request has its one access event in the proxy log, the log verifies, and
//! a level changed at run time through the admin endpoint loses no event without the requests
//! stopping.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use mesh::{Mesh, Request};

fn shipped_config() -> String {
    std::fs::read_to_string(mesh::root().join("envoy-config/demo-plugin-config.json"))
        .expect("read the shipped plugin configuration")
}

/// One request of a mixed set: allowed with card numbers in the body, denied by identity, denied
/// by a deny rule, and allowed with a masked response.
fn send(mesh: &Mesh, i: usize) -> (String, u16) {
    let id = format!("istio-{i}");
    let resp = match i % 4 {
        0 => mesh.send(
            "checkout",
            Request::post(
                "/v1/charges",
                r#"{"card":"4111 1111 1111 1111","amount":1299}"#,
            )
            .header("x-request-id", id.clone()),
        ),
        1 => mesh.send(
            "newsletter",
            Request::post("/v1/charges", "{}").header("x-request-id", id.clone()),
        ),
        2 => mesh.send(
            "checkout",
            Request::get("/admin/users").header("x-request-id", id.clone()),
        ),
        _ => mesh.send(
            "checkout",
            Request::get("/fixture/order.json").header("x-request-id", id.clone()),
        ),
    };
    (id, resp.status)
}

/// The access events of the server log, by request id; fails on any id with more than one.
fn access_ids(mesh: &Mesh) -> Vec<String> {
    let ids: Vec<String> = mesh
        .events()
        .iter()
        .filter(|e| e["event"] == "access")
        .map(|e| e["request"]["id"].as_str().unwrap_or("").to_string())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "one access event per request: {ids:?}"
    );
    ids
}

/// The level Envoy wrote each audit event at (`[warning]` in `[ts][tid][warning][wasm] ...`).
fn event_levels(mesh: &Mesh) -> Vec<String> {
    mesh.log("server")
        .lines()
        .filter(|l| l.contains(r#"{"schema":"pci-mesh-guard/audit/v1""#))
        .filter_map(|l| l.split("][").nth(2).map(str::to_string))
        .collect()
}

fn stat(mesh: &Mesh, name: &str) -> u64 {
    mesh.stats(name)
        .into_iter()
        .find(|(k, _)| k.ends_with(name))
        .map_or(0, |(_, v)| v)
}

#[test]
fn every_request_is_audited_at_istios_default_log_levels() {
    for envoy in mesh::envoys() {
        let v = &envoy;
        let mesh = Mesh::builder(&envoy, "istio-levels")
            .config(&shipped_config())
            .envoy_args(mesh::ISTIO_LOG_FLAGS)
            .up();
        let mut sent = vec![];
        for i in 0..12 {
            let (id, status) = send(&mesh, i);
            let want = [200, 403, 403, 200][i % 4];
            assert_eq!(status, want, "Envoy {v}: {id}");
            sent.push(id);
        }
        let got = mesh::eventually(std::time::Duration::from_secs(10), || {
            let ids = access_ids(&mesh);
            (ids.len() >= sent.len()).then_some(ids)
        })
        .unwrap_or_else(|| panic!("Envoy {v}: access events missing:\n{}", mesh.log("server")));
        assert_eq!(
            got, sent,
            "Envoy {v}: one access event per request, in order"
        );
        // One config event per VM (Envoy's configuration check, the main thread, the worker).
        let events = mesh.events();
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "config" && e["accepted"] == true),
            "Envoy {v}: the config event is written"
        );
        assert!(
            event_levels(&mesh).iter().all(|l| l == "warning"),
            "Envoy {v}: events at the proxy's level: {:?}",
            event_levels(&mesh)
        );
        assert!(
            mesh.log("server")
                .contains("audit events are written at warning so that none is lost"),
            "Envoy {v}: the operator is told why"
        );
        // Every event the plugin counted is in the log.
        assert_eq!(
            stat(
                &mesh,
                "outcome=.=emitted;.;pci_mesh_guard_audit_events_total"
            ),
            events.len() as u64,
            "Envoy {v}"
        );
        assert_eq!(
            stat(
                &mesh,
                "outcome=.=dropped;.;pci_mesh_guard_audit_events_total"
            ),
            0
        );
        let (code, out) = mesh::verify_audit_cli(&mesh.dir.join("server.log"));
        assert_eq!(code, Some(0), "Envoy {v}: {out}");
        assert!(
            out.contains(&format!(" {} events in ", events.len())),
            "Envoy {v}: {out}"
        );
    }
}

#[test]
fn a_log_level_changed_at_run_time_loses_no_event_silently() {
    for envoy in mesh::envoys() {
        let v = &envoy;
        let mesh = Mesh::builder(&envoy, "istio-levels-runtime")
            .config(&shipped_config())
            .envoy_args(mesh::ISTIO_LOG_FLAGS)
            .up();
        assert_eq!(send(&mesh, 0).1, 200);

        // Raised to error: events follow it.
        mesh.set_server_log_level(&format!("{}=error", envoy.filter_logger()));
        assert_eq!(send(&mesh, 1).1, 403);
        assert_eq!(send(&mesh, 4).1, 200);
        assert_eq!(access_ids(&mesh).len(), 3, "Envoy {v}");
        assert_eq!(
            event_levels(&mesh).last().map(String::as_str),
            Some("error")
        );

        // Off: nothing could be written, so nothing is served; the loss is counted.
        mesh.set_server_log_level(&format!("{}=off", envoy.filter_logger()));
        let received = mesh.received().len();
        // Requests without a body (i % 4 == 3: an allowed GET), so that the 503 races no upload.
        for i in [7, 11] {
            let (id, status) = send(&mesh, i);
            assert_eq!(status, 503, "Envoy {v}: {id} served without an audit trail");
        }
        assert_eq!(
            mesh.received().len(),
            received,
            "Envoy {v}: backend reached"
        );
        assert_eq!(
            stat(&mesh, "decision=.=deny;.;reason=.=audit_unavailable;.;dry_run=.=false;.;pci_mesh_guard_requests_total"),
            2
        );
        assert_eq!(
            stat(
                &mesh,
                "outcome=.=dropped;.;pci_mesh_guard_audit_events_total"
            ),
            2
        );

        // Back at warning: the trail says what it lost before the next event, and verifies.
        mesh.set_server_log_level(&format!("{}=warning", envoy.filter_logger()));
        assert_eq!(send(&mesh, 16).1, 200);
        let events = mesh.events();
        let n = events.len();
        assert!(n >= 2, "Envoy {v}");
        assert_eq!(events[n - 2]["event"], "audit_failure", "Envoy {v}");
        assert_eq!(events[n - 2]["reason"], "log_unavailable");
        assert_eq!(events[n - 2]["dropped"], 2);
        assert_eq!(events[n - 1]["request"]["id"], "istio-16");
        let (code, out) = mesh::verify_audit_cli(&mesh.dir.join("server.log"));
        assert_eq!(code, Some(0), "Envoy {v}: {out}");
    }
}
