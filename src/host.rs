//! The small surface of the proxy that the request flow needs, so the flow runs natively in tests.

use std::fmt;
use std::time::SystemTime;

/// Severity of a proxy log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// A host call failed; the flow treats the missing answer as the safest one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError(pub String);

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host call failed: {}", self.0)
    }
}

/// What the flow asks of the proxy. The wasm adapter implements it with proxy-wasm host calls
/// (the `Result`-returning ones: a host error must never trap the VM); tests use a fake.
pub trait Host {
    /// A property such as `["connection", "mtls"]`; `Ok(None)` when the host has no value.
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError>;
    /// A request header (pseudo-headers such as `:path` included).
    fn request_header(&self, name: &str) -> Option<String>;
    /// A response header (`:status` included).
    fn response_header(&self, name: &str) -> Option<String>;
    /// Answers the request locally; the upstream never sees it.
    fn send_local_reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError>;
    fn log(&self, level: LogLevel, message: &str);
    /// The host's wall clock.
    fn now(&self) -> SystemTime;
}
