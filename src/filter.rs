//! The request flow: what the filter does at each stage of a request, over the `Host` trait.
//!
//! This is the whole behaviour of the plugin; `adapter` only forwards proxy-wasm callbacks here.

use std::rc::Rc;

use crate::audit::{self, AccessEvent, ConfigEvent, PanCounts, RequestInfo};
use crate::authz::{Authentication, Decision, Reason};
use crate::config::{Mode, Policy};
use crate::host::{Host, LogLevel};
use crate::identity::Peer;

/// Prefix of every plain (non-event) log line of the plugin.
pub const LOG_PREFIX: &str = "pci-mesh-guard:";

/// Whether the proxy should go on with the request or stop it here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    Stop,
}

/// Parses and compiles the plugin configuration, logging the outcome: a `config` audit event, and
/// on rejection one error line naming the offending key. `None` means the plugin must not start.
pub fn configure<H: Host>(host: &H, input: &[u8]) -> Option<Rc<Policy>> {
    match Policy::parse(input) {
        Ok(policy) => {
            let event = ConfigEvent::new(
                host.now(),
                Ok((policy.mode.as_str(), policy.authorizer.rules.len())),
            );
            host.log(LogLevel::Info, &audit::to_line(&event));
            host.log(
                LogLevel::Info,
                &format!(
                    "{LOG_PREFIX} configuration accepted: mode {}, {} rules",
                    policy.mode.as_str(),
                    policy.authorizer.rules.len()
                ),
            );
            Some(Rc::new(policy))
        }
        Err(e) => {
            host.log(
                LogLevel::Error,
                &format!("{LOG_PREFIX} configuration rejected: {e}"),
            );
            let event = ConfigEvent::new(host.now(), Err(e.to_string()));
            host.log(LogLevel::Info, &audit::to_line(&event));
            None
        }
    }
}

/// Per-request state: a shared pointer to the compiled policy and what this request has shown.
pub struct RequestFlow {
    /// `None` when the plugin has no accepted configuration: every request is refused.
    policy: Option<Rc<Policy>>,
    decision: Option<Decision>,
    peer: Peer,
    principal: Option<String>,
    request: RequestInfo,
    status: Option<u32>,
    /// The access event has been written (at denial); the end of the stream must not write another.
    event_written: bool,
}

impl RequestFlow {
    pub fn new(policy: Option<Rc<Policy>>) -> RequestFlow {
        RequestFlow {
            policy,
            decision: None,
            peer: Peer::default(),
            principal: None,
            request: RequestInfo::default(),
            status: None,
            event_written: false,
        }
    }

    pub fn on_request_headers<H: Host>(&mut self, host: &H) -> Verdict {
        let header = |name| host.request_header(name).unwrap_or_default();
        self.request = RequestInfo {
            method: header(":method"),
            path: audit::conceal_digit_runs(&header(":path"), b'*'),
            host: header(":authority"),
            id: header("x-request-id"),
        };
        let Some(policy) = self.policy.clone() else {
            host.log(
                LogLevel::Error,
                &format!("{LOG_PREFIX} no accepted configuration: request refused"),
            );
            self.reply(host, 503, "unavailable");
            return Verdict::Stop;
        };
        self.peer = read_peer(host);
        let auth = policy.authorizer.authenticate(&self.peer);
        if let Authentication::Principal(id) = &auth {
            self.principal = Some(id.as_str().to_owned());
        }
        let path = host.request_header(":path").unwrap_or_default();
        let decision = policy.authorizer.decide(&auth, &self.request.method, &path);
        self.decision = Some(decision);
        if decision.allow || policy.mode == Mode::DryRun {
            return Verdict::Continue;
        }
        self.reply(host, 403, "forbidden");
        self.status = Some(403);
        self.write_event(host);
        Verdict::Stop
    }

    pub fn on_response_headers<H: Host>(&mut self, host: &H) -> Verdict {
        if self.status.is_none() {
            self.status = host.response_header(":status").and_then(|s| s.parse().ok());
        }
        Verdict::Continue
    }

    /// The stream is over (Envoy's access-log stage): write the access event if not yet written.
    pub fn on_done<H: Host>(&mut self, host: &H) {
        if !self.event_written {
            self.write_event(host);
        }
    }

    fn reply<H: Host>(&self, host: &H, status: u32, error: &str) {
        let body = serde_json::json!({ "error": error, "request_id": self.request.id }).to_string();
        let headers = [("content-type", "application/json")];
        if let Err(e) = host.send_local_reply(status, &headers, body.as_bytes()) {
            host.log(
                LogLevel::Error,
                &format!("{LOG_PREFIX} local reply failed: {e}"),
            );
        }
    }

    fn write_event<H: Host>(&mut self, host: &H) {
        self.event_written = true;
        let Some(policy) = &self.policy else {
            return;
        };
        // A request that never reached the decision (reset before its headers) is recorded as
        // denied by default: the event must not claim an allow that never happened.
        let decision = self.decision.unwrap_or(Decision {
            allow: false,
            reason: Reason::Default,
            rule: None,
        });
        let event = AccessEvent {
            schema: audit::SCHEMA,
            ts: audit::rfc3339_millis(host.now()),
            event: "access",
            decision: if decision.allow { "allow" } else { "deny" },
            enforced: policy.mode == Mode::Enforce,
            mode: policy.mode.as_str(),
            reason: decision.reason.as_str(),
            rule: policy.authorizer.rule(&decision).map(|r| r.name.clone()),
            principal: self.principal.clone(),
            source: self.peer.source.clone(),
            tls_version: self.peer.tls_version.clone(),
            request: std::mem::take(&mut self.request),
            status: self.status,
            pan: PanCounts::default(),
        };
        host.log(LogLevel::Info, &audit::to_line(&event));
    }
}

/// Reads the connection facts. A property the host cannot give reads as absent, which
/// `authenticate` turns into a denial: no host error can make a request look more trusted.
fn read_peer<H: Host>(host: &H) -> Peer {
    let prop = |path: &[&str]| match host.property(path) {
        Ok(v) => v,
        Err(e) => {
            host.log(
                LogLevel::Warn,
                &format!("{LOG_PREFIX} {}: {e}", path.join(".")),
            );
            None
        }
    };
    let text = |path: &[&str]| {
        prop(path)
            .and_then(|v| String::from_utf8(v).ok())
            .filter(|s| !s.is_empty())
    };
    Peer {
        mtls: prop(&["connection", "mtls"]).is_some_and(|v| v.first() == Some(&1)),
        tls_version: text(&["connection", "tls_version"]),
        uri_san: text(&["connection", "uri_san_peer_certificate"]),
        source: text(&["source", "address"]),
    }
}

#[cfg(test)]
mod tests;
