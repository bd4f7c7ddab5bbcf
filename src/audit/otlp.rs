//! The `otlp_http` sink: events queue in the VM (bounded), leave in batches as OTLP/HTTP JSON logs
//! (`ExportLogsServiceRequest`), and are retried with backoff on 429/502/503/504 only. What cannot be
//! delivered is counted and reported as an `audit_failure` event; the proxy log keeps every event.
//!
//! This is the host-independent part: the adapter sends the bodies it gets and feeds back answers.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The sink's settings (`audit.*` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The Envoy cluster of the collector.
    pub cluster: String,
    /// The `:authority` of the export requests.
    pub authority: String,
    pub path: String,
    pub flush_interval: Duration,
    pub max_batch: usize,
    pub max_queue: usize,
    pub timeout: Duration,
    /// While the queue is full, new requests are refused (503) rather than served unaudited.
    pub required: bool,
}

/// Most attempts for one batch before its events are dropped.
pub const MAX_ATTEMPTS: u32 = 5;
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Counts kept by the sink, also exported as proxy counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounts {
    pub queued: u64,
    pub sent: u64,
    pub dropped: u64,
    pub errors: u64,
}

/// What happened to a batch, for the adapter to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// All delivered.
    Sent(usize),
    /// Delivered, but the collector rejected some records (`partialSuccess`).
    Partial {
        sent: usize,
        rejected: usize,
        message: String,
    },
    /// Will be sent again after a backoff.
    Retry { attempt: u32 },
    /// Given up: the events are dropped.
    Dropped { count: usize, why: String },
}

pub struct Shipper {
    pub settings: OtlpSettings,
    queue: VecDeque<String>,
    /// The batch on its way (or waiting to be retried) and its attempts so far.
    in_flight: Option<(Vec<String>, u32)>,
    retry_at: Option<SystemTime>,
    last_flush: Option<SystemTime>,
    pub counts: SinkCounts,
}

impl Shipper {
    pub fn new(settings: OtlpSettings) -> Shipper {
        Shipper {
            settings,
            queue: VecDeque::new(),
            in_flight: None,
            retry_at: None,
            last_flush: None,
            counts: SinkCounts::default(),
        }
    }

    /// Events waiting to be sent (a batch in flight is not counted).
    pub fn depth(&self) -> usize {
        self.queue.len()
    }

    /// Queues one sealed event. `false` when the queue is full and the event was dropped.
    pub fn push(&mut self, line: String) -> bool {
        if self.is_full() {
            self.counts.dropped += 1;
            return false;
        }
        self.queue.push_back(line);
        self.counts.queued += 1;
        true
    }

    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.settings.max_queue
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The body to send now, if a batch is due: a full batch, the flush interval passed, or a
    /// retry's backoff over. Nothing while a request is on its way.
    pub fn due(&mut self, now: SystemTime) -> Option<Vec<u8>> {
        if let Some((batch, _)) = &self.in_flight {
            if self.retry_at.is_some_and(|t| now >= t) {
                self.retry_at = None;
                return Some(encode(batch));
            }
            return None;
        }
        if self.queue.is_empty() {
            return None;
        }
        let interval_passed = self.last_flush.is_none_or(|t| {
            now.duration_since(t).unwrap_or_default() >= self.settings.flush_interval
        });
        if self.queue.len() < self.settings.max_batch && !interval_passed {
            return None;
        }
        let n = self.queue.len().min(self.settings.max_batch);
        let batch: Vec<String> = self.queue.drain(..n).collect();
        let body = encode(&batch);
        self.in_flight = Some((batch, 1));
        self.last_flush = Some(now);
        Some(body)
    }

