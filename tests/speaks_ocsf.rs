//! Under real Envoy, the audit trail piped through `pci-mesh-guard export --format ocsf`, as a log
//! shipper would: each access event becomes an OCSF 1.1.0 HTTP Activity record that points back to
//! its seal, a denial whose card number went through in clear under `dry_run` also becomes a
//! Detection Finding, and every record validates against the OCSF schema (the pinned
//! `ocsf-json-schema` package, offline). An edited event is not exported.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::io::Write;
use std::process::{Command, Stdio};

use mesh::{Mesh, Request};
use serde_json::Value;

fn dry_run_config() -> String {
    let text = std::fs::read_to_string(mesh::root().join("envoy-config/demo-plugin-config.json"))
        .expect("read the shipped plugin configuration");
    let mut v: Value = serde_json::from_str(&text).expect("JSON");
    v["mode"] = "dry_run".into();
    v.to_string()
}

/// `export --format ocsf` reading `log` on its standard input: exit code, records, standard error.
fn export(log: &str) -> (Option<i32>, Vec<Value>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pci-mesh-guard"))
        .args(["export", "--format", "ocsf"])
        .env("PCI_MESH_GUARD_AUDIT_KEY", mesh::AUDIT_KEY)
        .env_remove("PCI_MESH_GUARD_AUDIT_KEY_ID")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run export");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = log.to_owned();
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("export's output");
    feeder.join().expect("feeder").expect("write the log");
    let records = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON record"))
        .collect();
    (
        out.status.code(),
        records,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// scripts/validate_ocsf.py over `records`: its exit code and what it printed.
fn validate(records: &[Value], name: &str) -> (Option<i32>, String) {
    let dir = mesh::root().join("target/e2e");
    std::fs::create_dir_all(&dir).expect("target/e2e");
    let file = dir.join(format!("{name}-{}.jsonl", std::process::id()));
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&file, text).expect("write the records");
    let out = Command::new(mesh::tools_python())
        .arg(mesh::root().join("scripts/validate_ocsf.py"))
        .arg(&file)
        .output()
        .expect("run validate_ocsf.py");
    let _ = std::fs::remove_file(&file);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_trail_exported_as_ocsf_is_valid_and_points_back_to_its_seals() {
    for envoy in mesh::each_build() {
        let v = &envoy;
        let mesh = Mesh::builder(&envoy, "ocsf").config(&dry_run_config()).up();
        let card = r#"{"card":"4111 1111 1111 1111"}"#;
        let sent = [
            ("ocsf-allowed", Request::get("/fixture/order.json")),
            ("ocsf-denied", Request::get("/admin/users")),
            ("ocsf-denied-card", Request::post("/admin/users", card)),
        ];
        for (id, req) in sent {
            let status = mesh.send("checkout", req.header("x-request-id", id)).status;
            assert_ne!(status, 403, "Envoy {v}: dry_run blocks nothing ({id})");
        }
        let sealed: Vec<Value> = ["ocsf-allowed", "ocsf-denied", "ocsf-denied-card"]
            .iter()
            .map(|id| mesh.access_event(id))
            .collect();
        let (code, records, said) = export(&mesh.log("server"));
        assert_eq!(code, Some(0), "Envoy {v}: {said}");

        let activities: Vec<&Value> = records.iter().filter(|r| r["class_uid"] == 4002).collect();
        let findings: Vec<&Value> = records.iter().filter(|r| r["class_uid"] == 2004).collect();
        assert_eq!(
            activities.len(),
            3,
            "Envoy {v}: one HTTP Activity per access event"
        );
        for (event, record) in sealed.iter().zip(&activities) {
            let m = &record["metadata"];
            assert_eq!(
                (&m["log_name"], &m["sequence"], &m["uid"]),
                (&event["chain"], &event["seq"], &event["mac"]),
                "Envoy {v}: the record names its sealed original"
            );
            assert_eq!(record["http_request"]["uid"], event["request"]["id"]);
            assert_eq!(record["src_endpoint"]["svc_name"], event["principal"]);
        }
        let dispositions: Vec<&Value> = activities.iter().map(|r| &r["disposition"]).collect();
        assert_eq!(
            dispositions,
            ["Allowed", "Detected", "Detected"],
            "Envoy {v}"
        );
        assert_eq!(
            findings.len(),
            1,
            "Envoy {v}: only the card passed in clear is a finding"
        );
        assert_eq!(
            findings[0]["finding_info"]["related_events"][0]["uid"], sealed[2]["mac"],
            "Envoy {v}"
        );
        assert_eq!(
            findings[0]["unmapped"]["pci_mesh_guard"]["pan"]["request_body"]["passed"],
            1
        );

        let (code, said) = validate(&records, "ocsf-valid");
        assert_eq!(code, Some(0), "Envoy {v}:\n{said}");
        assert!(said.contains("4 records valid"), "{said}");

        // The validator is no rubber stamp: a record without its response code, with a field
        // OCSF does not define, or with a class's id of the wrong type is refused.
        let mut broken = activities[0].clone();
        broken["http_response"] = serde_json::json!({});
        let mut unknown = activities[0].clone();
        unknown["card_number"] = "4111".into();
        let mut typed = (*findings[0]).clone();
        typed["severity_id"] = "High".into();
        let (code, said) = validate(&[broken, unknown, typed], "ocsf-invalid");
        assert_eq!(code, Some(1), "{said}");
        for (line, why) in [
            (1, "'code' is a required property"),
            (2, "'card_number' was unexpected"),
            (3, "'High' is not of type 'integer'"),
        ] {
            let found = said
                .lines()
                .any(|l| l.contains(&format!(".jsonl:{line}:")) && l.contains(why));
            assert!(found, "record {line}: {why}:\n{said}");
        }

        // An edited event is not exported, and the export says why.
        let log = mesh
            .log("server")
            .replacen("ocsf-denied-card", "ocsf-denied-cart", 1);
        let (code, records, said) = export(&log);
        assert_eq!(code, Some(1), "Envoy {v}: {said}");
        assert!(said.contains("altered"), "{said}");
        assert_eq!(records.iter().filter(|r| r["class_uid"] == 4002).count(), 2);
        assert!(records.iter().all(|r| r["class_uid"] != 2004), "Envoy {v}");
    }
}
