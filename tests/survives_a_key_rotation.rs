//! Under real Envoy, the audit key is rotated as an operator does it: the sidecar restarts with a
//! new key (here under a named id, `PCI_MESH_GUARD_AUDIT_KEY_ID`), so the period's logs are sealed
//! under two keys. Every event names its key (`kid`); `verify-audit` with a keyring of both keys
//! verifies the old and the new chains, and one key alone verifies its own chains and names the key
//! the others need.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::process::Command;

use mesh::{Mesh, Request};
use pci_mesh_guard::audit::chain::derived_kid;

const NEW_KEY: &str = "e2e-audit-key-rotated-987654321";
const NEW_KID: &str = "2027-q1";

/// Runs the sidecar with `key` (named `kid`), sends two requests, and returns its log's path.
fn run(
    envoy: &mesh::Envoy,
    name: &str,
    key: &str,
    kid: Option<&str>,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let mesh = Mesh::builder(envoy, name).audit_key(key, kid).up();
    for path in ["/v1/a", "/v1/b"] {
        mesh.send("checkout", Request::get(path));
    }
    let log = mesh::eventually(std::time::Duration::from_secs(10), || {
        let log = mesh.log("server");
        (log.matches(r#""event":"access""#).count() >= 2).then_some(log)
    })
    .expect("two access events");
    let events = mesh.events();
    let kid = kid
        .map(str::to_owned)
        .unwrap_or_else(|| derived_kid(key.as_bytes()));
    assert!(
        !events.is_empty() && events.iter().all(|e| e["kid"] == kid.as_str()),
        "{envoy}: every event names key {kid}"
    );
    let kept = dir.join(format!("{name}.log"));
    std::fs::write(&kept, log).expect("keep the log");
    kept
}

fn verify(ring: &str, logs: &[&std::path::Path], dir: &std::path::Path) -> (Option<i32>, String) {
    let file = dir.join("keyring");
    std::fs::write(&file, ring).expect("write the keyring");
    let out = Command::new(env!("CARGO_BIN_EXE_pci-mesh-guard"))
        .arg("verify-audit")
        .arg("--key-file")
        .arg(&file)
        .args(logs)
        .env_remove("PCI_MESH_GUARD_AUDIT_KEY")
        .output()
        .expect("run verify-audit");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn chains_sealed_before_and_after_a_rotation_verify_with_the_keyring() {
    for envoy in mesh::each_build() {
        let dir = mesh::root().join("target/e2e").join(format!(
            "rotation-{}-{}",
            envoy.version,
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let before = run(&envoy, "before-rotation", mesh::AUDIT_KEY, None, &dir);
        let after = run(&envoy, "after-rotation", NEW_KEY, Some(NEW_KID), &dir);
        let logs = [before.as_path(), after.as_path()];

        // The keyring of an operator who kept the old key: both periods verify.
        let ring = format!("# audit keys\n{}\n{NEW_KID} {NEW_KEY}\n", mesh::AUDIT_KEY);
        let (code, said) = verify(&ring, &logs, &dir);
        assert_eq!(code, Some(0), "{envoy}: {said}");
        assert_eq!(said.matches(" 0 problems").count(), 2, "{envoy}: {said}");

        // The new key alone: the new chains verify, the old ones are unverifiable, by name.
        let (code, said) = verify(&format!("{NEW_KID} {NEW_KEY}\n"), &logs, &dir);
        assert_eq!(code, Some(1), "{envoy}: {said}");
        let old_kid = derived_kid(mesh::AUDIT_KEY.as_bytes());
        assert!(
            said.contains("unverifiable: chain")
                && said.contains(&format!("sealed with key {old_kid}, not in the keyring")),
            "{envoy}: {said}"
        );
        let after_line = said
            .lines()
            .find(|l| l.starts_with(&format!("{}:", after.display())) && l.contains(" events in "))
            .unwrap_or_default();
        assert!(after_line.ends_with(" 0 problems"), "{envoy}: {said}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
