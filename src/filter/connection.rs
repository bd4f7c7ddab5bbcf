//! Facts of the downstream connection (mTLS, TLS version, peer certificate, source, this sidecar's
//! own identity), read once per connection rather than once per request.
//!
//! Each fact is a `get_property` host call, and each builds an expression context on the host and
//! calls back into the VM's allocator: seven of them made up most of an allowed request's host
//! calls. A connection's facts cannot change while it lives (Envoy allows no TLS renegotiation),
//! its id is unique within the Envoy process, and it stays on one worker, whose VM is its own. So
//! the root context keeps them by connection id, and a request on a known connection pays one call
//! (`connection.id`). HTTP filters hear nothing of a connection's end, so the map is bounded and
//! forgets the oldest connection first; a forgotten one that is still open is simply read again.
//!
//! In an Istio waypoint (`identity.source: istio_waypoint`) the connection is the internal one that
//! carries one HBONE tunnel, and its facts are the filter state the waypoint's CONNECT listener
//! gave it: the tunnel peer's SPIFFE ID and the waypoint's own. They too are fixed for the
//! connection's life.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use crate::host::{Host, LogLevel, Property};
use crate::identity::{IdentitySource, Peer};

use super::LOG_PREFIX;

/// Connections remembered per VM (each entry holds a few short strings).
pub const CONNECTIONS_KEPT: usize = 1024;

/// What the filter needs to know of one downstream connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionFacts {
    /// The peer as the connection shows it (`xfcc` is per request and never kept here).
    pub peer: Peer,
    /// This sidecar's own SPIFFE ID (the URI SAN of its certificate).
    pub workload: Option<String>,
    /// Where `peer` was read from.
    pub source: IdentitySource,
}

/// The facts of recent connections, by connection id, oldest first out.
#[derive(Default)]
pub struct ConnectionCache {
    facts: BTreeMap<u64, Rc<ConnectionFacts>>,
    /// Ids in the order they were added; same keys as `facts`.
    order: VecDeque<u64>,
}

pub type SharedConnections = Rc<RefCell<ConnectionCache>>;

impl ConnectionCache {
    pub fn shared() -> SharedConnections {
        Rc::new(RefCell::new(ConnectionCache::default()))
    }

    pub fn len(&self) -> usize {
        self.facts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }

    fn get(&self, id: u64) -> Option<Rc<ConnectionFacts>> {
        self.facts.get(&id).cloned()
    }

    fn insert(&mut self, id: u64, facts: Rc<ConnectionFacts>) {
        if self.facts.insert(id, facts).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > CONNECTIONS_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.facts.remove(&old);
            }
        }
    }
}

/// The facts of the request's connection: from `cache` when it knows the connection, else read
/// from the host (and kept, when the host gives the connection's id). Facts read for another
/// identity source (a configuration replaced meanwhile) are read again.
pub fn facts<H: Host>(
    host: &H,
    cache: Option<&SharedConnections>,
    source: IdentitySource,
) -> Rc<ConnectionFacts> {
    let id = cache.and_then(|_| connection_id(host));
    let known = id
        .and_then(|id| cache?.try_borrow().ok()?.get(id))
        .filter(|f| f.source == source);
    if let Some(facts) = known {
        return facts;
    }
    let (facts, complete) = read(host, source);
    let facts = Rc::new(facts);
    // A read the host failed is not kept: the next request on the connection tries again.
    if let (Some(id), Some(cache), true) = (id, cache, complete) {
        if let Ok(mut c) = cache.try_borrow_mut() {
            c.insert(id, facts.clone());
        }
    }
    facts
}

/// `connection.id`: Envoy gives it as 8 bytes, little-endian.
fn connection_id<H: Host>(host: &H) -> Option<u64> {
    let bytes = host.property(Property::ConnectionId).ok().flatten()?;
    Some(u64::from_le_bytes(bytes.as_slice().try_into().ok()?))
}

/// Reads the connection facts, and whether every read succeeded. A property the host cannot give
/// reads as absent, which `authenticate` turns into a denial: no host error can make a request
/// look more trusted.
fn read<H: Host>(host: &H, source: IdentitySource) -> (ConnectionFacts, bool) {
    let complete = std::cell::Cell::new(true);
    let prop = |property: Property| match host.property(property) {
        Ok(v) => v,
        Err(e) => {
            complete.set(false);
            host.log(
                LogLevel::Warn,
                &format!("{LOG_PREFIX} {}: {e}", property.name()),
            );
            None
        }
    };
    let text = |property: Property| {
        prop(property)
            .and_then(|v| String::from_utf8(v).ok())
            .filter(|s| !s.is_empty())
    };
    if source == IdentitySource::IstioWaypoint {
        let principal = text(Property::IstioPeerPrincipal);
        let facts = ConnectionFacts {
            peer: Peer {
                mtls: principal.is_some(),
                uri_san: principal,
                source: text(Property::SourceAddress),
                ..Peer::default()
            },
            workload: text(Property::IstioLocalPrincipal),
            source,
        };
        return (facts, complete.get());
    }
    let facts = ConnectionFacts {
        peer: Peer {
            mtls: prop(Property::Mtls).is_some_and(|v| v.first() == Some(&1)),
            tls_version: text(Property::TlsVersion),
            uri_san: text(Property::PeerUriSan),
            source: text(Property::SourceAddress),
            subject: text(Property::PeerSubject),
            cert_sha256: text(Property::PeerCertSha256),
            xfcc: None,
        },
        workload: text(Property::LocalUriSan),
        source,
    };
    (facts, complete.get())
}
