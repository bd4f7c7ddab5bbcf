//! The diagram's layout keeps its promises on graphs of every size: labels meet no other label, no
//! node and no line; every node lies in its zone and its namespace box; zones do not overlap.

use serde_json::{json, Value};

use super::*;
use crate::evidence::scope;

/// An access event: `caller` (None: unidentified) calls `callee`, allowed or not, with card
/// numbers masked or passed in clear towards the callee.
fn event(caller: Option<&str>, callee: &str, allow: bool, masked: u64, clear: u64) -> Value {
    let place = |f: u64, r: u64, p: u64| json!({"found": f, "redacted": r, "passed": p});
    json!({
        "schema": "pci-mesh-guard/audit/v1", "ts": "2026-12-01T10:00:00.000Z", "event": "access",
        "decision": if allow { "allow" } else { "deny" }, "enforced": true,
        "reason": if allow { "rule" } else { "default" }, "rule": "r",
        "principal": caller, "workload": callee,
        "redaction": {"request": "mask", "response": "mask"},
        "pan": {
            "request_headers": place(0, 0, 0),
            "request_body": place(masked + clear, masked, clear),
            "response_headers": place(0, 0, 0),
            "response_body": place(0, 0, 0),
        }
    })
}

fn id(ns: usize, sa: usize) -> String {
    format!("spiffe://cluster.local/ns/ns{ns}/sa/w{sa}")
}

/// A mesh of `workloads` workloads in `namespaces` namespaces with `flows` flows among them, some
/// carrying card numbers in clear, some denied, some from unidentified callers.
fn mesh(workloads: usize, namespaces: usize, flows: usize) -> Graph {
    let mut g = Graph::default();
    let mut seed = 12345u64;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    };
    for _ in 0..flows {
        let (a, b) = (next(workloads), next(workloads));
        let caller = id(a % namespaces, a);
        let callee = id(b % namespaces, b);
        let kind = next(10);
        let who = (kind != 0).then_some(caller.as_str());
        g.add(&event(
            who,
            &callee,
            kind != 1,
            (kind % 3) as u64,
            u64::from(kind == 2),
        ));
    }
    g
}

fn check(d: &Diagram) {
    for (i, e) in d.edges.iter().enumerate() {
        let r = &e.label_rect;
        for (j, o) in d.edges.iter().enumerate() {
            assert!(
                i == j || !r.overlaps(&o.label_rect),
                "labels {i} and {j} overlap"
            );
            for w in o.path.windows(2) {
                assert!(
                    !r.crossed_by(w[0], w[1]),
                    "label {i} covers the line of edge {j}"
                );
            }
            if i != j {
                assert!(
                    !r.crossed_by(o.leader[0], o.leader[1]),
                    "label {i} covers leader {j}"
                );
            }
        }
        for n in &d.nodes {
            assert!(!r.overlaps(&n.rect), "label {i} covers node {}", n.id);
        }
        assert!(
            r.right() <= d.width && r.bottom() <= d.height,
            "label {i} off the canvas"
        );
    }
    for n in &d.nodes {
        let zone = &d.zones[n.zone];
        assert!(zone.rect.contains(&n.rect), "{} outside its zone", n.id);
        assert_eq!(zone.standing, n.standing, "{} in the wrong zone", n.id);
        if let Some(ns) = n.namespace {
            assert!(
                d.namespaces[ns].rect.contains(&n.rect),
                "{} outside its namespace",
                n.id
            );
        }
        for o in &d.nodes {
            assert!(
                o.id == n.id || !o.rect.overlaps(&n.rect),
                "{} and {} overlap",
                n.id,
                o.id
            );
        }
        for e in &d.edges {
            // An edge meets a box only at its own ports, on the box's right side.
            for w in e.path.windows(2) {
                assert!(
                    !n.rect.crossed_by(w[0], w[1]),
                    "edge {}→{} crosses {}",
                    e.caller,
                    e.callee,
                    n.id
                );
            }
        }
    }
    for (i, z) in d.zones.iter().enumerate() {
        for o in &d.zones[i + 1..] {
            assert!(
                !z.rect.overlaps(&o.rect),
                "zones {} and {} overlap",
                z.title,
                o.title
            );
        }
        assert!(
            !z.rect.overlaps(&d.legend),
            "the legend covers zone {}",
            z.title
        );
    }
}

