//! Access events folded into their edges as they come, with no allocation per event once an edge
//! exists: the fields the evidence uses are those the verifier's one pass kept (`Sealed`), and an
//! event's edge is found by a key built in a reused buffer. The result is the graph
//! `Graph::add_in` makes of the same events, flow by flow.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use super::{sidecar_of_chain, Crossing, Flow, Graph, UNIDENTIFIED};
use crate::audit::json::Sealed;

/// The edges of a shard, as events come.
#[derive(Default)]
pub struct Fold {
    edges: Vec<Flow>,
    /// Each edge's index, by `len(caller):caller callee`.
    index: HashMap<String, usize>,
    key: String,
    unreadable: u64,
}

impl Fold {
    /// Adds one access event, whose callee, if the event does not name it, is its chain's
    /// workload in `chains` (as `Graph::add_in` does).
    pub fn add(&mut self, s: &Sealed<'_>, chains: &BTreeMap<String, String>) {
        if s.event() != "access" {
            return;
        }
        let e = &s.access;
        let callee: Cow<'_, str> = match (e.workload.as_deref(), s.chain.as_deref()) {
            (Some(w), _) => Cow::Borrowed(w),
            (None, Some(c)) => match chains.get(c) {
                Some(w) => Cow::Borrowed(w.as_str()),
                None => Cow::Owned(sidecar_of_chain(c)),
            },
            (None, None) => {
                self.unreadable += 1;
                return;
            }
        };
        let Some(ts) = s.ts.as_deref() else {
            self.unreadable += 1;
            return;
        };
        let caller = e.principal.as_deref().unwrap_or(UNIDENTIFIED);
        self.key.clear();
        self.key.push_str(&caller.len().to_string());
        self.key.push(':');
        self.key.push_str(caller);
        self.key.push_str(&callee);
        let at = match self.index.get(self.key.as_str()) {
            Some(at) => *at,
            None => {
                self.edges.push(Flow {
                    caller: caller.to_owned(),
                    callee: callee.into_owned(),
                    ..Flow::default()
                });
                let at = self.edges.len() - 1;
                self.index.insert(self.key.clone(), at);
                at
            }
        };
        let Some(edge) = self.edges.get_mut(at) else {
            return;
        };
        let allowed = e.decision.as_deref() == Some("allow");
        let not_enforced = e.enforced == Some(false);
        edge.requests += 1;
        edge.allowed += u64::from(allowed || not_enforced);
        edge.denied += u64::from(!allowed);
        if !allowed {
            count(
                &mut edge.denials,
                e.reason.as_deref().unwrap_or("unknown"),
                1,
            );
        }
        let crossing = |places: &[(u64, u64)], mode: Option<&str>| {
            let passed: u64 = places.iter().map(|c| c.1).sum();
            let mut c = Crossing {
                masked: places.iter().map(|c| c.0).sum(),
                ..Crossing::default()
            };
            if mode == Some("dry_run") || not_enforced {
                c.dry_run = passed;
            } else {
                c.granted = passed;
            }
            c
        };
        let [request, response] = &e.redaction;
        let to_callee = crossing(e.pan.get(..2).unwrap_or_default(), request.as_deref());
        let to_caller = crossing(e.pan.get(2..).unwrap_or_default(), response.as_deref());
        edge.to_callee.add(&to_callee);
        edge.to_caller.add(&to_caller);
        let granted = to_callee.granted + to_caller.granted;
        if granted > 0 {
            let rule = e.rule.as_deref().unwrap_or("(no rule)");
            count(&mut edge.grants, rule, granted);
        }
        if edge.first_seen.is_empty() || ts < edge.first_seen.as_str() {
            edge.first_seen.clear();
            edge.first_seen.push_str(ts);
        }
        if ts > edge.last_seen.as_str() {
            edge.last_seen.clear();
            edge.last_seen.push_str(ts);
        }
    }

    /// The graph of the events added.
    pub fn into_graph(self) -> Graph {
        let mut g = Graph {
            flows: BTreeMap::new(),
            unreadable: self.unreadable,
        };
        for f in self.edges {
            let key = (f.caller.clone(), f.callee.clone());
            match g.flows.get_mut(&key) {
                Some(edge) => edge.merge(&f),
                None => {
                    g.flows.insert(key, f);
                }
            }
        }
        g
    }
}

/// Adds `n` under `key`, allocating the key only the first time.
fn count(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    match map.get_mut(key) {
        Some(v) => *v += n,
        None => {
            map.insert(key.to_owned(), n);
        }
    }
}
