//! The small surface of the proxy that the request flow needs, so the flow runs natively in tests.

use std::fmt;
use std::time::SystemTime;

use crate::identity::{ISTIO_LOCAL_PRINCIPAL, ISTIO_PEER_PRINCIPAL};

mod headers;
pub use headers::Headers;

/// Severity of a proxy log line, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl LogLevel {
    /// The name Envoy uses for the level (`--log-level`, `/logging`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }
}

/// A host call failed; the flow treats the missing answer as the safest one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError(pub String);

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host call failed: {}", self.0)
    }
}

/// Which way data flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

/// A header or trailer map of the current stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Map {
    RequestHeaders,
    ResponseHeaders,
    RequestTrailers,
    ResponseTrailers,
}

impl Map {
    pub fn headers(d: Direction) -> Map {
        match d {
            Direction::Request => Map::RequestHeaders,
            Direction::Response => Map::ResponseHeaders,
        }
    }

    pub fn trailers(d: Direction) -> Map {
        match d {
            Direction::Request => Map::RequestTrailers,
            Direction::Response => Map::ResponseTrailers,
        }
    }
}

/// A fact of the stream's connection that the flow asks the proxy for. Each has Envoy's attribute
/// name (`connection.mtls`, ...) and is given as Envoy serializes it: a flag as one byte (1 true),
/// a number as 8 bytes little-endian, text as its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    /// `connection.id`: unique per downstream connection within the proxy process.
    ConnectionId,
    /// `connection.mtls`: the downstream connection presented a verified client certificate.
    Mtls,
    TlsVersion,
    PeerUriSan,
    PeerSubject,
    PeerCertSha256,
    /// This proxy's own certificate's URI SAN (its workload identity).
    LocalUriSan,
    /// `source.address`: the downstream peer's `ip:port`.
    SourceAddress,
    /// Filter state `io.istio.peer_principal`: in an Istio waypoint, the HBONE tunnel peer's
    /// SPIFFE ID (a string object; absent without a tunnel).
    IstioPeerPrincipal,
    /// Filter state `io.istio.local_principal`: in an Istio waypoint, the waypoint's own ID.
    IstioLocalPrincipal,
}

impl Property {
    /// Envoy's attribute path of the property.
    pub fn path(self) -> &'static [&'static str] {
        match self {
            Property::ConnectionId => &["connection", "id"],
            Property::Mtls => &["connection", "mtls"],
            Property::TlsVersion => &["connection", "tls_version"],
            Property::PeerUriSan => &["connection", "uri_san_peer_certificate"],
            Property::PeerSubject => &["connection", "subject_peer_certificate"],
            Property::PeerCertSha256 => &["connection", "sha256_peer_certificate_digest"],
            Property::LocalUriSan => &["connection", "uri_san_local_certificate"],
            Property::SourceAddress => &["source", "address"],
            Property::IstioPeerPrincipal => &["filter_state", ISTIO_PEER_PRINCIPAL],
            Property::IstioLocalPrincipal => &["filter_state", ISTIO_LOCAL_PRINCIPAL],
        }
    }

    /// Envoy's attribute name (`connection.mtls`), for log lines.
    pub fn name(self) -> String {
        self.path().join(".")
    }
}

