use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::audit::{AccessEvent, PanCounts, PlaceCounts, RedactionModes, RequestInfo, SCHEMA};

/// Strings from traffic: quotes, backslashes, every control character, DEL, non-ASCII.
fn traffic() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::char::range('a', 'z'),
            1 => prop::char::range('\u{0}', '\u{1f}'),
            1 => prop::sample::select(vec!['"', '\\', '/', '\u{7f}', 'é', '€', '😀', '%', ' ']),
        ],
        0..24,
    )
    .prop_map(|c| c.into_iter().collect())
}

fn place() -> impl Strategy<Value = PlaceCounts> {
    (
        any::<u64>(),
        0..5u64,
        0..5u64,
        prop::collection::btree_map(
            prop::sample::select(vec!["visa", "mastercard", "amex", "unionpay"]),
            any::<u64>(),
            0..3,
        ),
        prop_oneof![3 => Just(0u64), 1 => any::<u64>()],
    )
        .prop_map(|(found, redacted, passed, brands, patterns)| PlaceCounts {
            found,
            redacted,
            passed,
            brands: brands.into_iter().collect::<BTreeMap<_, _>>(),
            patterns,
        })
}

#[derive(Debug, Clone)]
struct Owned {
    strings: Vec<String>,
    optional: Vec<Option<String>>,
    status: Option<u32>,
    duration: u64,
    enforced: bool,
    places: Vec<PlaceCounts>,
    tokens: Vec<String>,
    unscannable: Vec<&'static str>,
    sources: (Option<&'static str>, Option<String>, Option<String>),
}

fn owned() -> impl Strategy<Value = Owned> {
    (
        prop::collection::vec(traffic(), 5),
        prop::collection::vec(prop::option::of(traffic()), 5),
        prop::option::of(any::<u32>()),
        any::<u64>(),
        any::<bool>(),
        prop::collection::vec(place(), 4),
        prop::collection::vec("[0-9a-f]{8}", 0..3),
        prop::collection::vec(
            prop::sample::select(vec!["request_body", "response_body"]),
            0..3,
        ),
        (
            prop::option::of(prop::sample::select(vec!["certificate", "xfcc"])),
            prop::option::of(traffic()),
            prop::option::of("[0-9a-f]{64}"),
        ),
    )
        .prop_map(
            |(
                strings,
                optional,
                status,
                duration,
                enforced,
                places,
                tokens,
                unscannable,
                sources,
            )| {
                Owned {
                    strings,
                    optional,
                    status,
                    duration,
                    enforced,
                    places,
                    tokens,
                    unscannable,
                    sources,
                }
            },
        )
}

fn event(o: &Owned) -> AccessEvent<'_> {
    let s = |i: usize| o.strings.get(i).cloned().unwrap_or_default();
    let opt = |i: usize| o.optional.get(i).and_then(|v| v.as_deref());
    let place = |i: usize| o.places.get(i).cloned().unwrap_or_default();
    AccessEvent {
        schema: SCHEMA,
        ts: "2026-11-25T10:30:00.123Z".into(),
        event: "access",
        decision: "allow",
        enforced: o.enforced,
        mode: "enforce",
        reason: "rule",
        rule: opt(0),
        principal: opt(1),
        workload: opt(2),
        identity_source: o.sources.0,
        peer_subject: o.sources.1.as_deref(),
        peer_cert_sha256: o.sources.2.as_deref(),
        source: opt(3),
        tls_version: opt(4),
        request: RequestInfo {
            method: s(0).into(),
            path: s(1),
            host: s(2),
            id: s(3),
        },
        status: o.status,
        duration_ms: o.duration,
        redaction: RedactionModes {
            request: "mask",
            response: "grant",
        },
        pan: PanCounts {
            request_headers: place(0),
            request_body: place(1),
            response_headers: place(2),
            response_body: place(3),
        },
        pan_tokens: o.tokens.clone(),
        unscannable: o.unscannable.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn writes_the_bytes_serde_json_writes(o in owned()) {
        let e = event(&o);
        prop_assert_eq!(e.to_json(), serde_json::to_string(&e).unwrap());
    }
}

#[test]
fn escapes_every_control_character_as_serde_json_does() {
    let o = Owned {
        strings: vec![(0u8..=0x7f).map(char::from).collect(); 5],
        optional: vec![None; 5],
        status: None,
        duration: 0,
        enforced: false,
        places: vec![PlaceCounts::default(); 4],
        tokens: vec![],
        unscannable: vec![],
        sources: (None, None, None),
    };
    let e = event(&o);
    assert_eq!(e.to_json(), serde_json::to_string(&e).unwrap());
    assert!(e.to_json().contains(r#"\u0000\u0001"#));
}
