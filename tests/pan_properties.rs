//! Property tests of the redactor against an independent, slow reference detector: for random
//! texts with planted PANs and random chunkings, streaming equals one-shot, length is kept, bytes
//! outside PANs are untouched, no PAN survives, and redaction is idempotent.
#![cfg(not(target_arch = "wasm32"))]

use std::rc::Rc;

use pci_mesh_guard::pan::{redact_all, Counts, Masking, Options, Pattern, Redactor};
use proptest::prelude::*;

// ---- the reference: plain, slow, written from SPEC section 4 without the scanner's machinery ----

fn luhn(d: &[u8]) -> bool {
    let mut sum = 0;
    for (i, c) in d.iter().rev().enumerate() {
        let mut v = (c - b'0') as u32;
        if i % 2 == 1 {
            v = if v * 2 > 9 { v * 2 - 9 } else { v * 2 };
        }
        sum += v;
    }
    sum % 10 == 0
}

fn has_brand(d: &[u8]) -> bool {
    let s = std::str::from_utf8(d).unwrap();
    let n = s.len();
    let p = |k: usize| s[..k.min(n)].parse::<u32>().unwrap_or(0);
    let table: [(&dyn Fn() -> bool, &[usize]); 8] = [
        (&|| s.starts_with('4'), &[13, 16, 19]),
        (
            &|| (51..=55).contains(&p(2)) || (2221..=2720).contains(&p(4)),
            &[16],
        ),
        (&|| p(2) == 34 || p(2) == 37, &[15]),
        (
            &|| {
                p(4) == 6011
                    || (644..=649).contains(&p(3))
                    || p(2) == 65
                    || (622126..=622925).contains(&p(6))
            },
            &[16, 17, 18, 19],
        ),
        (&|| (3528..=3589).contains(&p(4)), &[16, 17, 18, 19]),
        (
            &|| (300..=305).contains(&p(3)) || p(2) == 36 || p(2) == 38 || p(2) == 39,
            &[14, 15, 16, 17, 18, 19],
        ),
        (&|| p(2) == 62, &[14, 15, 16, 17, 18, 19]),
        (
            &|| p(2) == 50 || (56..=69).contains(&p(2)),
            &[12, 13, 14, 15, 16, 17, 18, 19],
        ),
    ];
    table.iter().any(|(iin, lens)| lens.contains(&n) && iin())
}

/// Digit groups of `t` as byte ranges; URL-encoded separators are escapes, whatever digits they spell.
fn groups_of(t: &[u8]) -> Vec<(usize, usize)> {
    let mut groups = vec![];
    let mut i = 0;
    while i < t.len() {
        if t[i..].starts_with(b"%20") || t[i..].starts_with(b"%2D") || t[i..].starts_with(b"%2d") {
            i += 3;
        } else if t[i].is_ascii_digit() {
            let s = i;
            while i < t.len() && t[i].is_ascii_digit() {
                i += 1;
            }
            groups.push((s, i));
        } else {
            i += 1;
        }
    }
    groups
}

fn is_separator(between: &[u8]) -> bool {
    matches!(between, b" " | b"-" | b"+" | b"%20" | b"%2D" | b"%2d")
}

