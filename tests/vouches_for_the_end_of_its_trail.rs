//! Under real Envoy, both builds, with the `access_log` sink and a heartbeat each second:
//! `heartbeat` events name the access chain's last seq and mac (written by the wasm VM's own chain,
//! or by the native build's main thread for every worker), and a `stop` ends each chain when the
//! proxy stops. `verify-audit --until` then tells a quiet sidecar's whole trail from one whose end was
//! cut: a log cut after a checkpoint, a log cut at its end while the sidecar runs on, an access log
//! cut while its proxy log is whole, and a clean stop.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mesh::{Mesh, Request};

fn config() -> String {
    let text = std::fs::read_to_string(mesh::root().join("envoy-config/demo-plugin-config.json"))
        .expect("read the shipped plugin configuration");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    v["audit"] = serde_json::json!({"sink": "access_log", "heartbeat_s": 1});
    v.to_string()
}

/// `verify-audit --until UNTIL` over the logs as one trail: its exit code and what it printed.
fn verify(until: &str, logs: &[&Path]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pci-mesh-guard"))
        .arg("verify-audit")
        .args(["--until", until])
        .args(logs)
        .env("PCI_MESH_GUARD_AUDIT_KEY", mesh::AUDIT_KEY)
        .env_remove("PCI_MESH_GUARD_AUDIT_KEY_ID")
        .output()
        .expect("run verify-audit");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn keep(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).expect("write a copy of a log");
    path
}

