//! Claim-named tests of the matcher and of `decide`, in allow/deny pairs.

use super::*;

const CHECKOUT: &str = "spiffe://cluster.local/ns/shop/sa/checkout";
const NEWSLETTER: &str = "spiffe://cluster.local/ns/marketing/sa/newsletter";

fn m(list: &[&str]) -> Vec<StrMatch> {
    list.iter().map(|p| StrMatch::compile(p).unwrap()).collect()
}

fn rule(name: &str, action: RuleAction) -> Rule {
    Rule {
        name: name.into(),
        action,
        principals: vec![],
        not_principals: vec![],
        namespaces: vec![],
        not_namespaces: vec![],
        paths: vec![],
        not_paths: vec![],
        methods: vec![],
        not_methods: vec![],
        pan: PanGrant::default(),
    }
}

fn authz(rules: Vec<Rule>) -> Authorizer {
    Authorizer {
        source: IdentitySource::PeerCertificate,
        require_mtls: true,
        min_tls_version: TlsVersion::Tls12,
        trust_domains: vec!["cluster.local".into()],
        trust_xfcc: false,
        default_allow: false,
        screens: Screens::of(&rules),
        rules,
    }
}

fn peer(id: &str) -> Peer {
    Peer {
        mtls: true,
        tls_version: Some("TLSv1.3".into()),
        uri_san: Some(id.into()),
        ..Peer::default()
    }
}

fn decide(a: &Authorizer, id: &str, method: &str, path: &str) -> Decision {
    a.decide(&a.authenticate(&peer(id)), method, path)
}

fn checkout_may_charge() -> Rule {
    Rule {
        principals: m(&[CHECKOUT]),
        paths: m(&["/v1/charges", "/v1/charges/*"]),
        methods: vec!["POST".into()],
        ..rule("checkout-may-charge", RuleAction::Allow)
    }
}

#[test]
fn allows_listed_principal_on_listed_path_and_method() {
    let a = authz(vec![checkout_may_charge()]);
    let d = decide(&a, CHECKOUT, "POST", "/v1/charges/ch_1");
    assert_eq!((d.allow, d.reason, d.rule), (true, Reason::Rule, Some(0)));
}

#[test]
fn denies_by_default_when_principal_is_not_listed() {
    let a = authz(vec![checkout_may_charge()]);
    let d = decide(&a, NEWSLETTER, "POST", "/v1/charges");
    assert_eq!((d.allow, d.reason, d.rule), (false, Reason::Default, None));
}

#[test]
fn fields_are_anded_so_a_wrong_method_denies() {
    let a = authz(vec![checkout_may_charge()]);
    assert!(!decide(&a, CHECKOUT, "GET", "/v1/charges").allow);
    assert!(
        !decide(&a, CHECKOUT, "post", "/v1/charges").allow,
        "methods are exact"
    );
    assert!(!decide(&a, CHECKOUT, "POST", "/v1/refunds").allow);
}

#[test]
fn values_within_a_field_are_ored() {
    let a = authz(vec![Rule {
        principals: m(&[NEWSLETTER, CHECKOUT]),
        ..rule("two", RuleAction::Allow)
    }]);
    assert!(decide(&a, CHECKOUT, "GET", "/").allow);
    assert!(decide(&a, NEWSLETTER, "GET", "/").allow);
}

#[test]
fn deny_rule_beats_a_matching_allow_rule() {
    let a = authz(vec![
        rule("all", RuleAction::Allow),
        Rule {
            paths: m(&["/admin/*"]),
            ..rule("no-admin", RuleAction::Deny)
        },
    ]);
    let d = decide(&a, CHECKOUT, "GET", "/admin/users");
    assert_eq!((d.allow, d.rule), (false, Some(1)));
    assert!(decide(&a, CHECKOUT, "GET", "/public").allow);
}

