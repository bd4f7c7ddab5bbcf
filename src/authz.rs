//! Authorization: compiled matchers with Istio AuthorizationPolicy semantics and the `decide` function.
//!
//! Rules are compiled once at configure time; `decide` walks them without allocating.

mod screen;

use crate::identity::{xfcc, IdentitySource, Peer, Proof, SpiffeId, TlsVersion};

pub use screen::Screens;

/// The HTTP methods of RFC 9110 and PATCH: a request's `:method` is most often one of these.
pub const STANDARD_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// One value of a rule field: Istio's exact, `prefix*`, `*suffix` and `*` forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrMatch {
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    /// `*`: any value that is present.
    Any,
}

impl StrMatch {
    /// Compiles one pattern. A `*` anywhere but at one end is refused, as Istio refuses it.
    pub fn compile(pattern: &str) -> Result<StrMatch, &'static str> {
        if pattern.is_empty() {
            return Err("empty value");
        }
        if pattern == "*" {
            return Ok(StrMatch::Any);
        }
        let stars = pattern.bytes().filter(|&b| b == b'*').count();
        if stars == 0 {
            return Ok(StrMatch::Exact(pattern.into()));
        }
        if stars == 1 {
            if let Some(p) = pattern.strip_suffix('*') {
                return Ok(StrMatch::Prefix(p.into()));
            }
            if let Some(s) = pattern.strip_prefix('*') {
                return Ok(StrMatch::Suffix(s.into()));
            }
        }
        Err("'*' is allowed only alone, as the first or as the last character")
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            StrMatch::Exact(e) => value == &**e,
            StrMatch::Prefix(p) => value.starts_with(&**p),
            StrMatch::Suffix(s) => value.ends_with(&**s),
            StrMatch::Any => true,
        }
    }
}

fn any_matches(list: &[StrMatch], value: &str) -> bool {
    list.iter().any(|m| m.matches(value))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    Allow,
    Deny,
}

/// The directions in which an allow rule lets PANs pass unredacted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PanGrant {
    pub request: bool,
    pub response: bool,
}

/// A compiled rule. Empty lists mean "field not set"; `methods` are compared exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub action: RuleAction,
    pub principals: Vec<StrMatch>,
    pub not_principals: Vec<StrMatch>,
    pub namespaces: Vec<StrMatch>,
    pub not_namespaces: Vec<StrMatch>,
    pub paths: Vec<StrMatch>,
    pub not_paths: Vec<StrMatch>,
    pub methods: Vec<String>,
    pub not_methods: Vec<String>,
    pub pan: PanGrant,
}

/// The facts of one request that rules look at.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub principal: Option<&'a SpiffeId>,
    pub method: &'a str,
    /// The `:path` header as received; query string and fragment are ignored by `decide`.
    pub path: &'a str,
}

impl Rule {
    /// AND across the set fields, OR within one field, `not_*` fields exclude.
    ///
    /// A path that is not normalized never lets an allow rule match. For a deny rule it counts as
    /// matching `paths` and as not excluded by `not_paths`: when in doubt, deny.
    fn matches(&self, req: &RequestFacts<'_>, path: &str, normalized: bool) -> bool {
        let allow = self.action == RuleAction::Allow;
        if allow && !normalized {
            return false;
        }
        let principal = req.principal.map(SpiffeId::as_str);
        let namespace = req.principal.and_then(SpiffeId::namespace);
        field(&self.principals, &self.not_principals, principal)
            && field(&self.namespaces, &self.not_namespaces, namespace)
            && (normalized && field(&self.paths, &self.not_paths, Some(path))
                || !normalized && !allow)
            && (self.methods.is_empty() || self.methods.iter().any(|m| m == req.method))
            && !self.not_methods.iter().any(|m| m == req.method)
    }
}

/// One field pair: the value must match `any_of` when it is set, and must not match `none_of`.
/// An absent value (no principal, no namespace) matches no pattern: it fails `any_of` and is not
/// excluded by `none_of`, as Envoy's RBAC `not_id` behaves.
fn field(any_of: &[StrMatch], none_of: &[StrMatch], value: Option<&str>) -> bool {
    let included = any_of.is_empty() || value.is_some_and(|v| any_matches(any_of, v));
    let excluded = value.is_some_and(|v| any_matches(none_of, v));
    included && !excluded
}

/// Why a decision went the way it did. Serialized names are fixed by the SPEC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    NoMtls,
    WeakTls,
    UntrustedIdentity,
    Rule,
    Default,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoMtls => "no_mtls",
            Reason::WeakTls => "weak_tls",
            Reason::UntrustedIdentity => "untrusted_identity",
            Reason::Rule => "rule",
            Reason::Default => "default",
        }
    }
}

/// The outcome of `decide`, naming the rule that decided (by index into `Authorizer::rules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allow: bool,
    pub reason: Reason,
    pub rule: Option<usize>,
}

impl Decision {
    fn deny(reason: Reason) -> Decision {
        Decision {
            allow: false,
            reason,
            rule: None,
        }
    }
}

/// The compiled `identity` and `authorization` sections.
#[derive(Debug, Clone)]
pub struct Authorizer {
    /// Where the caller's identity comes from.
    pub source: IdentitySource,
    pub require_mtls: bool,
    pub min_tls_version: TlsVersion,
    /// Empty means any trust domain.
    pub trust_domains: Vec<String>,
    pub trust_xfcc: bool,
    pub default_allow: bool,
    pub rules: Vec<Rule>,
    /// `Screens::of(&rules)`: what `decide` reads before each rule.
    pub screens: Screens,
}

