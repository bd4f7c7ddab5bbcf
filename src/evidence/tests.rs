//! The flow graph, scope and findings of the demo's kind of traffic, and the graph's independence
//! from the order of events.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

const API: &str = "spiffe://cluster.local/ns/payments/sa/payments-api";
const CHECKOUT: &str = "spiffe://cluster.local/ns/shop/sa/checkout";
const FRAUD: &str = "spiffe://cluster.local/ns/risk/sa/fraud-scoring";
const NEWSLETTER: &str = "spiffe://cluster.local/ns/marketing/sa/newsletter";
const LEDGER: &str = "spiffe://cluster.local/ns/books/sa/ledger";

fn place(found: u64, redacted: u64, passed: u64) -> Value {
    json!({"found": found, "redacted": redacted, "passed": passed})
}

/// An access event at `callee` from `caller`, with (redacted, passed) card numbers each way.
#[allow(clippy::too_many_arguments)] // one argument per event field the tests vary
fn event(
    ts: &str,
    caller: Option<&str>,
    callee: &str,
    allow: bool,
    rule: Option<&str>,
    to_callee: (u64, u64),
    to_caller: (u64, u64),
    modes: (&str, &str),
) -> Value {
    json!({
        "schema": "pci-mesh-guard/audit/v1", "ts": ts, "event": "access",
        "decision": if allow { "allow" } else { "deny" },
        "enforced": modes.0 != "dry_run",
        "reason": if allow { "rule" } else if caller.is_none() { "no_mtls" } else { "default" },
        "rule": rule, "principal": caller, "workload": callee,
        "redaction": {"request": modes.0, "response": modes.1},
        "pan": {
            "request_headers": place(0, 0, 0),
            "request_body": place(to_callee.0 + to_callee.1, to_callee.0, to_callee.1),
            "response_headers": place(0, 0, 0),
            "response_body": place(to_caller.0 + to_caller.1, to_caller.0, to_caller.1),
        }
    })
}

/// The demo's traffic at payments-api, plus ledger calling checkout with nothing to show.
fn demo() -> Vec<Value> {
    vec![
        event(
            "2026-11-25T10:00:01.000Z",
            Some(CHECKOUT),
            API,
            true,
            Some("checkout-may-charge"),
            (1, 0),
            (0, 0),
            ("mask", "mask"),
        ),
        event(
            "2026-11-25T10:00:02.000Z",
            Some(NEWSLETTER),
            API,
            false,
            None,
            (0, 0),
            (0, 0),
            ("none", "none"),
        ),
        event(
            "2026-11-25T10:00:03.000Z",
            Some(CHECKOUT),
            API,
            true,
            Some("checkout-may-read-cards"),
            (0, 0),
            (1, 0),
            ("mask", "mask"),
        ),
        event(
            "2026-11-25T10:00:04.000Z",
            Some(FRAUD),
            API,
            true,
            Some("risk-may-read-card-data"),
            (0, 0),
            (0, 1),
            ("mask", "grant"),
        ),
        event(
            "2026-11-25T10:00:05.000Z",
            None,
            API,
            false,
            None,
            (0, 0),
            (0, 0),
            ("none", "none"),
        ),
        event(
            "2026-11-25T10:00:06.000Z",
            Some(LEDGER),
            CHECKOUT,
            true,
            Some("ledger-reads"),
            (0, 0),
            (0, 0),
            ("mask", "mask"),
        ),
        json!({"schema": "pci-mesh-guard/audit/v1", "ts": "2026-11-25T10:00:00.000Z", "event": "config", "accepted": true}),
    ]
}

fn graph(events: &[Value]) -> Graph {
    let mut g = Graph::default();
    for e in events {
        g.add(e);
    }
    g
}

#[test]
fn each_caller_callee_pair_is_one_edge_with_its_counts() {
    let g = graph(&demo());
    assert_eq!(g.flows.len(), 5);
    let checkout = &g.flows[&(CHECKOUT.to_owned(), API.to_owned())];
    assert_eq!(
        (checkout.requests, checkout.allowed, checkout.denied),
        (2, 2, 0)
    );
    assert_eq!(
        checkout.to_callee,
        Crossing {
            masked: 1,
            granted: 0,
            dry_run: 0
        }
    );
    assert_eq!(
        checkout.to_caller,
        Crossing {
            masked: 1,
            granted: 0,
            dry_run: 0
        }
    );
    assert_eq!(checkout.first_seen, "2026-11-25T10:00:01.000Z");
    assert_eq!(checkout.last_seen, "2026-11-25T10:00:03.000Z");
    let fraud = &g.flows[&(FRAUD.to_owned(), API.to_owned())];
    assert_eq!(fraud.to_caller.granted, 1);
    assert_eq!(fraud.grants["risk-may-read-card-data"], 1);
    let unidentified = &g.flows[&(UNIDENTIFIED.to_owned(), API.to_owned())];
    assert_eq!(unidentified.denials["no_mtls"], 1);
    assert_eq!(
        g.period(),
        Some(("2026-11-25T10:00:01.000Z", "2026-11-25T10:00:06.000Z"))
    );
}

