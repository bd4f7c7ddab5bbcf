//! `PMG_ISTIO=1 scripts/demo.sh` runs every scene with the server sidecar shaped as Istio runs it
//! (its configuration by ECDS, Istio's RBAC after the plugin, the sidecar's log flags), then has a
//! misspelt configuration NACKed while the policy in force keeps denying, and a good one accepted.
//! `scripts/demo.sh --ambient` runs the same scenes through an ambient waypoint.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

/// Runs `scripts/demo.sh` as `shape` sets it up, in a directory of its own, and returns what it
/// printed; fails the test if the demo fails.
fn demo(envoy: &mesh::Envoy, name: &str, shape: impl FnOnce(&mut std::process::Command)) -> String {
    let dir = mesh::root()
        .join("target/e2e")
        .join(format!("demo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = mesh::script("demo.sh", envoy);
    cmd.env("PMG_DEMO_DIR", &dir);
    shape(&mut cmd);
    let out = cmd.output().expect("run scripts/demo.sh");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "the demo failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn the_demo_runs_on_an_istio_shaped_sidecar() {
    for envoy in mesh::each_build() {
        let text = demo(&envoy, "istio", |cmd| {
            cmd.env("PMG_ISTIO", "1");
        });
        // The same access events in both builds; the wasm build writes one more config event, in
        // a chain of its own, from the VM Envoy starts on the main thread besides the worker's and
        // the one that checks the configuration; the native build has the main thread's chain and
        // one per worker.
        let (events, chains) = if envoy.is_native() { (12, 2) } else { (13, 3) };
        assert!(
            mesh::verified_demo_trail(&text, events, chains),
            "{events} events (and heartbeats) in {chains} chains, verified:\n{text}"
        );
        for want in [
        "caller got:   403 {\"error\":\"forbidden\",\"request_id\":\"demo-2\"}",
        "request_body 1/1/0",
        "response_body 1/0/1",
        "config_fail=1 update_success=1",
        "configuration rejected: authorization.rulez",
        "caller got:   403 {\"error\":\"forbidden\",\"request_id\":\"demo-12\"}",
        "config_fail=1 update_success=2",
        "in scope: cardholder data environment    spiffe://cluster.local/ns/risk/sa/fraud-scoring",
        "/evidence/dataflow.svg",
    ] {
        assert!(
            text.contains(want),
            "{want:?} missing from the demo:\n{text}"
        );
    }
        let last_scene = text.split("Scene 13").nth(1).unwrap_or("");
        assert!(
            last_scene.contains("caller got:   200"),
            "the good configuration, delivered again, serves checkout:\n{text}"
        );
    }
}

#[test]
fn the_demo_runs_through_an_ambient_waypoint() {
    for envoy in mesh::each_build() {
        let text = demo(&envoy, "ambient", |cmd| {
            cmd.arg("--ambient");
        });
        for want in [
            "in Istio ambient's shape",
            // Denied on the tunnel's identity.
            "caller got:   403 {\"error\":\"forbidden\",\"request_id\":\"demo-2\"}",
            "demo-2   deny  reason=default            rule=None                     principal=spiffe://cluster.local/ns/marketing/sa/newsletter (from the tunnel)",
            // Masked on its way to the backend and back, passed under the grant.
            "body='{\"card\":\"**** **** **** 1111\"",
            "\"number\":\"************1111\"",
            "request_body 1/1/0",
            "response_body 1/0/1",
            "demo-5   deny  reason=no_mtls",
            " 0 problems",
            "in scope: cardholder data environment    spiffe://cluster.local/ns/payments/sa/waypoint",
        ] {
            assert!(
                text.contains(want),
                "{envoy}: {want:?} missing from the demo:\n{text}"
            );
        }
    }
}
