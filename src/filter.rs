//! The request flow: what the filter does at each stage of a request, over the `Host` trait.
//!
//! This is the whole behaviour of the plugin; the adapters (`adapter` for proxy-wasm,
//! `dynamic_module` for Envoy's dynamic modules) only forward their host's callbacks here.

mod body;
mod callers;
mod configure;
mod connection;
mod redaction;
mod sink;

use std::rc::Rc;
use std::sync::Arc;

use crate::audit::{self, AccessEvent, PanCounts, RequestInfo, SharedAuditor};
use crate::authz::{Authentication, Decision, PanGrant, Reason};
use crate::config::{CompressedBody, Mode, Policy, Sink};
use crate::host::{self, Direction, Host, LogLevel, Map, Metric};
use crate::identity::{IdentitySource, Proof};
use crate::pan::{Counts, Options, Tokens};

pub use body::{BodyStream, Step, PAUSE_LIMIT};
pub use callers::{stat_name as denial_stat_name, CallerLabels, SharedCallers, CALLERS_NAMED};
pub use configure::{configure, join};
pub use connection::{ConnectionCache, ConnectionFacts, SharedConnections, CONNECTIONS_KEPT};
pub use sink::{
    audit_answer, audit_dispatch_failed, audit_heartbeat_vouching, audit_stop, audit_stop_vouching,
    audit_tick, emit, emit_access, trail_unavailable, AUDIT_METADATA, AUDIT_STATE,
};

use redaction::{
    audit_safe, body_stream, is_encoded, is_json, redact_entries, redact_map, HeaderMap,
};

/// Prefix of every plain (non-event) log line of the plugin.
pub const LOG_PREFIX: &str = "pci-mesh-guard:";

/// Whether the proxy should go on with the request or stop it here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Stop iterating (headers: wait; body: buffer this data and call again).
    Stop,
}

/// Redaction of one direction, set up once the request is let through.
#[derive(Default)]
struct Side {
    /// Scanning options for this direction (masking off for a `pan` grant or `dry_run`).
    opts: Option<Options>,
    mask_patterns: bool,
    headers: Counts,
    /// Keyed tokens of the PANs in this direction's headers, when tokens are on.
    tokens: Option<Tokens>,
    /// Boxed: most requests have none, and the flow is moved into Envoy's stream slot whole.
    body: Option<Box<BodyStream>>,
    /// The body was compressed and passed unscanned.
    unscannable: bool,
}

/// Per-request state: a shared pointer to the compiled policy and what this request has shown.
pub struct RequestFlow {
    /// `None` when the plugin has no accepted configuration: every request is refused.
    policy: Option<Arc<Policy>>,
    auditor: SharedAuditor,
    decision: Option<Decision>,
    /// Set when the filter itself stopped the request for a reason other than authorization.
    override_reason: Option<&'static str>,
    /// Where the facts of connections are kept between requests (the root's); `None`: read every time.
    connections: Option<SharedConnections>,
    /// The callers named in the denial counters so far (the root's); `None`: no bound kept.
    callers: Option<SharedCallers>,
    /// The facts of this request's connection (the peer, this sidecar's own identity).
    conn: Rc<ConnectionFacts>,
    started: Option<std::time::SystemTime>,
    modes: audit::RedactionModes,
    principal: Option<String>,
    /// How the principal was established (`identity_source`).
    proof: Option<Proof>,
    info: RequestInfo,
    status: Option<u32>,
    req: Side,
    resp: Side,
    /// The filter answered the request itself (a denial): its own reply is not redacted.
    replied: bool,
    /// The access event has been written (at denial); the end of the stream must not write another.
    event_written: bool,
}

impl RequestFlow {
    pub fn new(policy: Option<Arc<Policy>>, auditor: SharedAuditor) -> RequestFlow {
        RequestFlow::kept(policy, auditor, None, None)
    }

    /// A flow that keeps connection facts in `connections` and bounds the callers named in
    /// `callers` (see `with_connections` and `with_callers`), built in one piece: the native
    /// build writes it straight into the stream's allocation.
    pub fn kept(
        policy: Option<Arc<Policy>>,
        auditor: SharedAuditor,
        connections: Option<SharedConnections>,
        callers: Option<SharedCallers>,
    ) -> RequestFlow {
        RequestFlow {
            policy,
            auditor,
            decision: None,
            override_reason: None,
            connections,
            callers,
            conn: Rc::default(),
            started: None,
            modes: audit::RedactionModes::default(),
            principal: None,
            proof: None,
            info: RequestInfo::default(),
            status: None,
            req: Side::default(),
            resp: Side::default(),
            replied: false,
            event_written: false,
        }
    }

