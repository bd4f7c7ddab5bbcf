//! The streaming redactor under random text, options and chunking: the output for any chunking
//! (copying or in place) is the one-shot output, length is kept, only digits change, the output
//! is the reference redaction (tests/support/reference_scanner.rs), and no PAN the reference
//! detector sees survives.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use pci_mesh_guard::pan::{redact_all, Counts, Masking, Options, Pattern, Redactor};

#[path = "../../tests/support/reference_scanner.rs"]
mod reference_scanner;

fuzz_target!(|data: &[u8]| {
    let [o1, o2, o3, c1, c2, rest @ ..] = data else {
        return;
    };
    let opts = Options {
        masking: Masking {
            keep_first: o1 % 9,
            keep_last: o2 % 5,
            mask_char: if o3 & 1 == 0 { b'*' } else { b'X' },
        },
        mask: true,
        json: o3 & 2 != 0,
    };
    let sizes = [1 + (*c1 as usize) % 64, 1 + (*c2 as usize) * 4];
    let text = rest;
    let patterns: Arc<[Pattern]> = Vec::new().into();

    let mut want = text.to_vec();
    let mut counts = Counts::default();
    redact_all(&mut want, &opts, &patterns, true, &mut counts);
    assert_eq!(want.len(), text.len(), "length kept");
    for (a, b) in text.iter().zip(&want) {
        assert!(
            a == b || (a.is_ascii_digit() && (*b == opts.masking.mask_char || b.is_ascii_digit()))
        );
    }

    // Copying, chunk after chunk.
    let mut r = Redactor::new(opts, patterns.clone(), true);
    let mut got = Vec::with_capacity(text.len());
    for chunk in chunks(text, &sizes) {
        got.extend_from_slice(r.push(chunk));
    }
    got.extend_from_slice(r.finish());
    assert_eq!(got, want, "streamed output differs from one-shot");
    assert_eq!(*r.counts(), counts);

    // In place where the redactor allows it.
    let mut r = Redactor::new(opts, patterns.clone(), true);
    let mut got = Vec::with_capacity(text.len());
    let in_place_sizes = [sizes[1] * 8, sizes[0]];
    let parts: Vec<&[u8]> = chunks(text, &in_place_sizes).collect();
    for (i, part) in parts.iter().enumerate() {
        let mut chunk = part.to_vec();
        match r.push_in_place(&mut chunk, i + 1 == parts.len()) {
            Some(k) => got.extend_from_slice(&chunk[..k]),
            None => got.extend_from_slice(r.push(&chunk)),
        }
    }
    got.extend_from_slice(r.finish());
    assert_eq!(got, want, "in-place output differs from one-shot");

    // The reference: same redaction, and nothing it would call a PAN is left.
    if text.len() <= 4096 {
        let (reference, found) = reference_scanner::reference(text, &opts);
        assert_eq!(want, reference, "differs from the reference redaction");
        assert_eq!(counts.found as usize, found);
        assert!(
            reference_scanner::first_window(&want, 0).is_none(),
            "a PAN survived"
        );
    }
});

/// `text` cut in pieces of the given sizes, in turn.
fn chunks<'a>(text: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = text;
    let mut i = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = sizes[i % sizes.len()].min(rest.len());
        i += 1;
        let (a, b) = rest.split_at(n);
        rest = b;
        Some(a)
    })
}
