//! The SPIFFE ID parser: whatever it accepts is a well-formed ID whose parts can be used as they
//! are (in rules, audit events and metric labels), and parsing it again gives the same ID.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pci_mesh_guard::identity::{SpiffeId, TlsVersion};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = TlsVersion::parse(s);
    let Ok(id) = SpiffeId::parse(s) else {
        return;
    };
    assert_eq!(id.as_str(), s);
    assert!(s.starts_with("spiffe://"));
    let td = id.trust_domain();
    assert!(!td.is_empty());
    assert!(td
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
    assert_eq!(format!("spiffe://{td}{}", id.path()), s);
    let path = id.path();
    if !path.is_empty() {
        for seg in path.split('/').skip(1) {
            assert!(
                !seg.is_empty() && seg != "." && seg != "..",
                "segment {seg:?}"
            );
            assert!(seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        }
    }
    if let Some(ns) = id.namespace() {
        assert!(
            path.starts_with(&format!("/ns/{ns}/sa/")),
            "{path} has namespace {ns}"
        );
    }
    // Nothing that could end a stats tag, a JSON string or a header value.
    assert!(!s.bytes().any(|b| b";=\"\\,\r\n ".contains(&b)));
    assert_eq!(
        SpiffeId::parse(id.as_str())
            .map(|i| i.as_str().to_owned())
            .ok()
            .as_deref(),
        Some(s)
    );
});
