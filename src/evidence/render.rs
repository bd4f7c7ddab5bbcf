//! The evidence as Graphviz DOT (the data-flow diagram, for those who draw it with Graphviz) and as
//! a Markdown report.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::layout::edge_label;
use super::svg::fill;
use super::{namespace_of, trust_domain_of, Finding, Graph, Scope, Standing, UNIDENTIFIED};

/// A DOT string literal.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn colour(s: Option<Standing>) -> &'static str {
    fill(s.unwrap_or(Standing::Unidentified))
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
        let label = edge_label(f).join("\n");
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
