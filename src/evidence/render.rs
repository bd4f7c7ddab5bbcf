//! The evidence as Graphviz DOT (the data-flow diagram) and as a Markdown report.

use std::collections::BTreeMap;
use std::fmt::Write;

use layout::backends::svg::SVGWriter;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::StyleAttr;
use layout::gv::{DotParser, GraphBuilder};

use super::{namespace_of, trust_domain_of, Finding, Graph, Scope, Standing, UNIDENTIFIED};

/// A DOT string literal.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn colour(s: Option<Standing>) -> &'static str {
    match s {
        Some(Standing::CardholderDataEnvironment) => "#f4b6b6",
        Some(Standing::ConnectedTo) => "#f9d9a8",
        Some(Standing::OutOfScopeCandidate) => "#c8e6c9",
        Some(Standing::Unidentified) | None => "#e0e0e0",
    }
}

/// The data-flow diagram: workloads grouped by trust domain and namespace, coloured by standing;
/// one edge per caller → callee, red and bold where card numbers crossed in clear, dashed where
/// every request was denied.
pub fn dot(g: &Graph, scope: &Scope) -> String {
    let mut out = String::from(
        "digraph cardholder_data_flows {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    // trust domain -> namespace -> workloads
    let mut groups: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    let mut loose = Vec::new();
    for w in g.workloads() {
        match (trust_domain_of(w), namespace_of(w)) {
            (Some(td), Some(ns)) => groups.entry(td).or_default().entry(ns).or_default().push(w),
            _ => loose.push(w),
        }
    }
    // Labels break lines with a newline inside the quoted string, which Graphviz and the SVG
    // renderer both draw as a line break.
    let node = |out: &mut String, w: &str, indent: &str| {
        let name = w
            .rsplit('/')
            .next()
            .filter(|_| w != UNIDENTIFIED)
            .unwrap_or(w);
        let place = match (namespace_of(w), trust_domain_of(w)) {
            (Some(ns), Some(td)) => format!("\nnamespace {ns} ({td})"),
            _ => String::new(),
        };
        let standing = scope.standing(w);
        let _ = writeln!(
            out,
            "{indent}{} [label={}, tooltip={}, fillcolor=\"{}\"];",
            quoted(w),
            quoted(&format!(
                "{name}{place}\n{}",
                standing.map_or("", Standing::label)
            )),
            quoted(w),
            colour(standing)
        );
    };
    for (i, (td, namespaces)) in groups.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph cluster_td{i} {{\n    label={};",
            quoted(td)
        );
        for (j, (ns, workloads)) in namespaces.iter().enumerate() {
            let _ = writeln!(
                out,
                "    subgraph cluster_td{i}_ns{j} {{\n      label={};",
                quoted(&format!("namespace {ns}"))
            );
            for w in workloads {
                node(&mut out, w, "      ");
            }
            out.push_str("    }\n");
        }
        out.push_str("  }\n");
    }
    for w in loose {
        node(&mut out, w, "  ");
    }
    for f in g.flows.values() {
        let in_clear = f.to_callee.in_clear() + f.to_caller.in_clear();
        let mut label = format!("{} requests", f.requests);
        if f.denied > 0 {
            let _ = write!(label, ", {} denied", f.denied);
        }
        for (arrow, c) in [("→", &f.to_callee), ("←", &f.to_caller)] {
            if c.total() > 0 {
                let _ = write!(
                    label,
                    "\n{arrow} cards: {} masked, {} granted, {} dry_run",
                    c.masked, c.granted, c.dry_run
                );
            }
        }
        let style = if in_clear > 0 {
            "color=\"#c62828\", penwidth=2.5, fontcolor=\"#c62828\""
        } else if f.allowed == 0 {
            "style=dashed, color=\"#757575\""
        } else {
            "color=\"#424242\""
        };
        let _ = writeln!(
            out,
            "  {} -> {} [label={}, {style}];",
            quoted(&f.caller),
            quoted(&f.callee),
            quoted(&label)
        );
    }
    out.push_str("}\n");
    out
}

/// The diagram as SVG, laid out from its DOT by layout-rs (no Graphviz needed). It draws nodes,
/// edges and labels; it does not draw the namespace boxes, so each node's label names its
/// namespace. The canvas is sized to what is drawn (see `Extent`).
pub fn svg(dot_text: &str) -> Result<String, String> {
    let mut parser = DotParser::new(dot_text);
    let graph = parser
        .process()
        .map_err(|e| format!("the diagram's DOT: {e}"))?;
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&graph);
    let mut visual = builder.get();
    let mut writer = Extent::new(SVGWriter::new());
    visual.do_it(false, false, false, &mut writer);
    let (width, height) = writer.size();
    Ok(resize(&writer.inner.finalize(), width, height))
}