fn work_dir(envoy: &mesh::Envoy, what: &str) -> PathBuf {
    let dir = mesh::root().join("target/e2e").join(format!(
        "{what}-{}-{}",
        envoy.version,
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("a work directory");
    dir
}

fn send(mesh: &Mesh, n: usize) {
    for i in 0..n {
        let req = Request::get("/fixture/order.json").header("x-request-id", format!("hb-{i}"));
        assert_eq!(mesh.send("checkout", req).status, 200);
    }
}

/// The heartbeats that vouch for the access chain at its last event: its id, the number of its
/// events (the access log's lines), and the chain writing those heartbeats (in the wasm build the
/// worker VM's own chain; in the native build the main thread's, which vouches for every worker).
fn vouching(log: &str, access_lines: usize) -> Vec<(String, String)> {
    mesh::audit_events(log)
        .into_iter()
        .filter(|e| e["event"] == "heartbeat")
        .filter_map(|e| {
            let point = e["chains"].as_array()?.iter().find(|p| {
                p["chain"].as_str().is_some_and(|c| c.ends_with(".access"))
                    && p["seq"] == access_lines
            })?;
            Some((
                point["chain"].as_str()?.to_owned(),
                e["chain"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Waits until the server log holds `n` heartbeats naming the access chain at its last event,
/// and returns the server log and the access log.
fn settled(mesh: &Mesh, n: usize) -> (String, String) {
    mesh::eventually(Duration::from_secs(20), || {
        let (log, access) = (mesh.log("server"), mesh.audit_log());
        let lines = access.lines().count();
        (lines > 0 && vouching(&log, lines).len() >= n).then_some((log, access))
    })
    .expect("heartbeats after the last request")
}

#[test]
fn a_quiet_sidecar_is_whole_and_each_cut_of_its_logs_is_found() {
    for envoy in mesh::each_build() {
        let v = &envoy;
        let dir = work_dir(&envoy, "heartbeats");
        let mesh = Mesh::builder(&envoy, "heartbeats").config(&config()).up();
        send(&mesh, 3);
        let (log, access) = settled(&mesh, 2);
        let lines: Vec<&str> = log.lines().collect();
        let access: Vec<&str> = access.lines().collect();
        assert_eq!(access.len(), 3, "Envoy {v}: one access line per request");
        // The access chain, and the chain whose heartbeats vouch for it.
        let (access_chain, chain) = vouching(&log, 3)
            .pop()
            .expect("a heartbeat naming the access chain at seq 3");
        let served_by = serde_json::from_str::<serde_json::Value>(access[2]).unwrap();
        assert_eq!(served_by["chain"], access_chain.as_str(), "Envoy {v}");
        let beat = mesh::audit_events(&log)
            .into_iter()
            .rev()
            .find(|e| e["event"] == "heartbeat" && e["chain"] == chain.as_str())
            .expect("a heartbeat");
        assert_eq!(beat["heartbeat_s"], 1, "Envoy {v}: {beat}");

        // A quiet sidecar, its logs whole: nothing is missing at the end of the period (now).
        let whole = keep(&dir, "server.log", &lines);
        let access_whole = keep(&dir, "audit.log", &access);
        let (code, said) = verify("now", &[&whole, &access_whole]);
        assert_eq!(code, Some(0), "Envoy {v}: a quiet trail is whole:\n{said}");

        // The access log cut while its proxy log is whole: its last event is missing.
        let access_cut = keep(&dir, "audit-cut.log", &access[..2]);
        let (code, said) = verify("now", &[&whole, &access_cut]);
        assert_eq!(code, Some(1), "Envoy {v}:\n{said}");
        assert!(
            said.contains(&format!("truncated: chain {access_chain} ends at seq 2"))
                && said.contains("seq 3 to 3 are missing"),
            "Envoy {v}: names the access chain and the first lost seq:\n{said}"
        );

        // Both logs cut after a checkpoint (the first heartbeat after the requests), the sidecar
        // running on: once a heartbeat period (and the timer's tolerance) passed, the ends show.
        let first_beat = lines
            .iter()
            .position(|l| {
                l.contains(r#""event":"heartbeat""#)
                    && l.contains(&format!(r#""chain":"{access_chain}","seq":3,"#))
            })
            .expect("the heartbeat that names access seq 3");
        let cut = keep(&dir, "server-cut.log", &lines[..=first_beat]);
        std::thread::sleep(Duration::from_millis(3_500));
        let (code, said) = verify("now", &[&cut, &access_whole]);
        assert_eq!(code, Some(1), "Envoy {v}:\n{said}");
        assert!(
            said.contains(&format!("truncated: chain {chain}:"))
                && said.contains(&format!("truncated: chain {access_chain}:")),
            "Envoy {v}: the vouching chain and the access chain end too early:\n{said}"
        );

        // The log cut at its end while the sidecar still runs: its last lines lost.
        let (log, _) = settled(&mesh, 2);
        let lines: Vec<&str> = log.lines().collect();
        let tail = keep(&dir, "server-tail-cut.log", &lines);
        assert_eq!(
            verify("now", &[&tail, &access_whole]).0,
            Some(0),
            "Envoy {v}: still whole"
        );
        std::thread::sleep(Duration::from_millis(3_500));
        let (code, said) = verify("now", &[&tail, &access_whole]);
        assert_eq!(
            code,
            Some(1),
            "Envoy {v}: the same lines, 3.5 s later:\n{said}"
        );
        assert!(said.contains("truncated"), "{said}");
        let (log, _) = settled(&mesh, 1);
        let now = keep(&dir, "server-now.log", &log.lines().collect::<Vec<_>>());
        assert_eq!(
            verify("now", &[&now, &access_whole]).0,
            Some(0),
            "Envoy {v}: the whole log of the running sidecar"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_clean_stop_ends_the_trail_and_losing_the_stop_shows() {
    for envoy in mesh::each_build() {
        let v = &envoy;
        let dir = work_dir(&envoy, "stop");
        let mut mesh = Mesh::builder(&envoy, "stop").config(&config()).up();
        send(&mesh, 2);
        settled(&mesh, 1);
        assert!(
            mesh.terminate("server"),
            "Envoy {v}: the sidecar stops on SIGTERM"
        );
        let log = mesh.log("server");
        let stops: Vec<serde_json::Value> = mesh::audit_events(&log)
            .into_iter()
            .filter(|e| e["event"] == "stop")
            .collect();
        assert!(
            !stops.is_empty() && stops.iter().all(|e| e["reason"] == "shutdown"),
            "Envoy {v}: each chain writes its stop:\n{log}"
        );
        let lines: Vec<&str> = log.lines().collect();
        let access_log = mesh.audit_log();
        let access: Vec<&str> = access_log.lines().collect();
        assert_eq!(access.len(), 2, "Envoy {v}: one access line per request");
        let whole = keep(&dir, "server.log", &lines);
        let access_whole = keep(&dir, "audit.log", &access);
        // An hour later, the trail of a sidecar that stopped is still whole.
        let later = pci_mesh_guard::audit::rfc3339_millis(
            std::time::SystemTime::now() + Duration::from_secs(3600),
        );
        let (code, said) = verify(&later, &[&whole, &access_whole]);
        assert_eq!(code, Some(0), "Envoy {v}: stopped cleanly:\n{said}");
        let named = stops.iter().any(|e| {
            e["chains"].as_array().is_some_and(|c| {
                c.iter().any(|p| {
                    p["chain"].as_str().is_some_and(|c| c.ends_with(".access")) && p["seq"] == 2
                })
            })
        });
        assert!(named, "Envoy {v}: a stop vouches for the 2 access events");
        // The same trail without its stop events reads as cut.
        let no_stop: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| !l.contains(r#""event":"stop""#))
            .collect();
        let cut = keep(&dir, "server-no-stop.log", &no_stop);
        let (code, said) = verify(&later, &[&cut, &access_whole]);
        assert_eq!(code, Some(1), "Envoy {v}:\n{said}");
        assert!(said.contains("no stop ended it"), "{said}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
