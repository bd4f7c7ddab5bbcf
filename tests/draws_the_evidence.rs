//! `pci-mesh-guard evidence` over real sidecars' audit logs: after a known mix of traffic the
//! flow graph holds exactly the expected edges and counts, the scope exactly the expected
//! standings; with a second sidecar's log in `dry_run` read alongside, the card numbers it let
//! through count as passed under `dry_run` and are a finding; a log altered after the fact is
//! refused with the line named.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::process::Command;

use mesh::{Mesh, Request};
use serde_json::Value;

const API: &str = "spiffe://cluster.local/ns/payments/sa/payments-api";
const WAYPOINT: &str = "spiffe://cluster.local/ns/payments/sa/waypoint";
const CHECKOUT: &str = "spiffe://cluster.local/ns/shop/sa/checkout";
const FRAUD: &str = "spiffe://cluster.local/ns/risk/sa/fraud-scoring";
const NEWSLETTER: &str = "spiffe://cluster.local/ns/marketing/sa/newsletter";

fn evidence(logs: &[&std::path::Path], out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pci-mesh-guard"))
        .arg("evidence")
        .arg("--out")
        .arg(out)
        .args(logs)
        .env("PCI_MESH_GUARD_AUDIT_KEY", mesh::AUDIT_KEY)
        .output()
        .expect("run pci-mesh-guard evidence")
}

#[test]
fn the_evidence_of_a_known_mix_of_traffic_is_exactly_that_traffic() {
    for envoy in mesh::each_build() {
        let config =
            std::fs::read_to_string(mesh::root().join("envoy-config/demo-plugin-config.json"))
                .unwrap();
        let mesh = Mesh::builder(&envoy, "evidence").config(&config).up();
        known_mix_is_drawn(&mesh, API, "payments-api");
    }
}

/// In an ambient mesh the same traffic, enforced by the waypoint, is drawn the same way: the
/// waypoint's identity is the callee, as a sidecar's own is.
#[test]
fn the_evidence_of_a_waypoint_is_drawn_as_a_sidecars() {
    for envoy in mesh::each_build() {
        let text =
            std::fs::read_to_string(mesh::root().join("envoy-config/demo-plugin-config.json"))
                .unwrap();
        let mut config: Value = serde_json::from_str(&text).unwrap();
        config["identity"]["source"] = "istio_waypoint".into();
        let mesh = Mesh::builder(&envoy, "evidence-ambient")
            .config(&config.to_string())
            .ambient()
            .up();
        known_mix_is_drawn(&mesh, WAYPOINT, "waypoint");
    }
}