/// A render backend that passes every shape on and keeps the bottom-right corner of what it
/// draws. layout-rs grows its SVG canvas by a text's length in bytes times ten *downwards*, so
/// a diagram with long labels came out mostly blank; this measures text by its lines instead.
struct Extent<B> {
    inner: B,
    right: f64,
    bottom: f64,
}

impl<B> Extent<B> {
    const MARGIN: f64 = 5.0;

    fn new(inner: B) -> Self {
        Extent {
            inner,
            right: 0.0,
            bottom: 0.0,
        }
    }

    fn reach(&mut self, x: f64, y: f64) {
        self.right = self.right.max(x + Self::MARGIN);
        self.bottom = self.bottom.max(y + Self::MARGIN);
    }

    fn size(&self) -> (u64, u64) {
        (self.right.ceil() as u64, self.bottom.ceil() as u64)
    }
}

impl<B: RenderBackend> RenderBackend for Extent<B> {
    fn draw_rect(
        &mut self,
        xy: Point,
        size: Point,
        look: &StyleAttr,
        properties: Option<String>,
        clip: Option<ClipHandle>,
    ) {
        self.reach(xy.x + size.x, xy.y + size.y);
        self.inner.draw_rect(xy, size, look, properties, clip);
    }

    fn draw_line(
        &mut self,
        start: Point,
        stop: Point,
        look: &StyleAttr,
        properties: Option<String>,
    ) {
        self.reach(start.x.max(stop.x), start.y.max(stop.y));
        self.inner.draw_line(start, stop, look, properties);
    }

    fn draw_circle(
        &mut self,
        xy: Point,
        size: Point,
        look: &StyleAttr,
        properties: Option<String>,
    ) {
        self.reach(xy.x + size.x, xy.y + size.y);
        self.inner.draw_circle(xy, size, look, properties);
    }

    fn draw_text(&mut self, xy: Point, text: &str, look: &StyleAttr) {
        // Centred on xy (text-anchor middle); a glyph is taken as at most one em wide.
        let font = look.font_size as f64;
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
        let lines = text.lines().count().max(1) as f64;
        self.reach(xy.x + widest * font / 2.0, xy.y + lines * font / 2.0 + font);
        self.inner.draw_text(xy, text, look);
    }

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        dashed: bool,
        head: (bool, bool),
        look: &StyleAttr,
        properties: Option<String>,
        text: &str,
    ) {
        for (a, b) in path {
            self.reach(a.x.max(b.x), a.y.max(b.y));
        }
        self.inner
            .draw_arrow(path, dashed, head, look, properties, text);
    }

    fn create_clip(&mut self, xy: Point, size: Point, rounded_px: usize) -> ClipHandle {
        self.inner.create_clip(xy, size, rounded_px)
    }
}

/// The SVG with its root element's width, height and viewBox set to `width` × `height`.
fn resize(svg: &str, width: u64, height: u64) -> String {
    let Some(start) = svg.find("<svg ") else {
        return svg.to_string();
    };
    let Some(end) = svg[start..].find(" xmlns=").map(|e| start + e) else {
        return svg.to_string();
    };
    format!(
        "{}<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\"{}",
        &svg[..start],
        &svg[end..]
    )
}

