//! The native CLI runs the mesh's engine over files and stdin: `scan` reports without printing a
//! PAN, `redact` rewrites, `check-config` validates; exit codes are usable in scripts.
#![cfg(not(target_arch = "wasm32"))]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn cli(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pci-mesh-guard"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const LOG: &[u8] =
    b"2026-11-25 pay card=4111 1111 1111 1111 ok\n{\"pan\":5555555555554444}\nts 1732492923045\n";

#[test]
fn scan_reports_places_and_brands_but_never_a_pan() {
    let out = cli(&["scan"], LOG);
    assert_eq!(out.status.code(), Some(1), "PANs found");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("-:1:21: **** **** **** 1111"), "{stdout}");
    assert!(stdout.contains("-:2:8: ************4444"), "{stdout}");
    assert!(
        stdout.contains("-: 2 PANs (visa 1, mastercard 1)"),
        "{stdout}"
    );
    assert!(!stdout.contains("4111 1111") && !stdout.contains("5555555555554444"));
    let clean = cli(&["scan"], b"order 12345 on 2026-11-25\n");
    assert_eq!(clean.status.code(), Some(0));
}

#[test]
fn redact_rewrites_stdin_and_files_in_place() {
    let out = cli(&["redact", "--json", "--keep-first", "6"], LOG);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "2026-11-25 pay card=4111 11** **** 1111 ok\n{\"pan\":5555559999994444}\nts 1732492923045\n"
    );
    let dir = std::env::temp_dir().join(format!("pmg-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("export.csv");
    std::fs::write(&file, b"id,card\n1,378282246310005\n").unwrap();
    let out = cli(&["redact", "--in-place", file.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "id,card\n1,***********0005\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn config_file_supplies_masking_and_patterns() {
    let dir = std::env::temp_dir().join(format!("pmg-cli-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("plugin.json");
    std::fs::write(
        &cfg,
        br##"{"redaction":{"mask_char":"#","patterns":[{"name":"ssn","regex":"\\d{3}-\\d{2}-\\d{4}"}]}}"##,
    )
    .unwrap();
    let out = cli(
        &["redact", "--config", cfg.to_str().unwrap()],
        b"4111111111111111 123-45-6789",
    );
    assert_eq!(text(&out.stdout), "############1111 ###########");
    let ok = cli(&["check-config", cfg.to_str().unwrap()], b"");
    assert_eq!(ok.status.code(), Some(0));
    std::fs::write(&cfg, br#"{"redaction":{"keep_lats":4}}"#).unwrap();
    let bad = cli(&["check-config", cfg.to_str().unwrap()], b"");
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("redaction.keep_lats: unknown field"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_exit_with_2() {
    assert_eq!(
        cli(&["scan", "--keep-last", "9"], b"").status.code(),
        Some(2)
    );
    assert_eq!(cli(&["frobnicate"], b"").status.code(), Some(2));
    assert_eq!(cli(&[], b"").status.code(), Some(2));
}

#[test]
fn lint_lists_findings_with_exit_codes_for_pipelines() {
    let dir = std::env::temp_dir().join(format!("pmg-cli-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("plugin.json");
    std::fs::write(
        &cfg,
        br#"{"strict":true,"authorization":{"rules":[{"name":"all"},{"name":"x","methods":["get"]}]}}"#,
    )
    .unwrap();
    let out = cli(&["lint", cfg.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("authorization.rules[0]: [permissive_allow]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("authorization.rules[1]: [never_matches]"),
        "{stdout}"
    );
    assert!(stdout.contains("2 finding(s)"), "{stdout}");
    std::fs::write(
        &cfg,
        br#"{"authorization":{"rules":[{"name":"a","namespaces":["shop"]}]}}"#,
    )
    .unwrap();
    assert_eq!(
        cli(&["lint", cfg.to_str().unwrap()], b"").status.code(),
        Some(0)
    );
    std::fs::write(&cfg, br#"{"authorization":{"rulez":[]}}"#).unwrap();
    assert_eq!(
        cli(&["lint", cfg.to_str().unwrap()], b"").status.code(),
        Some(2)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verify_audit_accepts_an_intact_log_and_names_the_edited_line() {
    use pci_mesh_guard::audit::Auditor;
    #[derive(serde::Serialize)]
    struct Event {
        schema: &'static str,
        event: &'static str,
        n: u32,
    }
    let mut a = Auditor::new("chain-1".into(), Some("cli-test-key-0123"));
    let lines: Vec<String> = (0..4)
        .map(|n| {
            let line = a.line(&Event { schema: "pci-mesh-guard/audit/v1", event: "access", n });
            format!("[2026-11-25 00:00:00.000][7][info][wasm] wasm log pci-mesh-guard pci-mesh-guard: {line}")
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("pmg-cli-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (log, key) = (dir.join("envoy.log"), dir.join("key"));
    std::fs::write(&key, "cli-test-key-0123\n").unwrap();
    std::fs::write(&log, lines.join("\n")).unwrap();
    let args = |f: &std::path::Path| {
        vec![
            "verify-audit".to_string(),
            "--key-file".into(),
            key.to_str().unwrap().into(),
            f.to_str().unwrap().into(),
        ]
    };
    let run = |f: &std::path::Path| {
        let a = args(f);
        cli(&a.iter().map(String::as_str).collect::<Vec<_>>(), b"")
    };
    let ok = run(&log);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stdout));
    assert!(text(&ok.stdout).contains("4 events in 1 chains, 0 problems"));
    let edited = lines.join("\n").replace(r#""n":2"#, r#""n":3"#);
    std::fs::write(&log, edited).unwrap();
    let bad = run(&log);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stdout).contains(":3: altered:"),
        "{}",
        text(&bad.stdout)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `evidence summarize` one shard at a time and `evidence merge` in any order draw what
/// `evidence` draws from the whole trail; a missing shard is a gap the merge names.
#[test]
fn evidence_summarized_by_shard_and_merged_is_the_evidence_of_the_whole() {
    use pci_mesh_guard::audit::chain::Chain;
    const KEY: &str = "cli-shard-key-0123456789";
    let dir = std::env::temp_dir().join(format!("pmg-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut chain = Chain::new("shardchain".into(), Some(KEY.as_bytes().to_vec()));
    let lines: Vec<String> = (0..30)
        .map(|i| {
            chain.seal(format!(
                r#"{{"schema":"pci-mesh-guard/audit/v1","ts":"2026-12-01T10:00:{i:02}.000Z","event":"access","decision":"allow","enforced":true,"reason":"rule","rule":"r","principal":"spiffe://cluster.local/ns/shop/sa/c{}","workload":"spiffe://cluster.local/ns/payments/sa/api","redaction":{{"request":"mask","response":"mask"}},"pan":{{}}}}"#,
                i % 3
            ))
        })
        .collect();
    let write = |name: &str, part: &[String]| {
        let path = dir.join(name);
        std::fs::write(&path, part.join("\n") + "\n").unwrap();
        path.display().to_string()
    };
    let (whole, a, b, c) = (
        write("whole.log", &lines),
        write("a.log", &lines[..10]),
        write("b.log", &lines[10..20]),
        write("c.log", &lines[20..]),
    );
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pci-mesh-guard"))
            .args(args)
            .env("PCI_MESH_GUARD_AUDIT_KEY", KEY)
            .output()
            .unwrap()
    };
    let d = |name: &str| dir.join(name).display().to_string();
    for (log, part) in [(&a, "a.json"), (&b, "b.json"), (&c, "c.json")] {
        let out = run(&["evidence", "summarize", "--out", &d(part), log]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let out = run(&["evidence", "--out", &d("whole"), &whole]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let merged = run(&[
        "evidence",
        "merge",
        "--out",
        &d("merged"),
        &d("c.json"),
        &d("a.json"),
        &d("b.json"),
    ]);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged.stderr));
    let flows = |out: &str| {
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(out).join("dataflow.json")).unwrap(),
        )
        .unwrap();
        (
            json["flows"].clone(),
            json["scope"].clone(),
            json["chains"].clone(),
        )
    };
    assert_eq!(flows("whole"), flows("merged"));

    let gap = run(&[
        "evidence",
        "merge",
        "--out",
        &d("gap"),
        &d("a.json"),
        &d("c.json"),
    ]);
    assert_eq!(gap.status.code(), Some(2));
    assert!(
        text(&gap.stderr).contains("gap: chain shardchain: seq 11 to 20 missing between two parts"),
        "{}",
        text(&gap.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
