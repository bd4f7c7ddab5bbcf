//! What a sidecar does when the filter's VM traps (a bug, an abort), shown with a module that
//! traps on demand in the plugin's place (`bench/reference-filter`, mode `trap`) under the shipped
//! sidecar configuration: with `fail_open: false` the request that trapped and every request
//! after it are refused with 503 and none reaches the workload; with Envoy's
//! `failure_policy: FAIL_RELOAD` the trapping request is refused and a fresh VM serves the next ones.
//! The wasm build alone: the native module has no VM to trap (a panic in one of its hooks is caught
//! there and resets the stream, see `src/dynamic_module/hooks.rs`).
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::time::Duration;

use mesh::{Mesh, Request};

fn charge() -> Request<'static> {
    Request::post("/v1/charges", r#"{"amount":1}"#)
}

#[test]
fn after_a_trap_fail_closed_refuses_everything_and_fail_reload_serves_again() {
    for envoy in mesh::wasm_envoys() {
        let v = &envoy;
        let mesh = Mesh::builder(&envoy, "trap-closed")
            .module(mesh::reference_filter())
            .config("trap")
            .up();
        assert_eq!(mesh.send("checkout", charge()).status, 200, "Envoy {v}");
        let trapped = mesh.send("checkout", charge().header("x-trap", "1"));
        assert_eq!(trapped.status, 503, "Envoy {v}: the trapping request");
        let reached = mesh.received().len();
        for _ in 0..3 {
            assert_eq!(
                mesh.send("checkout", charge()).status,
                503,
                "Envoy {v}: after the trap, fail closed"
            );
        }
        assert_eq!(
            mesh.received().len(),
            reached,
            "Envoy {v}: nothing got through"
        );
        let log = mesh.log("server");
        assert!(
            log.contains("panicked at") && log.contains("proxy_on_request_headers failed"),
            "Envoy {v}: the proxy log names the trap"
        );
        drop(mesh);

        let mesh = Mesh::builder(&envoy, "trap-reload")
            .module(mesh::reference_filter())
            .config("trap")
            .server_edit("fail_open: false", "failure_policy: FAIL_RELOAD")
            .up();
        assert_eq!(mesh.send("checkout", charge()).status, 200, "Envoy {v}");
        let trapped = mesh.send("checkout", charge().header("x-trap", "1"));
        assert_eq!(trapped.status, 503, "Envoy {v}: the trapping request");
        let served = mesh::eventually(Duration::from_secs(10), || {
            (mesh.send("checkout", charge()).status == 200).then_some(())
        });
        assert!(served.is_some(), "Envoy {v}: a reloaded VM serves again");
        let reloads: u64 = mesh
            .stats("vm_reload_success")
            .into_iter()
            .map(|(_, n)| n)
            .sum();
        assert!(reloads >= 1, "Envoy {v}: {:?}", mesh.stats("vm_reload"));
    }
}