/// What the report says of the audit trail it was drawn from.
pub struct Provenance<'a> {
    /// Files read.
    pub files: &'a [String],
    /// Chains relied on, with the last verified sequence number.
    pub chains: &'a BTreeMap<String, u64>,
    /// `verify-audit`'s findings, as lines; empty when every chain verified.
    pub problems: &'a [String],
    /// When the report was made (RFC 3339).
    pub made: &'a str,
}

/// The Markdown report for the assessment file.
pub fn markdown(g: &Graph, scope: &Scope, findings: &[Finding], p: &Provenance) -> String {
    let mut out = String::from("# Cardholder data flows and scope\n\n");
    let (first, last) = g.period().unwrap_or(("", ""));
    let _ = writeln!(out, "- Period: {first} to {last}");
    let _ = writeln!(out, "- Made: {}", p.made);
    let _ = writeln!(out, "- Audit logs: {}", p.files.join(", "));
    let _ = writeln!(
        out,
        "- Audit chains relied on: {} ({})",
        p.chains.len(),
        if p.problems.is_empty() {
            "every chain verified".to_owned()
        } else {
            format!("{} verification problem(s), listed below", p.problems.len())
        }
    );
    for (chain, seq) in p.chains {
        let _ = writeln!(out, "  - `{chain}` up to seq {seq}");
    }
    for problem in p.problems {
        let _ = writeln!(out, "  - problem: {problem}");
    }
    out.push_str(
        "\nWhat this shows: the flows that happened in the period, as the sidecars' pci-mesh-guard \
         saw them. Flows that could have happened and did not, and workloads without the filter, \
         are not in it; a workload seen only as a caller is marked so.\n\n## Scope\n\n",
    );
    out.push_str("| workload | standing | sent | received in clear | received masked | grants | connected to | requests | first seen | last seen |\n|---|---|---:|---:|---:|---|---|---:|---|---|\n");
    for e in &scope.workloads {
        let _ = writeln!(
            out,
            "| `{}`{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            e.workload,
            if e.caller_only {
                " (seen only as a caller)"
            } else {
                ""
            },
            e.standing.label(),
            e.sent,
            e.received_in_clear,
            e.received_masked,
            join(&e.grants),
            join(&e.connected_to),
            e.requests,
            e.first_seen,
            e.last_seen
        );
    }
    out.push_str("\n## Flows\n\n| caller | callee | requests | denied | cards → masked / granted / dry_run | cards ← masked / granted / dry_run | grants |\n|---|---|---:|---:|---|---|---|\n");
    for f in g.flows.values() {
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} | {} / {} / {} | {} / {} / {} | {} |",
            f.caller,
            f.callee,
            f.requests,
            f.denied,
            f.to_callee.masked,
            f.to_callee.granted,
            f.to_callee.dry_run,
            f.to_caller.masked,
            f.to_caller.granted,
            f.to_caller.dry_run,
            join(f.grants.keys())
        );
    }
    out.push_str("\n## Findings\n\n");
    if findings.is_empty() {
        out.push_str("None.\n");
    }
    for f in findings {
        let line = match f {
            Finding::GrantUnused { rule } => {
                format!("- The grant of rule `{rule}` was not used in the period: is it still needed?")
            }
            Finding::GrantToNamespaceWithoutOtherCardData {
                namespace,
                rules,
                in_clear,
            } => format!(
                "- Namespace `{namespace}` received {in_clear} card number(s) in clear through {} and had no other card data in the period: confirm its business need.",
                join(rules)
            ),
            Finding::DryRunPassed {
                caller,
                callee,
                count,
            } => format!(
                "- {count} card number(s) passed in clear between `{caller}` and `{callee}` because the plugin ran in `dry_run`."
            ),
            Finding::Denials {
                caller,
                callee,
                by_reason,
            } => format!(
                "- `{caller}` was denied calling `{callee}`: {}.",
                by_reason
                    .iter()
                    .map(|(r, n)| format!("{n} × {r}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn join<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| format!("`{s}`")).collect();
    if v.is_empty() {
        String::new()
    } else {
        v.join(", ")
    }
}