fn in_uuid(t: &[u8], s: usize, e: usize) -> bool {
    let token = regex::bytes::Regex::new(r"[0-9a-fA-F-]+").unwrap();
    let inside = token.find_iter(t).any(|m| {
        let tok = m.as_bytes();
        m.start() <= s
            && e <= m.end()
            && tok.len() == 36
            && tok.iter().enumerate().all(|(k, c)| {
                if [8, 13, 18, 23].contains(&k) {
                    *c == b'-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    });
    inside
}

/// The digits `t[s..e]` sit in a run of 32 or more hex characters that has a letter in it.
fn in_hex_blob(t: &[u8], s: usize, e: usize) -> bool {
    let mut a = s;
    while a > 0 && t[a - 1].is_ascii_hexdigit() {
        a -= 1;
    }
    let mut b = e;
    while b < t.len() && t[b].is_ascii_hexdigit() {
        b += 1;
    }
    b - a >= 32 && t[a..b].iter().any(|c| c.is_ascii_alphabetic())
}

/// The first PAN window whose first group starts at or after `from`: earliest start, then the
/// longest window of whole groups (first group of 4 or more digits, later ones of 3 or more, one
/// separator between groups, 12 to 19 digits, Luhn, a brand), not an E.164 number, not in a UUID.
fn first_window(t: &[u8], from: usize) -> Option<Vec<(usize, usize)>> {
    let groups = groups_of(t);
    for g in 0..groups.len() {
        if groups[g].0 < from {
            continue;
        }
        let mut best = None;
        let mut digits = vec![];
        for j in g..groups.len() {
            let (s, e) = groups[j];
            if j > g && !is_separator(&t[groups[j - 1].1..s]) {
                break;
            }
            let len = e - s;
            if (j == g && len < 4) || (j > g && len < 3) || digits.len() + len > 19 {
                break;
            }
            digits.extend_from_slice(&t[s..e]);
            if digits.len() >= 12 && luhn(&digits) && has_brand(&digits) {
                let start = groups[g].0;
                let phone = j == g
                    && digits.len() <= 15
                    && start >= 1
                    && t[start - 1] == b'+'
                    && !(start >= 2 && t[start - 2].is_ascii_digit());
                let in_blob = groups[g..=j].iter().any(|&(gs, ge)| in_hex_blob(t, gs, ge));
                if !phone && !in_uuid(t, start, e) && !in_blob {
                    best = Some(groups[g..=j].to_vec());
                }
            }
        }
        if best.is_some() {
            return best;
        }
    }
    None
}

/// The expected redaction of `t`, window after window, and how many PANs it masked. After a
/// window, the search goes on from its kept trailing digits: with the masked digits gone they start
/// a new group, and a PAN they form with what follows must go too.
fn reference(t: &[u8], o: &Options) -> (Vec<u8>, usize) {
    let mut out = t.to_vec();
    let mut from = 0;
    let mut found = 0;
    while let Some(w) = first_window(&out, from) {
        found += 1;
        let total: usize = w.iter().map(|(s, e)| e - s).sum();
        let start = w[0].0;
        let after_group = {
            let before = &out[..start];
            let ends_with_digit_then = |sep: &[u8]| {
                before.ends_with(sep)
                    && before.len() > sep.len()
                    && before[before.len() - sep.len() - 1].is_ascii_digit()
                    && !before[..before.len() - sep.len()].ends_with(b"%20")
            };
            [&b" "[..], b"-", b"+", b"%20", b"%2D", b"%2d"]
                .iter()
                .any(|s| ends_with_digit_then(s))
        };
        let cap = if total >= 16 { 8 } else { 6 };
        let keep_first = if after_group {
            0
        } else {
            (o.masking.keep_first as usize).min(cap)
        };
        let keep_last = o.masking.keep_last as usize;
        let bare = o.json && w.len() == 1 && {
            let lo = start.saturating_sub(37);
            match out[lo..start]
                .iter()
                .rev()
                .find(|c| !b" \t\r\n".contains(c))
            {
                Some(c) => b":[,".contains(c),
                None => true,
            }
        };
        let fill = if bare { b'9' } else { o.masking.mask_char };
        let positions: Vec<usize> = w.iter().flat_map(|&(s, e)| s..e).collect();
        let hidden: Vec<usize> = positions
            .iter()
            .enumerate()
            .filter(|(k, _)| *k >= keep_first && k + keep_last < total)
            .map(|(_, &i)| i)
            .collect();
        for &i in &hidden {
            out[i] = fill;
        }
        if bare {
            // The last hidden digit is the first of 9, 8, ... 0 with which no window that starts
            // with this number (alone, or joined with the groups after it) is a card number.
            let last = *hidden.last().unwrap();
            let groups = groups_of(&out);
            let k = groups.iter().position(|&g| g == w[0]).unwrap();
            for d in b"9876543210" {
                out[last] = *d;
                let mut digits = vec![];
                let mut pan = false;
                for j in k..groups.len() {
                    let (s, e) = groups[j];
                    if j > k && (!is_separator(&out[groups[j - 1].1..s]) || e - s < 3) {
                        break;
                    }
                    if digits.len() + (e - s) > 19 {
                        break;
                    }
                    digits.extend_from_slice(&out[s..e]);
                    pan |= digits.len() >= 12 && luhn(&digits) && has_brand(&digits);
                }
                if !pan {
                    break;
                }
            }
            from = w.last().unwrap().1;
        } else {
            let tail = positions[total - keep_last.min(total)..].first().copied();
            from = match tail {
                Some(i)
                    if keep_last > 0
                        && i > start
                        && (!out[i - 1].is_ascii_digit() || out[..i].ends_with(b"%20")) =>
                {
                    i
                }
                _ => w.last().unwrap().1,
            };
        }
    }
    (out, found)
}

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

fn one_shot(t: &[u8], o: &Options, p: &Rc<[Pattern]>) -> (Vec<u8>, Counts) {
    let mut buf = t.to_vec();
    let mut c = Counts::default();
    redact_all(&mut buf, o, p, true, &mut c);
    (buf, c)
}

fn no_patterns() -> Rc<[Pattern]> {
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
        let p: Rc<[Pattern]> = if with_pattern {
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
