//! The audit trail's way out: every event sealed into the VM's chain and logged, and the
//! `otlp_http` sink driven from the root context (timer, answers, failures).

use crate::audit::{self, SharedAuditor};
use crate::host::{Host, LogLevel, Metric};

use super::LOG_PREFIX;

/// Writes one event to the audit trail, sealed into this VM's chain.
pub fn emit<H: Host, T: serde::Serialize>(host: &H, auditor: &SharedAuditor, event: &T) {
    match auditor.try_borrow_mut() {
        Ok(mut a) => {
            host.log(LogLevel::Info, &a.line(event));
            host.increment(Metric::AuditEmitted, 1);
        }
        // Unreachable with proxy-wasm's sequential callbacks; never panic over it.
        Err(_) => host.log(
            LogLevel::Error,
            &format!("{LOG_PREFIX} audit chain busy; event not written"),
        ),
    }
}

/// The root context's timer: reports events the sink had to refuse, and returns the body of the
/// export request to send now, if one is due.
pub fn audit_tick<H: Host>(host: &H, auditor: &SharedAuditor) -> Option<Vec<u8>> {
    report_drops(host, auditor);
    let now = host.now();
    auditor.try_borrow_mut().ok()?.shipper.as_mut()?.due(now)
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