/// The caller's identity as far as the connection proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// A verified SPIFFE ID in a trusted domain, and how it was established.
    Principal { id: SpiffeId, proof: Proof },
    /// No usable identity, and the policy does not require one.
    Anonymous,
    /// The request must be denied before any rule is looked at.
    Refused(Reason),
}

impl Authorizer {
    /// Checks the transport (mTLS, TLS version) and turns the peer certificate into a principal.
    pub fn authenticate(&self, peer: &Peer) -> Authentication {
        if self.source == IdentitySource::IstioWaypoint {
            return self.authenticate_tunnel(peer);
        }
        if !peer.mtls {
            if self.require_mtls {
                return Authentication::Refused(Reason::NoMtls);
            }
            return Authentication::Anonymous;
        }
        // On TLS the version must be known and recent enough; an unreadable version fails closed.
        match peer.tls_version.as_deref().and_then(TlsVersion::parse) {
            Some(v) if v >= self.min_tls_version => {}
            _ => return Authentication::Refused(Reason::WeakTls),
        }
        // The certificate speaks for the caller. Only a connection whose certificate names no
        // one (a front proxy's) may hand that over to the XFCC header, and only when trusted.
        let (claimed, proof) = match (&peer.uri_san, self.trust_xfcc) {
            (Some(san), _) => (Some(san.clone()), Proof::Certificate),
            (None, true) => (peer.xfcc.as_deref().and_then(xfcc::last_uri), Proof::Xfcc),
            (None, false) => (None, Proof::Certificate),
        };
        self.principal(claimed.as_deref(), proof)
    }

    /// In an Istio waypoint: the HBONE tunnel's peer, as the waypoint's CONNECT listener recorded
    /// it in filter state, is the caller. Its presence is the proof of the tunnel's mTLS (the
    /// listener requires a client certificate from the mesh CA); the tunnel's TLS version is
    /// Istio's to set and not visible here, and XFCC plays no part. A value naming several URI
    /// SANs (Envoy joins them with ',') is no SPIFFE ID, so it is refused: which one Istio's own
    /// policy would pick is not the plugin's to guess.
    fn authenticate_tunnel(&self, peer: &Peer) -> Authentication {
        match peer.uri_san.as_deref() {
            None if self.require_mtls => Authentication::Refused(Reason::NoMtls),
            None => Authentication::Anonymous,
            Some(principal) => self.principal(Some(principal), Proof::IstioWaypoint),
        }
    }

    /// The claimed SPIFFE ID as a principal, if it parses and its trust domain is trusted.
    fn principal(&self, claimed: Option<&str>, proof: Proof) -> Authentication {
        let id = match claimed.map(SpiffeId::parse) {
            Some(Ok(id)) => id,
            _ => return Authentication::Refused(Reason::UntrustedIdentity),
        };
        if !self.trust_domains.is_empty()
            && !self.trust_domains.iter().any(|td| td == id.trust_domain())
        {
            return Authentication::Refused(Reason::UntrustedIdentity);
        }
        Authentication::Principal { id, proof }
    }

    /// Deny rules first, then allow rules, then the default action.
    pub fn decide(&self, auth: &Authentication, method: &str, raw_path: &str) -> Decision {
        let principal = match auth {
            Authentication::Refused(reason) => return Decision::deny(*reason),
            Authentication::Principal { id, .. } => Some(id),
            Authentication::Anonymous => None,
        };
        let req = RequestFacts {
            principal,
            method,
            path: raw_path,
        };
        let path = strip_query(raw_path);
        let normalized = is_normalized(path);
        let facts = screen::Facts::new(principal.map(SpiffeId::as_str), method);
        let first = |action: RuleAction| {
            self.screens.first(&self.rules, action, &facts, |r| {
                r.matches(&req, path, normalized)
            })
        };
        if let Some(i) = first(RuleAction::Deny) {
            return Decision {
                allow: false,
                reason: Reason::Rule,
                rule: Some(i),
            };
        }
        if let Some(i) = first(RuleAction::Allow) {
            return Decision {
                allow: true,
                reason: Reason::Rule,
                rule: Some(i),
            };
        }
        Decision {
            allow: self.default_allow,
            reason: Reason::Default,
            rule: None,
        }
    }

    pub fn rule(&self, decision: &Decision) -> Option<&Rule> {
        decision.rule.and_then(|i| self.rules.get(i))
    }
}

/// The path without query string or fragment.
pub fn strip_query(path: &str) -> &str {
    match path.find(['?', '#']) {
        Some(i) => path.get(..i).unwrap_or(path),
        None => path,
    }
}

/// True for an origin-form path with no dot segments, no empty segments, no backslash and no
/// percent-encoded slash, backslash or dot: a path that Envoy's normalization would leave as it is.
pub fn is_normalized(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    if path.contains('\\') {
        return false;
    }
    let lower_has = |needle: &[u8]| {
        path.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    if lower_has(b"%2f") || lower_has(b"%5c") || lower_has(b"%2e") {
        return false;
    }
    // A trailing slash is allowed ("/v1/"); an empty segment elsewhere ("//") is not.
    let trimmed = rest.strip_suffix('/').unwrap_or(rest);
    trimmed
        .split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

#[cfg(test)]
mod tests;
