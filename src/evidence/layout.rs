//! The data-flow diagram's geometry, as PCI DSS 1.2.4 asks a diagram to read: the cardholder data
//! environment as a boundary around its workloads, connected-to systems and out-of-scope
//! candidates in zones of their own, each zone's workloads grouped by namespace, and one edge per
//! caller → callee whose label never covers a line, a node or another label.
//!
//! The layout is fixed rather than searched, so it is fast for a large mesh and the same for the
//! same trail. Zones are stacked top to bottom, workloads in one column inside them. Each edge
//! leaves its caller to the right, runs down or up a lane of its own right of every zone, and
//! comes back into its callee. Labels sit in a column right of every lane, one row each, ordered
//! by where their edges are, and a dotted leader joins each to its lane. So labels meet only
//! leaders and lanes' ends, never each other, a node, or a line.

use std::collections::BTreeMap;

use super::{namespace_of, trust_domain_of, Flow, Graph, Scope, Standing, UNIDENTIFIED};

/// An axis-aligned rectangle: top-left corner, width, height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn right(&self) -> f64 {
        self.x + self.w
    }
    pub fn bottom(&self) -> f64 {
        self.y + self.h
    }
    /// True when the interiors overlap (touching edges do not count).
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.right() && o.x < self.right() && self.y < o.bottom() && o.y < self.bottom()
    }
    pub fn contains(&self, o: &Rect) -> bool {
        o.x >= self.x && o.y >= self.y && o.right() <= self.right() && o.bottom() <= self.bottom()
    }
    /// True when the segment a–b passes through the interior (by more than rounding: a line
    /// that ends on a box's side, computed from far away, may land a hair inside it).
    pub fn crossed_by(&self, a: (f64, f64), b: (f64, f64)) -> bool {
        const HAIR: f64 = 1e-6;
        // Sample the segment finely: every segment here is short next to the boxes it could meet.
        let steps = 64;
        (0..=steps).any(|i| {
            let t = f64::from(i) / f64::from(steps);
            let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            x > self.x + HAIR
                && x < self.right() - HAIR
                && y > self.y + HAIR
                && y < self.bottom() - HAIR
        })
    }
}

/// A box with a title: a zone or a namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub title: String,
    pub rect: Rect,
    /// The zone's standing (for a namespace box, its zone's).
    pub standing: Standing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The workload's full SPIFFE ID (or `UNIDENTIFIED`).
    pub id: String,
    /// What the box says: the service account.
    pub name: String,
    pub rect: Rect,
    pub standing: Standing,
    /// Index into `Diagram::zones`.
    pub zone: usize,
    /// Index into `Diagram::namespaces`, when it has one.
    pub namespace: Option<usize>,
}

/// How an edge is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeStyle {
    /// Card numbers crossed in clear (a grant or `dry_run`).
    InClear,
    /// Every request was denied.
    Denied,
    Allowed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub caller: String,
    pub callee: String,
    /// The line from the caller to the callee, corner by corner; it ends at the callee.
    pub path: Vec<(f64, f64)>,
    /// The dotted leader from the lane to the label.
    pub leader: [(f64, f64); 2],
    pub label: Vec<String>,
    pub label_rect: Rect,
    pub style: EdgeStyle,
}

/// The whole diagram, in pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagram {
    pub title: String,
    pub zones: Vec<Group>,
    pub namespaces: Vec<Group>,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Where the legend goes.
    pub legend: Rect,
    pub width: f64,
    pub height: f64,
}

/// Text metrics: a glyph is taken as `CHAR_W` wide at the diagram's 12 px font, which holds for
/// Helvetica and the like; lines are `LINE` apart.
pub const CHAR_W: f64 = 7.2;
pub const LINE: f64 = 16.0;
const MARGIN: f64 = 16.0;
const PAD: f64 = 10.0;
const TITLE: f64 = 22.0;
const LANE: f64 = 10.0;
const GAP: f64 = 8.0;
/// Distance between two edges' ends on one box.
const PORT: f64 = 10.0;
/// The title's glyph width (14 px, bold).
const TITLE_CHAR_W: f64 = 8.6;
pub const LEGEND_H: f64 = 5.0 * LINE + 2.0 * PAD;

fn text_width(lines: &[String]) -> f64 {
    lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * CHAR_W
}