    /// Keeps the facts of each connection in `cache` (the root context's), so a request on a
    /// known connection does not read them again.
    pub fn with_connections(mut self, cache: SharedConnections) -> RequestFlow {
        self.connections = Some(cache);
        self
    }

    /// Counts denials by caller under the bound kept in `callers` (one per wasm VM or Envoy worker).
    pub fn with_callers(mut self, callers: SharedCallers) -> RequestFlow {
        self.callers = Some(callers);
        self
    }

    pub fn on_request_headers<H: Host>(&mut self, host: &H, end_of_stream: bool) -> Verdict {
        self.started = Some(host.now());
        let headers = HeaderMap::read(host, Map::RequestHeaders);
        self.info = RequestInfo {
            method: headers.method(),
            path: String::new(),
            host: headers.text(":authority"),
            id: headers.text("x-request-id"),
        };
        let Some(policy) = self.policy.clone() else {
            host.log(
                LogLevel::Error,
                &format!("{LOG_PREFIX} no accepted configuration: request refused"),
            );
            self.reply(host, 503, "unavailable");
            return Verdict::Stop;
        };
        let raw_path = headers.str(":path");
        self.info.path = audit_safe(&policy, &raw_path);
        let source = policy.authorizer.source;
        self.conn = connection::facts(host, self.connections.as_ref(), source);
        // XFCC is read per request, and only where it could name the caller.
        let with_xfcc = (policy.authorizer.trust_xfcc
            && source == IdentitySource::PeerCertificate
            && self.conn.peer.uri_san.is_none())
        .then(|| {
            let mut peer = self.conn.peer.clone();
            peer.xfcc = headers
                .get("x-forwarded-client-cert")
                .and_then(|v| String::from_utf8(v.to_vec()).ok());
            peer
        });
        let auth = policy
            .authorizer
            .authenticate(with_xfcc.as_ref().unwrap_or(&self.conn.peer));
        if let Authentication::Principal { id, proof } = &auth {
            self.principal = Some(id.as_str().to_owned());
            self.proof = Some(*proof);
        }
        let decision = policy
            .authorizer
            .decide(&auth, &self.info.method, &raw_path);
        self.decision = Some(decision);
        let enforce = policy.mode == Mode::Enforce;
        if !decision.allow && enforce {
            return self.deny(host, 403, "forbidden", None);
        }
        // No request is served while its audit event could not be written or shipped.
        if enforce && trail_unavailable(host, &self.auditor, policy.audit.sink) {
            return self.deny(host, 503, "unavailable", Some("audit_unavailable"));
        }

        // Let through: set up redaction for both directions.
        let grant = match policy.authorizer.rule(&decision) {
            Some(rule) if decision.allow => rule.pan,
            _ => PanGrant::default(),
        };
        let red = &policy.redaction;
        let side_opts = |granted: bool| Options {
            masking: red.masking,
            mask: enforce && !granted,
            json: false,
        };
        self.req.opts = Some(side_opts(grant.request));
        self.resp.opts = Some(side_opts(grant.response));
        self.req.mask_patterns = enforce;
        self.resp.mask_patterns = enforce;
        let token_key = self
            .auditor
            .try_borrow()
            .ok()
            .and_then(|a| a.token_key.clone());
        self.req.tokens = token_key.clone().map(Tokens::new);
        self.resp.tokens = token_key.map(Tokens::new);
        let mode = |granted: bool, on: bool| match (on, enforce, granted) {
            (false, _, _) => "off",
            (true, false, _) => "dry_run",
            (true, true, true) => "grant",
            (true, true, false) => "mask",
        };
        self.modes = audit::RedactionModes {
            request: mode(grant.request, red.request_headers || red.request_body),
            response: mode(grant.response, red.response_headers || red.response_body),
        };

        let body =
            (red.request_body && !end_of_stream).then(|| (is_encoded(&headers), is_json(&headers)));
        if red.request_headers {
            redact_entries(host, Map::RequestHeaders, headers, &policy, &mut self.req);
        }
        if red.response_body {
            // Ask for a body the filter can read. Failing that, `compressed_body` decides.
            let _ = host.set_header(Map::RequestHeaders, "accept-encoding", b"identity");
        }
        if let Some((encoded, json)) = body {
            if let Some(refused) = self.open_body(host, Direction::Request, &policy, encoded, json)
            {
                return refused;
            }
        }
        Verdict::Continue
    }

    pub fn on_request_body<H: Host>(&mut self, host: &H, size: usize, end: bool) -> Verdict {
        self.on_body(host, Direction::Request, size, end)
    }