#[test]
fn namespaces_match_the_ns_of_the_principal() {
    let a = authz(vec![Rule {
        namespaces: m(&["shop"]),
        ..rule("shop", RuleAction::Allow)
    }]);
    assert!(decide(&a, CHECKOUT, "GET", "/").allow);
    assert!(!decide(&a, NEWSLETTER, "GET", "/").allow);
}

#[test]
fn wildcard_forms_match_prefix_suffix_and_presence() {
    assert!(StrMatch::compile("spiffe://cluster.local/ns/shop/*")
        .unwrap()
        .matches(CHECKOUT));
    assert!(StrMatch::compile("*/sa/checkout")
        .unwrap()
        .matches(CHECKOUT));
    assert!(!StrMatch::compile("*/sa/checkout")
        .unwrap()
        .matches(NEWSLETTER));
    assert!(StrMatch::compile("*").unwrap().matches(""));
    assert!(StrMatch::compile("a*b").is_err());
    assert!(StrMatch::compile("**").is_err());
    assert!(StrMatch::compile("").is_err());
}

#[test]
fn not_fields_exclude_what_they_match() {
    let a = authz(vec![Rule {
        not_namespaces: m(&["marketing"]),
        not_paths: m(&["/internal/*"]),
        not_methods: vec!["DELETE".into()],
        ..rule("most", RuleAction::Allow)
    }]);
    assert!(decide(&a, CHECKOUT, "GET", "/v1").allow);
    assert!(!decide(&a, NEWSLETTER, "GET", "/v1").allow);
    assert!(!decide(&a, CHECKOUT, "GET", "/internal/x").allow);
    assert!(!decide(&a, CHECKOUT, "DELETE", "/v1").allow);
}

#[test]
fn path_rules_ignore_the_query_string_and_fragment() {
    let a = authz(vec![checkout_may_charge()]);
    assert!(decide(&a, CHECKOUT, "POST", "/v1/charges?card=1#x").allow);
    let d = authz(vec![
        rule("all", RuleAction::Allow),
        Rule {
            paths: m(&["/admin"]),
            ..rule("no-admin", RuleAction::Deny)
        },
    ]);
    assert!(!decide(&d, CHECKOUT, "GET", "/admin?x=/public").allow);
}

#[test]
fn unnormalized_path_never_matches_an_allow_rule() {
    let a = authz(vec![rule("all", RuleAction::Allow)]);
    for p in [
        "/v1/../admin",
        "/v1/./x",
        "//v1",
        "/v1//x",
        "/a%2Fb",
        "/a%5cb",
        "/%2e%2e/x",
        "/a\\b",
        "*",
        "v1",
    ] {
        let d = decide(&a, CHECKOUT, "GET", p);
        assert_eq!((d.allow, d.reason), (false, Reason::Default), "{p}");
    }
    assert!(decide(&a, CHECKOUT, "GET", "/v1/").allow);
    assert!(decide(&a, CHECKOUT, "GET", "/").allow);
}

#[test]
fn unnormalized_path_counts_as_matching_a_deny_rule() {
    let a = authz(vec![Rule {
        paths: m(&["/admin"]),
        ..rule("no-admin", RuleAction::Deny)
    }]);
    let mut open = a.clone();
    open.default_allow = true;
    let d = decide(&open, CHECKOUT, "GET", "/x/../admin");
    assert_eq!((d.allow, d.rule), (false, Some(0)));
    assert!(decide(&open, CHECKOUT, "GET", "/x/admin").allow);
}

#[test]
fn empty_rule_list_falls_to_default_action() {
    let mut a = authz(vec![]);
    assert!(!decide(&a, CHECKOUT, "GET", "/").allow);
    a.default_allow = true;
    let d = decide(&a, CHECKOUT, "GET", "/");
    assert_eq!((d.allow, d.reason), (true, Reason::Default));
}

