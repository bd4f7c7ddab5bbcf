//! Audit events (SPEC section 5): one JSON object per event, never holding a readable PAN.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

mod access_json;
pub mod chain;
mod checkpoint;
pub mod json;
pub mod ocsf;
pub mod otlp;
pub mod verify;

pub use checkpoint::{Checkpoint, LifecycleEvent, Published, SharedPublished};

use crate::host::LogLevel;
use crate::lint::Finding;
use crate::pan::Counts;

pub const SCHEMA: &str = "pci-mesh-guard/audit/v1";

/// PAN counts of one place (request headers, request body, ...). Never digits: only numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlaceCounts {
    pub found: u64,
    pub redacted: u64,
    pub passed: u64,
    /// PANs found per brand (`visa`, `mastercard`, ...); absent when none were found.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub brands: BTreeMap<&'static str, u64>,
    /// Matches of the custom `redaction.patterns`; absent when zero.
    #[serde(skip_serializing_if = "is_zero")]
    pub patterns: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<&Counts> for PlaceCounts {
    fn from(c: &Counts) -> PlaceCounts {
        PlaceCounts {
            found: c.found,
            redacted: c.redacted,
            passed: c.passed,
            brands: c.brands().map(|(b, n)| (b.as_str(), n)).collect(),
            patterns: c.patterns,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedactionModes {
    pub request: &'static str,
    pub response: &'static str,
}

impl Default for RedactionModes {
    /// A request stopped before redaction was set up: nothing of it passed.
    fn default() -> Self {
        RedactionModes {
            request: "none",
            response: "none",
        }
    }
}

/// PAN counts per place for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PanCounts {
    pub request_headers: PlaceCounts,
    pub request_body: PlaceCounts,
    pub response_headers: PlaceCounts,
    pub response_body: PlaceCounts,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestInfo {
    /// Borrowed for the methods of `known_method`, which most requests use.
    pub method: Cow<'static, str>,
    /// The `:path`, with PANs and custom pattern matches masked.
    pub path: String,
    pub host: String,
    /// The `x-request-id` header, or empty.
    pub id: String,
}

/// The `access` event: one per request, written when the request ends or is denied. It borrows
/// what the request flow already holds: the event is only serialized, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessEvent<'a> {
    pub schema: &'static str,
    pub ts: String,
    pub event: &'static str,
    pub decision: &'static str,
    pub enforced: bool,
    pub mode: &'static str,
    pub reason: &'static str,
    pub rule: Option<&'a str>,
    pub principal: Option<&'a str>,
    /// This sidecar's own workload identity (the URI SAN of its certificate), when it has one.
    pub workload: Option<&'a str>,
    /// Where the principal came from: `certificate`, or `xfcc` under `identity.trust_xfcc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_source: Option<&'static str>,
    /// The verified client certificate's subject and SHA-256 digest, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_cert_sha256: Option<&'a str>,
    pub source: Option<&'a str>,
    pub tls_version: Option<&'a str>,
    pub request: RequestInfo,
    pub status: Option<u32>,
    /// From the request's headers to the end of the stream (or the denial), by the host clock.
    pub duration_ms: u64,
    /// How PANs were treated per direction: `mask`, `grant` (a `pan` grant let them through),
    /// `dry_run` (counted, not rewritten), `off` (redaction switched off for both places), or
    /// `none` (the request was stopped before anything passed).
    pub redaction: RedactionModes,
    pub pan: PanCounts,
    /// Keyed tokens of the PANs seen (see `pan::token`), when a token key is set; absent otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pan_tokens: Vec<String>,
    /// Bodies that could not be scanned (compressed), by place; absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unscannable: Vec<&'static str>,
}

/// The `config` event: a configuration was accepted or rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigEvent {
    pub schema: &'static str,
    pub ts: String,
    pub event: &'static str,
    pub accepted: bool,
    /// Why it was rejected: the key path and the cause.
    pub error: Option<String>,
    /// SHA-256 (hex) of the configuration as given, so each decision can be tied to its policy.
    pub config_sha256: String,
    pub mode: Option<&'static str>,
    pub rules: usize,
    /// The policy linter's findings.
    pub findings: Vec<Finding>,
    /// With the `access_log` sink: the chain its access events are sealed in (in Envoy's access
    /// log), while this event and the other VM events stay in the proxy log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_chain: Option<String>,
    /// The heartbeat period in seconds (0: off), of an accepted configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_s: Option<u64>,
    /// Weaknesses of the audit trail itself (no key, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Seals events into the VM's chains and renders each as its line. One per VM, owned by the root
/// context and shared (`Rc<RefCell<_>>`) with every request of that VM.
pub struct Auditor {
    /// Every event written to the proxy log (all of them, but with the `access_log` sink).
    chain: chain::Chain,
    /// With the `access_log` sink, the access events, which Envoy's access log writes to a file of
    /// its own: a chain per file, so that each file verifies alone. Its id is the VM chain's id
    /// followed by `.access`.
    access_chain: chain::Chain,
    /// The `otlp_http` sink's queue, when configured.
    pub shipper: Option<otlp::Shipper>,
    /// Events the sink's full queue refused since the last `audit_failure` report.
    pub unreported_drops: u64,
    /// Events that had nowhere to go (the proxy log was off and no other sink took them) since
    /// the last `audit_failure` report. Never sealed, so the chain has no gap for them.
    pub unwritten: u64,
    /// The level events were last written at, so that a change is announced once.
    pub log_level: Option<LogLevel>,
    /// Set when a key from the environment cannot be used; the configuration is then refused.
    pub key_problem: Option<String>,
    /// Where the keys come from, as a rejection names it: the wasm VM's environment
    /// (`vm_config.environment_variables.`, the default) or the proxy process's.
    pub key_origin: &'static str,
    /// The key of keyed PAN tokens (`TOKEN_KEY_ENV`); without it no tokens are recorded.
    pub token_key: Option<Rc<[u8]>>,
    /// The configuration's heartbeat period (`audit.heartbeat_s`), `None` when off.
    heartbeat: Option<Duration>,
    /// When the last heartbeat (or the `config` event that started the period) was written.
    last_heartbeat: SystemTime,
    /// Where the chains' state is published for another thread, if anywhere (`publish`).
    published: Option<SharedPublished>,
}

/// The VM environment variable holding the key of keyed PAN tokens.
pub const TOKEN_KEY_ENV: &str = "PCI_MESH_GUARD_TOKEN_KEY";

pub type SharedAuditor = Rc<RefCell<Auditor>>;

impl Auditor {
    /// `key` is the value of `chain::KEY_ENV`, if set.
    pub fn new(chain_id: String, key: Option<&str>) -> Auditor {
        Auditor::with_key_id(chain_id, key, None)
    }

    /// `key` and `kid` are the values of `chain::KEY_ENV` and `chain::KEY_ID_ENV`, if set; without
    /// a `kid` the key's derived id names it.
    pub fn with_key_id(chain_id: String, key: Option<&str>, kid: Option<&str>) -> Auditor {
        let (key, mut key_problem) = match key {
            Some(k) if k.len() < chain::MIN_KEY_LEN => (
                None,
                Some(format!(
                    "{}: shorter than {} bytes",
                    chain::KEY_ENV,
                    chain::MIN_KEY_LEN
                )),
            ),
            Some(k) => (Some(k.as_bytes().to_vec()), None),
            None => (None, None),
        };
        let kid = match kid {
            Some(kid) => {
                if let Some(why) = chain::kid_problem(kid) {
                    key_problem.get_or_insert(format!("{}: {why}", chain::KEY_ID_ENV));
                }
                kid.to_owned()
            }
            None => key.as_deref().map(chain::derived_kid).unwrap_or_default(),
        };
        Auditor {
            access_chain: chain::Chain::with_kid(
                format!("{chain_id}.access"),
                key.clone(),
                kid.clone(),
            ),
            chain: chain::Chain::with_kid(chain_id, key, kid),
            shipper: None,
            unreported_drops: 0,
            unwritten: 0,
            log_level: None,
            key_problem,
            key_origin: "vm_config.environment_variables.",
            token_key: None,
            heartbeat: None,
            last_heartbeat: UNIX_EPOCH,
            published: None,
        }
    }

    /// Turns on keyed PAN tokens with the value of `TOKEN_KEY_ENV`, if set.
    pub fn with_token_key(mut self, key: Option<&str>) -> Auditor {
        match key {
            Some(k) if k.len() < chain::MIN_KEY_LEN => {
                self.key_problem.get_or_insert(format!(
                    "{TOKEN_KEY_ENV}: shorter than {} bytes",
                    chain::MIN_KEY_LEN
                ));
            }
            Some(k) => self.token_key = Some(k.as_bytes().into()),
            None => {}
        }
        self
    }

    /// Names where the keys come from in a rejection (see `key_origin`).
    pub fn with_key_origin(mut self, origin: &'static str) -> Auditor {
        self.key_origin = origin;
        self
    }

    pub fn shared(self) -> SharedAuditor {
        Rc::new(RefCell::new(self))
    }

    pub fn keyed(&self) -> bool {
        self.chain.keyed()
    }

    /// The event's sealed log line; with the `otlp_http` sink it is also queued for shipping.
    pub fn line<T: Serialize>(&mut self, event: &T) -> String {
        self.line_json(to_line(event))
    }

    /// As `line`, for an event already written as JSON.
    pub fn line_json(&mut self, json: String) -> String {
        let line = self.chain.seal(json);
        self.published_update();
        if let Some(s) = &mut self.shipper {
            if !s.push(line.clone()) {
                self.unreported_drops += 1;
            }
        }
        line
    }

    /// The access event's sealed line for the `access_log` sink (its own chain; never shipped).
    pub fn access_line(&mut self, event: &AccessEvent<'_>) -> String {
        let line = self.access_chain.seal(event.to_json());
        self.published_update();
        line
    }

    /// The id of the chain of the `access_log` sink's events.
    pub fn access_chain_id(&self) -> &str {
        self.access_chain.id()
    }

    /// Sets up (or keeps, or removes) the `otlp_http` sink for a newly accepted configuration.
    /// Events still queued for a sink that goes away are counted as dropped, so the next report
    /// (an `audit_failure` event) says they never left.
    pub fn configure_sink(&mut self, settings: Option<otlp::OtlpSettings>) {
        if let (Some(new), Some(old)) = (&settings, &self.shipper) {
            if old.settings == *new {
                return;
            }
        }
        if let Some(old) = self.shipper.take() {
            self.unreported_drops += old.queued() as u64;
        }
        self.shipper = settings.map(otlp::Shipper::new);
    }

    /// The sink is `required` and its queue is full: requests must wait for the trail.
    pub fn must_refuse(&self) -> bool {
        self.shipper
            .as_ref()
            .is_some_and(|s| s.settings.required && s.is_full())
    }
}

/// SHA-256 of bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    chain::hex(&Sha256::digest(bytes))
}

/// The `audit_failure` event: events that could not be delivered, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditFailureEvent {
    pub schema: &'static str,
    pub ts: String,
    pub event: &'static str,
    /// `queue_full`, `rejected` (partialSuccess), `delivery_failed`, `log_unavailable` (the
    /// proxy log was off and no other sink took the events), or `state_unavailable` (the host
    /// refused an access event's filter state).
    pub reason: &'static str,
    pub dropped: u64,
    pub detail: String,
}

