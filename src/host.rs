//! The small surface of the proxy that the request flow needs, so the flow runs natively in tests.

use std::fmt;
use std::time::SystemTime;

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

/// Counters the plugin keeps in the proxy's stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    PanRedactedRequest,
    PanRedactedResponse,
    PanPassedRequest,
    PanPassedResponse,
    Allowed,
    /// Requests denied (and enforced), by reason.
    Denied(&'static str),
    /// Requests `dry_run` let through that enforcement would have denied.
    DryRunDenied,
    AuditEmitted,
    AuditSent,
    AuditDropped,
    AuditSinkErrors,
}

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

impl Metric {
    /// Every counter, in a fixed order (the adapter defines them in this order).
    pub fn all() -> impl Iterator<Item = Metric> {
        [
            Metric::PanRedactedRequest,
            Metric::PanRedactedResponse,
            Metric::PanPassedRequest,
            Metric::PanPassedResponse,
            Metric::Allowed,
            Metric::DryRunDenied,
            Metric::AuditEmitted,
            Metric::AuditSent,
            Metric::AuditDropped,
            Metric::AuditSinkErrors,
        ]
        .into_iter()
        .chain(DENY_REASONS.into_iter().map(Metric::Denied))
    }

    pub fn name(self) -> String {
        match self {
            Metric::PanRedactedRequest => "pci_mesh_guard.pan_redacted.request".into(),
            Metric::PanRedactedResponse => "pci_mesh_guard.pan_redacted.response".into(),
            Metric::PanPassedRequest => "pci_mesh_guard.pan_passed.request".into(),
            Metric::PanPassedResponse => "pci_mesh_guard.pan_passed.response".into(),
            Metric::Allowed => "pci_mesh_guard.requests.allowed".into(),
            Metric::Denied(reason) => format!("pci_mesh_guard.requests.denied.{reason}"),
            Metric::DryRunDenied => "pci_mesh_guard.requests.dry_run_denied".into(),
            Metric::AuditEmitted => "pci_mesh_guard.audit.emitted".into(),
            Metric::AuditSent => "pci_mesh_guard.audit.sent".into(),
            Metric::AuditDropped => "pci_mesh_guard.audit.dropped".into(),
            Metric::AuditSinkErrors => "pci_mesh_guard.audit.sink_errors".into(),
        }
    }
}

/// What the flow asks of the proxy. The wasm adapter implements it with proxy-wasm host calls
/// (the `Result`-returning, byte-valued ones: neither a host error nor a header value that is not
/// UTF-8 may trap the VM); tests use a fake.
pub trait Host {
    /// A property such as `["connection", "mtls"]`; `Ok(None)` when the host has no value.
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError>;
    /// One header or trailer (pseudo-headers such as `:path` and `:status` included).
    fn header(&self, map: Map, name: &str) -> Option<Vec<u8>>;
    /// Every entry of a header or trailer map.
    fn headers(&self, map: Map) -> Vec<(String, Vec<u8>)>;
    /// Replaces (or adds) one entry.
    fn set_header(&self, map: Map, name: &str, value: &[u8]) -> Result<(), HostError>;
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
    /// Sets this stream's filter state `wasm.<name>`, which Envoy's access log can write
    /// (`%FILTER_STATE(wasm.<name>:PLAIN)%`).
    fn set_filter_state(&self, name: &str, value: &[u8]) -> Result<(), HostError>;
    /// Writes a line to the proxy log, which drops it when `level` is below `log_level()`.
    fn log(&self, level: LogLevel, message: &str);
    /// The lowest level the proxy log writes for this plugin right now (Envoy's `wasm` component
    /// level, which `--log-level`, `--component-log-level` and the `/logging` admin endpoint set);
    /// `None` when it writes nothing (`off`). It can change at any time, so it is asked per event.
    fn log_level(&self) -> Option<LogLevel>;
    /// The host's wall clock.
    fn now(&self) -> SystemTime;
}

/// A header value as text, for values the flow only reads (method, path, ids).
pub fn text(value: Option<Vec<u8>>) -> String {
    value
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default()
}
