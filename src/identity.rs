//! Peer identity: SPIFFE IDs, negotiated TLS versions, and what the connection tells us about the caller.

use std::fmt;

pub mod xfcc;

/// Longest SPIFFE ID accepted, in bytes (SPIFFE ID spec: URIs are limited to 2048 bytes).
pub const MAX_SPIFFE_ID_LEN: usize = 2048;
/// Longest trust domain accepted (a DNS name is at most 255 bytes).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

const SCHEME: &str = "spiffe://";

/// A parsed, validated SPIFFE ID. Parsing happens once per request; matching then works on slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiffeId {
    /// The whole ID, as presented (already validated, so it is canonical).
    id: String,
    /// Byte length of the trust domain, which starts right after `spiffe://`.
    trust_domain_len: usize,
    /// Byte range of the namespace in `id`, for an Istio-style ID: found once, when parsed, since
    /// every rule with a namespace field asks for it.
    namespace: Option<(usize, usize)>,
}

/// Why a string is not a SPIFFE ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpiffeError {
    TooLong,
    NotSpiffeScheme,
    EmptyTrustDomain,
    TrustDomainTooLong,
    TrustDomainChar,
    EmptySegment,
    DotSegment,
    PathChar,
    TrailingSlash,
}

impl fmt::Display for SpiffeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            SpiffeError::TooLong => "longer than 2048 bytes",
            SpiffeError::NotSpiffeScheme => "does not start with spiffe://",
            SpiffeError::EmptyTrustDomain => "empty trust domain",
            SpiffeError::TrustDomainTooLong => "trust domain longer than 255 bytes",
            SpiffeError::TrustDomainChar => {
                "trust domain may hold only lowercase letters, digits, '.', '-' and '_'"
            }
            SpiffeError::EmptySegment => "empty path segment",
            SpiffeError::DotSegment => "path segment '.' or '..'",
            SpiffeError::PathChar => "path may hold only letters, digits, '.', '-' and '_'",
            SpiffeError::TrailingSlash => "trailing slash",
        };
        f.write_str(s)
    }
}

impl SpiffeId {
    /// Parses and validates `s` by the SPIFFE ID rules: lowercase trust domain of `[a-z0-9._-]`,
    /// optional path of non-empty segments of `[A-Za-z0-9._-]`, no `.`/`..` segments, no query,
    /// fragment, port or user info (those characters are simply not allowed).
    pub fn parse(s: &str) -> Result<SpiffeId, SpiffeError> {
        if s.len() > MAX_SPIFFE_ID_LEN {
            return Err(SpiffeError::TooLong);
        }
        let rest = s.strip_prefix(SCHEME).ok_or(SpiffeError::NotSpiffeScheme)?;
        let (td, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if td.is_empty() {
            return Err(SpiffeError::EmptyTrustDomain);
        }
        if td.len() > MAX_TRUST_DOMAIN_LEN {
            return Err(SpiffeError::TrustDomainTooLong);
        }
        if !td.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        }) {
            return Err(SpiffeError::TrustDomainChar);
        }
        if !path.is_empty() {
            if path.ends_with('/') {
                return Err(SpiffeError::TrailingSlash);
            }
            // `path` starts with '/', so the first split element is empty and skipped.
            for seg in path.split('/').skip(1) {
                if seg.is_empty() {
                    return Err(SpiffeError::EmptySegment);
                }
                if seg == "." || seg == ".." {
                    return Err(SpiffeError::DotSegment);
                }
                if !seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
                {
                    return Err(SpiffeError::PathChar);
                }
            }
        }
        let namespace = istio_namespace(path).map(|(a, b)| {
            let base = SCHEME.len() + td.len();
            (base + a, base + b)
        });
        Ok(SpiffeId {
            id: s.to_owned(),
            trust_domain_len: td.len(),
            namespace,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }

    pub fn trust_domain(&self) -> &str {
        self.id
            .get(SCHEME.len()..SCHEME.len() + self.trust_domain_len)
            .unwrap_or("")
    }

    /// The path after the trust domain, starting with '/', or "" when there is none.
    pub fn path(&self) -> &str {
        self.id
            .get(SCHEME.len() + self.trust_domain_len..)
            .unwrap_or("")
    }

    /// The namespace of an Istio-style ID `spiffe://<td>/ns/<ns>/sa/<sa>`, else `None`.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.and_then(|(a, b)| self.id.get(a..b))
    }
}

/// The byte range of `<ns>` in a path `/ns/<ns>/sa/<sa>`, else `None`.
fn istio_namespace(path: &str) -> Option<(usize, usize)> {
    let mut segs = path.strip_prefix('/')?.split('/');
    match (
        segs.next(),
        segs.next(),
        segs.next(),
        segs.next(),
        segs.next(),
    ) {
        (Some("ns"), Some(ns), Some("sa"), Some(_sa), None) => {
            let start = "/ns/".len();
            Some((start, start + ns.len()))
        }
        _ => None,
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// A TLS protocol version as Envoy names it in `connection.tls_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub fn parse(s: &str) -> Option<TlsVersion> {
        match s {
            "TLSv1" | "TLSv1.0" => Some(TlsVersion::Tls10),
            "TLSv1.1" => Some(TlsVersion::Tls11),
            "TLSv1.2" => Some(TlsVersion::Tls12),
            "TLSv1.3" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLSv1.0",
            TlsVersion::Tls11 => "TLSv1.1",
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }
}

/// Where the caller's identity comes from (`identity.source`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentitySource {
    /// The downstream connection's verified client certificate (a sidecar, a plain Envoy).
    #[default]
    PeerCertificate,
    /// An Istio ambient waypoint: the SPIFFE ID its HBONE listener copied from the tunnel's mTLS
    /// peer certificate into filter state ([`ISTIO_PEER_PRINCIPAL`]).
    IstioWaypoint,
}