/// Counters the plugin keeps in the proxy's stats. Each is one Envoy stat whose name carries its
/// labels in Istio's tag convention (`reason=.=no_mtls;.;`), so that a `stats_tags` entry per label
/// (Istio: `extraStatTags`) turns them into Prometheus labels, and the rest of the name is the
/// metric's: `pci_mesh_guard_requests_total{decision="deny",reason="no_mtls",dry_run="false"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Requests let through, by the decision's reason (`rule` or `default`).
    Allowed(&'static str),
    /// Requests denied (and enforced), by reason.
    Denied(&'static str),
    /// Requests `dry_run` let through that enforcement would have denied, by reason.
    DryRunDenied(&'static str),
    /// Card numbers by direction (`request`, `response`) and outcome: `redacted`, `granted` (let
    /// through by a `pan` grant), `dry_run` (let through by `dry_run`, a would-be leak).
    Pans(&'static str, &'static str),
    /// Bodies that could not be scanned (compressed), by direction.
    Unscannable(&'static str),
    /// Configurations the plugin accepted (`true`) or rejected.
    Configurations(bool),
    AuditEmitted,
    AuditSent,
    AuditDropped,
    AuditSinkErrors,
}

/// Reasons a request is allowed for.
pub const ALLOW_REASONS: [&str; 2] = ["rule", "default"];

/// Reasons a request can be denied for, each with its own counter.
pub const DENY_REASONS: [&str; 8] = [
    "no_mtls",
    "weak_tls",
    "untrusted_identity",
    "rule",
    "default",
    "unscannable_body",
    "body_failure",
    "audit_unavailable",
];

/// What can become of a card number.
pub const PAN_OUTCOMES: [&str; 3] = ["redacted", "granted", "dry_run"];
const DIRECTIONS: [&str; 2] = ["request", "response"];

/// The labels of the plugin's metrics, as `stats_tags` (Istio: `extraStatTags`) must name them.
pub const METRIC_LABELS: [&str; 7] = [
    "caller",
    "decision",
    "reason",
    "dry_run",
    "direction",
    "outcome",
    "result",
];

/// Values the plugin sets rather than adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauge {
    /// The policy linter's findings on the configuration in force.
    LintFindings,
    /// Events waiting in the `otlp_http` sink's queue.
    AuditQueueDepth,
    /// The VM's linear memory, in bytes (it only grows): a leak shows as a rising line.
    VmMemoryBytes,
}

impl Gauge {
    pub const ALL: [Gauge; 3] = [
        Gauge::LintFindings,
        Gauge::AuditQueueDepth,
        Gauge::VmMemoryBytes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Gauge::LintFindings => "pci_mesh_guard_lint_findings",
            Gauge::AuditQueueDepth => "pci_mesh_guard_audit_queue_depth",
            Gauge::VmMemoryBytes => "pci_mesh_guard_vm_memory_bytes",
        }
    }
}

impl Metric {
    /// Every counter, in a fixed order (the adapter defines them in this order).
    pub fn all() -> impl Iterator<Item = Metric> {
        [
            Metric::AuditEmitted,
            Metric::AuditSent,
            Metric::AuditDropped,
            Metric::AuditSinkErrors,
            Metric::Configurations(true),
            Metric::Configurations(false),
        ]
        .into_iter()
        .chain(
            DIRECTIONS
                .into_iter()
                .flat_map(|d| PAN_OUTCOMES.into_iter().map(move |o| Metric::Pans(d, o))),
        )
        .chain(DIRECTIONS.into_iter().map(Metric::Unscannable))
        .chain(ALLOW_REASONS.into_iter().map(Metric::Allowed))
        .chain(DENY_REASONS.into_iter().map(Metric::Denied))
        .chain(DENY_REASONS.into_iter().map(Metric::DryRunDenied))
    }

    /// Where the counter stands in `all()`, found without walking it (it is asked on every
    /// increment). `None` for a label value `all()` does not define.
    pub fn index(self) -> Option<usize> {
        let at = |list: &[&str], value: &str| list.iter().position(|v| *v == value);
        let fixed = 6;
        let pans = fixed;
        let unscannable = pans + DIRECTIONS.len() * PAN_OUTCOMES.len();
        let allowed = unscannable + DIRECTIONS.len();
        let denied = allowed + ALLOW_REASONS.len();
        let dry_run = denied + DENY_REASONS.len();
        match self {
            Metric::AuditEmitted => Some(0),
            Metric::AuditSent => Some(1),
            Metric::AuditDropped => Some(2),
            Metric::AuditSinkErrors => Some(3),
            Metric::Configurations(true) => Some(4),
            Metric::Configurations(false) => Some(5),
            Metric::Pans(d, o) => {
                Some(pans + at(&DIRECTIONS, d)? * PAN_OUTCOMES.len() + at(&PAN_OUTCOMES, o)?)
            }
            Metric::Unscannable(d) => Some(unscannable + at(&DIRECTIONS, d)?),
            Metric::Allowed(r) => Some(allowed + at(&ALLOW_REASONS, r)?),
            Metric::Denied(r) => Some(denied + at(&DENY_REASONS, r)?),
            Metric::DryRunDenied(r) => Some(dry_run + at(&DENY_REASONS, r)?),
        }
    }

    /// The Envoy stat name: labels first, then the metric's name.
    pub fn name(self) -> String {
        let requests = |decision: &str, reason: &str, dry_run: bool| {
            format!(
                "decision=.={decision};.;reason=.={reason};.;dry_run=.={dry_run};.;pci_mesh_guard_requests_total"
            )
        };
        let pans = |direction: &str, outcome: &str| {
            format!("direction=.={direction};.;outcome=.={outcome};.;pci_mesh_guard_pans_total")
        };
        let audit =
            |outcome: &str| format!("outcome=.={outcome};.;pci_mesh_guard_audit_events_total");
        match self {
            Metric::Allowed(reason) => requests("allow", reason, false),
            Metric::Denied(reason) => requests("deny", reason, false),
            Metric::DryRunDenied(reason) => requests("deny", reason, true),
            Metric::Pans(direction, outcome) => pans(direction, outcome),
            Metric::Unscannable(direction) => {
                format!("direction=.={direction};.;pci_mesh_guard_unscannable_bodies_total")
            }
            Metric::Configurations(accepted) => format!(
                "result=.={};.;pci_mesh_guard_configurations_total",
                if accepted { "accepted" } else { "rejected" }
            ),
            Metric::AuditEmitted => audit("emitted"),
            Metric::AuditSent => audit("sent"),
            Metric::AuditDropped => audit("dropped"),
            Metric::AuditSinkErrors => "pci_mesh_guard_audit_sink_errors_total".into(),
        }
    }
}

/// What the flow asks of the proxy. The wasm adapter implements it with proxy-wasm host calls
/// (the `Result`-returning, byte-valued ones: neither a host error nor a header value that is not
/// UTF-8 may trap the VM), the dynamic-module adapter with Envoy's C callbacks; tests use fakes.
pub trait Host {
    /// A fact of the connection; `Ok(None)` when the host has no value.
    fn property(&self, property: Property) -> Result<Option<Vec<u8>>, HostError>;
    /// One header or trailer (pseudo-headers such as `:path` and `:status` included).
    fn header(&self, map: Map, name: &str) -> Option<Vec<u8>>;
    /// Every entry of a header or trailer map.
    fn headers(&self, map: Map) -> Headers;
    /// Replaces every entry of `name` with one entry (or adds it).
    fn set_header(&self, map: Map, name: &str, value: &[u8]) -> Result<(), HostError>;
    /// Adds one more entry of `name`, after those already there.
    fn add_header(&self, map: Map, name: &str, value: &[u8]) -> Result<(), HostError>;
    /// The body bytes the proxy holds for this callback: `[start, start + len)`.
    fn body(&self, dir: Direction, start: usize, len: usize) -> Option<Vec<u8>>;
    /// Replaces `[start, start + len)` of that body with `data` (`start` = its size appends).
    fn set_body(
        &self,
        dir: Direction,
        start: usize,
        len: usize,
        data: &[u8],
    ) -> Result<(), HostError>;
    /// Answers the request locally; the upstream never sees it (or its answer is replaced).
    fn send_local_reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError>;
    /// Aborts the stream: the last resort when neither passing nor answering is safe.
    fn reset(&self, dir: Direction);
    fn increment(&self, metric: Metric, by: u64);
    /// Counts one denial of `caller` for `reason`:
    /// `pci_mesh_guard_denied_callers_total{caller, reason, dry_run}`. The flow bounds how many
    /// distinct callers there are (`filter::CALLERS_NAMED`).
    fn count_denial(&self, caller: &str, reason: &str, dry_run: bool);
    fn set_gauge(&self, gauge: Gauge, value: u64);
    /// Sets this stream's filter state `wasm.<name>`, which Envoy's access log can write
    /// (`%FILTER_STATE(wasm.<name>:PLAIN)%`).
    fn set_filter_state(&self, name: &str, value: &[u8]) -> Result<(), HostError>;
    /// Sets this stream's dynamic metadata `ns`/`key` to `true`, which an access log's
    /// `metadata_filter` can select on without evaluating an expression; true when it did. A
    /// host that has no such call (proxy-wasm) sets nothing, as the default does: a request path
    /// call, so not even an error message is made.
    fn mark_metadata(&self, ns: &str, key: &str) -> bool {
        let _ = (ns, key);
        false
    }
    /// Writes a line to the proxy log, which drops it when `level` is below `log_level()`.
    fn log(&self, level: LogLevel, message: &str);
    /// The lowest level the proxy log writes for this plugin right now (Envoy's `wasm` component
    /// level, which `--log-level`, `--component-log-level` and the `/logging` admin endpoint set);
    /// `None` when it writes nothing (`off`). It can change at any time, so it is asked per event.
    fn log_level(&self) -> Option<LogLevel>;
    /// The host's wall clock.
    fn now(&self) -> SystemTime;
    /// Whether the host can send HTTP requests of its own (the `otlp_http` audit sink's).
    fn ships_by_http(&self) -> bool {
        true
    }
    /// Whether the host calls the plugin on a timer when no traffic comes (the audit chain's
    /// heartbeats need it).
    fn has_timer(&self) -> bool {
        true
    }
    /// Whether `set_body` can add bytes to a body in the trailers callback, after the body's data
    /// callbacks let their bytes go (Envoy's native filters can; proxy-wasm cannot, so a body
    /// whose tail is held is paused until the tail is settled).
    fn adds_body_at_trailers(&self) -> bool {
        false
    }
}

/// A header value as text, for values the flow only reads (method, path, ids).
pub fn text(value: Option<Vec<u8>>) -> String {
    value
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_finds_its_own_place_in_all() {
        for (i, m) in Metric::all().enumerate() {
            assert_eq!(m.index(), Some(i), "{m:?}");
        }
        assert_eq!(Metric::Denied("not_a_reason").index(), None);
        assert_eq!(Metric::Pans("sideways", "redacted").index(), None);
    }
}