/// Serializes an event to its one-line JSON form. Serialization of these plain structs cannot
/// fail; should it ever, a fixed marker line is returned rather than nothing.
pub fn to_line<T: Serialize>(event: &T) -> String {
    // An access event is about a kilobyte: one allocation, with room for the chain's fields.
    let mut buf = Vec::with_capacity(1536);
    match serde_json::to_writer(&mut buf, event).map(|()| String::from_utf8(buf)) {
        Ok(Ok(line)) => line,
        _ => format!(r#"{{"schema":"{SCHEMA}","event":"audit_failure"}}"#),
    }
}

/// Formats a time as RFC 3339 UTC with milliseconds: `2026-11-25T00:42:03.123Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    // Seconds and milliseconds apart: a 128-bit division by 1000 cost more than the rest.
    let (secs, ms) = t
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_secs().min(i64::MAX as u64) as i64, d.subsec_millis()))
        .unwrap_or((0, 0));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mi, ss, frac) = (sod / 3600, sod / 60 % 60, sod % 60, ms % 1000);
    if !(0..=9999).contains(&y) {
        return format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mi:02}:{ss:02}.{frac:03}Z");
    }
    // Written digit by digit: every event carries one, and `format!` was a tenth of an allowed
    // request's own work.
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            if let Some(b) = out.get_mut(i) {
                *b = b'0' + (v % 10) as u8;
            }
            v /= 10;
        }
    };
    put(0, 4, y as u64);
    put(5, 2, u64::from(m));
    put(8, 2, u64::from(d));
    put(11, 2, hh as u64);
    put(14, 2, mi as u64);
    put(17, 2, ss as u64);
    put(20, 3, (frac % 1000) as u64);
    // Digits and `-:.TZ` only.
    std::str::from_utf8(&out).unwrap_or_default().to_owned()
}

