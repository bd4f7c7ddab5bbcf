//! The Istio manifests under `envoy-config/istio/` are valid for the Kubernetes API server (checked
//! against Istio's resource types, generated from its CRD schemas and installed from PyPI by
//! `scripts/test-tools.sh`), and the plugin configuration each carries is one the plugin accepts,
//! linter findings included where it asks for `strict`.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::path::PathBuf;
use std::process::Command;

use pci_mesh_guard::config::Policy;

/// Runs `scripts/validate_istio.py` over `manifests`.
fn validate(manifests: &[PathBuf]) -> std::process::Output {
    Command::new(mesh::tools_python())
        .arg(mesh::root().join("scripts/validate_istio.py"))
        .args(manifests)
        .output()
        .expect("run validate_istio.py")
}

#[test]
fn wasmplugin_and_envoyfilter_validate_and_carry_accepted_configurations() {
    let manifests: Vec<PathBuf> = [
        "wasmplugin.yaml",
        "envoyfilter.yaml",
        "envoyfilter-native.yaml",
        "telemetry.yaml",
        "peerauthentication.yaml",
        "wasmplugin-waypoint.yaml",
        "trafficextension.yaml",
    ]
    .iter()
    .map(|f| mesh::root().join("envoy-config/istio").join(f))
    .collect();
    let out = validate(&manifests);
    assert!(
        out.status.success(),
        "schema validation failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let configs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(configs.len(), 5, "one plugin configuration per manifest");
    for c in configs {
        let text = c["config"].as_str().unwrap();
        let policy = Policy::parse(text.as_bytes())
            .unwrap_or_else(|e| panic!("{}: plugin configuration rejected: {e}", c["file"]));
        assert!(
            policy.findings.is_empty(),
            "{}: {:?}",
            c["file"],
            policy.findings
        );
        if c["file"].as_str().unwrap().ends_with("-native.yaml") {
            assert_ne!(
                policy.audit.sink,
                pci_mesh_guard::config::Sink::OtlpHttp,
                "the native build refuses otlp_http"
            );
        }
    }
}

/// The filter the native EnvoyFilter inserts, exactly as its patch gives it, loads in a real
/// Envoy (with the module found by name) and enforces the policy the manifest carries.
#[test]
fn the_native_envoyfilter_patch_loads_and_enforces_in_envoy() {
    let text =
        std::fs::read_to_string(mesh::root().join("envoy-config/istio/envoyfilter-native.yaml"))
            .unwrap();
    let manifest: serde_json::Value = {
        let out = Command::new(mesh::tools_python())
            .args([
                "-c",
                "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(text.as_bytes())?;
                child.wait_with_output()
            })
            .expect("YAML to JSON");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let patch = &manifest["spec"]["configPatches"][0]["patch"]["value"];
    assert_eq!(patch["name"], "pci-mesh-guard");
    for envoy in mesh::envoys().into_iter().filter(|e| e.is_native()) {
        let mesh = mesh::Mesh::builder(&envoy, "envoyfilter-native")
            .filter_snippet(&format!("- {patch}"))
            .up();
        let charge = mesh::Request::post("/v1/charges", r#"{"card":"4111111111111111"}"#);
        assert_eq!(mesh.send("checkout", charge).status, 200, "Envoy {envoy}");
        let got = mesh.received();
        assert!(
            got.last().unwrap()["body"]
                .as_str()
                .unwrap()
                .contains("4111111111111111"),
            "Envoy {envoy}: the manifest grants checkout's charges the card number: {got:?}"
        );
        let admin = mesh::Request::get("/admin/users");
        assert_eq!(mesh.send("checkout", admin).status, 403, "Envoy {envoy}");
        let other = mesh::Request::post("/v1/charges", "{}");
        assert_eq!(mesh.send("newsletter", other).status, 403, "Envoy {envoy}");
    }
}

#[test]
fn the_validator_refuses_a_manifest_istio_would_refuse() {
    refuses_broken_copies(
        "wasmplugin.yaml",
        &[
            (
                "bad-value.yaml",
                "failStrategy: FAIL_CLOSE",
                "failStrategy: FAIL_SOMETIMES",
                "spec.failStrategy",
            ),
            (
                "unknown-field.yaml",
                "phase: AUTHZ",
                "phaze: AUTHZ",
                "spec.phaze: unknown field",
            ),
        ],
    );
}

/// YAML of a manifest under `envoy-config/istio/`, as JSON.
fn manifest(file: &str) -> serde_json::Value {
    let out = Command::new(mesh::tools_python())
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(mesh::root().join("envoy-config/istio").join(file))
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The waypoint's WasmPlugin and its TrafficExtension twin attach to the waypoint the only way a
/// waypoint takes (targetRefs), carry the same plugin, and have it take the caller from the tunnel.
#[test]
fn the_waypoint_manifests_target_the_waypoint_and_take_the_tunnel_identity() {
    let plugin = manifest("wasmplugin-waypoint.yaml");
    let extension = manifest("trafficextension.yaml");
    let (p, e) = (&plugin["spec"], &extension["spec"]);
    let waypoint = serde_json::json!([{
        "kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "waypoint"
    }]);
    for (name, spec) in [("WasmPlugin", p), ("TrafficExtension", e)] {
        assert_eq!(spec["targetRefs"], waypoint, "{name}");
        assert!(
            spec.get("selector").is_none(),
            "{name}: a waypoint ignores selector"
        );
        assert_eq!(spec["phase"], "AUTHZ", "{name}");
    }
    let w = &e["wasm"];
    for field in [
        "url",
        "sha256",
        "imagePullPolicy",
        "failStrategy",
        "type",
        "vmConfig",
        "pluginConfig",
    ] {
        assert_eq!(
            w[field], p[field],
            "TrafficExtension wasm.{field} differs from the WasmPlugin's"
        );
    }
    assert_eq!(w["failStrategy"], "FAIL_CLOSE");
    let config = serde_json::to_string(&p["pluginConfig"]).unwrap();
    let policy = Policy::parse(config.as_bytes()).unwrap();
    assert_eq!(
        policy.authorizer.source,
        pci_mesh_guard::identity::IdentitySource::IstioWaypoint
    );
}

/// What the TrafficExtension's CRD refuses, its schema and rules refuse too.
#[test]
fn the_validator_refuses_a_traffic_extension_istio_would_refuse() {
    refuses_broken_copies(
        "trafficextension.yaml",
        &[
            (
                "unknown-field.yaml",
                "phase: AUTHZ",
                "phaze: AUTHZ",
                "phaze",
            ),
            (
                "bad-phase.yaml",
                "phase: AUTHZ",
                "phase: EXECUTION_PHASE_AUTHZ",
                "spec.phase",
            ),
            (
                "bad-strategy.yaml",
                "failStrategy: FAIL_CLOSE",
                "failStrategy: FAIL_SOMETIMES",
                "spec.wasm.failStrategy",
            ),
            (
                "bad-digest.yaml",
                "sha256: \"0000",
                "sha256: \"000",
                "spec.wasm.sha256",
            ),
            (
                "selector-and-target.yaml",
                "spec:\n  targetRefs:",
                "spec:\n  selector: {matchLabels: {app: payments-api}}\n  targetRefs:",
                "only one of targetRefs or selector",
            ),
            (
                "wasm-and-lua.yaml",
                "  phase: AUTHZ",
                "  phase: AUTHZ\n  lua: {inlineCode: 'function envoy_on_request(h) end'}",
                "exactly one of wasm or lua",
            ),
            (
                "cross-namespace.yaml",
                "    name: waypoint",
                "    name: waypoint\n    namespace: istio-system",
                "cross namespace",
            ),
            (
                "host-with-value.yaml",
                "      - name: PCI_MESH_GUARD_AUDIT_KEY\n        valueFrom: HOST",
                "      - name: PCI_MESH_GUARD_AUDIT_KEY\n        valueFrom: HOST\n        value: x",
                "value may only be set",
            ),
        ],
    );
}

/// Each case breaks a copy of `manifest` (its first `from` made `to`): the validator must refuse
/// it, naming `named`.
fn refuses_broken_copies(manifest: &str, cases: &[(&str, &str, &str, &str)]) {
    let dir = std::env::temp_dir().join(format!("pmg-broken-{manifest}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good =
        std::fs::read_to_string(mesh::root().join("envoy-config/istio").join(manifest)).unwrap();
    for (name, from, to, named) in cases {
        assert!(good.contains(from), "{manifest} no longer has {from:?}");
        let bad = dir.join(name);
        std::fs::write(&bad, good.replacen(from, to, 1)).unwrap();
        let out = validate(&[bad]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} passed validation");
        assert!(stderr.contains(named), "{name}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The Istio instructions for the `access_log` sink use the same format and filter as the sidecar
/// configuration the end-to-end tests run (tests/audits_to_envoys_access_log.rs).
#[test]
fn istio_access_log_matches_the_tested_sidecar() {
    let read = |p: &str| std::fs::read_to_string(mesh::root().join(p)).unwrap();
    let istio = read("envoy-config/istio/telemetry.yaml");
    let sidecar = read("envoy-config/server-sidecar.yaml");
    for needle in [
        "%FILTER_STATE(wasm.pmg_audit:PLAIN)%\\n",
        "expression: \"'wasm.pmg_audit' in filter_state\"",
    ] {
        assert!(istio.contains(needle), "telemetry.yaml lacks {needle}");
        assert!(
            sidecar.contains(needle),
            "server-sidecar.yaml lacks {needle}"
        );
    }
    assert!(
        pci_mesh_guard::filter::AUDIT_STATE == "pmg_audit",
        "the plugin's filter state name changed"
    );
}
