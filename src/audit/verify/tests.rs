//! Verification catches every single-byte edit, deletion, insertion and swap in a generated log.

use super::*;
use crate::audit::chain::Chain;

const KEY: &[u8] = b"test-key-0123456789";

fn log(n: usize, key: Option<&[u8]>) -> Vec<String> {
    let mut c = Chain::new("0123abcd".into(), key.map(<[u8]>::to_vec));
    (0..n)
        .map(|i| {
            c.seal(format!(
                r#"{{"schema":"{SCHEMA}","ts":"2026-11-25T00:00:0{}.000Z","event":"access","request":{{"id":"r{i}"}}}}"#,
                i % 10
            ))
        })
        .collect()
}

fn check(lines: &[String], key: Option<&[u8]>) -> Report {
    verify(lines.iter().map(String::as_str), key, false)
}

#[test]
fn an_untouched_log_verifies_with_and_without_a_key() {
    let r = check(&log(20, Some(KEY)), Some(KEY));
    assert_eq!((r.events, r.problems.len()), (20, 0), "{:?}", r.problems);
    assert_eq!(r.chains.values().copied().collect::<Vec<_>>(), vec![20]);
    assert!(check(&log(5, None), None).problems.is_empty());
}

#[test]
fn a_keyed_log_needs_its_key() {
    let r = check(&log(3, Some(KEY)), None);
    assert_eq!(r.problems[0].kind, "unverifiable");
    // Another key has another id: the chain is not altered, it is sealed with a key not given.
    let r = check(&log(3, Some(KEY)), Some(b"wrong-key-0123456789"));
    assert_eq!(r.problems[0].kind, "unverifiable");
    let kid = crate::audit::chain::derived_kid(KEY);
    assert!(r.problems[0].message.contains(&kid), "{:?}", r.problems);
}

