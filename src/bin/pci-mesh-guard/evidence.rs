//! `pci-mesh-guard evidence`: the cardholder-data flow diagram and the scope from audit logs.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use pci_mesh_guard::audit::verify::Keyring;
use pci_mesh_guard::config::Policy;
use pci_mesh_guard::evidence::summary::{merge, Merged, Summarizer, Summary, SUMMARY_SCHEMA};
use pci_mesh_guard::evidence::{self, Provenance, Standing};

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
                                               that were never used
  pci-mesh-guard evidence summarize [--key-file F]... --out PART.json LOG...
                                               verify and summarize one shard of the trail (one
                                               node's logs, one day), read as streams
  pci-mesh-guard evidence merge [--key-file F]... [--partial] [--unverified] [--config FILE]
                         [--out DIR] PART.json...
                                               merge shards' summaries, in any order, checking
                                               that the parts of each chain join, and draw as
                                               `evidence` does";

/// The options the three forms share.
struct Options {
    keys: Keyring,
    partial: bool,
    unverified: bool,
    config: Option<String>,
    out: Option<PathBuf>,
    files: Vec<String>,
}

fn options(rest: &[String]) -> Result<Options, String> {
    let mut o = Options {
        keys: keyring_from_env()?,
        partial: false,
        unverified: false,
        config: None,
        out: None,
        files: vec![],
    };
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--key-file" => read_key_file(&mut o.keys, &value("--key-file")?)?,
            "--partial" => o.partial = true,
            "--unverified" => o.unverified = true,
            "--config" => o.config = Some(value("--config")?),
            "--out" => o.out = Some(PathBuf::from(value("--out")?)),
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
            s => o.files.push(s.to_string()),
        }
    }
    if o.files.is_empty() {
        return Err(format!("evidence needs at least one input\n{USAGE}"));
    }
    Ok(o)
}

pub fn run(rest: &[String]) -> Result<ExitCode, String> {
    match rest.first().map(String::as_str) {
        Some("summarize") => return summarize_shard(&rest[1..]),
        Some("merge") => return merge_shards(&rest[1..]),
        _ => {}
    }
    let o = options(rest)?;
    // Each log is summarized as a stream, then the summaries merged: what is held is one state
    // per chain and one edge per flow, whatever the logs' length, and a chain continued from one
    // log into the next is checked at the join.
    let mut parts = vec![];
    for file in &o.files {
        parts.push(summarize(file, &o.keys)?);
    }
    draw(&o, merge(&parts, &o.keys, o.partial))
}

/// One log, verified and summarized as it streams.
fn summarize(file: &str, keys: &Keyring) -> Result<Summary, String> {
    let mut s = Summarizer::new(file, keys);
    for_each_line(file, |line| s.feed(line))?;
    Ok(s.finish())
}

fn summarize_shard(rest: &[String]) -> Result<ExitCode, String> {
    let o = options(rest)?;
    let out = o
        .out
        .clone()
        .ok_or("evidence summarize needs --out PART.json")?;
    let mut shard = Summary::new(vec![]);
    for file in &o.files {
        let part = summarize(file, &o.keys)?;
        // The logs of one shard are parts like any other: merged, their joins checked.
        let merged = merge(&[shard, part], &o.keys, true);
        shard = Summary::new(merged.logs.clone()).with_graph(merged.graph);
        shard.problems = merged.problems;
        shard.chains = merged.spans;
        shard.workloads = merged.workloads;
    }
    let text = serde_json::to_string(&shard).map_err(|e| e.to_string())? + "\n";
    fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "{}: {} chains, {} flows, {} problems",
        out.display(),
        shard.chains.len(),
        shard.flows.len(),
        shard.problems.len()
    );
    Ok(if shard.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn merge_shards(rest: &[String]) -> Result<ExitCode, String> {
    let o = options(rest)?;
    let mut parts = vec![];
    for file in &o.files {
        let text = fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        let part: Summary =
            serde_json::from_str(&text).map_err(|e| format!("{file}: not a summary: {e}"))?;
        if part.schema != SUMMARY_SCHEMA {
            return Err(format!("{file}: not a {SUMMARY_SCHEMA} summary"));
        }
        parts.push(part);
    }
    draw(&o, merge(&parts, &o.keys, o.partial))
}

/// Writes the diagram, the scope and the report of `m` into `--out`, and prints the scope.
fn draw(o: &Options, m: Merged) -> Result<ExitCode, String> {
    let granting: Vec<String> = match &o.config {
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
    let (graph, chains, problems, files) = (m.graph, m.chains, m.problems, m.logs);
    for p in &problems {
        eprintln!("{p}");
    }
    if !problems.is_empty() && !o.unverified {
        return Err(format!(
            "{} verification problem(s): no evidence is drawn from a trail that does not verify \
             (--unverified draws it anyway, and the report lists the problems)",
            problems.len()
        ));
    }
    let out = o.out.clone().unwrap_or_else(|| PathBuf::from("evidence"));

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
