//! The diagram of a large mesh: above `WORKLOAD_LIMIT` workloads the SVG draws, in each zone, one
//! box per namespace holding all of its workloads of that standing ("12 workloads"), and one edge
//! per pair of such boxes, with the requests and card numbers of every flow it stands for. Flows
//! between workloads of one box are counted in the title rather than drawn as loops. The DOT, the
//! JSON and the report keep every workload and every flow: a reader expands a box there.

use std::collections::BTreeMap;

use super::{namespace_of, trust_domain_of, Flow, Graph, Scope, ScopeEntry, Standing};

/// The most workloads the SVG draws one by one.
pub const WORKLOAD_LIMIT: usize = 60;

/// What the collapsed drawing stands for, for its title.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collapsed {
    pub workloads: usize,
    pub flows: usize,
    /// Flows between workloads that share a box, which are not drawn.
    pub inside: usize,
    /// Edges between boxes that neither touch the cardholder data environment nor carry card
    /// numbers in clear, which are not drawn either.
    pub elsewhere: usize,
}

fn short(s: Standing) -> &'static str {
    match s {
        Standing::CardholderDataEnvironment => "cde",
        Standing::ConnectedTo => "connected",
        Standing::OutOfScopeCandidate => "out of scope",
        Standing::Unidentified => "unidentified",
    }
}

/// The graph and scope of the drawing: unchanged up to `WORKLOAD_LIMIT` workloads, grouped by
/// namespace and standing above it.
pub fn for_drawing(g: &Graph, scope: &Scope) -> (Graph, Scope, Option<Collapsed>) {
    let workloads = g.workloads();
    if workloads.len() <= WORKLOAD_LIMIT {
        return (g.clone(), scope.clone(), None);
    }
    let standing: BTreeMap<&str, Standing> = scope
        .workloads
        .iter()
        .map(|e| (e.workload.as_str(), e.standing))
        .collect();
    // Each workload's box: its namespace's, per standing. Workloads without a namespace stay.
    let mut members: BTreeMap<(String, String, Standing), Vec<&str>> = BTreeMap::new();
    for w in &workloads {
        let s = standing
            .get(w)
            .copied()
            .unwrap_or(Standing::OutOfScopeCandidate);
        if let (Some(td), Some(ns)) = (trust_domain_of(w), namespace_of(w)) {
            members
                .entry((td.to_owned(), ns.to_owned(), s))
                .or_default()
                .push(w);
        }
    }
    let mut box_of: BTreeMap<&str, String> = BTreeMap::new();
    let mut entries: BTreeMap<String, ScopeEntry> = BTreeMap::new();
    for ((td, ns, s), ws) in &members {
        let n = ws.len();
        let plural = if n == 1 { "" } else { "s" };
        let id = format!(
            "spiffe://{td}/ns/{ns}/sa/{n} workload{plural} ({})",
            short(*s)
        );
        for w in ws {
            box_of.insert(w, id.clone());
        }
    }
    let boxed = |w: &str| box_of.get(w).cloned().unwrap_or_else(|| w.to_owned());
    for e in &scope.workloads {
        let id = boxed(&e.workload);
        let into = entries.entry(id.clone()).or_insert_with(|| ScopeEntry {
            workload: id,
            grants: Default::default(),
            connected_to: Default::default(),
            first_seen: String::new(),
            last_seen: String::new(),
            ..e.clone()
        });
        into.sent += e.sent;
        into.received_in_clear += e.received_in_clear;
        into.received_masked += e.received_masked;
        into.requests += e.requests;
        into.caller_only &= e.caller_only;
        into.grants.extend(e.grants.iter().cloned());
        into.connected_to
            .extend(e.connected_to.iter().map(|c| boxed(c)));
        if into.first_seen.is_empty() || e.first_seen < into.first_seen {
            into.first_seen.clone_from(&e.first_seen);
        }
        if e.last_seen > into.last_seen {
            into.last_seen.clone_from(&e.last_seen);
        }
    }
    let mut drawn = Graph::default();
    let mut inside = 0;
    for f in g.flows.values() {
        let (caller, callee) = (boxed(&f.caller), boxed(&f.callee));
        if caller == callee {
            inside += 1;
            continue;
        }
        let edge = drawn
            .flows
            .entry((caller.clone(), callee.clone()))
            .or_insert_with(|| Flow {
                caller,
                callee,
                ..Flow::default()
            });
        edge.merge(f);
    }
    // What a data-flow diagram is for: the flows of the cardholder data environment, and card
    // numbers in clear wherever they go. The other edges between boxes are counted.
    let cde: std::collections::BTreeSet<&str> = entries
        .values()
        .filter(|e| e.standing == Standing::CardholderDataEnvironment)
        .map(|e| e.workload.as_str())
        .collect();
    let before = drawn.flows.len();
    drawn.flows.retain(|(caller, callee), f| {
        cde.contains(caller.as_str())
            || cde.contains(callee.as_str())
            || f.to_callee.in_clear() + f.to_caller.in_clear() > 0
    });
    let collapsed = Collapsed {
        workloads: workloads.len(),
        flows: g.flows.len(),
        inside,
        elsewhere: before - drawn.flows.len(),
    };
    let scope = Scope {
        workloads: entries.into_values().collect(),
    };
    (drawn, scope, Some(collapsed))
}
