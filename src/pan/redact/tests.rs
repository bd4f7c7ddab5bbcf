//! The streaming redactor: every chunking gives the one-shot output, the held tail stays bounded,
//! and custom patterns are masked across chunk boundaries too.

use super::*;
use crate::pan::Masking;

fn opts() -> Options {
    Options {
        masking: Masking::default(),
        mask: true,
        json: false,
    }
}

fn patterns(list: &[(&str, &str)]) -> std::sync::Arc<[Pattern]> {
    list.iter()
        .map(|(n, r)| Pattern::compile(n, r).unwrap())
        .collect::<Vec<_>>()
        .into()
}

fn one_shot(input: &[u8], o: Options, p: &std::sync::Arc<[Pattern]>) -> (Vec<u8>, Counts) {
    let mut buf = input.to_vec();
    let mut counts = Counts::default();
    redact_all(&mut buf, &o, p, true, &mut counts);
    (buf, counts)
}

/// Feeds `input` in chunks of the given sizes (cycled), checking the held bound after each push.
fn streamed(
    input: &[u8],
    sizes: &[usize],
    o: Options,
    p: &std::sync::Arc<[Pattern]>,
) -> (Vec<u8>, Counts) {
    let mut r = Redactor::new(o, p.clone(), true);
    let mut out = vec![];
    let mut rest = input;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        out.extend_from_slice(r.push(chunk));
        assert!(r.held() <= MAX_HELD, "held {} > {MAX_HELD}", r.held());
        rest = tail;
        i += 1;
    }
    out.extend_from_slice(r.finish());
    assert_eq!(r.held(), 0);
    (out, *r.counts())
}

const SAMPLES: &[&str] = &[
    "card 4111 1111 1111 1111 and 5555-5555-5555-4444, amex 378282246310005.",
    r#"{"pan":4111111111111111,"s":"6011%200009%209013%209424","ssn":"123-45-6789"}"#,
    "%B4111111111111111^DOE/JOHN^2512101?;4111111111111111=2512?",
    "id 123e4567-e89b-42d3-a456-601111111117 phone +4915112345678 digits 12345678901234567890123",
    "4111 1111 1111 1111 5555 5555 5555 4444 4111 1111 1111 1111 110",
];

#[test]
fn masks_a_pan_split_across_chunks_at_every_split_point() {
    let p = patterns(&[]);
    for s in SAMPLES {
        let input = s.as_bytes();
        let (want, want_counts) = one_shot(input, opts(), &p);
        for cut in 0..=input.len() {
            let mut r = Redactor::new(opts(), p.clone(), true);
            let mut out = r.push(&input[..cut]).to_vec();
            out.extend_from_slice(r.push(&input[cut..]));
            out.extend_from_slice(r.finish());
            assert_eq!(out, want, "cut at {cut} of {s}");
            assert_eq!(*r.counts(), want_counts, "cut at {cut} of {s}");
        }
    }
}

#[test]
fn one_byte_chunks_give_the_one_shot_output() {
    let p = patterns(&[("ssn", r"\b\d{3}-\d{2}-\d{4}\b")]);
    for s in SAMPLES {
        let (want, want_counts) = one_shot(s.as_bytes(), opts(), &p);
        for sizes in [&[1][..], &[2], &[3, 1, 7], &[64], &[5, 300]] {
            let (got, counts) = streamed(s.as_bytes(), sizes, opts(), &p);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{sizes:?} {s}"
            );
            assert_eq!(counts, want_counts);
        }
    }
}

#[test]
fn custom_patterns_are_masked_over_their_whole_length_across_chunks() {
    let p = patterns(&[
        ("ssn", r"\b\d{3}-\d{2}-\d{4}\b"),
        ("token", r"tok_[a-z0-9]{8}"),
    ]);
    let input = b"ssn 123-45-6789, key tok_ab12cd34 and 4111111111111111";
    let want = b"ssn ***********, key ************ and ************1111";
    assert_eq!(one_shot(input, opts(), &p).0, want.to_vec());
    for cut in 0..=input.len() {
        let mut r = Redactor::new(opts(), p.clone(), true);
        let mut out = r.push(&input[..cut]).to_vec();
        out.extend_from_slice(r.push(&input[cut..]));
        out.extend_from_slice(r.finish());
        assert_eq!(out, want.to_vec(), "cut at {cut}");
        assert_eq!(r.counts().patterns, 2);
        assert_eq!(r.counts().redacted, 1);
    }
}

#[test]
fn counting_only_mode_passes_pans_but_still_masks_patterns_when_asked() {
    let p = patterns(&[("ssn", r"\d{3}-\d{2}-\d{4}")]);
    let o = Options {
        mask: false,
        ..opts()
    };
    let mut r = Redactor::new(o, p.clone(), true);
    let mut out = r.push(b"4111111111111111 123-45-6789").to_vec();
    out.extend_from_slice(r.finish());
    assert_eq!(out, b"4111111111111111 ***********".to_vec());
    let c = r.counts();
    assert_eq!((c.found, c.redacted, c.passed, c.patterns), (1, 0, 1, 1));
    assert_eq!(c.brands().collect::<Vec<_>>(), vec![(Brand::Visa, 1)]);
    // dry_run: nothing rewritten at all.
    let mut r = Redactor::new(o, p, false);
    let mut out = r.push(b"4111111111111111 123-45-6789").to_vec();
    out.extend_from_slice(r.finish());
    assert_eq!(out, b"4111111111111111 123-45-6789".to_vec());
}

#[test]
fn a_long_digit_stream_is_released_as_it_comes() {
    let p = patterns(&[]);
    let mut r = Redactor::new(opts(), p, true);
    let digits = vec![b'7'; 10_000];
    let mut released = 0;
    for c in digits.chunks(1000) {
        released += r.push(c).len();
        assert!(r.held() <= MAX_HELD);
    }
    released += r.finish().len();
    assert_eq!(released, 10_000);
}

#[test]
fn without_patterns_only_the_undecided_tail_is_held() {
    let mut r = Redactor::new(opts(), patterns(&[]), true);
    assert_eq!(r.push(b"hello world, no digits").len(), 22);
    assert_eq!(r.held(), 0);
    assert_eq!(r.push(b" card 4111 1111").len(), 6);
    assert_eq!(r.held(), 9);
    assert_eq!(
        r.push(b" 1111 1111.").to_vec(),
        b"**** **** **** 1111.".to_vec()
    );
    assert_eq!(r.held(), 0);
}

#[test]
fn only_a_last_chunk_that_could_hold_nothing_is_passed_over() {
    let none = patterns(&[]);
    let r = Redactor::new(opts(), none.clone(), true);
    assert!(r.passes_last(b"ok"));
    assert!(
        r.passes_last(br#"{"id":12345678901,"ok":true}"#),
        "11 digits"
    );
    assert!(!r.passes_last(b"4111111111111111"));
    assert!(!r.passes_last(br#"{"id":123456789012}"#), "12 digits");
    // Bytes held from before may end a PAN in this chunk.
    let mut held = Redactor::new(opts(), none, true);
    held.push(b"card 4111 1111 1111");
    assert!(held.held() > 0);
    assert!(!held.passes_last(b" 1111"));
    // A custom pattern may match anything.
    let p = Redactor::new(opts(), patterns(&[("ssn", r"\d{3}-\d{2}-\d{4}")]), true);
    assert!(!p.passes_last(b"ok"));
    // What it passes over, the redactor leaves as it is.
    for chunk in [&b"ok"[..], br#"{"id":12345678901}"#] {
        assert_eq!(one_shot(chunk, opts(), &patterns(&[])).0, chunk);
    }
}
