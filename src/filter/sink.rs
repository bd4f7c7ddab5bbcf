//! The audit trail's way out: every event sealed into the VM's chain and logged, and the
//! `otlp_http` sink driven from the root context (timer, answers, failures).

use crate::audit::{self, SharedAuditor};
use crate::config::Sink;
use crate::host::{Gauge, Host, LogLevel, Metric};

use super::LOG_PREFIX;

/// Writes one event to the audit trail, sealed into this VM's chain.
///
/// The event goes to the proxy log at `info`, or at the proxy's own level when that is higher
/// (Istio's sidecars run at `warning`): an audit event is never written where the proxy drops it.
/// With the log off it goes to the `otlp_http` sink alone, or, without one, it is lost: counted
/// at once, and reported by an `audit_failure` event as soon as an event can be written again.
/// Requests are refused meanwhile (`trail_unavailable`).
pub fn emit<H: Host, T: serde::Serialize>(host: &H, auditor: &SharedAuditor, event: &T) {
    emit_json(host, auditor, audit::to_line(event));
}

/// As `emit`, for an event already written as JSON.
fn emit_json<H: Host>(host: &H, auditor: &SharedAuditor, json: String) {
    let Ok(mut a) = auditor.try_borrow_mut() else {
        // Unreachable with proxy-wasm's sequential callbacks; never panic over it.
        host.log(
            LogLevel::Critical,
            &format!("{LOG_PREFIX} audit chain busy; event not written"),
        );
        host.increment(Metric::AuditDropped, 1);
        return;
    };
    let level = host.log_level().map(|l| l.max(LogLevel::Info));
    if level.is_none() && a.shipper.is_none() {
        a.unwritten += 1;
        host.increment(Metric::AuditDropped, 1);
        return;
    }
    if let Some(level) = level.filter(|l| a.log_level != Some(*l)) {
        a.log_level = Some(level);
        if level > LogLevel::Info {
            host.log(
                level,
                &format!(
                    "{LOG_PREFIX} the proxy log level for wasm is {}: audit events are written at {} so that none is lost",
                    level.as_str(),
                    level.as_str()
                ),
            );
        }
    }
    let unwritten = std::mem::take(&mut a.unwritten);
    if unwritten > 0 {
        // Already counted as dropped when they were lost.
        let failure = audit::AuditFailureEvent {
            schema: audit::SCHEMA,
            ts: audit::rfc3339_millis(host.now()),
            event: "audit_failure",
            reason: "log_unavailable",
            dropped: unwritten,
            detail: "the proxy log was off (wasm log level off) and no other sink took them".into(),
        };
        write(host, &mut a, level, audit::to_line(&failure));
    }
    write(host, &mut a, level, json);
}

/// Seals an event (queuing it for the `otlp_http` sink, if any) and logs it at `level`.
fn write<H: Host>(host: &H, a: &mut audit::Auditor, level: Option<LogLevel>, json: String) {
    let line = a.line_json(json);
    if let Some(level) = level {
        host.log(level, &line);
    }
    host.increment(Metric::AuditEmitted, 1);
}

/// No access event of a request let through now could be written anywhere: the proxy log is off
/// and no other sink takes access events, or the `required` sink's queue is full. Such requests
/// are refused.
pub fn trail_unavailable<H: Host>(host: &H, auditor: &SharedAuditor, sink: Sink) -> bool {
    let Ok(a) = auditor.try_borrow() else {
        return true;
    };
    a.must_refuse() || (sink == Sink::Log && a.shipper.is_none() && host.log_level().is_none())
}

/// The filter state Envoy's access log reads the `access_log` sink's events from
/// (`%FILTER_STATE(wasm.pmg_audit:PLAIN)%`).
pub const AUDIT_STATE: &str = "pmg_audit";
/// The dynamic metadata (namespace, key) set `true` beside each access event's filter state,
/// where the host can: an access log selects those streams with a `metadata_filter`, cheaper than
/// an expression over the filter state (see the book's Sinks page, docs/src/audit/sinks.md).
pub const AUDIT_METADATA: (&str, &str) = ("pci_mesh_guard", "audit_event");

/// Writes a request's access event: with the `access_log` sink into the stream's filter state,
/// sealed in the access chain, for Envoy's access log to write when the stream ends (it runs
/// right after `on_log`, on the same worker, so the log keeps the chain's order); otherwise as
/// every other event (`emit`).
pub fn emit_access<H: Host>(
    host: &H,
    auditor: &SharedAuditor,
    event: &audit::AccessEvent<'_>,
    sink: Sink,
) {
    if sink != Sink::AccessLog {
        return emit_json(host, auditor, event.to_json());
    }
    let line = match auditor.try_borrow_mut() {
        Ok(mut a) => a.access_line(event),
        Err(_) => {
            host.increment(Metric::AuditDropped, 1);
            return;
        }
    };
    match host.set_filter_state(AUDIT_STATE, line.as_bytes()) {
        Ok(()) => {
            // Refused by proxy-wasm, which has no such call: its access log selects the
            // events by an expression over the filter state instead.
            let _ = host.mark_metadata(AUDIT_METADATA.0, AUDIT_METADATA.1);
            host.increment(Metric::AuditEmitted, 1)
        }
        Err(e) => report_failure(
            host,
            auditor,
            "state_unavailable",
            1,
            format!("filter state wasm.{AUDIT_STATE} refused: {e}"),
        ),
    }
}

