//! The parsers that read what callers send never panic, whatever the bytes: SPIFFE IDs, XFCC
//! headers, plugin configurations, and the PAN scanner over arbitrary data.
#![cfg(not(target_arch = "wasm32"))]

use pci_mesh_guard::config::Policy;
use pci_mesh_guard::identity::{xfcc, SpiffeId};
use pci_mesh_guard::pan::{redact_all, Counts, Masking, Options};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z:/.=;,\"\\\\ -]{0,80}",
        "spiffe://[a-z.]{0,10}(/[a-zA-Z0-9._%-]{0,6}){0,6}",
        "((By|URI|Hash|Subject|DNS)=(\"[^\"]{0,10}\"|[a-z:/]{0,10})[;,]?){0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn spiffe_parser_never_panics_and_accepts_only_canonical_ids(s in text()) {
        if let Ok(id) = SpiffeId::parse(&s) {
            prop_assert!(s.starts_with("spiffe://"));
            prop_assert_eq!(id.as_str(), s.as_str());
            prop_assert!(!id.trust_domain().is_empty());
            let _ = id.namespace();
        }
    }

    #[test]
    fn xfcc_parser_never_panics(s in text()) {
        if let Ok(elements) = xfcc::parse(&s) {
            prop_assert!(elements.len() <= xfcc::MAX_ELEMENTS);
        }
        let _ = xfcc::last_uri(&s);
    }

    #[test]
    fn configuration_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), s in text()) {
        let _ = Policy::parse(&bytes);
        let _ = Policy::parse(s.as_bytes());
    }

    #[test]
    fn scanner_never_panics_on_arbitrary_bytes(mut bytes in prop::collection::vec(any::<u8>(), 0..400), json in any::<bool>()) {
        let opts = Options { masking: Masking::default(), mask: true, json };
        let len = bytes.len();
        redact_all(&mut bytes, &opts, &[], true, &mut Counts::default());
        prop_assert_eq!(bytes.len(), len);
    }
}