    pub fn on_request_trailers<H: Host>(&mut self, host: &H) -> Verdict {
        self.on_trailers(host, Direction::Request)
    }

    pub fn on_response_headers<H: Host>(&mut self, host: &H, end_of_stream: bool) -> Verdict {
        let policy = match &self.policy {
            Some(p) if !self.replied && self.resp.opts.is_some() => p.clone(),
            // No configuration, or the filter's own local reply: nothing to redact.
            _ => {
                if self.status.is_none() {
                    self.status = host::text(host.header(Map::ResponseHeaders, ":status"))
                        .parse()
                        .ok();
                }
                return Verdict::Continue;
            }
        };
        let headers = HeaderMap::read(host, Map::ResponseHeaders);
        if self.status.is_none() {
            self.status = headers.number(":status");
        }
        let red = &policy.redaction;
        let body = (red.response_body && !end_of_stream)
            .then(|| (is_encoded(&headers), is_json(&headers)));
        if red.response_headers {
            redact_entries(host, Map::ResponseHeaders, headers, &policy, &mut self.resp);
        }
        if let Some((encoded, json)) = body {
            if let Some(refused) = self.open_body(host, Direction::Response, &policy, encoded, json)
            {
                return refused;
            }
        }
        Verdict::Continue
    }

    /// Sets up one direction's body: a redacting stream, or for a body the filter cannot read
    /// (`encoded`), what `compressed_body` says: a refusal (returned) or a pass, noted.
    fn open_body<H: Host>(
        &mut self,
        host: &H,
        dir: Direction,
        policy: &Policy,
        encoded: bool,
        json: bool,
    ) -> Option<Verdict> {
        if encoded {
            host.increment(
                Metric::Unscannable(match dir {
                    Direction::Request => "request",
                    Direction::Response => "response",
                }),
                1,
            );
            let red = &policy.redaction;
            if red.compressed_body == CompressedBody::Block && policy.mode == Mode::Enforce {
                let (status, error) = match dir {
                    Direction::Request => (415, "unsupported_media_type"),
                    Direction::Response => (502, "bad_gateway"),
                };
                return Some(self.deny(host, status, error, Some("unscannable_body")));
            }
            self.side(dir).unscannable = true;
        } else {
            let stream = body_stream(dir, policy, self.side(dir), json);
            self.side(dir).body = Some(Box::new(stream));
        }
        None
    }

    pub fn on_response_body<H: Host>(&mut self, host: &H, size: usize, end: bool) -> Verdict {
        self.on_body(host, Direction::Response, size, end)
    }

    pub fn on_response_trailers<H: Host>(&mut self, host: &H) -> Verdict {
        self.on_trailers(host, Direction::Response)
    }

    /// The stream is over (Envoy's access-log stage): count, and write the access event.
    pub fn on_done<H: Host>(&mut self, host: &H) {
        if !self.event_written {
            self.write_event(host);
        }
    }

    fn side(&mut self, dir: Direction) -> &mut Side {
        match dir {
            Direction::Request => &mut self.req,
            Direction::Response => &mut self.resp,
        }
    }

    fn on_body<H: Host>(&mut self, host: &H, dir: Direction, size: usize, end: bool) -> Verdict {
        let Some(body) = self.side(dir).body.as_mut() else {
            return Verdict::Continue;
        };
        let step = body.on_data(host, size, end);
        self.step(host, dir, step)
    }

    fn on_trailers<H: Host>(&mut self, host: &H, dir: Direction) -> Verdict {
        let Some(policy) = self.policy.clone() else {
            return Verdict::Continue;
        };
        let headers_on = match dir {
            Direction::Request => policy.redaction.request_headers,
            Direction::Response => policy.redaction.response_headers,
        };
        if headers_on && self.side(dir).opts.is_some() {
            redact_map(host, Map::trailers(dir), &policy, self.side(dir));
        }
        let Some(body) = self.side(dir).body.as_mut() else {
            return Verdict::Continue;
        };
        let step = body.on_trailers(host);
        self.step(host, dir, step)
    }

    fn step<H: Host>(&mut self, host: &H, dir: Direction, step: Step) -> Verdict {
        match step {
            Step::Continue => Verdict::Continue,
            Step::Pause => Verdict::Stop,
            Step::Failed => {
                self.override_reason = Some("body_failure");
                host.reset(dir);
                Verdict::Stop
            }
        }
    }