#[test]
fn scope_puts_holders_and_clear_receivers_in_the_cde_and_their_peers_connected_to() {
    let s = scope(&graph(&demo()));
    let standing = |w: &str| s.standing(w).unwrap();
    // payments-api answered with card numbers, checkout sent one: both held them in clear.
    assert_eq!(standing(API), Standing::CardholderDataEnvironment);
    assert_eq!(standing(CHECKOUT), Standing::CardholderDataEnvironment);
    // fraud-scoring received one in clear under its grant.
    assert_eq!(standing(FRAUD), Standing::CardholderDataEnvironment);
    // ledger saw no card number but talks to checkout: connected-to.
    assert_eq!(standing(LEDGER), Standing::ConnectedTo);
    // newsletter was only ever denied: no connection, a candidate for out of scope.
    assert_eq!(standing(NEWSLETTER), Standing::OutOfScopeCandidate);
    assert_eq!(standing(UNIDENTIFIED), Standing::Unidentified);
    let fraud = s.workloads.iter().find(|w| w.workload == FRAUD).unwrap();
    assert!(fraud.grants.contains("risk-may-read-card-data"));
    assert!(fraud.caller_only);
    let api = s.workloads.iter().find(|w| w.workload == API).unwrap();
    assert!(!api.caller_only);
    assert_eq!(api.sent, 2);
}

#[test]
fn a_workload_that_only_saw_masked_numbers_from_an_out_of_scope_peer_stays_a_candidate() {
    const A: &str = "spiffe://cluster.local/ns/a/sa/a";
    const B: &str = "spiffe://cluster.local/ns/b/sa/b";
    // Nothing sent card numbers: nobody is in the CDE.
    let g = graph(&[event(
        "2026-11-25T10:00:00.000Z",
        Some(A),
        B,
        true,
        Some("r"),
        (0, 0),
        (0, 0),
        ("mask", "mask"),
    )]);
    let s = scope(&g);
    assert_eq!(s.standing(A), Some(Standing::OutOfScopeCandidate));
    assert_eq!(s.standing(B), Some(Standing::OutOfScopeCandidate));
}

#[test]
fn findings_name_unused_grants_lone_grantees_dry_run_and_denials() {
    let mut events = demo();
    events.push(event(
        "2026-11-25T10:00:07.000Z",
        Some(LEDGER),
        CHECKOUT,
        true,
        Some("ledger-reads"),
        (0, 0),
        (0, 2),
        ("dry_run", "dry_run"),
    ));
    let g = graph(&events);
    let f = findings(&g, &["risk-may-read-card-data".into(), "old-export".into()]);
    assert!(f.contains(&Finding::GrantUnused {
        rule: "old-export".into()
    }));
    assert!(!f.contains(&Finding::GrantUnused {
        rule: "risk-may-read-card-data".into()
    }));
    assert!(f.contains(&Finding::GrantToNamespaceWithoutOtherCardData {
        namespace: "risk".into(),
        rules: ["risk-may-read-card-data".to_owned()].into(),
        in_clear: 1,
    }));
    assert!(f.contains(&Finding::DryRunPassed {
        caller: LEDGER.into(),
        callee: CHECKOUT.into(),
        count: 2
    }));
    assert!(f
        .iter()
        .any(|x| matches!(x, Finding::Denials { caller, .. } if caller == NEWSLETTER)));
    // shop has its own card data: no lone-grantee finding for it.
    assert!(!f.iter().any(|x| matches!(x, Finding::GrantToNamespaceWithoutOtherCardData { namespace, .. } if namespace == "shop")));
}

#[test]
fn the_diagram_names_every_workload_and_marks_clear_flows() {
    let g = graph(&demo());
    let s = scope(&g);
    let d = dot(&g, &s);
    for w in g.workloads() {
        assert!(d.contains(&format!("\"{w}\"")), "{w} missing from\n{d}");
    }
    assert!(d.contains("subgraph cluster_td0"));
    assert!(d.contains("namespace payments"));
    // An edge's statement runs to its `];` (labels hold newlines).
    let edge = |from: &str| {
        let start = d.find(&format!("\"{from}\" -> \"{API}\"")).unwrap();
        let len = d[start..].find("];").unwrap();
        d[start..start + len].to_owned()
    };
    let fraud_edge = edge(FRAUD);
    assert!(fraud_edge.contains("penwidth=2.5"), "{fraud_edge}");
    let denied_edge = edge(NEWSLETTER);
    assert!(denied_edge.contains("style=dashed"), "{denied_edge}");
}