    /// The collector's answer to the batch on its way: `status` (None: no answer at all) and body.
    pub fn answered(&mut self, status: Option<u16>, body: &[u8], now: SystemTime) -> Delivery {
        let Some((batch, attempt)) = self.in_flight.take() else {
            return Delivery::Sent(0);
        };
        let n = batch.len();
        match status {
            Some(200..=299) => {
                let rejected = partial_rejections(body);
                match rejected {
                    Some((k, message)) if k > 0 => {
                        let k = k.min(n);
                        self.counts.sent += (n - k) as u64;
                        self.counts.dropped += k as u64;
                        Delivery::Partial {
                            sent: n - k,
                            rejected: k,
                            message,
                        }
                    }
                    _ => {
                        self.counts.sent += n as u64;
                        Delivery::Sent(n)
                    }
                }
            }
            Some(429 | 502 | 503 | 504) if attempt < MAX_ATTEMPTS => {
                self.counts.errors += 1;
                let backoff = BACKOFF_BASE
                    .saturating_mul(1 << (attempt - 1).min(10))
                    .min(BACKOFF_MAX);
                self.retry_at = Some(now + backoff);
                self.in_flight = Some((batch, attempt + 1));
                Delivery::Retry { attempt }
            }
            other => {
                self.counts.errors += 1;
                self.counts.dropped += n as u64;
                let why = match other {
                    Some(s) if attempt >= MAX_ATTEMPTS && matches!(s, 429 | 502 | 503 | 504) => {
                        format!("collector answered {s} {MAX_ATTEMPTS} times")
                    }
                    Some(s) => format!("collector answered {s}"),
                    None => "no answer from the collector".into(),
                };
                Delivery::Dropped { count: n, why }
            }
        }
    }

    /// The request on its way failed before any answer (dispatch refused, timeout).
    pub fn failed(&mut self, why: &str) -> Delivery {
        let Some((batch, _)) = self.in_flight.take() else {
            return Delivery::Sent(0);
        };
        self.counts.errors += 1;
        self.counts.dropped += batch.len() as u64;
        Delivery::Dropped {
            count: batch.len(),
            why: why.into(),
        }
    }
}

/// `partialSuccess.rejectedLogRecords` and its message, if the answer has them.
fn partial_rejections(body: &[u8]) -> Option<(usize, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let p = v.get("partialSuccess")?;
    // int64 fields are strings in OTLP JSON, but accept numbers too.
    let k = match &p["rejectedLogRecords"] {
        Value::String(s) => s.parse().ok()?,
        Value::Number(n) => n.as_u64()?,
        _ => 0,
    };
    let message = p["errorMessage"].as_str().unwrap_or("").to_string();
    Some((usize::try_from(k).unwrap_or(usize::MAX), message))
}

/// One OTLP/HTTP JSON `ExportLogsServiceRequest` holding the events as log records: the event's
/// JSON as the body, its kind as an attribute, its timestamp as the record's time.
pub fn encode(events: &[String]) -> Vec<u8> {
    let records: Vec<Value> = events
        .iter()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
            let kind = v["event"].as_str().unwrap_or("unknown").to_string();
            let nanos = v["ts"]
                .as_str()
                .and_then(parse_rfc3339_millis)
                .map_or_else(String::new, |t| {
                    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos().to_string()
                });
            let severity = if kind == "audit_failure" { (17, "ERROR") } else { (9, "INFO") };
            json!({
                "timeUnixNano": nanos,
                "severityNumber": severity.0,
                "severityText": severity.1,
                "body": { "stringValue": line },
                "attributes": [
                    { "key": "event.name", "value": { "stringValue": format!("pci-mesh-guard.{kind}") } },
                ],
            })
        })
        .collect();
    let request = json!({
        "resourceLogs": [{
            "resource": { "attributes": [
                { "key": "service.name", "value": { "stringValue": "pci-mesh-guard" } },
            ]},
            "scopeLogs": [{
                "scope": { "name": "pci-mesh-guard", "version": env!("CARGO_PKG_VERSION") },
                "logRecords": records,
            }],
        }],
    });
    serde_json::to_vec(&request).unwrap_or_default()
}

/// Parses the `ts` this plugin writes (`2026-11-25T00:42:03.045Z`).
fn parse_rfc3339_millis(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 24 || b.get(23) != Some(&b'Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    // Days from civil (H. Hinnant), the inverse of the formatter in `audit`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let millis = ((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms;
    Some(UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).ok()?))
}

#[cfg(test)]
mod tests;
