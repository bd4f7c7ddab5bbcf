//! The linter: each finding in a configuration that has it, and none in one that does not.

use crate::config::Policy;

fn codes(json: &str) -> Vec<(&'static str, String)> {
    let p = Policy::parse(json.as_bytes()).unwrap();
    super::lint(&p.authorizer)
        .into_iter()
        .map(|f| (f.code, f.path))
        .collect()
}

const TIGHT: &str = r#"{
  "identity": {"trust_domains": ["cluster.local"]},
  "authorization": {"rules": [
    {"name": "checkout", "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
     "paths": ["/v1/charges"], "methods": ["POST"], "pan": ["request"]},
    {"name": "no-admin", "action": "deny", "paths": ["/admin/*"]}
  ]}
}"#;

#[test]
fn a_least_privilege_policy_has_no_findings() {
    assert_eq!(codes(TIGHT), vec![]);
}

#[test]
fn flags_optional_mtls_and_default_allow() {
    let got =
        codes(r#"{"identity":{"require_mtls":false},"authorization":{"default_action":"allow"}}"#);
    assert_eq!(
        got,
        vec![
            ("mtls_optional", "identity.require_mtls".to_string()),
            ("default_allow", "authorization.default_action".to_string())
        ]
    );
}

#[test]
fn flags_allow_rules_that_admit_everything() {
    for rule in [
        r#"{"name":"all"}"#,
        r#"{"name":"all","principals":["*"],"paths":["*"]}"#,
    ] {
        let got = codes(&format!(r#"{{"authorization":{{"rules":[{rule}]}}}}"#));
        assert_eq!(
            got,
            vec![("permissive_allow", "authorization.rules[0]".to_string())],
            "{rule}"
        );
    }
    // Any restriction at all makes it not "everything".
    assert_eq!(
        codes(r#"{"authorization":{"rules":[{"name":"a","methods":["GET"]}]}}"#),
        vec![]
    );
}

#[test]
fn flags_pan_grants_to_callers_not_named_one_by_one() {
    for who in [
        r#""principals":["*"]"#,
        r#""principals":["spiffe://cluster.local/ns/risk/*"]"#,
        r#""paths":["/x"]"#,
    ] {
        let json =
            format!(r#"{{"authorization":{{"rules":[{{"name":"g",{who},"pan":["response"]}}]}}}}"#);
        assert!(
            codes(&json).contains(&(
                "pan_grant_to_wildcard",
                "authorization.rules[0].pan".to_string()
            )),
            "{who}"
        );
    }
}

#[test]
fn flags_rules_that_can_never_match() {
    let cases = [
        r#"{"name":"x","principals":["spiffe://cluster.local/ns/a/sa/b"],"not_principals":["spiffe://cluster.local/ns/a/*"]}"#,
        r#"{"name":"x","methods":["GET"],"not_methods":["GET"]}"#,
        r#"{"name":"x","methods":["get"]}"#,
        r#"{"name":"x","principals":["spiffe://other.domain/ns/a/sa/b"]}"#,
        r#"{"name":"x","principals":["checkout"]}"#,
        r#"{"name":"x","paths":["/a/../b"]}"#,
        r#"{"name":"x","paths":["/a?b=1"]}"#,
        r#"{"name":"x","paths":["/api/*"],"not_paths":["*"]}"#,
    ];
    for rule in cases {
        let json = format!(
            r#"{{"identity":{{"trust_domains":["cluster.local"]}},"authorization":{{"rules":[{rule}]}}}}"#
        );
        assert_eq!(
            codes(&json),
            vec![("never_matches", "authorization.rules[0]".to_string())],
            "{rule}"
        );
    }
}

#[test]
fn flags_rules_shadowed_by_earlier_or_deny_rules() {
    let json = r#"{"authorization":{"rules":[
      {"name":"shop","namespaces":["shop"],"paths":["/v1/*"]},
      {"name":"checkout","principals":["spiffe://cluster.local/ns/shop/sa/checkout"],"namespaces":["shop"],"paths":["/v1/charges"],"methods":["POST"],"pan":["request"]},
      {"name":"block-v1","action":"deny","paths":["/v1/*"],"methods":["DELETE"]},
      {"name":"deletes","namespaces":["ops"],"paths":["/v1/orders"],"methods":["DELETE"]}
    ]}}"#;
    let got = codes(json);
    assert!(
        got.contains(&("shadowed", "authorization.rules[1]".to_string())),
        "{got:?}"
    );
    assert!(
        got.contains(&("shadowed", "authorization.rules[3]".to_string())),
        "{got:?}"
    );
    assert!(
        !got.iter().any(|(_, p)| p == "authorization.rules[0]"),
        "{got:?}"
    );
}

#[test]
fn exclusions_keep_a_rule_from_shadowing() {
    let json = r#"{"authorization":{"rules":[
      {"name":"shop","namespaces":["shop"],"not_paths":["/admin/*"]},
      {"name":"shop-admin","namespaces":["shop"],"paths":["/admin/users"]}
    ]}}"#;
    assert_eq!(codes(json), vec![]);
}

#[test]
fn flags_what_a_waypoint_cannot_honour() {
    let base = r#""authorization": {"rules": [{"name": "checkout",
        "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"], "methods": ["GET"]}]}"#;
    let waypoint = format!(r#"{{"identity": {{"source": "istio_waypoint"}}, {base}}}"#);
    assert_eq!(codes(&waypoint), vec![]);
    let got = codes(&format!(
        r#"{{"identity": {{"source": "istio_waypoint", "trust_xfcc": true,
            "min_tls_version": "TLSv1.3"}}, {base}}}"#
    ));
    assert_eq!(
        got,
        vec![
            ("xfcc_ignored", "identity.trust_xfcc".to_string()),
            (
                "tls_version_unchecked",
                "identity.min_tls_version".to_string()
            )
        ]
    );
    // The same settings in a sidecar are honoured, and not flagged.
    let sidecar =
        format!(r#"{{"identity": {{"trust_xfcc": true, "min_tls_version": "TLSv1.3"}}, {base}}}"#);
    assert_eq!(codes(&sidecar), vec![]);
}
