//! The policy linter: flags configurations that are more permissive than intended or that contain
//! rules which can never decide anything. Run at configure time (findings go into the `config`
//! event; with `strict` they reject the configuration) and by the CLI's `lint`.

use serde::Serialize;

use crate::authz::{Authorizer, Rule, RuleAction, StrMatch};
use crate::identity::{IdentitySource, SpiffeId, TlsVersion};

/// One finding: a stable code, the configuration key it is about, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub path: String,
    pub message: String,
}

fn finding(code: &'static str, path: String, message: String) -> Finding {
    Finding {
        code,
        path,
        message,
    }
}

/// Lints the compiled identity and authorization settings.
pub fn lint(a: &Authorizer) -> Vec<Finding> {
    let mut out = Vec::new();
    if !a.require_mtls {
        out.push(finding(
            "mtls_optional",
            "identity.require_mtls".into(),
            "plaintext and certificate-less callers are let through to the rules (PCI DSS 4.2.1)"
                .into(),
        ));
    }
    if a.source == IdentitySource::IstioWaypoint {
        waypoint_findings(a, &mut out);
    }
    if a.default_allow {
        out.push(finding(
            "default_allow",
            "authorization.default_action".into(),
            "requests no rule matches are allowed: least privilege wants deny (PCI DSS 7.2)".into(),
        ));
    }
    for (i, rule) in a.rules.iter().enumerate() {
        let at = format!("authorization.rules[{i}]");
        if rule.action == RuleAction::Allow && admits_everything(rule) {
            out.push(finding(
                "permissive_allow",
                at.clone(),
                format!(
                    "rule {:?} allows any principal, any path and any method",
                    rule.name
                ),
            ));
        }
        if (rule.pan.request || rule.pan.response) && !pins_principals(rule) {
            out.push(finding(
                "pan_grant_to_wildcard",
                format!("{at}.pan"),
                format!(
                    "rule {:?} lets card numbers through for callers not named one by one",
                    rule.name
                ),
            ));
        }
        if let Some(why) = never_matches(rule, a) {
            out.push(finding(
                "never_matches",
                at.clone(),
                format!("rule {:?} can never match: {why}", rule.name),
            ));
            continue;
        }
        // Deny rules apply before allow rules whatever their order.
        let earlier = a.rules.iter().enumerate().filter(|(j, r)| {
            (*j < i && r.action == rule.action)
                || (r.action == RuleAction::Deny && rule.action == RuleAction::Allow)
        });
        for (j, other) in earlier {
            if covers(other, rule) {
                let what = if other.action == rule.action {
                    "every request it matches is decided earlier by"
                } else {
                    "every request it matches is denied by"
                };
                out.push(finding(
                    "shadowed",
                    at.clone(),
                    format!(
                        "rule {:?} never decides: {what} rule {:?} (authorization.rules[{j}])",
                        rule.name, other.name
                    ),
                ));
                break;
            }
        }
    }
    out
}

/// Settings a waypoint cannot honour: there the caller is the HBONE tunnel's peer, and the filter
/// sees neither the tunnel's TLS nor any use for XFCC.
fn waypoint_findings(a: &Authorizer, out: &mut Vec<Finding>) {
    if a.trust_xfcc {
        out.push(finding(
            "xfcc_ignored",
            "identity.trust_xfcc".into(),
            "with identity.source istio_waypoint the caller is the HBONE tunnel's peer; \
             x-forwarded-client-cert is never read"
                .into(),
        ));
    }
    if a.min_tls_version > TlsVersion::Tls12 {
        out.push(finding(
            "tls_version_unchecked",
            "identity.min_tls_version".into(),
            format!(
                "with identity.source istio_waypoint the filter cannot see the HBONE tunnel's TLS \
                 version; {} is not checked by the plugin (ztunnel and the waypoint negotiate it)",
                a.min_tls_version.as_str()
            ),
        ));
    }
}

fn any_or_empty(list: &[StrMatch]) -> bool {
    list.is_empty() || list.contains(&StrMatch::Any)
}

fn admits_everything(r: &Rule) -> bool {
    any_or_empty(&r.principals)
        && any_or_empty(&r.namespaces)
        && any_or_empty(&r.paths)
        && r.methods.is_empty()
        && r.not_principals.is_empty()
        && r.not_namespaces.is_empty()
        && r.not_paths.is_empty()
        && r.not_methods.is_empty()
}

