//! Evidence for the assessor, drawn from the audit trail: the cardholder-data flow graph (PCI DSS
//! 1.2.4) and the scope (12.5.2).
//!
//! Each `access` event names the callee (`workload`, the sidecar's own SPIFFE ID), the caller
//! (`principal`, or none when no identity was established) and the card numbers that crossed in
//! each direction: masked, or passed in clear under a `pan` grant or `dry_run`. Adding events to a
//! `Graph` sums them per caller → callee edge; the sum does not depend on the order of the events,
//! so the logs of several sidecars can be read in any order.

pub mod collapse;
mod fold;
pub mod layout;
mod render;
mod scope;
pub mod summary;
mod svg;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use render::{dot, markdown, Provenance};
pub use scope::{findings, scope, Finding, Scope, ScopeEntry, Standing};
pub use svg::svg;

/// The caller of a request with no established identity: a workload outside the mesh, or one
/// whose sidecar has no certificate. It cannot be told apart from another such caller.
pub const UNIDENTIFIED: &str = "(unidentified caller)";

/// Card numbers that crossed one way: masked, or in clear under a grant or under `dry_run`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crossing {
    pub masked: u64,
    pub granted: u64,
    pub dry_run: u64,
}

impl Crossing {
    pub fn in_clear(&self) -> u64 {
        self.granted + self.dry_run
    }

    pub fn total(&self) -> u64 {
        self.masked + self.in_clear()
    }

    fn add(&mut self, o: &Crossing) {
        self.masked += o.masked;
        self.granted += o.granted;
        self.dry_run += o.dry_run;
    }
}

/// One caller → callee edge over the period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub caller: String,
    pub callee: String,
    pub requests: u64,
    /// Requests served: allowed, or denied under `dry_run` and let through.
    pub allowed: u64,
    /// Requests denied, enforced or under `dry_run` (where they were served all the same).
    pub denied: u64,
    /// Denials (and would-be denials under `dry_run`) by reason.
    pub denials: BTreeMap<String, u64>,
    /// Caller → callee (request headers and body).
    pub to_callee: Crossing,
    /// Callee → caller (response headers and body).
    pub to_caller: Crossing,
    /// Rules that let card numbers through in clear on this edge, with how many.
    pub grants: BTreeMap<String, u64>,
    pub first_seen: String,
    pub last_seen: String,
}

impl Flow {
    fn merge(&mut self, o: &Flow) {
        self.requests += o.requests;
        self.allowed += o.allowed;
        self.denied += o.denied;
        for (k, v) in &o.denials {
            *self.denials.entry(k.clone()).or_default() += v;
        }
        self.to_callee.add(&o.to_callee);
        self.to_caller.add(&o.to_caller);
        for (k, v) in &o.grants {
            *self.grants.entry(k.clone()).or_default() += v;
        }
        if self.first_seen.is_empty()
            || (!o.first_seen.is_empty() && o.first_seen < self.first_seen)
        {
            self.first_seen.clone_from(&o.first_seen);
        }
        if o.last_seen > self.last_seen {
            self.last_seen.clone_from(&o.last_seen);
        }
    }
}

/// The flows of a period, by (caller, callee).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    pub flows: BTreeMap<(String, String), Flow>,
    /// `access` events without a time or any way to name their callee, which no edge can hold.
    pub unreadable: u64,
}

impl Graph {
    /// Adds one audit event; events other than `access` are ignored.
    pub fn add(&mut self, event: &Value) {
        self.add_in(event, &BTreeMap::new());
    }

