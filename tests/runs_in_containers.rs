//! The container path: `PMG_CONTAINER=podman scripts/demo.sh` runs the demo's scenes with both
//! sidecars in containers (envoy-config/docker-compose.yaml through podman-compose, the image built
//! locally by scripts/envoy-image.sh) and gets the same outcomes as the process-based mesh: the
//! same answers, the same audit lines, `verify-audit` passing, the same scope; for each build (the
//! native one's module mounted into the sidecar and loaded from there). Afterwards no
//! container, image or process of it is left.
//!
//! Ignored by plain `cargo test`: it needs Podman (and root here). `scripts/test.sh` runs it with
//! `--ignored` where Podman is installed, and says in one line that it skipped it where not.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::process::Command;

/// The demo's output lines that must not depend on where the sidecars run: the answers, the
/// audit lines (without request ids), the verification and the scope.
fn outcomes(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            l.contains("caller got:")
                || l.contains("backend saw:")
                || l.contains(" reason=")
                || l.contains(" events in ")
                || l.contains("in scope: ")
                || l.contains("candidate for out of scope")
        })
        .map(|l| {
            // Paths of the mesh directory differ between the runs.
            l.split_whitespace()
                .filter(|w| !w.contains("/e2e/"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn demo(envoy: &mesh::Envoy, dir: &std::path::Path, container: Option<(&str, &str)>) -> String {
    let mut cmd = mesh::script("demo.sh", envoy);
    cmd.env("PMG_DEMO_DIR", dir);
    if let Some((runtime, image)) = container {
        cmd.env("PMG_CONTAINER", runtime)
            .env("PMG_ENVOY_IMAGE", image);
    }
    let out = cmd.output().expect("run scripts/demo.sh");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the demo failed ({container:?}):\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn podman(args: &[&str]) -> String {
    let mut cmd = Command::new("podman");
    if std::env::var("PMG_CONTAINER_SANDBOX").as_deref() != Ok("0") {
        cmd.args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"])
            .env(
                "CONTAINERS_CONF",
                mesh::root().join("envoy-config/containers-sandbox.conf"),
            );
    }
    let out = cmd.args(args).output().expect("run podman");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
#[ignore = "needs Podman; scripts/test.sh runs it where Podman is installed"]
fn the_demo_in_podman_containers_matches_the_demo_in_processes() {
    let envoys: Vec<mesh::Envoy> = mesh::envoys()
        .into_iter()
        .filter(|e| e.version == "1.40.0")
        .collect();
    assert!(
        !envoys.is_empty(),
        "Envoy 1.40.0, the version of the compose file's image"
    );
    let built = Command::new(mesh::root().join("scripts/envoy-image.sh"))
        .args(["podman", "1.40.0"])
        .output()
        .expect("run scripts/envoy-image.sh");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let image = String::from_utf8_lossy(&built.stdout).trim().to_owned();
    let base = mesh::root()
        .join("target/e2e")
        .join(format!("containers-{}", std::process::id()));
    for envoy in &envoys {
        // Each build in containers against the same build in processes.
        let base = base.join(if envoy.is_native() { "native" } else { "wasm" });
        let processes = demo(envoy, &base.join("processes"), None);
        let containers = demo(envoy, &base.join("containers"), Some(("podman", &image)));
        let (want, got) = (outcomes(&processes), outcomes(&containers));
        assert!(want.len() >= 25, "{envoy}: {want:#?}");
        assert_eq!(got, want, "{envoy}: containers:\n{containers}");
        // The wasm build's VMs keep three chains; the native build one on the main thread and
        // one per worker (see tests/demo_as_istio_runs_it.rs).
        let (events, chains) = if envoy.is_native() { (12, 2) } else { (13, 3) };
        assert!(
            mesh::verified_demo_trail(&containers, events, chains),
            "{envoy}: {containers}"
        );
    }

    // Nothing of the run is left: no container, no image, no Envoy process.
    let left = podman(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !left.contains("pci-mesh-guard"),
        "containers left behind: {left}"
    );
    podman(&["rmi", "-f", &image]);
    assert!(podman(&["images", "--format", "{{.Repository}}"])
        .lines()
        .all(|l| !l.contains("pci-mesh-guard/envoy")));
    let _ = std::fs::remove_dir_all(&base);
}
