//! Under real Envoy with real certificates: who may call. Each caller of the local mesh presents
//! its own certificate (or none); the filter decides with Istio's semantics and says why in the
//! audit event, never in the response.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use mesh::{Mesh, Request, Response};

const POLICY: &str = r#"{
  "identity": {"trust_domains": ["cluster.local"], "trust_xfcc": true},
  "authorization": {"rules": [
    {"name": "checkout-may-use-v1", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/v1/*"]},
    {"name": "checkout-admin", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/admin/*"]},
    {"name": "nobody-reaches-admin", "action": "deny", "paths": ["/admin/*"]}
  ]}
}"#;

struct Case {
    caller: &'static str,
    path: &'static str,
    status: u16,
    /// Expected (decision, reason, rule) of the access event; `None`: the filter never sees it.
    event: Option<(&'static str, &'static str, Option<&'static str>)>,
    reaches_backend: bool,
}

const CASES: &[Case] = &[
    Case {
        caller: "checkout",
        path: "/v1/charges",
        status: 200,
        event: Some(("allow", "rule", Some("checkout-may-use-v1"))),
        reaches_backend: true,
    },
    Case {
        caller: "newsletter",
        path: "/v1/charges",
        status: 403,
        event: Some(("deny", "default", None)),
        reaches_backend: false,
    },
    Case {
        caller: "foreign",
        path: "/v1/charges",
        status: 403,
        event: Some(("deny", "untrusted_identity", None)),
        reaches_backend: false,
    },
    Case {
        caller: "rogue",
        path: "/v1/charges",
        status: 503,
        event: None,
        reaches_backend: false,
    },
    Case {
        caller: "nocert",
        path: "/v1/charges",
        status: 403,
        event: Some(("deny", "no_mtls", None)),
        reaches_backend: false,
    },
    Case {
        caller: "plaintext",
        path: "/v1/charges",
        status: 403,
        event: Some(("deny", "no_mtls", None)),
        reaches_backend: false,
    },
    Case {
        caller: "tls11",
        path: "/v1/charges",
        status: 403,
        event: Some(("deny", "weak_tls", None)),
        reaches_backend: false,
    },
    Case {
        caller: "checkout",
        path: "/admin/users",
        status: 403,
        event: Some(("deny", "rule", Some("nobody-reaches-admin"))),
        reaches_backend: false,
    },
    Case {
        caller: "checkout",
        path: "/v1/charges?next=/admin/users",
        status: 200,
        event: Some(("allow", "rule", Some("checkout-may-use-v1"))),
        reaches_backend: true,
    },
    Case {
        caller: "raw-checkout",
        path: "/v1/x/../../admin/users",
        status: 403,
        event: Some(("deny", "rule", Some("nobody-reaches-admin"))),
        reaches_backend: false,
    },
    // Not normalized: no allow rule may match it, and a deny rule's paths count as matching.
    Case {
        caller: "raw-checkout",
        path: "/v1//charges",
        status: 403,
        event: Some(("deny", "rule", Some("nobody-reaches-admin"))),
        reaches_backend: false,
    },
    Case {
        caller: "raw-checkout",
        path: "/v1/charges",
        status: 200,
        event: Some(("allow", "rule", Some("checkout-may-use-v1"))),
        reaches_backend: true,
    },
];

fn start(envoy: &mesh::Envoy, name: &str, config: &str) -> Mesh {
    Mesh::builder(envoy, name).config(config).up()
}

fn send(mesh: &Mesh, caller: &str, path: &str, id: &str) -> Response {
    mesh.send(caller, Request::get(path).header("x-request-id", id))
}

#[test]
fn each_caller_is_judged_by_its_certificate_with_the_reason_audited() {
    for envoy in mesh::envoys() {
        let mesh = start(&envoy, "authz", POLICY);
        for (i, case) in CASES.iter().enumerate() {
            let id = format!("authz-{i}");
            let before = mesh.received().len();
            let resp = send(&mesh, case.caller, case.path, &id);
            let what = format!("Envoy {}: {} {}", envoy, case.caller, case.path);
            assert_eq!(resp.status, case.status, "{what}: {}", resp.text());
            if resp.status == 403 {
                assert_eq!(
                    resp.text(),
                    format!(r#"{{"error":"forbidden","request_id":"{id}"}}"#),
                    "{what}"
                );
            }
            assert_eq!(
                mesh.received().len() > before,
                case.reaches_backend,
                "{what}: backend"
            );
            match case.event {
                Some((decision, reason, rule)) => {
                    let e = mesh.access_event(&id);
                    assert_eq!(e["decision"], decision, "{what}");
                    assert_eq!(e["reason"], reason, "{what}");
                    assert_eq!(e["rule"].as_str(), rule, "{what}");
                }
                None => assert!(
                    !mesh
                        .events()
                        .iter()
                        .any(|e| e["request"]["id"] == id.as_str()),
                    "{what}: the TLS handshake fails before the filter"
                ),
            }
        }
        // The certificate digest and subject of an mTLS caller are in the trail.
        let e = mesh.access_event("authz-0");
        assert_eq!(e["identity_source"], "certificate");
        assert!(
            e["peer_cert_sha256"]
                .as_str()
                .is_some_and(|d| d.len() == 64),
            "{e}"
        );
        assert!(
            e["peer_subject"]
                .as_str()
                .unwrap_or("")
                .contains("CN=checkout"),
            "{e}"
        );
        let weak = mesh.access_event("authz-6");
        assert_eq!(weak["tls_version"], "TLSv1.1");
    }
}

#[test]
fn a_spoofed_xfcc_header_is_ignored_when_the_certificate_names_the_caller() {
    for envoy in mesh::envoys() {
        let mesh = start(&envoy, "xfcc-spoof", POLICY);
        // The listener passes the caller's own header through, and the filter trusts XFCC; still
        // the connection's certificate (newsletter) decides.
        let resp = mesh.send(
            "raw-newsletter",
            Request::get("/v1/charges")
                .header("x-request-id", "spoof")
                .header(
                    "x-forwarded-client-cert",
                    "By=spiffe://cluster.local/ns/payments/sa/payments-api;URI=spiffe://cluster.local/ns/shop/sa/checkout",
                ),
        );
        assert_eq!(resp.status, 403, "Envoy {}", envoy);
        let e = mesh.access_event("spoof");
        assert_eq!(
            e["principal"],
            "spiffe://cluster.local/ns/marketing/sa/newsletter"
        );
        assert!(mesh.received().is_empty());
    }
}

#[test]
fn dry_run_lets_everyone_through_and_audits_the_would_be_denials() {
    for envoy in mesh::envoys() {
        let dry = POLICY.replacen('{', r#"{"mode":"dry_run","#, 1);
        let mesh = start(&envoy, "authz-dry-run", &dry);
        for (caller, id, reason) in [
            ("newsletter", "dry-1", "default"),
            ("plaintext", "dry-2", "no_mtls"),
            ("checkout", "dry-3", "rule"),
        ] {
            let path = if id == "dry-3" {
                "/admin/users"
            } else {
                "/v1/charges"
            };
            let resp = send(&mesh, caller, path, id);
            assert_eq!(resp.status, 200, "Envoy {}: {caller}", envoy);
            let e = mesh.access_event(id);
            assert_eq!(
                (e["decision"].as_str(), e["enforced"].as_bool()),
                (Some("deny"), Some(false))
            );
            assert_eq!(e["reason"], reason);
        }
        assert_eq!(mesh.received().len(), 3);
    }
}
