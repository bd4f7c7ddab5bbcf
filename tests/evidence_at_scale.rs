//! A short run of what scripts/bench-evidence.sh measures: a generated keyed trail of a mesh too
//! large to draw workload by workload verifies, summarizes per node log, merges into the same
//! evidence as the whole, and is drawn by namespace.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;
use std::process::Command;

const KEY: &str = "scale-smoke-key-0123456789";

fn run(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pci-mesh-guard"))
        .args(args)
        .current_dir(dir)
        .env_remove("PCI_MESH_GUARD_AUDIT_KEY")
        .env_remove("PCI_MESH_GUARD_AUDIT_KEY_ID")
        .output()
        .expect("run pci-mesh-guard");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn a_generated_mesh_trail_verifies_summarizes_merges_and_is_drawn_by_namespace() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root
        .join("target/e2e")
        .join(format!("scale-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("python3")
        .arg(root.join("scripts/generate_trail.py"))
        .args(["--events", "20000", "--workloads", "120", "--flows", "600"])
        .args(["--nodes", "3", "--key", KEY, "trail"])
        .current_dir(&dir)
        .status()
        .expect("run generate_trail.py");
    assert!(made.success());
    std::fs::write(dir.join("keyring"), format!("{KEY}\n")).unwrap();
    let logs = ["trail/node00.log", "trail/node01.log", "trail/node02.log"];

    let (ok, said) = run(
        &[&["verify-audit", "--key-file", "keyring"][..], &logs].concat(),
        &dir,
    );
    assert!(ok, "{said}");
    let events: usize = said
        .lines()
        .filter_map(|l| {
            l.split(": ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert_eq!(events, 20_000, "{said}");

    for (i, log) in logs.iter().enumerate() {
        let part = format!("part{i}.json");
        let (ok, said) = run(
            &[
                "evidence",
                "summarize",
                "--key-file",
                "keyring",
                log,
                "--out",
                &part,
            ],
            &dir,
        );
        assert!(ok, "{said}");
    }
    // Merged in another order than written; the whole trail at once gives the same evidence.
    let (ok, said) = run(
        &[
            "evidence",
            "merge",
            "--key-file",
            "keyring",
            "part2.json",
            "part0.json",
            "part1.json",
            "--out",
            "merged",
        ],
        &dir,
    );
    assert!(ok, "{said}");
    let (ok, said) = run(
        &[
            &["evidence", "--key-file", "keyring", "--out", "whole"][..],
            &logs,
        ]
        .concat(),
        &dir,
    );
    assert!(ok, "{said}");
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
    // The same evidence, but for when it was made and the order its logs were named in.
    let evidence = |p: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&read(p)).unwrap();
        let logs = v["logs"].as_array().map(|l| l.len());
        v["made"] = serde_json::Value::Null;
        v["logs"] = logs.into();
        v
    };
    assert_eq!(
        evidence("merged/dataflow.json"),
        evidence("whole/dataflow.json")
    );
    let svg = read("whole/dataflow.svg");
    assert!(
        svg.contains("120 workloads and 600 flows, drawn by namespace"),
        "{}",
        &svg[..600.min(svg.len())]
    );
    assert!(
        svg.contains("workloads (cde)"),
        "namespace boxes of the cardholder data environment"
    );
    let dot = read("whole/dataflow.dot");
    assert!(dot.contains("svc0119"), "the DOT keeps every workload");
    let _ = std::fs::remove_dir_all(&dir);
}