/// The root context's timer: writes a `heartbeat` when one is due, reports events the sink had to
/// refuse, and returns the body of the export request to send now, if one is due.
pub fn audit_tick<H: Host>(host: &H, auditor: &SharedAuditor) -> Option<Vec<u8>> {
    let now = host.now();
    let heartbeat = match auditor.try_borrow_mut() {
        Ok(mut a) if a.heartbeat_due(now) => Some(a.lifecycle(now, None)),
        _ => None,
    };
    if let Some(event) = heartbeat {
        emit(host, auditor, &event);
    }
    report_drops(host, auditor);
    let mut a = auditor.try_borrow_mut().ok()?;
    let shipper = a.shipper.as_mut()?;
    let due = shipper.due(now);
    host.set_gauge(Gauge::AuditQueueDepth, shipper.depth() as u64);
    due
}

/// Writes the `stop` event of a chain whose configuration ends: `reason` is `shutdown` (the
/// plugin is unloaded) or `reconfigured` (a new configuration replaces it).
pub fn audit_stop<H: Host>(host: &H, auditor: &SharedAuditor, reason: &'static str) {
    audit_stop_vouching(host, auditor, reason, Vec::new());
}

/// As `audit_stop`, vouching also for `others`, chains written elsewhere (the native build's
/// workers' chains, in its main thread's chain).
pub fn audit_stop_vouching<H: Host>(
    host: &H,
    auditor: &SharedAuditor,
    reason: &'static str,
    others: Vec<audit::Checkpoint>,
) {
    let event = match auditor.try_borrow_mut() {
        Ok(mut a) => a.lifecycle_with(host.now(), Some(reason), others),
        Err(_) => return,
    };
    emit(host, auditor, &event);
}

/// Writes a `heartbeat` when one is due, vouching also for `others` (see `audit_stop_vouching`).
pub fn audit_heartbeat_vouching<H: Host>(
    host: &H,
    auditor: &SharedAuditor,
    others: impl FnOnce() -> Vec<audit::Checkpoint>,
) {
    let now = host.now();
    let event = match auditor.try_borrow_mut() {
        Ok(mut a) if a.heartbeat_due(now) => a.lifecycle_with(now, None, others()),
        _ => return,
    };
    emit(host, auditor, &event);
}

/// Writes an `audit_failure` event for the events the sink refused (full queue) or lost (replaced
/// by a new configuration) since the last report.
pub(super) fn report_drops<H: Host>(host: &H, auditor: &SharedAuditor) {
    let drops = auditor
        .try_borrow_mut()
        .map(|mut a| std::mem::take(&mut a.unreported_drops))
        .unwrap_or(0);
    if drops > 0 {
        report_failure(
            host,
            auditor,
            "queue_full",
            drops,
            "the sink's queue was full, or a new configuration replaced it".into(),
        );
    }
}

/// The collector's answer to the export request (`status` None: none came).
pub fn audit_answer<H: Host>(host: &H, auditor: &SharedAuditor, status: Option<u16>, body: &[u8]) {
    let now = host.now();
    let delivery = match auditor.try_borrow_mut() {
        Ok(mut a) => match a.shipper.as_mut() {
            Some(s) => s.answered(status, body, now),
            None => return,
        },
        Err(_) => return,
    };
    delivered(host, auditor, delivery);
}

/// The export request could not even be sent.
pub fn audit_dispatch_failed<H: Host>(host: &H, auditor: &SharedAuditor, why: &str) {
    let delivery = match auditor.try_borrow_mut() {
        Ok(mut a) => match a.shipper.as_mut() {
            Some(s) => s.failed(why),
            None => return,
        },
        Err(_) => return,
    };
    delivered(host, auditor, delivery);
}

fn delivered<H: Host>(host: &H, auditor: &SharedAuditor, d: audit::otlp::Delivery) {
    use audit::otlp::Delivery;
    match d {
        Delivery::Sent(n) => host.increment(Metric::AuditSent, n as u64),
        Delivery::Partial {
            sent,
            rejected,
            message,
        } => {
            host.increment(Metric::AuditSent, sent as u64);
            report_failure(host, auditor, "rejected", rejected as u64, message);
        }
        Delivery::Retry { .. } => host.increment(Metric::AuditSinkErrors, 1),
        Delivery::Dropped { count, why } => {
            host.increment(Metric::AuditSinkErrors, 1);
            report_failure(host, auditor, "delivery_failed", count as u64, why);
        }
    }
}

/// Counts dropped events and writes an `audit_failure` event (PCI DSS 10.7.2: a failure of the
/// logging itself is detected and recorded).
fn report_failure<H: Host>(
    host: &H,
    auditor: &SharedAuditor,
    reason: &'static str,
    dropped: u64,
    detail: String,
) {
    host.increment(Metric::AuditDropped, dropped);
    host.log(
        LogLevel::Error,
        &format!("{LOG_PREFIX} audit sink: {dropped} events not delivered ({reason}): {detail}"),
    );
    let event = audit::AuditFailureEvent {
        schema: audit::SCHEMA,
        ts: audit::rfc3339_millis(host.now()),
        event: "audit_failure",
        reason,
        dropped,
        detail,
    };
    emit(host, auditor, &event);
}