#[test]
fn plaintext_is_refused_when_mtls_is_required() {
    let a = authz(vec![rule("all", RuleAction::Allow)]);
    let d = a.decide(&a.authenticate(&Peer::default()), "GET", "/");
    assert_eq!((d.allow, d.reason), (false, Reason::NoMtls));
}

#[test]
fn plaintext_is_anonymous_when_mtls_is_optional() {
    let mut a = authz(vec![Rule {
        principals: m(&["*"]),
        ..rule("authenticated", RuleAction::Allow)
    }]);
    a.require_mtls = false;
    let auth = a.authenticate(&Peer::default());
    assert_eq!(auth, Authentication::Anonymous);
    assert!(!a.decide(&auth, "GET", "/").allow, "* needs a principal");
    a.rules.push(rule("anyone", RuleAction::Allow));
    assert!(a.decide(&auth, "GET", "/").allow);
}

#[test]
fn old_or_unknown_tls_version_is_weak() {
    let a = authz(vec![rule("all", RuleAction::Allow)]);
    for v in [Some("TLSv1.1"), Some("TLSv1"), Some("bogus"), None] {
        let p = Peer {
            tls_version: v.map(Into::into),
            ..peer(CHECKOUT)
        };
        assert_eq!(
            a.authenticate(&p),
            Authentication::Refused(Reason::WeakTls),
            "{v:?}"
        );
    }
}

#[test]
fn foreign_trust_domain_and_non_spiffe_san_are_untrusted() {
    let a = authz(vec![rule("all", RuleAction::Allow)]);
    for id in [
        "spiffe://evil.example/ns/shop/sa/checkout",
        "https://shop.example/checkout",
    ] {
        let d = decide(&a, id, "GET", "/");
        assert_eq!(
            (d.allow, d.reason),
            (false, Reason::UntrustedIdentity),
            "{id}"
        );
    }
    let no_san = Peer {
        uri_san: None,
        ..peer(CHECKOUT)
    };
    assert_eq!(
        a.authenticate(&no_san),
        Authentication::Refused(Reason::UntrustedIdentity)
    );
}

#[test]
fn any_trust_domain_is_accepted_when_none_is_listed() {
    let mut a = authz(vec![rule("all", RuleAction::Allow)]);
    a.trust_domains.clear();
    assert!(decide(&a, "spiffe://other.example/ns/x/sa/y", "GET", "/").allow);
}

#[test]
fn deny_rule_with_not_principals_catches_everyone_else() {
    let a = authz(vec![
        rule("all", RuleAction::Allow),
        Rule {
            not_principals: m(&[CHECKOUT]),
            ..rule("only-checkout", RuleAction::Deny)
        },
    ]);
    assert!(decide(&a, CHECKOUT, "GET", "/").allow);
    assert!(!decide(&a, NEWSLETTER, "GET", "/").allow);
}

#[test]
fn xfcc_is_ignored_unless_trusted_and_the_certificate_names_no_one() {
    let claim = format!("By=spiffe://cluster.local/ns/payments/sa/api;URI={CHECKOUT}");
    let mut a = authz(vec![Rule {
        principals: m(&[CHECKOUT]),
        ..rule("checkout", RuleAction::Allow)
    }]);
    // A caller with its own certificate claiming to be checkout is judged by its certificate.
    let spoof = Peer {
        xfcc: Some(claim.clone()),
        ..peer(NEWSLETTER)
    };
    a.trust_xfcc = true;
    assert!(!a.decide(&a.authenticate(&spoof), "GET", "/").allow);
    // A front proxy whose certificate has no URI SAN: XFCC speaks only when trusted.
    let proxy = Peer {
        uri_san: None,
        xfcc: Some(claim),
        ..peer(CHECKOUT)
    };
    let auth = a.authenticate(&proxy);
    assert!(matches!(
        auth,
        Authentication::Principal {
            proof: Proof::Xfcc,
            ..
        }
    ));
    assert!(a.decide(&auth, "GET", "/").allow);
    a.trust_xfcc = false;
    assert_eq!(
        a.authenticate(&proxy),
        Authentication::Refused(Reason::UntrustedIdentity)
    );
    // Never over plaintext, even with mTLS optional.
    a.trust_xfcc = true;
    a.require_mtls = false;
    let plain = Peer {
        mtls: false,
        ..proxy
    };
    assert_eq!(a.authenticate(&plain), Authentication::Anonymous);
}