#[test]
fn the_svg_names_every_workload_and_every_zone() {
    let g = graph(&demo());
    let s = scope(&g);
    let picture = svg(&g, &s);
    for name in [
        "payments-api",
        "checkout",
        "fraud-scoring",
        "newsletter",
        "ledger",
    ] {
        assert!(picture.contains(&format!(">{name}</tspan>")), "{name}");
    }
    assert!(picture.starts_with("<?xml"));
    for zone in [
        "Cardholder data environment (in scope)",
        "Candidates for out of scope",
        "Legend",
    ] {
        assert!(picture.contains(&format!(">{zone}</tspan>")), "{zone}");
    }
}

/// The numbers in `attr="..."` attributes of the SVG.
fn attr_values(svg: &str, attr: &str) -> Vec<f64> {
    svg.split(&format!(" {attr}=\""))
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.trim().parse().ok())
        .collect()
}

#[test]
fn the_svg_canvas_holds_the_drawing_and_no_more() {
    let g = graph(&demo());
    let picture = svg(&g, &scope(&g));
    let height = attr_values(&picture, "height")[0];
    let width = attr_values(&picture, "width")[0];
    assert!(picture.contains(&format!("viewBox=\"0 0 {width} {height}\"")));
    let lowest = attr_values(&picture, "y").into_iter().fold(0.0, f64::max);
    let rightmost = attr_values(&picture, "x").into_iter().fold(0.0, f64::max);
    // Everything drawn fits, and the canvas ends within a few lines of text of the lowest shape.
    assert!(
        lowest < height && height < lowest + 80.0,
        "{lowest} {height}"
    );
    assert!(rightmost < width, "{rightmost} {width}");
}

proptest! {
    #[test]
    fn any_order_of_the_events_gives_the_same_graph(order in Just(demo()).prop_shuffle()) {
        prop_assert_eq!(graph(&order), graph(&demo()));
    }

    #[test]
    fn merging_sidecars_logs_in_any_split_gives_the_same_graph(
        order in Just(demo()).prop_shuffle(),
        cut in 0..7usize,
    ) {
        let (a, b) = order.split_at(cut);
        let mut merged = graph(b);
        for e in a {
            merged.add(e);
        }
        prop_assert_eq!(merged, graph(&demo()));
    }
}

#[test]
fn an_event_without_the_sidecars_own_identity_takes_its_chains_workload() {
    let mut with = event(
        "2026-11-25T10:00:01.000Z",
        Some(CHECKOUT),
        API,
        true,
        Some("r"),
        (0, 0),
        (0, 0),
        ("mask", "mask"),
    );
    with["chain"] = json!("c1");
    let plaintext = denied_in_chain("2026-11-25T10:00:02.000Z", "c1", false);
    let mut orphan = plaintext.clone();
    orphan["chain"] = json!("c2");
    let events = [plaintext, with, orphan];
    let chains = chain_workloads(&events);
    let mut g = Graph::default();
    for e in &events {
        g.add_in(e, &chains);
    }
    assert!(g
        .flows
        .contains_key(&(UNIDENTIFIED.to_owned(), API.to_owned())));
    assert!(g.flows.contains_key(&(
        UNIDENTIFIED.to_owned(),
        "(the sidecar of audit chain c2)".to_owned()
    )));
    assert_eq!(g.unreadable, 0);
}

/// A plaintext caller denied at `API`, in audit chain `chain`; the event names the sidecar's own
/// workload only when `named` (a plaintext connection shows no certificate of the sidecar's).
fn denied_in_chain(ts: &str, chain: &str, named: bool) -> Value {
    let mut e = event(ts, None, API, false, None, (0, 0), (0, 0), ("none", "none"));
    e["chain"] = json!(chain);
    if !named {
        e["workload"] = Value::Null;
    }
    e
}

/// Read as a stream, an event whose chain's workload is not known yet goes to the chain's
/// placeholder; once known, `resolve` moves it, and the graph is the one the whole trail makes.
#[test]
fn a_graph_read_as_a_stream_resolves_to_the_graph_of_the_whole_trail() {
    let first = denied_in_chain("2026-11-25T10:00:01.000Z", "c1", false);
    let named = denied_in_chain("2026-11-25T10:00:02.000Z", "c1", true);
    let second = denied_in_chain("2026-11-25T10:00:03.000Z", "c1", false);
    let events = [first, named, second];
    let mut whole = Graph::default();
    let all = chain_workloads(&events);
    for e in &events {
        whole.add_in(e, &all);
    }
    let (mut streamed, mut known) = (Graph::default(), BTreeMap::new());
    for e in &events {
        if let (Some(c), Some(w)) = (e["chain"].as_str(), e["workload"].as_str()) {
            known.insert(c.to_owned(), w.to_owned());
        }
        streamed.add_in(e, &known);
    }
    assert_ne!(streamed, whole, "the first event went to the placeholder");
    streamed.resolve(&known);
    assert_eq!(streamed, whole);
    assert_eq!(
        whole.flows[&(UNIDENTIFIED.to_owned(), API.to_owned())].requests,
        3
    );
}