/// `n` with its noun, singular or plural: "1 request", "2 requests".
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The label of an edge: requests and denials, then card numbers each way that crossed it.
pub fn edge_label(f: &Flow) -> Vec<String> {
    let mut first = count(f.requests, "request", "requests");
    if f.denied > 0 {
        first.push_str(&format!(", {} denied", f.denied));
    }
    let mut out = vec![first];
    for (arrow, c) in [("→", &f.to_callee), ("←", &f.to_caller)] {
        if c.total() == 0 {
            continue;
        }
        let parts: Vec<String> = [
            (c.masked, "masked"),
            (c.granted, "granted"),
            (c.dry_run, "under dry_run"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        out.push(format!(
            "{arrow} {}: {}",
            count(c.total(), "card number", "card numbers"),
            parts.join(", ")
        ));
    }
    out
}

pub fn zone_title(s: Standing) -> &'static str {
    match s {
        Standing::CardholderDataEnvironment => "Cardholder data environment (in scope)",
        Standing::ConnectedTo => "Connected-to systems (in scope)",
        Standing::OutOfScopeCandidate => "Candidates for out of scope",
        Standing::Unidentified => "Callers without an identity",
    }
}

const ZONES: [Standing; 4] = [
    Standing::CardholderDataEnvironment,
    Standing::ConnectedTo,
    Standing::OutOfScopeCandidate,
    Standing::Unidentified,
];

/// One edge's ends: where it leaves its caller and enters its callee.
struct Span<'a> {
    flow: &'a Flow,
    from: (f64, f64),
    to: (f64, f64),
}

impl Span<'_> {
    fn length(&self) -> f64 {
        (self.from.1 - self.to.1).abs()
    }
}

/// Lays out `g` with the standings of `scope`.
pub fn layout(g: &Graph, scope: &Scope) -> Diagram {
    layout_noted(g, scope, "")
}