/// Reads a time as `rfc3339_millis` writes it (`2026-11-25T00:42:03.123Z`; the fraction may be
/// left out), as milliseconds since the epoch. `None` for anything else.
pub fn parse_rfc3339_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if seps.iter().any(|(i, c)| b.get(*i) != Some(c)) {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let ms = match b.get(19..) {
        Some(b"Z") => 0,
        Some([b'.', f @ .., b'Z']) if f.len() == 3 => num(20, 3)?,
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000) + ms)
}

/// A proleptic Gregorian (year, month, day) to days since 1970-01-01 (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn writes_every_instant_as_format_would() {
        let mut t: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            t ^= t << 13;
            t ^= t >> 7;
            t ^= t << 17;
            // Up to the year 9999 and a little past it.
            let ms = t % 253_402_300_800_000 + if t % 7 == 0 { 253_402_300_799_000 } else { 0 };
            let at = UNIX_EPOCH + Duration::from_millis(ms);
            let secs = (ms / 1000) as i64;
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let sod = secs.rem_euclid(86_400);
            let want = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                sod / 3600,
                sod / 60 % 60,
                sod % 60,
                ms % 1000
            );
            assert_eq!(rfc3339_millis(at), want);
        }
    }

    #[test]
    fn reads_back_every_instant_it_writes() {
        let mut t: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2000 {
            t ^= t << 13;
            t ^= t >> 7;
            t ^= t << 17;
            let ms = t % 253_402_300_800_000;
            let written = rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms));
            assert_eq!(parse_rfc3339_millis(&written), Some(ms as i64), "{written}");
        }
        assert_eq!(
            parse_rfc3339_millis("2026-12-07T20:00:00Z"),
            parse_rfc3339_millis("2026-12-07T20:00:00.000Z")
        );
        for bad in [
            "2026-12-07 20:00:00Z",
            "2026-12-07T20:00:00",
            "2026-13-07T20:00:00Z",
            "2026-12-07T20:00:00.5Z",
            "2026-12-07T24:00:00Z",
            "",
        ] {
            assert_eq!(parse_rfc3339_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_rfc3339_utc_with_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_567_323_045);
        assert_eq!(rfc3339_millis(t), "2026-11-25T00:42:03.045Z");
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339_millis(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn serialization_is_stable_and_canonical() {
        let e = AuditFailureEvent {
            schema: SCHEMA,
            ts: rfc3339_millis(UNIX_EPOCH),
            event: "audit_failure",
            reason: "queue_full",
            dropped: 3,
            detail: "x\"y".into(),
        };
        let want = r#"{"schema":"pci-mesh-guard/audit/v1","ts":"1970-01-01T00:00:00.000Z","event":"audit_failure","reason":"queue_full","dropped":3,"detail":"x\"y"}"#;
        assert_eq!(to_line(&e), want);
        assert_eq!(to_line(&e), to_line(&e.clone()), "same event, same bytes");
        let mut a = Auditor::new("c".into(), Some("0123456789abcdef"));
        let mut b = Auditor::new("c".into(), Some("0123456789abcdef"));
        assert_eq!(a.line(&e), b.line(&e), "same chain state, same sealed line");
    }

    #[test]
    fn a_replaced_sink_counts_its_queued_events_as_dropped() {
        let settings = |batch| otlp::OtlpSettings {
            cluster: "otel".into(),
            authority: "otel".into(),
            path: "/v1/logs".into(),
            flush_interval: std::time::Duration::from_secs(1),
            max_batch: batch,
            max_queue: 10,
            timeout: std::time::Duration::from_secs(1),
            required: false,
        };
        let mut a = Auditor::new("c".into(), None);
        a.configure_sink(Some(settings(5)));
        a.line(&serde_json::json!({"schema": SCHEMA}));
        a.line(&serde_json::json!({"schema": SCHEMA}));
        a.configure_sink(Some(settings(5)));
        assert_eq!(
            (a.unreported_drops, a.shipper.as_ref().unwrap().queued()),
            (0, 2),
            "same settings: kept"
        );
        a.configure_sink(Some(settings(6)));
        assert_eq!(
            (a.unreported_drops, a.shipper.as_ref().unwrap().queued()),
            (2, 0)
        );
        a.line(&serde_json::json!({"schema": SCHEMA}));
        a.configure_sink(None);
        assert_eq!(a.unreported_drops, 3);
        assert!(a.shipper.is_none());
    }

    #[test]
    fn events_are_sealed_into_one_chain() {
        let mut a = Auditor::new("c".into(), Some("0123456789abcdef"));
        let first: serde_json::Value =
            serde_json::from_str(&a.line(&serde_json::json!({"schema": SCHEMA}))).unwrap();
        let second: serde_json::Value =
            serde_json::from_str(&a.line(&serde_json::json!({"schema": SCHEMA}))).unwrap();
        assert_eq!(
            (first["seq"].as_u64(), second["seq"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(first["alg"], "hmac-sha256");
        assert_ne!(first["mac"], second["mac"]);
        assert!(Auditor::new("c".into(), Some("short"))
            .key_problem
            .is_some());
        assert!(!Auditor::new("c".into(), None).keyed());
    }
}
