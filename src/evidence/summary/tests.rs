//! Shards of a trail summarized apart and merged in any order give the evidence of the whole
//! trail; a missing, repeated or altered shard shows at its join.

use super::*;
use crate::audit::chain::Chain;
use crate::audit::SCHEMA;

const KEY: &[u8] = b"summary-key-0123456789";

/// A keyed trail: three sidecars (chains), each called by two callers, interleaved.
fn trail(n: usize) -> Vec<String> {
    let mut chains: Vec<Chain> = (0..3)
        .map(|c| Chain::new(format!("chain{c}"), Some(KEY.to_vec())))
        .collect();
    (0..n)
        .map(|i| {
            let c = i % 3;
            let event = format!(
                r#"{{"schema":"{SCHEMA}","ts":"2026-12-01T10:00:{:02}.000Z","event":"access","decision":"allow","enforced":true,"reason":"rule","rule":"r","principal":"spiffe://cluster.local/ns/shop/sa/caller{}","workload":"spiffe://cluster.local/ns/payments/sa/api{c}","redaction":{{"request":"mask","response":"mask"}},"pan":{{"request_body":{{"found":1,"redacted":1,"passed":0}}}}}}"#,
                i % 60,
                i % 2
            );
            chains[c].seal(event)
        })
        .collect()
}

fn summarize(name: &str, lines: &[String], ring: &Keyring) -> Summary {
    let mut s = Summarizer::new(name, ring);
    for l in lines {
        s.feed(l);
    }
    s.finish()
}

#[test]
fn shards_merged_in_any_order_make_the_whole_trails_graph() {
    let lines = trail(60);
    let ring = Keyring::single(KEY);
    let whole = merge(&[summarize("all", &lines, &ring)], &ring, false);
    assert!(whole.problems.is_empty(), "{:?}", whole.problems);
    assert_eq!(whole.graph.flows.len(), 6);
    let parts = [
        summarize("a", &lines[..7], &ring),
        summarize("b", &lines[7..31], &ring),
        summarize("c", &lines[31..], &ring),
    ];
    for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
        let shuffled: Vec<Summary> = order.iter().map(|&i| parts[i].clone()).collect();
        let merged = merge(&shuffled, &ring, false);
        assert!(
            merged.problems.is_empty(),
            "{order:?}: {:?}",
            merged.problems
        );
        assert_eq!(merged.graph, whole.graph, "{order:?}");
        assert_eq!(merged.chains, whole.chains);
    }
    // A summary survives its JSON form.
    let text = serde_json::to_string(&parts[1]).unwrap();
    assert_eq!(serde_json::from_str::<Summary>(&text).unwrap(), parts[1]);
}

#[test]
fn a_missing_a_repeated_or_an_altered_shard_shows_at_its_join() {
    let lines = trail(60);
    let ring = Keyring::single(KEY);
    let (a, b, c) = (&lines[..20], &lines[20..40], &lines[40..]);
    let s = |name, l| summarize(name, l, &ring);

    let merged = merge(&[s("a", a), s("c", c)], &ring, false);
    assert!(
        merged
            .problems
            .iter()
            .any(|p| p.starts_with("gap: chain chain0: seq")),
        "{:?}",
        merged.problems
    );

    let merged = merge(
        &[s("a", a), s("b", b), s("b again", b), s("c", c)],
        &ring,
        false,
    );
    assert!(
        merged.problems.iter().any(|p| p.starts_with("reordered:")),
        "{:?}",
        merged.problems
    );

    // The first event of a part is checked only at its join: there, an edit shows.
    let mut edited = b.to_vec();
    edited[0] = edited[0].replace(r#""decision":"allow""#, r#""decision":"deny""#);
    let part = s("b", &edited);
    assert!(
        part.problems.is_empty(),
        "alone, a part's first event cannot be checked"
    );
    let merged = merge(&[s("a", a), part, s("c", c)], &ring, false);
    assert!(
        merged
            .problems
            .iter()
            .any(|p| p.starts_with("altered: chain") && p.contains("do not join")),
        "{:?}",
        merged.problems
    );

    // Without its first part a chain starts late: a gap, unless the trail is partial.
    let merged = merge(&[s("b", b), s("c", c)], &ring, false);
    assert!(merged.problems.iter().any(|p| p.contains("starts at seq")));
    assert!(merge(&[s("b", b), s("c", c)], &ring, true)
        .problems
        .is_empty());

    // A join sealed under a key the keyring lacks cannot be checked.
    let none = Keyring::default();
    let merged = merge(&[s("a", a), s("b", b)], &none, false);
    assert!(
        merged.problems.iter().any(|p| p.contains("unverifiable")),
        "{:?}",
        merged.problems
    );
}

/// Events of every shape the evidence reads: allowed, denied, under dry_run, granted card numbers
/// in clear, unidentified callers, no workload (a plaintext connection), odd types, escapes.
fn varied(n: usize) -> Vec<String> {
    let mut chains: Vec<Chain> = (0..3)
        .map(|c| Chain::new(format!("chain{c}"), Some(KEY.to_vec())))
        .collect();
    (0..n)
        .map(|i| {
            let c = i % 3;
            let principal = match i % 5 {
                0 => "null".to_owned(),
                1 => "7".to_owned(),
                _ => format!(r#""spiffe://cluster.local/ns/sh\u006fp/sa/caller{}""#, i % 4),
            };
            let workload = match i % 7 {
                0 => String::new(),
                _ => format!(r#""workload":"spiffe://cluster.local/ns/payments/sa/api{c}","#),
            };
            let (decision, enforced, mode) = match i % 4 {
                0 => ("deny", "true", "mask"),
                1 => ("deny", "false", "dry_run"),
                2 => ("allow", "true", "grant"),
                _ => ("allow", r#""yes""#, "mask"),
            };
            let event = format!(
                r#"{{"schema":"{SCHEMA}","ts":"2026-12-01T10:{:02}:00.000Z","event":"access","decision":"{decision}","enforced":{enforced},"reason":{},"rule":{},"principal":{principal},{workload}"redaction":{{"request":"{mode}","response":"{mode}"}},"pan":{{"request_body":{{"found":2,"redacted":{},"passed":{}}},"response_body":{{"found":1,"redacted":"x","passed":1}}}}}}"#,
                (n - i) % 60,
                if i % 6 == 0 { "null".to_owned() } else { format!(r#""reason{}""#, i % 3) },
                if i % 9 == 0 { "null".to_owned() } else { format!(r#""rule{}""#, i % 2) },
                i % 2,
                i % 3,
            );
            chains[c].seal(event)
        })
        .collect()
}

#[test]
fn the_fold_makes_the_graph_the_events_read_as_trees_make() {
    let lines = varied(200);
    let ring = Keyring::single(KEY);
    let summary = summarize("varied", &lines, &ring);
    assert!(summary.problems.is_empty(), "{:?}", summary.problems);
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| crate::audit::json::parse_unique(l).unwrap())
        .collect();
    let chains = super::super::chain_workloads(&events);
    let mut tree = Graph::default();
    for e in &events {
        tree.add_in(e, &chains);
    }
    let folded: BTreeMap<(String, String), Flow> = summary
        .flows
        .iter()
        .map(|f| ((f.caller.clone(), f.callee.clone()), f.clone()))
        .collect();
    assert!(folded.len() > 10, "{} flows", folded.len());
    assert_eq!(folded, tree.flows);
    assert_eq!(summary.unreadable, tree.unreadable);
}