/// The worked examples of Istio's AuthorizationPolicy reference and tasks, written as this
/// plugin's rules (one Istio rule with several sources or operations becomes several rules), and
/// the requests they must allow or deny.
#[test]
fn matches_istio_reference_examples() {
    const SLEEP: &str = "spiffe://cluster.local/ns/default/sa/sleep";
    const TEST_NS: &str = "spiffe://cluster.local/ns/test/sa/any";
    const DEV_NS: &str = "spiffe://cluster.local/ns/dev/sa/app";
    const FOO_NS: &str = "spiffe://cluster.local/ns/foo/sa/app";
    // (what it shows, rules, [(principal, method, path, allowed)])
    type Example<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str, &'a str, bool)]);
    let examples: &[Example] = &[
        (
            "allow sleep or namespace test: GET /info* or POST /data",
            r#"[{"name":"a","principals":["spiffe://cluster.local/ns/default/sa/sleep"],"methods":["GET"],"paths":["/info*"]},
                {"name":"b","principals":["spiffe://cluster.local/ns/default/sa/sleep"],"methods":["POST"],"paths":["/data"]},
                {"name":"c","namespaces":["test"],"methods":["GET"],"paths":["/info*"]},
                {"name":"d","namespaces":["test"],"methods":["POST"],"paths":["/data"]}]"#,
            &[
                (SLEEP, "GET", "/info/1", true),
                (SLEEP, "GET", "/infos", true),
                (TEST_NS, "POST", "/data", true),
                (SLEEP, "POST", "/info", false),
                (TEST_NS, "GET", "/data", false),
                (DEV_NS, "GET", "/info", false),
            ],
        ),
        (
            "allow nothing: no rules",
            "[]",
            &[(SLEEP, "GET", "/", false)],
        ),
        (
            "allow all: one empty rule",
            r#"[{"name":"all"}]"#,
            &[(SLEEP, "GET", "/", true), (DEV_NS, "DELETE", "/x", true)],
        ),
        (
            "deny all: one empty deny rule beats an allow-all",
            r#"[{"name":"all"},{"name":"none","action":"deny"}]"#,
            &[(SLEEP, "GET", "/", false)],
        ),
        (
            "deny GET, allow the rest",
            r#"[{"name":"all"},{"name":"deny-method-get","action":"deny","methods":["GET"]}]"#,
            &[(SLEEP, "GET", "/ip", false), (SLEEP, "POST", "/ip", true)],
        ),
        (
            "deny POST from namespace dev",
            r#"[{"name":"all"},{"name":"d","action":"deny","namespaces":["dev"],"methods":["POST"]}]"#,
            &[
                (DEV_NS, "POST", "/", false),
                (DEV_NS, "GET", "/", true),
                (SLEEP, "POST", "/", true),
            ],
        ),
        (
            "deny everyone not from namespace foo",
            r#"[{"name":"all"},{"name":"d","action":"deny","not_namespaces":["foo"]}]"#,
            &[(FOO_NS, "GET", "/", true), (SLEEP, "GET", "/", false)],
        ),
        (
            "deny /admin unless from sleep",
            r#"[{"name":"all"},{"name":"d","action":"deny","paths":["/admin"],"not_principals":["spiffe://cluster.local/ns/default/sa/sleep"]}]"#,
            &[
                (SLEEP, "GET", "/admin", true),
                (DEV_NS, "GET", "/admin", false),
                (DEV_NS, "GET", "/other", true),
            ],
        ),
        (
            "path prefix and suffix forms",
            r#"[{"name":"p","paths":["/test/*","*/info"]}]"#,
            &[
                (SLEEP, "GET", "/test/a/b", true),
                (SLEEP, "GET", "/a/b/info", true),
                (SLEEP, "GET", "/testx", false),
                (SLEEP, "GET", "/info/x", false),
            ],
        ),
        (
            "principal prefix, suffix and presence",
            r#"[{"name":"p","principals":["spiffe://cluster.local/ns/default/*"]},
                {"name":"s","principals":["*/sa/app"],"methods":["GET"]}]"#,
            &[
                (SLEEP, "PUT", "/", true),
                (DEV_NS, "GET", "/", true),
                (DEV_NS, "PUT", "/", false),
                (TEST_NS, "GET", "/", false),
            ],
        ),
    ];
    for (title, rules, requests) in examples {
        let json = format!(r#"{{"authorization":{{"rules":{rules}}}}}"#);
        let a = crate::config::Policy::parse(json.as_bytes())
            .unwrap()
            .authorizer;
        for (principal, method, path, want) in *requests {
            let d = a.decide(&a.authenticate(&peer(principal)), method, path);
            assert_eq!(d.allow, *want, "{title}: {principal} {method} {path}");
        }
    }
}