    /// Answers locally and writes the access event now, or with the `access_log` sink when the
    /// stream ends (its filter state is written then, and sealing at that moment keeps the
    /// chain in the order Envoy writes it).
    fn deny<H: Host>(
        &mut self,
        host: &H,
        status: u32,
        error: &str,
        reason: Option<&'static str>,
    ) -> Verdict {
        self.override_reason = reason;
        self.reply(host, status, error);
        self.status = Some(status);
        self.replied = true;
        if self.policy.as_ref().map(|p| p.audit.sink) != Some(Sink::AccessLog) {
            self.write_event(host);
        }
        Verdict::Stop
    }

    fn reply<H: Host>(&self, host: &H, status: u32, error: &str) {
        let body = serde_json::json!({ "error": error, "request_id": self.info.id }).to_string();
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
        let body_counts = |s: &Side| s.body.as_ref().map(|b| *b.counts()).unwrap_or_default();
        let (req_body, resp_body) = (body_counts(&self.req), body_counts(&self.resp));
        let pan = PanCounts {
            request_headers: (&self.req.headers).into(),
            request_body: (&req_body).into(),
            response_headers: (&self.resp.headers).into(),
            response_body: (&resp_body).into(),
        };
        let mut req_total = self.req.headers;
        req_total.add(&req_body);
        let mut resp_total = self.resp.headers;
        resp_total.add(&resp_body);
        // Card numbers let through in a direction: by `dry_run`, or else by a `pan` grant.
        let passed = |mode: &str| {
            if mode == "dry_run" {
                "dry_run"
            } else {
                "granted"
            }
        };
        for (metric, n) in [
            (Metric::Pans("request", "redacted"), req_total.redacted),
            (
                Metric::Pans("request", passed(self.modes.request)),
                req_total.passed,
            ),
            (Metric::Pans("response", "redacted"), resp_total.redacted),
            (
                Metric::Pans("response", passed(self.modes.response)),
                resp_total.passed,
            ),
        ] {
            if n > 0 {
                host.increment(metric, n);
            }
        }
        let unscannable = [
            (self.req.unscannable, "request_body"),
            (self.resp.unscannable, "response_body"),
        ]
        .into_iter()
        .filter_map(|(u, place)| u.then_some(place))
        .collect();
        let mut tokens: Option<Tokens> = None;
        for side in [&self.req, &self.resp] {
            let body = side.body.as_ref().and_then(|b| b.tokens());
            for t in [side.tokens.as_ref(), body].into_iter().flatten() {
                match &mut tokens {
                    Some(all) => all.extend(t),
                    None => tokens = Some(t.clone()),
                }
            }
        }
        let blocked = self.override_reason.is_some();
        let allowed = decision.allow && !blocked;
        let reason = self.override_reason.unwrap_or(decision.reason.as_str());
        let enforced = policy.mode == Mode::Enforce;
        host.increment(
            match (allowed, enforced) {
                (true, _) => Metric::Allowed(reason),
                (false, true) => Metric::Denied(reason),
                (false, false) => Metric::DryRunDenied(reason),
            },
            1,
        );
        if !allowed {
            let principal = self.principal.as_deref();
            let caller = match self.callers.as_ref().and_then(|c| c.try_borrow_mut().ok()) {
                Some(mut named) => named.label(principal).to_owned(),
                None => callers::unbounded_label(principal).to_owned(),
            };
            host.count_denial(&caller, reason, !enforced);
        }
        let now = host.now();
        let request = std::mem::take(&mut self.info);
        let redaction = std::mem::take(&mut self.modes);
        let peer = &self.conn.peer;
        let event = AccessEvent {
            schema: audit::SCHEMA,
            ts: audit::rfc3339_millis(now),
            event: "access",
            decision: if decision.allow && !blocked {
                "allow"
            } else {
                "deny"
            },
            enforced: policy.mode == Mode::Enforce,
            mode: policy.mode.as_str(),
            reason: self.override_reason.unwrap_or(decision.reason.as_str()),
            rule: policy.authorizer.rule(&decision).map(|r| r.name.as_str()),
            principal: self.principal.as_deref(),
            workload: self.conn.workload.as_deref(),
            identity_source: self.proof.map(Proof::as_str),
            peer_subject: peer.subject.as_deref(),
            peer_cert_sha256: peer.cert_sha256.as_deref(),
            source: peer.source.as_deref(),
            tls_version: peer.tls_version.as_deref(),
            request,
            status: self.status,
            duration_ms: self
                .started
                .and_then(|t| now.duration_since(t).ok())
                .map_or(0, |d| d.as_millis() as u64),
            redaction,
            pan,
            pan_tokens: tokens.map(|t| t.list().to_vec()).unwrap_or_default(),
            unscannable,
        };
        emit_access(host, &self.auditor, &event, policy.audit.sink);
    }
}

#[cfg(test)]
pub(crate) mod tests;