/// The rule names its callers exactly: exact principals, or exact namespaces.
fn pins_principals(r: &Rule) -> bool {
    let exact = |l: &[StrMatch]| !l.is_empty() && l.iter().all(|m| matches!(m, StrMatch::Exact(_)));
    exact(&r.principals) || (r.principals.is_empty() && exact(&r.namespaces))
}

/// Why no request can match `r`, if that is certain.
fn never_matches(r: &Rule, a: &Authorizer) -> Option<String> {
    let all_excluded = |pos: &[StrMatch], neg: &[StrMatch]| {
        !pos.is_empty() && pos.iter().all(|p| neg.iter().any(|n| covers_value(n, p)))
    };
    if all_excluded(&r.principals, &r.not_principals) {
        return Some("every principal it names is excluded by not_principals".into());
    }
    if all_excluded(&r.namespaces, &r.not_namespaces) {
        return Some("every namespace it names is excluded by not_namespaces".into());
    }
    if all_excluded(&r.paths, &r.not_paths) {
        return Some("every path it names is excluded by not_paths".into());
    }
    if !r.methods.is_empty() && r.methods.iter().all(|m| r.not_methods.contains(m)) {
        return Some("every method it names is excluded by not_methods".into());
    }
    if let Some(m) = r
        .methods
        .iter()
        .find(|m| m.bytes().any(|b| b.is_ascii_lowercase()))
    {
        if r.methods
            .iter()
            .all(|m| m.bytes().any(|b| b.is_ascii_lowercase()))
        {
            return Some(format!(
                "methods are compared exactly and {m:?} is not upper case"
            ));
        }
    }
    let exacts = |l: &[StrMatch]| -> Vec<String> {
        l.iter()
            .filter_map(|m| match m {
                StrMatch::Exact(e) => Some(e.to_string()),
                _ => None,
            })
            .collect()
    };
    let principals = exacts(&r.principals);
    if !principals.is_empty() && principals.len() == r.principals.len() {
        let usable = |p: &String| match SpiffeId::parse(p) {
            Ok(id) => {
                a.trust_domains.is_empty() || a.trust_domains.iter().any(|t| t == id.trust_domain())
            }
            Err(_) => false,
        };
        if !principals.iter().any(usable) {
            return Some(
                "no principal it names is a valid SPIFFE ID in a trusted trust domain".into(),
            );
        }
    }
    if r.action == RuleAction::Allow {
        let paths = exacts(&r.paths);
        if !paths.is_empty()
            && paths.len() == r.paths.len()
            && !paths
                .iter()
                .any(|p| crate::authz::is_normalized(p) && !p.contains(['?', '#']))
        {
            return Some(
                "no path it names is a normalized path without query, which an allow rule needs"
                    .into(),
            );
        }
    }
    None
}

/// `outer` matches every value `inner` matches.
fn covers_value(outer: &StrMatch, inner: &StrMatch) -> bool {
    match (outer, inner) {
        (StrMatch::Any, _) => true,
        (StrMatch::Exact(a), StrMatch::Exact(b)) => a == b,
        (StrMatch::Prefix(p), StrMatch::Exact(v) | StrMatch::Prefix(v)) => v.starts_with(&**p),
        (StrMatch::Suffix(s), StrMatch::Exact(v) | StrMatch::Suffix(v)) => v.ends_with(&**s),
        _ => false,
    }
}

/// One field of `outer` matches everything the same field of `inner` matches.
fn field_covers(outer: &[StrMatch], inner: &[StrMatch]) -> bool {
    outer.is_empty()
        || outer.contains(&StrMatch::Any) && !inner.is_empty()
        || !inner.is_empty()
            && inner
                .iter()
                .all(|v| outer.iter().any(|o| covers_value(o, v)))
}

/// `outer` matches every request `inner` matches. Sound but not complete: `outer` rules with
/// exclusions are never said to cover.
fn covers(outer: &Rule, inner: &Rule) -> bool {
    outer.not_principals.is_empty()
        && outer.not_namespaces.is_empty()
        && outer.not_paths.is_empty()
        && outer.not_methods.is_empty()
        && field_covers(&outer.principals, &inner.principals)
        && field_covers(&outer.namespaces, &inner.namespaces)
        && field_covers(&outer.paths, &inner.paths)
        && (outer.methods.is_empty()
            || !inner.methods.is_empty() && inner.methods.iter().all(|m| outer.methods.contains(m)))
}

#[cfg(test)]
mod tests;