/// As `layout`, with `note` after the title's period.
pub fn layout_noted(g: &Graph, scope: &Scope, note: &str) -> Diagram {
    // Every workload of the flows, and of the scope (a box whose flows all stay inside it).
    let mut workloads = g.workloads();
    let drawn: std::collections::BTreeSet<&str> = workloads.iter().copied().collect();
    workloads.extend(
        scope
            .workloads
            .iter()
            .map(|e| e.workload.as_str())
            .filter(|w| !drawn.contains(w)),
    );
    workloads.sort_unstable();
    let name_of = |w: &str| -> String {
        if w == UNIDENTIFIED {
            return w.to_owned();
        }
        match namespace_of(w) {
            Some(_) => w.rsplit('/').next().unwrap_or(w).to_owned(),
            None => w.to_owned(),
        }
    };
    // Endpoints per workload, so each edge gets a port of its own on each box.
    let mut ends: BTreeMap<&str, usize> = BTreeMap::new();
    for f in g.flows.values() {
        *ends.entry(f.caller.as_str()).or_default() += 1;
        *ends.entry(f.callee.as_str()).or_default() += 1;
    }
    let node_w = workloads
        .iter()
        .map(|w| name_of(w).chars().count() as f64 * CHAR_W + 2.0 * PAD)
        .fold(120.0, f64::max);
    let title_w = ZONES
        .iter()
        .map(|z| zone_title(*z).chars().count())
        .max()
        .unwrap_or(0) as f64
        * CHAR_W;
    let ns_x = MARGIN + PAD;
    let node_x = ns_x + PAD;
    let zone_w = (node_w + 4.0 * PAD).max(title_w + 2.0 * PAD);

    let (mut zones, mut namespaces, mut nodes) = (vec![], vec![], vec![]);
    let mut y = MARGIN + TITLE + GAP;
    for standing in ZONES {
        // namespace (with its trust domain) -> workloads; workloads of no namespace under "".
        let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for w in workloads
            .iter()
            .filter(|w| scope.standing(w).unwrap_or(Standing::Unidentified) == standing)
        {
            let key = match (namespace_of(w), trust_domain_of(w)) {
                (Some(ns), Some(td)) => format!("namespace {ns} ({td})"),
                _ => String::new(),
            };
            groups.entry(key).or_default().push(w);
        }
        if groups.is_empty() {
            continue;
        }
        let zone = zones.len();
        let top = y;
        y += TITLE + PAD;
        for (title, members) in groups {
            let boxed = !title.is_empty();
            let ns_top = y;
            if boxed {
                y += TITLE;
            }
            let namespace = boxed.then_some(namespaces.len());
            for w in members {
                let ports = ends.get(w).copied().unwrap_or(0) as f64;
                let h = (LINE + 2.0 * PAD).max((ports + 1.0) * PORT);
                nodes.push(Node {
                    id: w.to_owned(),
                    name: name_of(w),
                    rect: Rect {
                        x: node_x,
                        y,
                        w: node_w,
                        h,
                    },
                    standing,
                    zone,
                    namespace,
                });
                y += h + GAP;
            }
            if boxed {
                namespaces.push(Group {
                    title,
                    rect: Rect {
                        x: ns_x,
                        y: ns_top,
                        w: node_w + 2.0 * PAD,
                        h: y - ns_top,
                    },
                    standing,
                });
                y += GAP;
            }
        }
        zones.push(Group {
            title: zone_title(standing).to_owned(),
            rect: Rect {
                x: MARGIN,
                y: top,
                w: zone_w,
                h: y - top + PAD,
            },
            standing,
        });
        y += PAD + 2.0 * GAP;
    }
    let zones_right = MARGIN + zone_w;
    let zones_bottom = y;

    // Ports: each box's endpoints spread down its right side, in the order of the flows.
    let index: BTreeMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut used: BTreeMap<&str, usize> = BTreeMap::new();
    let mut port = |w: &str| -> (f64, f64) {
        let Some(n) = index.get(w).and_then(|&i| nodes.get(i)) else {
            return (zones_right, zones_bottom);
        };
        let i = used.entry(n.id.as_str()).or_default();
        *i += 1;
        let total = ends.get(w).copied().unwrap_or(1) as f64;
        (
            n.rect.right(),
            n.rect.y + n.rect.h * (*i as f64) / (total + 1.0),
        )
    };
    let mut spans: Vec<Span> = g
        .flows
        .values()
        .map(|flow| Span {
            flow,
            from: port(&flow.caller),
            to: port(&flow.callee),
        })
        .collect();
    // Short spans on the inner lanes, so long ones go round them.
    spans.sort_by(|a, b| a.length().total_cmp(&b.length()));
    let lanes_x = zones_right + 3.0 * GAP;
    let labels_x = lanes_x + spans.len() as f64 * LANE + 3.0 * GAP;
    let mut edges: Vec<Edge> = spans
        .iter()
        .enumerate()
        .map(|(k, &Span { flow: f, from, to })| {
            let lane = lanes_x + k as f64 * LANE;
            let label = edge_label(f);
            let style = if f.to_callee.in_clear() + f.to_caller.in_clear() > 0 {
                EdgeStyle::InClear
            } else if f.allowed == 0 {
                EdgeStyle::Denied
            } else {
                EdgeStyle::Allowed
            };
            let h = label.len() as f64 * LINE + PAD;
            Edge {
                caller: f.caller.clone(),
                callee: f.callee.clone(),
                path: vec![from, (lane, from.1), (lane, to.1), to],
                leader: [(lane, (from.1 + to.1) / 2.0), (labels_x, 0.0)],
                label_rect: Rect {
                    x: labels_x,
                    y: 0.0,
                    w: text_width(&label) + PAD,
                    h,
                },
                label,
                style,
            }
        })
        .collect();
    // Labels top to bottom in the order of their edges' middles, each as near its middle as the
    // one above allows.
    let mut order: Vec<usize> = (0..edges.len()).collect();
    order.sort_by(|&a, &b| edges[a].leader[0].1.total_cmp(&edges[b].leader[0].1));
    let mut next_free = MARGIN + TITLE + GAP;
    for i in order {
        let e = &mut edges[i];
        let top = (e.leader[0].1 - e.label_rect.h / 2.0).max(next_free);
        e.label_rect.y = top;
        e.leader[1] = (labels_x, top + e.label_rect.h / 2.0);
        next_free = top + e.label_rect.h + GAP;
    }
    let labels_right = edges
        .iter()
        .map(|e| e.label_rect.right())
        .fold(labels_x, f64::max);
    let legend_top = zones_bottom.max(next_free) + GAP;
    let legend = Rect {
        x: MARGIN,
        y: legend_top,
        w: 520.0,
        h: LEGEND_H,
    };
    let period = g
        .period()
        .map(|(a, b)| format!(", {a} to {b}"))
        .unwrap_or_default();
    let title = format!("Cardholder data flows (PCI DSS 1.2.4){period}{note}");
    let title_right = MARGIN + title.chars().count() as f64 * TITLE_CHAR_W;
    Diagram {
        title,
        zones,
        namespaces,
        nodes,
        edges,
        width: labels_right.max(legend.right()).max(title_right) + MARGIN,
        height: legend.bottom() + MARGIN,
        legend,
    }
}

#[cfg(test)]
mod tests;
