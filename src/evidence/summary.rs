//! Evidence as a reduction that a batch engine can run in parallel: each shard of the trail (one
//! node's logs, one day) is verified and summarized on its own (`Summary`), and summaries merge,
//! in any order, into the graph the whole trail makes (`merge`). A summary holds each chain's first
//! and last event, so the merge checks that the shards of one chain join without a gap: the first
//! event of each shard must be sealed over the last mac of the shard before it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fold::Fold;
use super::{Flow, Graph};
use crate::audit::chain::{alg, mac, unhex};
use crate::audit::verify::{ChainSpan, Keyring, Verifier};

pub const SUMMARY_SCHEMA: &str = "pci-mesh-guard/evidence-summary/v1";

/// What one shard of the trail contributes: its flows and chains, and its problems.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema: String,
    /// The logs read.
    pub logs: Vec<String>,
    /// Each chain's part in the shard.
    pub chains: BTreeMap<String, ChainSpan>,
    /// The workload each chain speaks for, where an event named it.
    pub workloads: BTreeMap<String, String>,
    pub flows: Vec<Flow>,
    /// Access events no edge could hold.
    pub unreadable: u64,
    /// Verification problems, as `file:line: kind: message`.
    pub problems: Vec<String>,
}

impl Summary {
    pub fn new(logs: Vec<String>) -> Summary {
        Summary {
            schema: SUMMARY_SCHEMA.to_owned(),
            logs,
            ..Summary::default()
        }
    }

    /// Takes in the graph the shard's events made.
    pub fn with_graph(mut self, graph: Graph) -> Summary {
        self.unreadable = graph.unreadable;
        self.flows = graph.flows.into_values().collect();
        self
    }
}

/// Summarizes one shard as its lines come: verified (as a part of its chains: where a chain
/// starts in an earlier shard, the join is the merge's to check) and added to a graph, holding one
/// state per chain and one edge per flow, whatever the shard's length.
pub struct Summarizer<'k> {
    name: String,
    verifier: Verifier<'k>,
    fold: Fold,
    workloads: BTreeMap<String, String>,
}

