//! The Istio manifests under `envoy-config/istio/` are valid for the Kubernetes API server (checked
//! against Istio's published CRD schemas), and the plugin configuration each carries is one the
//! plugin accepts, linter findings included where it asks for `strict`.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::path::PathBuf;
use std::process::Command;

use pci_mesh_guard::config::Policy;

/// Istio's CRD schemas: `PMG_ISTIO_CRDS`, else `../shared/istio/crds.yaml` beside the checkout.
fn crds() -> PathBuf {
    let path = std::env::var("PMG_ISTIO_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| mesh::root().join("../shared/istio/crds.yaml"));
    assert!(
        path.exists(),
        "Istio's CRD schemas not found at {} (set PMG_ISTIO_CRDS to a copy of Istio's customresourcedefinitions.gen.yaml)",
        path.display()
    );
    path
}

#[test]
fn wasmplugin_and_envoyfilter_validate_and_carry_accepted_configurations() {
    let manifests: Vec<PathBuf> = ["wasmplugin.yaml", "envoyfilter.yaml"]
        .iter()
        .map(|f| mesh::root().join("envoy-config/istio").join(f))
        .collect();
    let out = Command::new(mesh::tools_python())
        .arg(mesh::root().join("scripts/validate_istio.py"))
        .arg(crds())
        .args(&manifests)
        .output()
        .expect("run validate_istio.py");
    assert!(
        out.status.success(),
        "schema validation failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let configs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(configs.len(), 2, "one plugin configuration per manifest");
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
    }
}

#[test]
fn the_validator_refuses_a_manifest_istio_would_refuse() {
    let dir = std::env::temp_dir().join(format!("pmg-istio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    let good =
        std::fs::read_to_string(mesh::root().join("envoy-config/istio/wasmplugin.yaml")).unwrap();
    std::fs::write(
        &bad,
        good.replace("failStrategy: FAIL_CLOSE", "failStrategy: FAIL_SOMETIMES"),
    )
    .unwrap();
    let out = Command::new(mesh::tools_python())
        .arg(mesh::root().join("scripts/validate_istio.py"))
        .arg(crds())
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("failStrategy"));
    std::fs::remove_dir_all(&dir).unwrap();
}
