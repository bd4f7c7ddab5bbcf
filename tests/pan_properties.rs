//! Property tests of the redactor against an independent, slow reference detector: for random
//! texts with planted PANs and random chunkings, streaming equals one-shot, length is kept, bytes
//! outside PANs are untouched, no PAN survives, and redaction is idempotent.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use pci_mesh_guard::pan::{redact_all, Counts, Masking, Options, Pattern, Redactor};
use proptest::prelude::*;

#[path = "support/reference_scanner.rs"]
mod reference_scanner;

use reference_scanner::{first_window, reference};

// ---- generators ----

const PANS: &[&str] = &[
    "4111111111111111",
    "4222222222222",
    "5555555555554444",
    "2223003122003222",
    "378282246310005",
    "6011000990139424",
    "3566002020360505",
    "30569309025904",
    "6200000000000005",
    "6759649826438453",
    "501800000009",
    "4111111111111111110",
];

fn planted() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(PANS),
        0..6usize,
        prop::sample::select(vec![" ", "-", "+", "%20", "%2D"]),
    )
        .prop_map(|(pan, style, sep)| {
            if style < 2 {
                return pan.as_bytes().to_vec();
            }
            // Group as printed: 4 first, then 4s (or 6-5 / 6-4 for 15 and 14 digits).
            let d = pan.as_bytes();
            let cuts: Vec<usize> = match d.len() {
                15 => vec![4, 10],
                14 => vec![4, 10],
                n => (4..n).step_by(4).filter(|c| n - c >= 3).collect(),
            };
            let mut out = vec![];
            let mut last = 0;
            for c in cuts {
                out.extend_from_slice(&d[last..c]);
                out.extend_from_slice(sep.as_bytes());
                last = c;
            }
            out.extend_from_slice(&d[last..]);
            out
        })
}

/// A hex string (a hash) around a card number, and hex on either side.
fn hex_blob() -> impl Strategy<Value = Vec<u8>> {
    let hex = || prop::collection::vec(prop::sample::select(b"0123456789abcdef".to_vec()), 0..40);
    (hex(), prop::sample::select(PANS), hex()).prop_map(|(head, pan, tail)| {
        let mut v = head;
        v.push(b'f');
        v.extend_from_slice(pan.as_bytes());
        v.push(b'e');
        v.extend_from_slice(&tail);
        v
    })
}

fn filler() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(b"0123456789 -+%2Dabcdef\":,[]{}.\n_xyz".to_vec()),
        0..24,
    )
}

/// ASCII text, as a `String` so that failures print readably.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![3 => filler(), 1 => planted(), 1 => hex_blob()],
        0..24,
    )
    .prop_map(|parts| String::from_utf8(parts.concat()).expect("ASCII"))
}

fn options() -> impl Strategy<Value = Options> {
    (
        0..=8u8,
        0..=4u8,
        any::<bool>(),
        prop::sample::select(b"*#Xx".to_vec()),
    )
        .prop_map(|(keep_first, keep_last, json, mask_char)| Options {
            masking: Masking {
                keep_first,
                keep_last,
                mask_char,
            },
            mask: true,
            json,
        })
}

fn one_shot(t: &[u8], o: &Options, p: &Arc<[Pattern]>) -> (Vec<u8>, Counts) {
    let mut buf = t.to_vec();
    let mut c = Counts::default();
    redact_all(&mut buf, o, p, true, &mut c);
    (buf, c)
}

fn no_patterns() -> Arc<[Pattern]> {
    Vec::new().into()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn streaming_equals_one_shot_for_any_chunking(
        t in text(),
        o in options(),
        sizes in prop::collection::vec(1..40usize, 1..8),
        with_pattern in any::<bool>(),
    ) {
        let p: Arc<[Pattern]> = if with_pattern {
            vec![Pattern::compile("ssn", r"\b\d{3}-\d{2}-\d{4}\b").unwrap()].into()
        } else {
            no_patterns()
        };
        let t = t.as_bytes();
        let (want, want_counts) = one_shot(t, &o, &p);
        let mut r = Redactor::new(o, p, true);
        let mut got = vec![];
        let mut rest = t;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            got.extend_from_slice(r.push(&rest[..n]));
            rest = &rest[n..];
            i += 1;
        }
        got.extend_from_slice(r.finish());
        prop_assert_eq!(got, want);
        prop_assert_eq!(*r.counts(), want_counts);
    }

    #[test]
    fn redacting_chunks_where_they_lie_equals_one_shot(
        parts in prop::collection::vec(text(), 1..4),
        o in options(),
        sizes in prop::collection::vec(1..700usize, 1..8),
    ) {
        let t = parts.concat().into_bytes();
        let (want, want_counts) = one_shot(&t, &o, &no_patterns());
        let mut r = Redactor::new(o, no_patterns(), true);
        let mut got = vec![];
        let mut rest = &t[..];
        let mut i = 0;
        let mut in_place = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            let last = n == rest.len();
            let mut chunk = rest[..n].to_vec();
            match r.push_in_place(&mut chunk, last) {
                Some(k) => {
                    in_place += 1;
                    got.extend_from_slice(&chunk[..k]);
                }
                None => got.extend_from_slice(r.push(&chunk)),
            }
            rest = &rest[n..];
            i += 1;
        }
        got.extend_from_slice(r.finish());
        prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
        prop_assert_eq!(*r.counts(), want_counts);
        // Short texts and chunks never take the in-place path; long ones must.
        if sizes.iter().all(|&s| s > 300) && t.len() > 600 {
            prop_assert!(in_place > 0);
        }
    }

    #[test]
    fn output_is_the_reference_redaction_and_no_pan_survives(t in text(), o in options()) {
        let t = t.as_bytes();
        let (out, counts) = one_shot(t, &o, &no_patterns());
        prop_assert_eq!(out.len(), t.len());
        let (want, found) = reference(t, &o);
        prop_assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&want));
        prop_assert_eq!(counts.found as usize, found);
        // Only digits ever change, and only into the mask character or nines.
        for (a, b) in t.iter().zip(&out) {
            prop_assert!(a == b || (a.is_ascii_digit() && (*b == o.masking.mask_char || b.is_ascii_digit())));
        }
        prop_assert!(first_window(&out, 0).is_none(), "a PAN survived: {}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn redaction_is_idempotent(t in text(), o in options()) {
        let (once, _) = one_shot(t.as_bytes(), &o, &no_patterns());
        let (twice, c) = one_shot(&once, &o, &no_patterns());
        prop_assert_eq!(c.found, 0);
        prop_assert_eq!(twice, once);
    }
}