/// Rules of every shape the screens treat differently: exact principals, wildcard principals,
/// namespaces only, `not_principals`, methods known and unknown, none of these.
fn screened_rules() -> Vec<Rule> {
    let mut rules = Vec::new();
    let mut r = rule("exact-two", RuleAction::Allow);
    r.principals = m(&[CHECKOUT, NEWSLETTER]);
    r.methods = vec!["GET".into(), "PURGE".into()];
    rules.push(r);
    let mut r = rule("wildcard", RuleAction::Allow);
    r.principals = m(&["spiffe://cluster.local/ns/shop/*"]);
    r.paths = m(&["/orders/*"]);
    rules.push(r);
    let mut r = rule("namespace", RuleAction::Deny);
    r.namespaces = m(&["marketing"]);
    r.methods = vec!["DELETE".into()];
    rules.push(r);
    let mut r = rule("everyone-else", RuleAction::Deny);
    r.not_principals = m(&[CHECKOUT]);
    r.paths = m(&["/admin"]);
    rules.push(r);
    let mut r = rule("any-post", RuleAction::Allow);
    r.methods = vec!["POST".into()];
    rules.push(r);
    rules
}

#[test]
fn screens_never_change_a_decision() {
    let screened = authz(screened_rules());
    let unscreened = Authorizer {
        screens: Screens::default(),
        ..screened.clone()
    };
    assert_ne!(screened.screens, unscreened.screens);
    let callers = [
        Authentication::Anonymous,
        Authentication::Principal {
            id: SpiffeId::parse(CHECKOUT).unwrap(),
            proof: Proof::Certificate,
        },
        Authentication::Principal {
            id: SpiffeId::parse(NEWSLETTER).unwrap(),
            proof: Proof::Certificate,
        },
        Authentication::Principal {
            id: SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/cart").unwrap(),
            proof: Proof::Certificate,
        },
    ];
    let methods = ["GET", "POST", "DELETE", "PURGE", "BREW", "get"];
    let paths = ["/", "/orders/1", "/admin", "/a/../admin", "/orders/1?x=2"];
    let mut allowed = 0;
    for auth in &callers {
        for method in methods {
            for path in paths {
                let want = unscreened.decide(auth, method, path);
                assert_eq!(
                    screened.decide(auth, method, path),
                    want,
                    "{auth:?} {method} {path}"
                );
                allowed += usize::from(want.allow);
            }
        }
    }
    // The grid reaches both outcomes through several rules, not one answer throughout.
    assert!(allowed > 10 && allowed < 100, "{allowed}");
}