#[test]
fn a_small_mesh_is_laid_out_without_overlaps() {
    let g = mesh(6, 3, 12);
    let d = layout(&g, &scope(&g));
    assert_eq!(d.nodes.len(), g.workloads().len());
    assert_eq!(d.edges.len(), g.flows.len());
    check(&d);
}

#[test]
fn a_large_mesh_is_laid_out_without_overlaps() {
    let g = mesh(60, 9, 200);
    let d = layout(&g, &scope(&g));
    assert!(
        d.zones.len() >= 3,
        "{:?}",
        d.zones.iter().map(|z| &z.title).collect::<Vec<_>>()
    );
    check(&d);
}

#[test]
fn the_cardholder_data_environment_is_the_first_zone_and_holds_its_workloads() {
    let g = mesh(12, 4, 30);
    let s = scope(&g);
    let d = layout(&g, &s);
    assert_eq!(d.zones[0].standing, Standing::CardholderDataEnvironment);
    for e in s.of(Standing::CardholderDataEnvironment) {
        let n = d.nodes.iter().find(|n| n.id == e.workload).expect("drawn");
        assert!(d.zones[0].rect.contains(&n.rect), "{}", n.id);
    }
}

#[test]
fn labels_count_in_words_that_read_right() {
    let mut g = Graph::default();
    g.add(&event(Some(&id(0, 0)), &id(1, 1), true, 1, 0));
    g.add(&event(Some(&id(0, 2)), &id(1, 1), true, 2, 1));
    g.add(&event(Some(&id(0, 2)), &id(1, 1), false, 0, 0));
    let labels: Vec<Vec<String>> = g.flows.values().map(edge_label).collect();
    assert!(labels.contains(&vec![
        "1 request".to_owned(),
        "→ 1 card number: 1 masked".to_owned()
    ]));
    assert!(labels.contains(&vec![
        "2 requests, 1 denied".to_owned(),
        "→ 3 card numbers: 2 masked, 1 granted".to_owned()
    ]));
}

#[test]
fn a_mesh_of_500_workloads_and_5000_flows_is_drawn_by_namespace_in_well_under_seconds() {
    use crate::evidence::collapse::{for_drawing, WORKLOAD_LIMIT};
    let g = mesh(500, 50, 20_000);
    assert!(
        g.workloads().len() > 450 && g.flows.len() >= 5_000,
        "{}",
        g.flows.len()
    );
    let s = scope(&g);
    let started = std::time::Instant::now();
    let (drawn, drawn_scope, collapsed) = for_drawing(&g, &s);
    let d = layout_noted(&drawn, &drawn_scope, "");
    let took = started.elapsed();
    let c = collapsed.expect("above the limit, the drawing is collapsed");
    assert_eq!((c.workloads, c.flows), (g.workloads().len(), g.flows.len()));
    // One box per namespace and standing (and the unidentified callers): at most 4 per namespace.
    assert!(d.nodes.len() <= 50 * 4 + 1, "{} boxes", d.nodes.len());
    assert!(d.nodes.len() > WORKLOAD_LIMIT / 2);
    // Every flow is drawn, inside a box, or counted as away from the cardholder data environment.
    let drawn_flows: u64 = drawn.flows.values().map(|f| f.requests).sum();
    assert!(drawn_flows > 0 && c.inside + c.elsewhere + drawn.flows.len() <= c.flows);
    // Each drawn edge touches a cardholder data environment box or carries card numbers in clear.
    for f in drawn.flows.values() {
        let cde = |w: &str| drawn_scope.standing(w) == Some(Standing::CardholderDataEnvironment);
        assert!(
            cde(&f.caller) || cde(&f.callee) || f.to_callee.in_clear() + f.to_caller.in_clear() > 0,
            "{} -> {}",
            f.caller,
            f.callee
        );
    }
    check(&d);
    assert!(took.as_secs_f64() < 5.0, "laid out in {took:?}");
    // Below the limit, every workload is drawn as itself.
    let small = mesh(40, 5, 100);
    assert!(for_drawing(&small, &scope(&small)).2.is_none());
}
