//! Configuration: defaults, the SPEC example, and one rejection per kind of mistake, each naming its key.

use super::*;

fn err(json: &str) -> String {
    match Policy::parse(json.as_bytes()) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_configuration_means_all_defaults() {
    for input in ["", "  \n", "{}"] {
        let p = Policy::parse(input.as_bytes()).unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert!(!p.strict);
        let a = &p.authorizer;
        assert!(a.require_mtls);
        assert_eq!(a.min_tls_version, TlsVersion::Tls12);
        assert!(a.trust_domains.is_empty());
        assert!(!a.trust_xfcc);
        assert!(!a.default_allow);
        assert!(a.rules.is_empty());
        let r = &p.redaction;
        assert!(r.request_headers && r.request_body && r.response_headers && r.response_body);
        assert_eq!(r.masking, Masking::default());
        assert_eq!(r.compressed_body, CompressedBody::Block);
        assert_eq!(p.audit.sink, Sink::Log);
        assert_eq!(
            Policy::parse(br#"{"audit":{"sink":"access_log"}}"#)
                .map(|p| p.audit.sink)
                .ok(),
            Some(Sink::AccessLog)
        );
    }
}

const SPEC_EXAMPLE: &str = r#"{
  "mode": "enforce",
  "strict": false,
  "identity": {
    "require_mtls": true,
    "min_tls_version": "TLSv1.2",
    "trust_domains": ["cluster.local"],
    "trust_xfcc": false
  },
  "authorization": {
    "default_action": "deny",
    "rules": [
      {
        "name": "checkout-may-charge",
        "action": "allow",
        "principals": ["spiffe://cluster.local/ns/shop/sa/checkout"],
        "namespaces": [], "paths": ["/v1/charges", "/v1/charges/*"], "methods": ["POST"],
        "not_principals": [], "not_namespaces": [], "not_paths": [], "not_methods": [],
        "pan": ["request"]
      }
    ]
  },
  "redaction": {
    "request_headers": true, "request_body": true,
    "response_headers": true, "response_body": true,
    "keep_first": 0, "keep_last": 4, "mask_char": "*",
    "patterns": [{"name": "us-ssn", "regex": "\\b\\d{3}-\\d{2}-\\d{4}\\b"}],
    "compressed_body": "block"
  },
  "audit": { "sink": "log" }
}"#;

#[test]
fn accepts_the_spec_example() {
    let p = Policy::parse(SPEC_EXAMPLE.as_bytes()).unwrap();
    let rule = &p.authorizer.rules[0];
    assert_eq!(rule.name, "checkout-may-charge");
    assert_eq!(rule.action, RuleAction::Allow);
    assert_eq!(rule.paths.len(), 2);
    assert_eq!(
        rule.pan,
        PanGrant {
            request: true,
            response: false
        }
    );
    assert_eq!(p.redaction.patterns[0].name, "us-ssn");
    assert_eq!(p.authorizer.trust_domains, ["cluster.local"]);
}

#[test]
fn rule_action_defaults_to_allow_as_in_istio() {
    let p = Policy::parse(br#"{"authorization":{"rules":[{"name":"a"}]}}"#).unwrap();
    assert_eq!(p.authorizer.rules[0].action, RuleAction::Allow);
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let e = err(r#"{"mdoe":"enforce"}"#);
    assert!(e.starts_with("mdoe: unknown field `mdoe`"), "{e}");
    let e = err(r#"{"authorization":{"rules":[{"name":"a"},{"name":"b","principal":[]}]}}"#);
    assert!(
        e.starts_with("authorization.rules[1].principal: unknown field"),
        "{e}"
    );
    let e = err(r#"{"redaction":{"patterns":[{"name":"x","regex":"a","flags":"i"}]}}"#);
    assert!(
        e.starts_with("redaction.patterns[0].flags: unknown field"),
        "{e}"
    );
}

#[test]
fn wrong_types_are_rejected_with_their_path() {
    assert!(err(r#"{"strict":"yes"}"#).starts_with("strict: invalid type"));
    assert!(err(r#"{"identity":{"trust_domains":"cluster.local"}}"#)
        .starts_with("identity.trust_domains: invalid type"));
    assert!(
        err(r#"{"redaction":{"keep_last":-1}}"#).starts_with("redaction.keep_last: invalid value")
    );
    assert!(err(r#"{"mode":"audit"}"#).starts_with("mode: unknown variant `audit`"));
    assert_eq!(err(r#"[]"#), "must be a JSON object");
    assert_eq!(
        err(r#"{"identity":[true]}"#),
        "identity: must be a JSON object"
    );
    assert_eq!(
        err(r#"{"authorization":{"rules":[["a"]]}}"#),
        "authorization.rules[0]: must be a JSON object"
    );
    assert_eq!(
        err(r#"{"redaction":{"patterns":[["x","y"]]}}"#),
        "redaction.patterns[0]: must be a JSON object"
    );
    assert!(err(r#"{"mode":"enforce""#).starts_with("not JSON: EOF"));
}

#[test]
fn a_key_given_twice_is_rejected() {
    let e = err(r#"{"mode":"dry_run","mode":"enforce"}"#);
    assert!(e.starts_with("duplicate field `mode`"), "{e}");
}

#[test]
fn missing_rule_name_is_rejected() {
    let e = err(r#"{"authorization":{"rules":[{"action":"deny"}]}}"#);
    assert!(
        e.starts_with("authorization.rules[0]: missing field `name`"),
        "{e}"
    );
}

#[test]
fn impossible_values_are_rejected_with_their_path() {
    let cases = [
        (
            r#"{"identity":{"min_tls_version":"TLSv9"}}"#,
            "identity.min_tls_version: unknown TLS version",
        ),
        (
            r#"{"identity":{"trust_domains":["Cluster.Local"]}}"#,
            "identity.trust_domains[0]: not a trust domain",
        ),
        (
            r#"{"identity":{"trust_domains":["a/b"]}}"#,
            "identity.trust_domains[0]: not a trust domain",
        ),
        (
            r#"{"authorization":{"rules":[{"name":"a"},{"name":"a"}]}}"#,
            "authorization.rules[1].name: duplicate rule name",
        ),
        (
            r#"{"authorization":{"rules":[{"name":" "}]}}"#,
            "authorization.rules[0].name: must not be empty",
        ),
        (
            r#"{"authorization":{"rules":[{"name":"a","paths":["/a*b"]}]}}"#,
            "authorization.rules[0].paths[0]: '*' is allowed only",
        ),
        (
            r#"{"authorization":{"rules":[{"name":"a","not_principals":[""]}]}}"#,
            "authorization.rules[0].not_principals[0]: empty value",
        ),
        (
            r#"{"authorization":{"rules":[{"name":"a","methods":["GET POST"]}]}}"#,
            "authorization.rules[0].methods[0]: not an HTTP method",
        ),
        (
            r#"{"authorization":{"rules":[{"name":"a","action":"deny","pan":["request"]}]}}"#,
            "authorization.rules[0].pan: a deny rule cannot grant PANs",
        ),
        (
            r#"{"authorization":{"rules":[{"name":"a","pan":["sideways"]}]}}"#,
            "authorization.rules[0].pan[0]: unknown variant",
        ),
        (
            r#"{"identity":{"source":"ztunnel"}}"#,
            "identity.source: unknown variant `ztunnel`, expected `peer_certificate` or `istio_waypoint`",
        ),
        (
            r#"{"redaction":{"keep_first":9}}"#,
            "redaction.keep_first: at most 8",
        ),
        (
            r#"{"redaction":{"keep_last":5}}"#,
            "redaction.keep_last: at most 4",
        ),
        (
            r#"{"redaction":{"mask_char":"**"}}"#,
            "redaction.mask_char: must be exactly one",
        ),
        (
            r#"{"redaction":{"mask_char":"7"}}"#,
            "redaction.mask_char: must be exactly one",
        ),
        (
            r#"{"redaction":{"mask_char":"é"}}"#,
            "redaction.mask_char: must be exactly one",
        ),
        (
            r#"{"redaction":{"patterns":[{"name":"x","regex":"("}]}}"#,
            "redaction.patterns[0].regex: invalid regex",
        ),
        (
            r#"{"redaction":{"patterns":[{"name":"x","regex":"a"},{"name":"x","regex":"b"}]}}"#,
            "redaction.patterns[1].name: duplicate pattern name",
        ),
        (
            r#"{"redaction":{"compressed_body":"gunzip"}}"#,
            "redaction.compressed_body: unknown variant",
        ),
        (
            r#"{"audit":{"sink":"otlp_http"}}"#,
            "audit.cluster: required with sink \"otlp_http\"",
        ),
        (
            r#"{"audit":{"cluster":"otel"}}"#,
            "audit.cluster: only has an effect with sink \"otlp_http\"",
        ),
        (
            r#"{"audit":{"sink":"access_log","required":true}}"#,
            "audit.required: only has an effect with sink \"otlp_http\"",
        ),
        (
            r#"{"audit":{"sink":"otlp_http","cluster":"otel","max_batch":0}}"#,
            "audit.max_batch: must be from 1 to 10000",
        ),
        (
            r#"{"audit":{"sink":"otlp_http","cluster":"otel","max_batch":50,"max_queue":10}}"#,
            "audit.max_queue: must be at least max_batch",
        ),
        (
            r#"{"audit":{"sink":"otlp_http","cluster":"otel","path":"v1/logs"}}"#,
            "audit.path: must start with '/'",
        ),
        (
            r#"{"audit":{"sink":"syslog"}}"#,
            "audit.sink: unknown variant",
        ),
    ];
    for (json, want) in cases {
        let e = err(json);
        assert!(e.starts_with(want), "{json}\n got: {e}\nwant: {want}");
    }
}

#[test]
fn keeps_bin_and_last_four_at_the_limits() {
    let p = Policy::parse(br##"{"redaction":{"keep_first":8,"keep_last":4,"mask_char":"#"}}"##)
        .unwrap();
    assert_eq!(
        p.redaction.masking,
        Masking {
            keep_first: 8,
            keep_last: 4,
            mask_char: b'#'
        }
    );
}

#[test]
fn strict_turns_the_first_linter_finding_into_a_rejection() {
    let loose = r#"{"authorization":{"default_action":"allow","rules":[{"name":"all"}]}}"#;
    let p = Policy::parse(loose.as_bytes()).unwrap();
    assert_eq!(p.findings.len(), 2);
    let strict = loose.replacen('{', r#"{"strict":true,"#, 1);
    let e = err(&strict);
    assert!(
        e.starts_with("authorization.default_action: requests no rule matches are allowed"),
        "{e}"
    );
    assert!(
        e.contains("[default_allow] (strict: 2 linter finding(s)"),
        "{e}"
    );
}

#[test]
fn otlp_sink_keys_have_defaults() {
    let p = Policy::parse(br#"{"audit":{"sink":"otlp_http","cluster":"otel-collector"}}"#).unwrap();
    let o = p.audit.otlp.unwrap();
    assert_eq!(
        (o.cluster.as_str(), o.authority.as_str(), o.path.as_str()),
        ("otel-collector", "otel-collector", "/v1/logs")
    );
    assert_eq!((o.max_batch, o.max_queue, o.required), (100, 1000, false));
    assert_eq!(o.flush_interval, std::time::Duration::from_millis(1000));
    assert_eq!(o.timeout, std::time::Duration::from_millis(2000));
}

#[test]
fn a_compiled_policy_can_be_shared_by_every_worker_thread() {
    // The native build shares one compiled policy among Envoy's workers.
    fn shareable<T: Send + Sync>() {}
    shareable::<Policy>();
}
