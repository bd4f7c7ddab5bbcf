//! The scope drawn from the flow graph, and the findings an assessor should see.
//!
//! A workload is in the cardholder data environment when card numbers came from it (in requests
//! it sent or in answers it gave: it held them in clear) or reached it in clear (under a `pan`
//! grant or `dry_run`). A workload that is not, but exchanged allowed requests with one that is,
//! is connected-to, and in scope as well. The rest only ever saw masked numbers or none: they are
//! candidates for out of scope. A caller with no established identity is listed on its own.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{namespace_of, Graph, UNIDENTIFIED};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Stores, processes or transmits card numbers in clear: in scope.
    CardholderDataEnvironment,
    /// Exchanges requests with the cardholder data environment: in scope.
    ConnectedTo,
    /// Saw card numbers only masked, or none: a candidate for out of scope.
    OutOfScopeCandidate,
    /// Callers without an identity (outside the mesh, or without a certificate).
    Unidentified,
}

impl Standing {
    pub fn label(self) -> &'static str {
        match self {
            Standing::CardholderDataEnvironment => "in scope: cardholder data environment",
            Standing::ConnectedTo => "in scope: connected-to",
            Standing::OutOfScopeCandidate => "candidate for out of scope",
            Standing::Unidentified => "unidentified caller",
        }
    }
}

/// One workload's standing and the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeEntry {
    pub workload: String,
    pub standing: Standing,
    /// Card numbers that came from this workload (it held them in clear).
    pub sent: u64,
    /// Card numbers it received in clear, under a grant or `dry_run`.
    pub received_in_clear: u64,
    /// Card numbers sent its way that a sidecar masked before they reached it.
    pub received_masked: u64,
    /// Rules under which it received card numbers in clear.
    pub grants: BTreeSet<String>,
    /// Workloads of the cardholder data environment it exchanged allowed requests with.
    pub connected_to: BTreeSet<String>,
    /// Seen only as a caller: its own inbound traffic is not in the logs read.
    pub caller_only: bool,
    pub requests: u64,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub workloads: Vec<ScopeEntry>,
}

impl Scope {
    pub fn of(&self, standing: Standing) -> impl Iterator<Item = &ScopeEntry> {
        self.workloads
            .iter()
            .filter(move |w| w.standing == standing)
    }

    pub fn standing(&self, workload: &str) -> Option<Standing> {
        self.workloads
            .iter()
            .find(|w| w.workload == workload)
            .map(|w| w.standing)
    }
}

fn entry(workload: &str) -> ScopeEntry {
    ScopeEntry {
        workload: workload.to_owned(),
        standing: Standing::OutOfScopeCandidate,
        sent: 0,
        received_in_clear: 0,
        received_masked: 0,
        grants: BTreeSet::new(),
        connected_to: BTreeSet::new(),
        caller_only: true,
        requests: 0,
        first_seen: String::new(),
        last_seen: String::new(),
    }
}

pub fn scope(g: &Graph) -> Scope {
    let mut entries: BTreeMap<&str, ScopeEntry> =
        g.workloads().into_iter().map(|w| (w, entry(w))).collect();
    for f in g.flows.values() {
        for (who, sent, in_clear, masked) in [
            (
                &f.caller,
                f.to_callee.total(),
                f.to_caller.in_clear(),
                f.to_caller.masked,
            ),
            (
                &f.callee,
                f.to_caller.total(),
                f.to_callee.in_clear(),
                f.to_callee.masked,
            ),
        ] {
            if let Some(e) = entries.get_mut(who.as_str()) {
                e.sent += sent;
                e.received_in_clear += in_clear;
                e.received_masked += masked;
                e.requests += f.requests;
                if e.first_seen.is_empty() || f.first_seen < e.first_seen {
                    e.first_seen.clone_from(&f.first_seen);
                }
                if f.last_seen > e.last_seen {
                    e.last_seen.clone_from(&f.last_seen);
                }
            }
        }
        if let Some(e) = entries.get_mut(f.callee.as_str()) {
            e.caller_only = false;
            if f.to_callee.granted > 0 {
                e.grants.extend(f.grants.keys().cloned());
            }
        }
        if f.to_caller.granted > 0 {
            if let Some(e) = entries.get_mut(f.caller.as_str()) {
                e.grants.extend(f.grants.keys().cloned());
            }
        }
    }
    let cde: BTreeSet<String> = entries
        .values()
        .filter(|e| e.workload != UNIDENTIFIED && (e.sent > 0 || e.received_in_clear > 0))
        .map(|e| e.workload.clone())
        .collect();
    for f in g.flows.values().filter(|f| f.allowed > 0) {
        for (a, b) in [(&f.caller, &f.callee), (&f.callee, &f.caller)] {
            if cde.contains(b) && !cde.contains(a) {
                if let Some(e) = entries.get_mut(a.as_str()) {
                    e.connected_to.insert(b.clone());
                }
            }
        }
    }
    for e in entries.values_mut() {
        e.standing = if e.workload == UNIDENTIFIED {
            Standing::Unidentified
        } else if cde.contains(&e.workload) {
            Standing::CardholderDataEnvironment
        } else if !e.connected_to.is_empty() {
            Standing::ConnectedTo
        } else {
            Standing::OutOfScopeCandidate
        };
    }
    let mut workloads: Vec<ScopeEntry> = entries.into_values().collect();
    workloads.sort_by(|a, b| (a.standing, &a.workload).cmp(&(b.standing, &b.workload)));
    Scope { workloads }
}

