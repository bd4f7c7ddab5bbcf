//! `pci-mesh-guard evidence`: the cardholder-data flow diagram and the scope from audit logs.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use pci_mesh_guard::audit::verify::{event_text, Verifier};
use pci_mesh_guard::config::Policy;
use pci_mesh_guard::evidence::{self, Graph, Provenance, Standing};

use super::{for_each_line, keyring_from_env, read_key_file};

pub const USAGE: &str =
    "  pci-mesh-guard evidence [--key-file F]... [--partial] [--unverified] [--config FILE]
                         [--out DIR] LOG...
                                               the cardholder-data flow diagram and scope from
                                               audit logs (Envoy logs or JSON lines, one per
                                               sidecar): writes DIR/dataflow.svg, .dot, .json
                                               and evidence.md (DIR: evidence/) and prints
                                               the scope; refuses logs whose chains do not verify
                                               unless --unverified; --config names the grants
                                               that were never used";

pub fn run(rest: &[String]) -> Result<ExitCode, String> {
    let (mut keys, mut partial, mut unverified) = (keyring_from_env()?, false, false);
    let (mut config, mut out, mut files) = (None, PathBuf::from("evidence"), vec![]);
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--key-file" => read_key_file(&mut keys, &value("--key-file")?)?,
            "--partial" => partial = true,
            "--unverified" => unverified = true,
            "--config" => config = Some(value("--config")?),
            "--out" => out = PathBuf::from(value("--out")?),
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
            s => files.push(s.to_string()),
        }
    }
    if files.is_empty() {
        return Err(format!("evidence needs at least one log\n{USAGE}"));
    }
    let granting: Vec<String> = match &config {
        Some(f) => {
            let text = fs::read(f).map_err(|e| format!("{f}: {e}"))?;
            let policy = Policy::parse_lenient(&text).map_err(|e| format!("{f}: {e}"))?;
            policy
                .authorizer
                .rules
                .iter()
                .filter(|r| r.pan.request || r.pan.response)
                .map(|r| r.name.clone())
                .collect()
        }
        None => vec![],
    };

    // Each file is read once, as a stream: verified and added to the graph line by line, so what
    // is held is one state per chain and one edge per flow, whatever the logs' length.
    let mut graph = Graph::default();
    let mut chains: BTreeMap<String, u64> = BTreeMap::new();
    let mut workloads: BTreeMap<String, String> = BTreeMap::new();
    let mut problems = vec![];
    for file in &files {
        let mut verifier = Verifier::new(&keys, partial);
        for_each_line(file, |line| {
            verifier.feed(line);
            let Some(event) =
                event_text(line).and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            else {
                return;
            };
            if let (Some(chain), Some(workload)) =
                (event["chain"].as_str(), event["workload"].as_str())
            {
                workloads
                    .entry(chain.to_owned())
                    .or_insert_with(|| workload.to_owned());
            }
            graph.add_in(&event, &workloads);
        })?;
        let report = verifier.finish();
        for p in &report.problems {
            problems.push(format!("{file}:{}: {}: {}", p.line, p.kind, p.message));
        }
        chains.extend(report.chains);
    }
    // Events read before their chain's workload was known are moved to it.
    graph.resolve(&workloads);
    for p in &problems {
        eprintln!("{p}");
    }
    if !problems.is_empty() && !unverified {
        return Err(format!(
            "{} verification problem(s): no evidence is drawn from a trail that does not verify \
             (--unverified draws it anyway, and the report lists the problems)",
            problems.len()
        ));
    }

    let scope = evidence::scope(&graph);
    let findings = evidence::findings(&graph, &granting);
    let made = pci_mesh_guard::audit::rfc3339_millis(std::time::SystemTime::now());
    let provenance = Provenance {
        files: &files,
        chains: &chains,
        problems: &problems,
        made: &made,
    };
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let write = |name: &str, text: String| {
        let path = out.join(name);
        fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    let diagram = evidence::dot(&graph, &scope);
    write("dataflow.svg", evidence::svg(&graph, &scope))?;
    write("dataflow.dot", diagram)?;
    write(
        "evidence.md",
        evidence::markdown(&graph, &scope, &findings, &provenance),
    )?;
    let (first, last) = graph.period().unwrap_or(("", ""));
    let json = serde_json::json!({
        "schema": "pci-mesh-guard/evidence/v1",
        "period": {"first": first, "last": last},
        "made": made,
        "logs": files,
        "chains": chains,
        "verification_problems": problems,
        "flows": graph.flows.values().collect::<Vec<_>>(),
        "scope": scope.workloads,
        "findings": findings,
    });
    write(
        "dataflow.json",
        serde_json::to_string_pretty(&json).map_err(|e| e.to_string())? + "\n",
    )?;

    println!("period: {first} to {last}; {} chains", chains.len());
    for standing in [
        Standing::CardholderDataEnvironment,
        Standing::ConnectedTo,
        Standing::OutOfScopeCandidate,
        Standing::Unidentified,
    ] {
        for w in scope.of(standing) {
            println!("{:<40} {}", standing.label(), w.workload);
        }
    }
    println!(
        "{} flows, {} findings; wrote {}/dataflow.svg, dataflow.dot, dataflow.json, evidence.md",
        graph.flows.len(),
        findings.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
