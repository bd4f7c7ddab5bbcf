//! The plugin configuration parser: any input is accepted or rejected with a message naming its
//! cause, never a panic; an accepted policy decides requests, and never lets an allow rule match
//! a path that is not normalized.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pci_mesh_guard::config::Policy;
use pci_mesh_guard::identity::Peer;

fuzz_target!(|data: &[u8]| {
    let strict = Policy::parse(data);
    let lenient = Policy::parse_lenient(data);
    if let Err(e) = &strict {
        assert!(!e.to_string().is_empty(), "a rejection must say why");
    }
    // `strict` only adds the linter's findings as reasons to refuse.
    if strict.is_ok() {
        assert!(
            lenient.is_ok(),
            "accepted by parse, refused by parse_lenient"
        );
    }
    let Ok(policy) = lenient else { return };
    let peer = Peer {
        mtls: true,
        tls_version: Some("TLSv1.3".into()),
        uri_san: Some("spiffe://cluster.local/ns/shop/sa/checkout".into()),
        source: Some("10.0.0.1:5555".into()),
        ..Peer::default()
    };
    for peer in [peer, Peer::default()] {
        let auth = policy.authorizer.authenticate(&peer);
        for (method, path) in [
            ("POST", "/v1/charges"),
            ("GET", "/"),
            ("GET", "/v1/../admin"),
            ("GET", "/v1//charges"),
            ("GET", "/v1/%2e%2e/admin"),
            ("DELETE", "/admin\\keys"),
        ] {
            let d = policy.authorizer.decide(&auth, method, path);
            let rule = policy.authorizer.rule(&d);
            if !pci_mesh_guard::authz::is_normalized(path) {
                assert!(
                    !(d.allow && rule.is_some()),
                    "an allow rule matched the unnormalized path {path}"
                );
            }
        }
    }
});