/// Two chains, sealed before and after a key rotation, the second under a named key.
fn rotated() -> Vec<String> {
    let mut old = Chain::new("0ld0ld0ld".into(), Some(KEY.to_vec()));
    let mut new = Chain::with_kid(
        "0new0new".into(),
        Some(b"next-key-0123456789".to_vec()),
        "2027-q1".into(),
    );
    let event =
        |i: usize| format!(r#"{{"schema":"{SCHEMA}","event":"access","request":{{"id":"r{i}"}}}}"#);
    let mut lines: Vec<String> = (0..3).map(|i| old.seal(event(i))).collect();
    lines.extend((3..6).map(|i| new.seal(event(i))));
    lines
}

#[test]
fn a_keyring_verifies_the_chains_of_each_of_its_keys() {
    let lines = rotated();
    let mut ring = Keyring::default();
    ring.add_file_text(&format!(
        "# the audit keys, oldest first\n{}\n\n2027-q1 next-key-0123456789\n",
        std::str::from_utf8(KEY).unwrap()
    ))
    .unwrap();
    assert_eq!(ring.len(), 2);
    let r = verify_with(lines.iter().map(String::as_str), &ring, false);
    assert_eq!(
        (r.events, r.problems.len(), r.chains.len()),
        (6, 0, 2),
        "{:?}",
        r.problems
    );
    // One key alone verifies its own chain and names the key the other needs.
    let r = verify_with(
        lines.iter().map(String::as_str),
        &Keyring::single(KEY),
        false,
    );
    let unverifiable: Vec<&Problem> = r
        .problems
        .iter()
        .filter(|p| p.kind == "unverifiable")
        .collect();
    assert_eq!(
        (r.problems.len(), unverifiable.len()),
        (3, 3),
        "{:?}",
        r.problems
    );
    assert!(unverifiable
        .iter()
        .all(|p| p.message.contains("key 2027-q1")));
    assert_eq!(r.chains.keys().collect::<Vec<_>>(), ["0ld0ld0ld"]);
}

#[test]
fn a_keyring_file_names_the_line_it_cannot_read() {
    let mut ring = Keyring::default();
    let err = ring
        .add_file_text("good-id key-0123456789abcdef\nbad/id key-0123456789abcdef\n")
        .unwrap_err();
    assert!(err.starts_with("line 2: key id \"bad/id\""), "{err}");
}

#[test]
fn envoy_log_prefixes_are_skipped_and_other_lines_ignored() {
    let lines: Vec<String> = log(3, Some(KEY))
        .into_iter()
        .map(|e| format!("[2026-11-25 00:00:00.000][12][info][wasm] [context.cc:1151] wasm log pci-mesh-guard pci-mesh-guard: {e}"))
        .chain(["[2026-11-25][info][main] starting".to_string()])
        .collect();
    let r = check(&lines, Some(KEY));
    assert_eq!((r.events, r.problems.len()), (3, 0));
}

#[test]
fn a_rotated_log_verifies_from_its_first_event_when_partial() {
    let lines = log(6, Some(KEY));
    assert_eq!(check(&lines[2..], Some(KEY)).problems[0].kind, "gap");
    let r = verify(lines[2..].iter().map(String::as_str), Some(KEY), true);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn reports_what_happened_and_where() {
    let good = log(6, Some(KEY));
    let mut deleted = good.clone();
    deleted.remove(2);
    assert_eq!(check(&deleted, Some(KEY)).problems[0].kind, "gap");
    assert_eq!(check(&deleted, Some(KEY)).problems[0].line, 3);
    let mut swapped = good.clone();
    swapped.swap(2, 3);
    assert!(check(&swapped, Some(KEY))
        .problems
        .iter()
        .any(|p| p.kind == "reordered" || p.kind == "gap"));
    let mut edited = good.clone();
    edited[4] = edited[4].replace(r#""id":"r4""#, r#""id":"r9""#);
    let p = &check(&edited, Some(KEY)).problems;
    assert_eq!((p.len(), p[0].kind, p[0].line), (1, "altered", 5));
}

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn any_single_byte_edit_is_caught(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut lines = log(8, Some(KEY));
            let flat: usize = lines.iter().map(String::len).sum();
            let mut at = pos.index(flat);
            let mut li = 0;
            while at >= lines[li].len() { at -= lines[li].len(); li += 1; }
            let mut bytes = lines[li].clone().into_bytes();
            prop_assume!(bytes[at] != byte);
            bytes[at] = byte;
            lines[li] = String::from_utf8_lossy(&bytes).into_owned();
            prop_assert!(!check(&lines, Some(KEY)).problems.is_empty(), "edit at line {} byte {}", li + 1, at);
        }

        #[test]
        fn any_deletion_insertion_or_swap_is_caught(a in 0..8usize, b in 0..8usize, op in 0..3u8) {
            let good = log(8, Some(KEY));
            let mut lines = good.clone();
            match op {
                0 => { lines.remove(a.min(6)); }
                1 => { let forged = good[a].replace("access", "accesS"); lines.insert(b, forged); }
                _ => { prop_assume!(a != b); lines.swap(a, b); }
            }
            prop_assert!(!check(&lines, Some(KEY)).problems.is_empty(), "op {} a {} b {}", op, a, b);
        }
    }
}

#[test]
fn an_event_naming_a_key_twice_is_refused_even_with_a_valid_mac() {
    let mut c = Chain::new("dup".into(), Some(KEY.to_vec()));
    let lines = [
        c.seal(format!(r#"{{"schema":"{SCHEMA}","event":"config"}}"#)),
        // Sealed by the right key, so only the repeated key is wrong with it.
        c.seal(format!(
            r#"{{"schema":"{SCHEMA}","event":"access","decision":"deny","decision":"allow"}}"#
        )),
    ];
    let r = check(&lines, Some(KEY));
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(
        (r.problems[0].line, r.problems[0].kind),
        (2, "duplicate_key")
    );
    assert!(r.problems[0].message.contains("\"decision\""));
}

/// Found by the `audit_verify` fuzz target: a sequence number of 0 underflowed the gap message,
/// and u64::MAX overflowed the next expected number.
#[test]
fn a_sequence_number_out_of_range_is_a_problem_not_a_panic() {
    for seq in ["0", "18446744073709551615"] {
        let lines: Vec<String> = log(2, Some(KEY))
            .into_iter()
            .map(|l| l.replacen(r#""seq":1,"#, &format!(r#""seq":{seq},"#), 1))
            .collect();
        assert!(
            lines[0].contains(&format!(r#""seq":{seq},"#)),
            "{}",
            lines[0]
        );
        for partial in [false, true] {
            let r = verify(lines.iter().map(String::as_str), Some(KEY), partial);
            assert_eq!(r.events, 2);
            assert!(
                r.problems
                    .iter()
                    .any(|p| p.line == 1 && p.kind == "altered"),
                "seq {seq}, partial {partial}: {:?}",
                r.problems
            );
        }
    }
}