/// Sends a known mix of traffic and checks the evidence drawn from the log of `callee`, whose
/// service account is `account`.
fn known_mix_is_drawn(mesh: &Mesh, callee: &str, account: &str) {
    let charge = r#"{"card":"4111 1111 1111 1111","amount":1}"#;
    for (caller, req, status) in [
        ("checkout", Request::post("/v1/charges", charge), 200),
        ("checkout", Request::post("/v1/charges", charge), 200),
        ("checkout", Request::get("/fixture/card-on-file.json"), 200),
        ("fraud", Request::get("/fixture/card-on-file.json"), 200),
        ("fraud", Request::get("/v1/orders/ord_1"), 200),
        ("newsletter", Request::post("/v1/charges", "{}"), 403),
        ("plaintext", Request::post("/v1/charges", "{}"), 403),
    ] {
        assert_eq!(mesh.send(caller, req).status, status, "{caller}");
    }
    std::thread::sleep(std::time::Duration::from_millis(400));
    let log = mesh.dir.join("server.log");
    let out = mesh.dir.join("evidence");
    let run = evidence(&[&log], &out);
    let said = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let json: Value =
        serde_json::from_slice(&std::fs::read(out.join("dataflow.json")).unwrap()).unwrap();
    let flows = json["flows"].as_array().unwrap();
    let edge = |caller: &str| {
        flows
            .iter()
            .find(|f| f["caller"] == caller && f["callee"] == callee)
            .unwrap_or_else(|| panic!("no edge from {caller}: {flows:#?}"))
    };
    assert_eq!(flows.len(), 4, "{flows:#?}");
    let c = edge(CHECKOUT);
    assert_eq!(
        (c["requests"].as_u64(), c["denied"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(c["to_callee"]["masked"], 2);
    assert_eq!(c["to_caller"]["masked"], 1);
    let f = edge(FRAUD);
    assert_eq!(f["requests"], 2);
    assert_eq!(f["to_caller"]["granted"], 1);
    assert_eq!(f["grants"]["risk-may-read-card-data"], 1);
    let n = edge(NEWSLETTER);
    assert_eq!(n["denials"]["default"], 1);
    let p = edge("(unidentified caller)");
    assert_eq!(p["denials"]["no_mtls"], 1);

    let standing = |w: &str| {
        json["scope"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["workload"] == w)
            .map(|s| s["standing"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        standing(callee).as_deref(),
        Some("cardholder_data_environment")
    );
    assert_eq!(
        standing(CHECKOUT).as_deref(),
        Some("cardholder_data_environment")
    );
    assert_eq!(
        standing(FRAUD).as_deref(),
        Some("cardholder_data_environment")
    );
    assert_eq!(
        standing(NEWSLETTER).as_deref(),
        Some("out_of_scope_candidate")
    );
    assert_eq!(json["scope"].as_array().unwrap().len(), 5);
    assert!(said.contains("in scope: cardholder data environment    spiffe://cluster.local/ns/risk/sa/fraud-scoring"), "{said}");
    let report = std::fs::read_to_string(out.join("evidence.md")).unwrap();
    assert!(report.contains("every chain verified"), "{report}");
    let dot = std::fs::read_to_string(out.join("dataflow.dot")).unwrap();
    for w in [callee, CHECKOUT, FRAUD, NEWSLETTER] {
        assert!(dot.contains(&format!("\"{w}\"")), "{w} not in the diagram");
    }

    // The JSON validates against the schema kept in the repository.
    let valid = Command::new(mesh::tools_python())
        .args([
            "-c",
            "import json, sys, jsonschema; jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))",
        ])
        .arg(mesh::root().join("schemas/evidence-v1.schema.json"))
        .arg(out.join("dataflow.json"))
        .output()
        .unwrap();
    assert!(
        valid.status.success(),
        "{}",
        String::from_utf8_lossy(&valid.stderr)
    );

    // The SVG: well-formed XML, every workload named (service account and namespace).
    let svg_path = out.join("dataflow.svg");
    let xml = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])",
        ])
        .arg(&svg_path)
        .output()
        .unwrap();
    assert!(
        xml.status.success(),
        "{}",
        String::from_utf8_lossy(&xml.stderr)
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    for (sa, ns) in [
        (account, "payments"),
        ("checkout", "shop"),
        ("fraud-scoring", "risk"),
        ("newsletter", "marketing"),
    ] {
        assert!(
            svg.contains(&format!(">{sa}</tspan>")),
            "{sa} not in the SVG"
        );
        assert!(svg.contains(&format!(">namespace {ns} (cluster.local)</tspan>")));
    }

    // One decision changed after the fact: refused, the line named.
    let text = std::fs::read_to_string(&log).unwrap();
    let tampered = text.replacen(r#""decision":"deny""#, r#""decision":"allow""#, 1);
    assert_ne!(tampered, text);
    let bad = mesh.dir.join("tampered.log");
    std::fs::write(&bad, tampered).unwrap();
    let run = evidence(&[&bad], &mesh.dir.join("evidence-bad"));
    let err = String::from_utf8_lossy(&run.stderr).to_string();
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(
        err.contains("tampered.log:") && err.contains("altered"),
        "{err}"
    );
    assert!(!mesh.dir.join("evidence-bad/dataflow.json").exists());
}

#[test]
fn a_dry_run_sidecars_log_read_alongside_adds_its_clear_card_numbers_and_a_finding() {
    for envoy in mesh::each_build() {
        let enforce =
            std::fs::read_to_string(mesh::root().join("envoy-config/demo-plugin-config.json"))
                .unwrap();
        let mut v: Value = serde_json::from_str(&enforce).unwrap();
        v["mode"] = "dry_run".into();
        let dry_run = v.to_string();
        let charge = r#"{"card":"4111 1111 1111 1111","amount":1}"#;
        let a = Mesh::builder(&envoy, "evidence-enforce")
            .config(&enforce)
            .up();
        assert_eq!(
            a.send("checkout", Request::post("/v1/charges", charge))
                .status,
            200
        );
        assert_eq!(
            a.send("newsletter", Request::post("/v1/charges", "{}"))
                .status,
            403
        );
        let b = Mesh::builder(&envoy, "evidence-dry-run")
            .config(&dry_run)
            .up();
        assert_eq!(
            b.send("checkout", Request::post("/v1/charges", charge))
                .status,
            200
        );
        // Denied by the policy, served by dry_run.
        assert_eq!(
            b.send("newsletter", Request::post("/v1/charges", "{}"))
                .status,
            200
        );
        std::thread::sleep(std::time::Duration::from_millis(400));
        let out = a.dir.join("evidence-both");
        let logs = [a.dir.join("server.log"), b.dir.join("server.log")];
        let run = evidence(&[&logs[0], &logs[1]], &out);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let json: Value =
            serde_json::from_slice(&std::fs::read(out.join("dataflow.json")).unwrap()).unwrap();
        let flow = |caller: &str| {
            json["flows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["caller"] == caller)
                .unwrap()
                .clone()
        };
        let checkout = flow(CHECKOUT);
        assert_eq!(checkout["requests"], 2);
        assert_eq!(checkout["to_callee"]["masked"], 1);
        assert_eq!(checkout["to_callee"]["dry_run"], 1);
        let newsletter = flow(NEWSLETTER);
        assert_eq!(
            (
                newsletter["requests"].as_u64(),
                newsletter["allowed"].as_u64(),
                newsletter["denied"].as_u64()
            ),
            (Some(2), Some(1), Some(2)),
            "one denial enforced, one served under dry_run"
        );
        let findings = json["findings"].as_array().unwrap();
        assert!(
            findings.iter().any(|f| f["kind"] == "dry_run_passed"
                && f["caller"] == CHECKOUT
                && f["count"] == 1),
            "{findings:#?}"
        );
        // newsletter was served by payments-api under dry_run: connected to the CDE.
        let standing = json["scope"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["workload"] == NEWSLETTER)
            .unwrap()["standing"]
            .clone();
        assert_eq!(standing, "connected_to");
        assert_eq!(json["logs"].as_array().unwrap().len(), 2);
    }
}
