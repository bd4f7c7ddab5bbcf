//! The core inside a wasm engine (wasm-bindgen-test under Node): configuration, authorization,
//! PAN classification and audit concealment behave there as they do natively.
#![cfg(target_arch = "wasm32")]

use pci_mesh_guard::authz::Reason;
use pci_mesh_guard::config::Policy;
use pci_mesh_guard::identity::{Peer, SpiffeId};
use pci_mesh_guard::pan::{
    classify, redact_all, Brand, Counts, Masking, Options, Pattern, Redactor,
};
use std::sync::Arc;
use wasm_bindgen_test::wasm_bindgen_test;

const POLICY: &[u8] = br#"{
  "identity": {"trust_domains": ["cluster.local"]},
  "authorization": {"rules": [
    {"name": "checkout-may-charge", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/v1/charges/*"], "methods": ["POST"]},
    {"name": "no-admin", "action": "deny", "paths": ["/admin/*"]}
  ]}
}"#;

fn peer(id: &str) -> Peer {
    Peer {
        mtls: true,
        tls_version: Some("TLSv1.3".into()),
        uri_san: Some(id.into()),
        ..Peer::default()
    }
}

#[wasm_bindgen_test]
fn configuration_compiles_and_rejects_unknown_keys() {
    assert!(Policy::parse(POLICY).is_ok());
    let e = Policy::parse(br#"{"redaction":{"keep_lats":4}}"#).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("redaction.keep_lats: unknown field"),
        "{e}"
    );
    let e = Policy::parse(br#"{"redaction":{"patterns":[{"name":"x","regex":"("}]}}"#).unwrap_err();
    assert_eq!(e.path, "redaction.patterns[0].regex");
}

#[wasm_bindgen_test]
fn decisions_match_the_native_ones() {
    let a = Policy::parse(POLICY).unwrap().authorizer;
    let checkout = a.authenticate(&peer("spiffe://cluster.local/ns/shop/sa/checkout"));
    let d = a.decide(&checkout, "POST", "/v1/charges/ch_1?x=1");
    assert!(d.allow);
    assert_eq!(
        a.rule(&d).map(|r| r.name.as_str()),
        Some("checkout-may-charge")
    );
    assert!(!a.decide(&checkout, "POST", "/v1/charges/../admin/x").allow);
    let d = a.decide(&checkout, "POST", "/admin/x");
    assert_eq!((d.allow, d.reason), (false, Reason::Rule));
    let foreign = a.authenticate(&peer("spiffe://evil.example/ns/shop/sa/checkout"));
    assert_eq!(
        a.decide(&foreign, "POST", "/v1/charges/x").reason,
        Reason::UntrustedIdentity
    );
    assert_eq!(
        a.decide(&a.authenticate(&Peer::default()), "GET", "/")
            .reason,
        Reason::NoMtls
    );
}

#[wasm_bindgen_test]
fn spiffe_ids_parse_the_same() {
    let id = SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/checkout").unwrap();
    assert_eq!(id.namespace(), Some("shop"));
    assert!(SpiffeId::parse("spiffe://cluster.local/ns/../sa/x").is_err());
}

#[wasm_bindgen_test]
fn pans_are_classified() {
    assert_eq!(classify(b"4111111111111111"), Some(Brand::Visa));
    assert_eq!(classify(b"2223003122003222"), Some(Brand::Mastercard));
    assert_eq!(classify(b"4111111111111112"), None);
}

fn opts() -> Options {
    Options {
        masking: Masking::default(),
        mask: true,
        json: false,
    }
}

#[wasm_bindgen_test]
fn scanner_masks_pans_in_every_format() {
    let mut text = b"a 4111 1111 1111 1111, b 5555-5555-5555-4444, c 378282246310005%20x".to_vec();
    let mut counts = Counts::default();
    redact_all(&mut text, &opts(), &[], true, &mut counts);
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "a **** **** **** 1111, b ****-****-****-4444, c ***********0005%20x"
    );
    assert_eq!((counts.found, counts.redacted), (3, 3));
}

#[wasm_bindgen_test]
fn streaming_redactor_masks_across_every_split() {
    let input = b"pan 4111111111111111 ssn 123-45-6789 end";
    let patterns: Arc<[Pattern]> =
        vec![Pattern::compile("ssn", r"\d{3}-\d{2}-\d{4}").unwrap()].into();
    let want = b"pan ************1111 ssn *********** end".to_vec();
    for cut in 0..=input.len() {
        let mut r = Redactor::new(opts(), patterns.clone(), true);
        let mut out = r.push(&input[..cut]).to_vec();
        out.extend_from_slice(r.push(&input[cut..]));
        out.extend_from_slice(r.finish());
        assert_eq!(out, want, "cut at {cut}");
    }
}

/// Long JSON bodies go through the SIMD128 prefilter: a card number at every offset within its
/// 64-byte block is still found, and the digits around it (ids, epoch milliseconds, phone numbers)
/// stay as they were.
#[wasm_bindgen_test]
fn card_numbers_at_every_block_offset_are_masked_in_long_bodies() {
    for shift in 0..64 {
        let mut input = String::from("[");
        let mut want = String::from("[");
        input.push_str(&"x".repeat(shift));
        want.push_str(&"x".repeat(shift));
        for i in 0..40 {
            let record = format!(
                r#"{{"id":{},"ts":1732492923{:03},"phone":"+4930{:07}","amount":12.{:02}}},"#,
                100_000_000 + i,
                i,
                i * 7919,
                i % 100
            );
            input.push_str(&record);
            want.push_str(&record);
            if i % 9 == 4 {
                input.push_str(r#"{"card":"4111 1111 1111 1111"},"#);
                want.push_str(r#"{"card":"**** **** **** 1111"},"#);
            }
        }
        let mut body = input.into_bytes();
        let mut counts = Counts::default();
        redact_all(&mut body, &opts(), &[], true, &mut counts);
        assert_eq!(String::from_utf8(body).unwrap(), want, "shift {shift}");
        assert_eq!(counts.found, 4, "shift {shift}");
    }
}