impl<'k> Summarizer<'k> {
    /// `name` is what problems are reported against (the log's path).
    pub fn new(name: &str, keyring: &'k Keyring) -> Summarizer<'k> {
        Summarizer {
            name: name.to_owned(),
            verifier: Verifier::new(keyring, true),
            fold: Fold::default(),
            workloads: BTreeMap::new(),
        }
    }

    pub fn feed(&mut self, line: &str) {
        // Only access events draw the evidence, from the fields the verifier kept.
        let Some(s) = self.verifier.feed(line).filter(|s| s.event() == "access") else {
            return;
        };
        if let (Some(chain), Some(workload)) = (s.chain.as_deref(), s.access.workload.as_deref()) {
            if !self.workloads.contains_key(chain) {
                self.workloads.insert(chain.to_owned(), workload.to_owned());
            }
        }
        self.fold.add(&s, &self.workloads);
    }

    pub fn finish(self) -> Summary {
        let report = self.verifier.finish();
        let mut graph = self.fold.into_graph();
        graph.resolve(&self.workloads);
        let mut summary = Summary::new(vec![self.name.clone()]).with_graph(graph);
        summary.chains = report.spans;
        summary.workloads = self.workloads;
        summary.problems = report
            .problems
            .iter()
            .map(|p| format!("{}:{}: {}: {}", self.name, p.line, p.kind, p.message))
            .collect();
        summary
    }
}

/// The evidence of several shards together.
#[derive(Debug, Default)]
pub struct Merged {
    pub graph: Graph,
    /// Chains relied on, with the last sequence number seen.
    pub chains: BTreeMap<String, u64>,
    /// Each chain's whole span over the parts: the first part's first event, the last's last.
    pub spans: BTreeMap<String, ChainSpan>,
    /// The workload each chain speaks for.
    pub workloads: BTreeMap<String, String>,
    pub logs: Vec<String>,
    /// The shards' own problems, then those of their joins.
    pub problems: Vec<String>,
}

/// Merges `parts`, in any order: flows are summed, chains' parts are put in order and each join
/// checked with the key its chain names in `keyring`. Unless `partial`, a chain must begin at
/// seq 1 in one of the parts.
pub fn merge(parts: &[Summary], keyring: &Keyring, partial: bool) -> Merged {
    let mut m = Merged::default();
    let mut workloads = BTreeMap::new();
    let mut spans: BTreeMap<&str, Vec<&ChainSpan>> = BTreeMap::new();
    for part in parts {
        m.logs.extend(part.logs.iter().cloned());
        m.problems.extend(part.problems.iter().cloned());
        m.graph.unreadable += part.unreadable;
        for flow in &part.flows {
            let key = (flow.caller.clone(), flow.callee.clone());
            m.graph
                .flows
                .entry(key)
                .or_insert_with(|| Flow {
                    caller: flow.caller.clone(),
                    callee: flow.callee.clone(),
                    ..Flow::default()
                })
                .merge(flow);
        }
        for (chain, workload) in &part.workloads {
            workloads
                .entry(chain.clone())
                .or_insert_with(|| workload.clone());
        }
        for (chain, span) in &part.chains {
            spans.entry(chain).or_default().push(span);
        }
    }
    m.graph.resolve(&workloads);
    m.workloads = workloads;
    for (chain, mut parts) in spans {
        parts.sort_by_key(|s| (s.first_seq, s.last_seq));
        if let Some(first) = parts.first() {
            if first.first_seq > 1 && !partial {
                m.problems.push(format!(
                    "chain {chain}: starts at seq {}, seq 1 to {} missing",
                    first.first_seq,
                    first.first_seq - 1
                ));
            }
        }
        for pair in parts.windows(2) {
            if let [a, b] = pair {
                if let Some(problem) = join(chain, a, b, keyring) {
                    m.problems.push(problem);
                }
            }
        }
        let last = parts.iter().map(|s| s.last_seq).max().unwrap_or(0);
        m.chains.insert(chain.to_owned(), last);
        if let (Some(first), Some(end)) = (parts.first(), parts.iter().max_by_key(|s| s.last_seq)) {
            m.spans.insert(
                chain.to_owned(),
                ChainSpan {
                    last_seq: end.last_seq,
                    last_mac: end.last_mac.clone(),
                    ..(*first).clone()
                },
            );
        }
    }
    m
}

/// Why part `b` of `chain` does not follow part `a`, if it does not.
fn join(chain: &str, a: &ChainSpan, b: &ChainSpan, keyring: &Keyring) -> Option<String> {
    if b.first_seq <= a.last_seq {
        return Some(format!(
            "reordered: chain {chain}: two parts hold seq {} (a log summarized twice, or parts that overlap)",
            b.first_seq
        ));
    }
    if b.first_seq > a.last_seq + 1 {
        return Some(format!(
            "gap: chain {chain}: seq {} to {} missing between two parts",
            a.last_seq + 1,
            b.first_seq - 1
        ));
    }
    let (Some(prev), Some(stated)) = (unhex(&a.last_mac), unhex(&b.first_mac)) else {
        return Some(format!("altered: chain {chain}: a part's mac is not hex"));
    };
    let keyed = b
        .first_canonical
        .contains(&format!(r#""alg":"{}""#, alg(true)));
    let canonical = b.first_canonical.as_bytes();
    let joined = if keyed {
        let keys = keyring.candidates(b.kid.as_deref());
        if keys.is_empty() {
            return Some(format!(
                "unverifiable: chain {chain}: the join at seq {} needs key {}, not in the keyring",
                b.first_seq,
                b.kid.as_deref().unwrap_or("(unnamed)")
            ));
        }
        keys.iter()
            .any(|k| mac(Some(k), &prev, canonical) == stated)
    } else {
        mac(None, &prev, canonical) == stated
    };
    (!joined).then(|| {
        format!(
            "altered: chain {chain}: seq {} is not sealed over seq {}: the parts do not join",
            b.first_seq, a.last_seq
        )
    })
}

#[cfg(test)]
mod tests;