    /// Adds one audit event whose callee, if the event does not name it (a plaintext
    /// connection shows no certificate of the sidecar's own), is its chain's workload in
    /// `chains` (see `chain_workloads`).
    pub fn add_in(&mut self, event: &Value, chains: &BTreeMap<String, String>) {
        if event["event"] != "access" {
            return;
        }
        let callee = match event["workload"].as_str() {
            Some(w) => Some(w.to_owned()),
            None => event["chain"].as_str().map(|c| {
                chains
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| sidecar_of_chain(c))
            }),
        };
        let Some(flow) = callee.and_then(|callee| flow_of(event, callee)) else {
            self.unreadable += 1;
            return;
        };
        let key = (flow.caller.clone(), flow.callee.clone());
        let edge = self.flows.entry(key).or_insert_with(|| Flow {
            caller: flow.caller.clone(),
            callee: flow.callee.clone(),
            ..Flow::default()
        });
        edge.merge(&flow);
    }

    /// Moves the edges drawn to a chain's placeholder callee (`sidecar_of_chain`: events read
    /// before any event of the chain named its workload) to that workload, as `chains` now knows
    /// it. The result is the graph the events would have made with `chains` known from the start.
    pub fn resolve(&mut self, chains: &BTreeMap<String, String>) {
        let moved: Vec<((String, String), String)> = self
            .flows
            .keys()
            .filter_map(|key| {
                let chain = key
                    .1
                    .strip_prefix(PLACEHOLDER.0)?
                    .strip_suffix(PLACEHOLDER.1)?;
                Some((key.clone(), chains.get(chain)?.clone()))
            })
            .collect();
        for (key, workload) in moved {
            let Some(mut flow) = self.flows.remove(&key) else {
                continue;
            };
            flow.callee.clone_from(&workload);
            let edge = self
                .flows
                .entry((flow.caller.clone(), workload.clone()))
                .or_insert_with(|| Flow {
                    caller: flow.caller.clone(),
                    callee: workload,
                    ..Flow::default()
                });
            edge.merge(&flow);
        }
    }

    /// Every workload seen, as caller or callee.
    pub fn workloads(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .flows
            .values()
            .flat_map(|f| [f.caller.as_str(), f.callee.as_str()])
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The first and last time any event of the graph was written.
    pub fn period(&self) -> Option<(&str, &str)> {
        let first = self.flows.values().map(|f| f.first_seen.as_str()).min()?;
        let last = self.flows.values().map(|f| f.last_seen.as_str()).max()?;
        Some((first, last))
    }
}

/// The callee of an event whose chain's workload is not known (yet): a placeholder naming the
/// chain, which `Graph::resolve` replaces once the chain's workload is known.
pub fn sidecar_of_chain(chain: &str) -> String {
    format!("{}{chain}{}", PLACEHOLDER.0, PLACEHOLDER.1)
}

/// What comes before and after the chain's id in `sidecar_of_chain`.
const PLACEHOLDER: (&str, &str) = ("(the sidecar of audit chain ", ")");

/// The workload each audit chain speaks for: a chain is one VM of one sidecar, and its events
/// that came over mTLS name the sidecar's own SPIFFE ID.
pub fn chain_workloads<'a>(
    events: impl IntoIterator<Item = &'a Value>,
) -> BTreeMap<String, String> {
    events
        .into_iter()
        .filter_map(|e| {
            Some((
                e["chain"].as_str()?.to_owned(),
                e["workload"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// The edge contribution of one `access` event at `callee`; `None` when it has no time.
fn flow_of(e: &Value, callee: String) -> Option<Flow> {
    let ts = e["ts"].as_str()?.to_owned();
    let caller = e["principal"].as_str().unwrap_or(UNIDENTIFIED).to_owned();
    let allowed = e["decision"] == "allow";
    // A denial under `dry_run` was not enforced: the request was served.
    let served = allowed || e["enforced"] == false;
    let mut denials = BTreeMap::new();
    if !allowed {
        let reason = e["reason"].as_str().unwrap_or("unknown").to_owned();
        denials.insert(reason, 1);
    }
    let crossing = |places: [&str; 2], mode: &Value| {
        let sum = |field: &str| -> u64 {
            places
                .iter()
                .map(|p| e["pan"][p][field].as_u64().unwrap_or(0))
                .sum()
        };
        let passed = sum("passed");
        let mut c = Crossing {
            masked: sum("redacted"),
            ..Crossing::default()
        };
        if mode == "dry_run" || e["enforced"] == false {
            c.dry_run = passed;
        } else {
            c.granted = passed;
        }
        c
    };
    let to_callee = crossing(
        ["request_headers", "request_body"],
        &e["redaction"]["request"],
    );
    let to_caller = crossing(
        ["response_headers", "response_body"],
        &e["redaction"]["response"],
    );
    let mut grants = BTreeMap::new();
    let granted = to_callee.granted + to_caller.granted;
    if granted > 0 {
        let rule = e["rule"].as_str().unwrap_or("(no rule)").to_owned();
        grants.insert(rule, granted);
    }
    Some(Flow {
        caller,
        callee,
        requests: 1,
        allowed: u64::from(served),
        denied: u64::from(!allowed),
        denials,
        to_callee,
        to_caller,
        grants,
        first_seen: ts.clone(),
        last_seen: ts,
    })
}

/// The namespace of an Istio-style SPIFFE ID (`spiffe://td/ns/<ns>/sa/<sa>`).
pub fn namespace_of(id: &str) -> Option<&str> {
    let path = id.strip_prefix("spiffe://")?.split_once('/')?.1;
    let mut segs = path.split('/');
    match (segs.next(), segs.next(), segs.next()) {
        (Some("ns"), Some(ns), Some("sa")) => Some(ns),
        _ => None,
    }
}

/// The trust domain of a SPIFFE ID.
pub fn trust_domain_of(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("spiffe://")?;
    Some(rest.split_once('/').map_or(rest, |(td, _)| td))
}

#[cfg(test)]
mod tests;