#[test]
fn a_rule_the_screen_passes_over_is_one_that_could_not_match() {
    let a = authz(screened_rules());
    let anonymous = Authentication::Anonymous;
    // An anonymous caller passes every principal rule by and reaches `any-post`.
    assert_eq!(a.decide(&anonymous, "POST", "/").rule, Some(4));
    // An unknown method shares the bit of all unknown methods: `PURGE` is still found.
    let checkout = Authentication::Principal {
        id: SpiffeId::parse(CHECKOUT).unwrap(),
        proof: Proof::Certificate,
    };
    assert_eq!(a.decide(&checkout, "PURGE", "/").rule, Some(0));
    assert_eq!(a.decide(&checkout, "BREW", "/").rule, None);
}

/// An authorizer for a waypoint: the caller is the HBONE tunnel's peer, from filter state.
fn waypoint(rules: Vec<Rule>) -> Authorizer {
    Authorizer {
        source: IdentitySource::IstioWaypoint,
        ..authz(rules)
    }
}

/// What a waypoint's internal connection shows: no TLS of its own, the tunnel peer's ID (if any)
/// as the waypoint recorded it.
fn tunnel(principal: Option<&str>) -> Peer {
    Peer {
        mtls: principal.is_some(),
        uri_san: principal.map(str::to_owned),
        source: Some("127.0.0.6:41234".into()),
        ..Peer::default()
    }
}

#[test]
fn in_a_waypoint_the_tunnel_peer_is_the_principal_whatever_tls_the_connection_shows() {
    let a = waypoint(vec![checkout_may_charge()]);
    let auth = a.authenticate(&tunnel(Some(CHECKOUT)));
    assert_eq!(
        auth,
        Authentication::Principal {
            id: SpiffeId::parse(CHECKOUT).unwrap(),
            proof: Proof::IstioWaypoint,
        }
    );
    assert!(a.decide(&auth, "POST", "/v1/charges").allow);
    // The internal connection has no TLS version: not a reason to refuse the tunnel's caller.
    let mut old = tunnel(Some(CHECKOUT));
    old.tls_version = Some("TLSv1.0".into());
    assert!(matches!(
        a.authenticate(&old),
        Authentication::Principal { .. }
    ));
}

#[test]
fn in_a_waypoint_no_tunnel_identity_is_no_mtls_or_anonymous() {
    let mut a = waypoint(vec![rule("all", RuleAction::Allow)]);
    assert_eq!(
        a.authenticate(&tunnel(None)),
        Authentication::Refused(Reason::NoMtls)
    );
    a.require_mtls = false;
    assert_eq!(a.authenticate(&tunnel(None)), Authentication::Anonymous);
}

#[test]
fn in_a_waypoint_xfcc_never_names_the_caller() {
    let mut a = waypoint(vec![rule("all", RuleAction::Allow)]);
    a.trust_xfcc = true;
    let mut peer = tunnel(None);
    peer.xfcc = Some(format!("URI={CHECKOUT}"));
    assert_eq!(
        a.authenticate(&peer),
        Authentication::Refused(Reason::NoMtls)
    );
    peer.uri_san = Some(NEWSLETTER.into());
    peer.mtls = true;
    let Authentication::Principal { id, proof } = a.authenticate(&peer) else {
        panic!("the tunnel's peer is the caller");
    };
    assert_eq!((id.as_str(), proof), (NEWSLETTER, Proof::IstioWaypoint));
}

#[test]
fn in_a_waypoint_a_value_of_several_sans_or_a_foreign_domain_is_untrusted() {
    let a = waypoint(vec![rule("all", RuleAction::Allow)]);
    for value in [
        // Envoy joins a certificate's URI SANs with ','.
        format!("{CHECKOUT},{NEWSLETTER}"),
        "spiffe://evil.example/ns/shop/sa/checkout".to_string(),
        "checkout".to_string(),
    ] {
        assert_eq!(
            a.authenticate(&tunnel(Some(&value))),
            Authentication::Refused(Reason::UntrustedIdentity),
            "{value}"
        );
    }
}
