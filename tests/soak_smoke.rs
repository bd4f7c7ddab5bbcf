//! A short run of `scripts/soak.sh` (the million-request soak is run by hand): the script's
//! accounting holds on a few thousand requests: only 200 and 403 answers, as many access events
//! and plugin counts as requests the server saw, and an audit trail that verifies.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::process::Command;

#[test]
fn a_short_soak_passes_its_own_checks() {
    let envoy = mesh::envoys().into_iter().next().expect("an Envoy");
    let dir = mesh::root()
        .join("target/e2e")
        .join(format!("soak-{}", std::process::id()));
    let mut cmd = Command::new(mesh::root().join("scripts/soak.sh"));
    cmd.arg("5000")
        .arg(&dir)
        .env("PMG_SOAK_ROUND", "2")
        .env("PMG_WASM", mesh::wasm())
        .env("ENVOY_BIN", &envoy.bin);
    let vars = [
        "PMG_OUTBOUND_PORT",
        "PMG_MTLS_PORT",
        "PMG_PLAIN_PORT",
        "PMG_TLS_ANY_PORT",
        "PMG_RAW_PORT",
        "PMG_BACKEND_PORT",
        "PMG_OTEL_PORT",
    ];
    for (var, port) in vars.iter().zip(mesh::free_ports(vars.len())) {
        cmd.env(var, port.to_string());
    }
    let out = cmd.output().expect("run scripts/soak.sh");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(said.contains("soak passed"), "{said}");
    let line = said
        .lines()
        .find(|l| l.starts_with("server HTTP requests"))
        .expect("the accounting line");
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit() && c != ',')
        .filter_map(|w| w.replace(',', "").parse().ok())
        .collect();
    assert_eq!(numbers.len(), 3, "{line}");
    assert!(
        numbers[0] >= 5000 && numbers.iter().all(|n| *n == numbers[0]),
        "{line}"
    );
}