/// The filter state key where an Istio waypoint's HBONE listener puts the tunnel peer's SPIFFE ID.
pub const ISTIO_PEER_PRINCIPAL: &str = "io.istio.peer_principal";
/// The filter state key where it puts the waypoint's own SPIFFE ID.
pub const ISTIO_LOCAL_PRINCIPAL: &str = "io.istio.local_principal";

/// How an accepted principal was established, as access events name it (`identity_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The URI SAN of the connection's verified client certificate.
    Certificate,
    /// The last element of `x-forwarded-client-cert` (only with `identity.trust_xfcc`).
    Xfcc,
    /// The HBONE tunnel's peer, as an Istio waypoint recorded it in filter state.
    IstioWaypoint,
}

impl Proof {
    pub fn as_str(self) -> &'static str {
        match self {
            Proof::Certificate => "certificate",
            Proof::Xfcc => "xfcc",
            Proof::IstioWaypoint => "istio_waypoint",
        }
    }
}

/// What the downstream connection says about the caller, read once per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// The connection is TLS with a client certificate that Envoy verified.
    pub mtls: bool,
    /// The negotiated TLS version as Envoy reported it (`None` on plaintext or when unreadable).
    pub tls_version: Option<String>,
    /// The first URI SAN of the verified client certificate; under `istio_waypoint`, the value
    /// of `io.istio.peer_principal` as the waypoint wrote it (and `mtls` says it is present).
    pub uri_san: Option<String>,
    /// The downstream address, `ip:port`.
    pub source: Option<String>,
    /// The verified client certificate's subject, for the audit trail.
    pub subject: Option<String>,
    /// The SHA-256 digest (hex) of the verified client certificate, for the audit trail.
    pub cert_sha256: Option<String>,
    /// The `x-forwarded-client-cert` header; read only when `identity.trust_xfcc` is on.
    pub xfcc: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_istio_workload_id_into_trust_domain_and_namespace() {
        let id = SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/checkout").unwrap();
        assert_eq!(id.trust_domain(), "cluster.local");
        assert_eq!(id.path(), "/ns/shop/sa/checkout");
        assert_eq!(id.namespace(), Some("shop"));
    }

    #[test]
    fn non_istio_path_has_no_namespace() {
        for s in [
            "spiffe://example.org",
            "spiffe://example.org/ns/shop",
            "spiffe://example.org/ns/shop/sa/x/extra",
            "spiffe://example.org/workload/ns/shop/sa/x",
        ] {
            assert_eq!(SpiffeId::parse(s).unwrap().namespace(), None, "{s}");
        }
    }

    #[test]
    fn rejects_malformed_ids_with_their_cause() {
        let cases = [
            (
                "http://cluster.local/ns/a/sa/b",
                SpiffeError::NotSpiffeScheme,
            ),
            ("SPIFFE://cluster.local/ns/a", SpiffeError::NotSpiffeScheme),
            ("spiffe:///ns/a/sa/b", SpiffeError::EmptyTrustDomain),
            ("spiffe://Cluster.local/ns/a", SpiffeError::TrustDomainChar),
            (
                "spiffe://cluster.local:8443/ns/a",
                SpiffeError::TrustDomainChar,
            ),
            (
                "spiffe://user@cluster.local/ns/a",
                SpiffeError::TrustDomainChar,
            ),
            ("spiffe://cluster.local/ns//sa/b", SpiffeError::EmptySegment),
            ("spiffe://cluster.local/ns/../sa/b", SpiffeError::DotSegment),
            ("spiffe://cluster.local/ns/./sa", SpiffeError::DotSegment),
            ("spiffe://cluster.local/ns/a?x=1", SpiffeError::PathChar),
            ("spiffe://cluster.local/ns/a#f", SpiffeError::PathChar),
            ("spiffe://cluster.local/ns/a%2Fb", SpiffeError::PathChar),
            ("spiffe://cluster.local/ns/a/", SpiffeError::TrailingSlash),
        ];
        for (s, want) in cases {
            assert_eq!(SpiffeId::parse(s), Err(want), "{s}");
        }
    }

    #[test]
    fn enforces_length_limits() {
        let long_td = format!("spiffe://{}/x", "a".repeat(256));
        assert_eq!(
            SpiffeId::parse(&long_td),
            Err(SpiffeError::TrustDomainTooLong)
        );
        let long_id = format!("spiffe://td/{}", "a".repeat(2048));
        assert_eq!(SpiffeId::parse(&long_id), Err(SpiffeError::TooLong));
        let max_td = format!("spiffe://{}/x", "a".repeat(255));
        assert!(SpiffeId::parse(&max_td).is_ok());
    }

    #[test]
    fn orders_tls_versions() {
        assert!(TlsVersion::parse("TLSv1.1").unwrap() < TlsVersion::parse("TLSv1.2").unwrap());
        assert!(TlsVersion::parse("TLSv1.3").unwrap() > TlsVersion::Tls12);
        assert_eq!(TlsVersion::parse("TLSv1"), Some(TlsVersion::Tls10));
        assert_eq!(TlsVersion::parse("SSLv3"), None);
    }
}
