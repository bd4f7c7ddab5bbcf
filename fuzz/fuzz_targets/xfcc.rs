//! The XFCC header parser: bounded (at most 32 elements, 16 KiB), and what it reads is what a
//! writer of the same pairs would have meant: written back with quoting, the pairs parse again to
//! the same elements. `last_uri` is the first URI of the last element.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pci_mesh_guard::identity::xfcc;

fn quote(v: &str) -> String {
    if v.bytes().any(|b| b",;=\"".contains(&b)) || v.trim() != v {
        format!("\"{}\"", v.replace('"', "\\\""))
    } else {
        v.to_owned()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = xfcc::parse(header);
    let uri = xfcc::last_uri(header);
    let Ok(elements) = parsed else {
        assert!(
            uri.is_none(),
            "an identity from a header that does not parse"
        );
        return;
    };
    assert!(elements.len() <= xfcc::MAX_ELEMENTS);
    assert!(header.len() <= xfcc::MAX_LEN);
    assert_eq!(uri.as_deref(), elements.last().and_then(|e| e.get("URI")));
    // Round trip, for values a writer can express without a backslash.
    let plain = elements.iter().all(|e| {
        e.pairs
            .iter()
            .all(|(k, v)| !v.contains('\\') && !k.bytes().any(|b| b",;=\" \t\\".contains(&b)))
    });
    if plain {
        let written = elements
            .iter()
            .map(|e| {
                e.pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={}", quote(v)))
                    .collect::<Vec<_>>()
                    .join(";")
            })
            .collect::<Vec<_>>()
            .join(",");
        if written.len() <= xfcc::MAX_LEN {
            let again = xfcc::parse(&written);
            assert_eq!(
                again.as_ref().ok(),
                Some(&elements),
                "written back as {written:?}"
            );
        }
    }
});