/// Something in the period an assessor or the policy's owner should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// A rule of the configuration grants card numbers, and nothing used it in the period.
    GrantUnused { rule: String },
    /// Card numbers reached a namespace in clear only through grants: its workloads have no other
    /// business with card data in the period.
    GrantToNamespaceWithoutOtherCardData {
        namespace: String,
        rules: BTreeSet<String>,
        in_clear: u64,
    },
    /// Card numbers passed in clear because the plugin ran in `dry_run`.
    DryRunPassed {
        caller: String,
        callee: String,
        count: u64,
    },
    /// Requests of a caller that were denied, by reason.
    Denials {
        caller: String,
        callee: String,
        by_reason: BTreeMap<String, u64>,
    },
}

/// Per namespace: rules that brought it card numbers in clear, how many, and its other card data.
#[derive(Default)]
struct NamespaceCards {
    rules: BTreeSet<String>,
    granted: u64,
    other: u64,
}

/// The findings of a period. `granting_rules`: the configuration's rules that hold a `pan` grant,
/// when known (the audit events alone do not name rules that were never used).
pub fn findings(g: &Graph, granting_rules: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    let used: BTreeSet<&str> = g
        .flows
        .values()
        .flat_map(|f| f.grants.keys().map(String::as_str))
        .collect();
    for rule in granting_rules {
        if !used.contains(rule.as_str()) {
            out.push(Finding::GrantUnused { rule: rule.clone() });
        }
    }
    let mut by_ns: BTreeMap<&str, NamespaceCards> = BTreeMap::new();
    for f in g.flows.values() {
        // (the side's namespace, granted to it, any other card data it sent or received)
        let sides = [
            (
                namespace_of(&f.caller),
                f.to_caller.granted,
                f.to_callee.total() + f.to_caller.masked + f.to_caller.dry_run,
            ),
            (
                namespace_of(&f.callee),
                f.to_callee.granted,
                f.to_caller.total() + f.to_callee.masked + f.to_callee.dry_run,
            ),
        ];
        for (ns, granted, other) in sides {
            let Some(ns) = ns else { continue };
            let e = by_ns.entry(ns).or_default();
            e.granted += granted;
            e.other += other;
            if granted > 0 {
                e.rules.extend(f.grants.keys().cloned());
            }
        }
    }
    for (ns, cards) in by_ns {
        if cards.granted > 0 && cards.other == 0 {
            out.push(Finding::GrantToNamespaceWithoutOtherCardData {
                namespace: ns.to_owned(),
                rules: cards.rules,
                in_clear: cards.granted,
            });
        }
    }
    for f in g.flows.values() {
        let count = f.to_callee.dry_run + f.to_caller.dry_run;
        if count > 0 {
            out.push(Finding::DryRunPassed {
                caller: f.caller.clone(),
                callee: f.callee.clone(),
                count,
            });
        }
    }
    for f in g.flows.values().filter(|f| f.denied > 0) {
        out.push(Finding::Denials {
            caller: f.caller.clone(),
            callee: f.callee.clone(),
            by_reason: f.denials.clone(),
        });
    }
    out
}
