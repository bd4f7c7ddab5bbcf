//! `on_configure`: the plugin configuration parsed, compiled and linted, and its `config` event.

use std::sync::Arc;

use crate::audit::{self, ConfigEvent, SharedAuditor};
use crate::config::{Policy, Sink};
use crate::host::{Gauge, Host, LogLevel, Metric};

use super::{emit, LOG_PREFIX};

/// Why `otlp_http` is refused where the host cannot send requests of its own (the native build:
/// Envoy's dynamic modules can, but only from the main thread, away from the workers' chains).
const NO_HTTP_CALLS: &str = "audit.sink: \"otlp_http\" is not available in the native build (it sends no requests of its own); use \"log\" or \"access_log\" and ship the log, or the wasm build";

/// The `config` event of `input`, before the outcome is known.
fn config_event<H: Host>(host: &H, input: &[u8], keyed: bool) -> ConfigEvent {
    let mut event = ConfigEvent {
        schema: audit::SCHEMA,
        ts: audit::rfc3339_millis(host.now()),
        event: "config",
        accepted: false,
        error: None,
        config_sha256: audit::sha256_hex(input),
        mode: None,
        rules: 0,
        findings: Vec::new(),
        access_chain: None,
        heartbeat_s: None,
        warnings: Vec::new(),
    };
    if !keyed {
        event.warnings.push(format!(
            "no {} in the environment: events are chained with plain SHA-256, which anyone can recompute",
            audit::chain::KEY_ENV
        ));
    }
    event
}

/// Opens one more chain under a configuration `configure` accepted (the native build keeps a
/// chain per worker): the chain's sink is set up and its `config` event written, as `configure`
/// does for its own chain.
pub fn join<H: Host>(host: &H, input: &[u8], auditor: &SharedAuditor, policy: &Policy) {
    let keyed = auditor.try_borrow().is_ok_and(|a| a.keyed());
    let mut event = config_event(host, input, keyed);
    event.accepted = true;
    announce(host, auditor, policy, event);
}

/// Writes an accepted configuration's `config` event into `auditor`'s chain (and its warnings
/// to the proxy log), after setting up the chain's sink for it.
fn announce<H: Host>(host: &H, auditor: &SharedAuditor, policy: &Policy, mut event: ConfigEvent) {
    event.mode = Some(policy.mode.as_str());
    event.rules = policy.authorizer.rules.len();
    event.findings = policy.findings.clone();
    if policy.audit.sink == Sink::AccessLog {
        event.access_chain = auditor
            .try_borrow()
            .ok()
            .map(|a| a.access_chain_id().to_owned());
    }
    // Heartbeats need a timer, which the native build's host does not offer yet: its chains
    // write none, and their `config` events say so rather than promise a period.
    let heartbeat = policy.audit.heartbeat.filter(|_| host.has_timer());
    if policy.audit.heartbeat.is_some() && heartbeat.is_none() {
        event.warnings.push(
            "audit.heartbeat_s: this build has no timer; its chains write no heartbeats, so the end of a log cannot be vouched for".into(),
        );
    }
    event.heartbeat_s = Some(heartbeat.map_or(0, |p| p.as_secs()));
    if let Ok(mut a) = auditor.try_borrow_mut() {
        a.configure_sink(policy.audit.otlp.clone());
        a.set_heartbeat(heartbeat, host.now());
    }
    emit(host, auditor, &event);
    super::sink::report_drops(host, auditor);
    for w in &event.warnings {
        host.log(LogLevel::Warn, &format!("{LOG_PREFIX} {w}"));
    }
}

/// Parses and compiles the plugin configuration, logging the outcome: a `config` audit event, and
/// on rejection one error line naming the offending key. `None` means the plugin must not start.
pub fn configure<H: Host>(host: &H, input: &[u8], auditor: &SharedAuditor) -> Option<Arc<Policy>> {
    let (keyed, key_problem) = match auditor.try_borrow() {
        Ok(a) => (
            a.keyed(),
            a.key_problem
                .as_ref()
                .map(|p| format!("{}{p}", a.key_origin)),
        ),
        Err(_) => (false, Some("audit chain unavailable".to_string())),
    };
    let result = match key_problem {
        Some(problem) => Err(problem),
        None => Policy::parse(input)
            .map_err(|e| e.to_string())
            .and_then(|p| match p.audit.sink {
                Sink::OtlpHttp if !host.ships_by_http() => Err(NO_HTTP_CALLS.to_string()),
                _ => Ok(p),
            }),
    };
    let mut event = config_event(host, input, keyed);
    event.accepted = result.is_ok();
    match result {
        Ok(policy) => {
            announce(host, auditor, &policy, event);
            host.increment(Metric::Configurations(true), 1);
            host.set_gauge(Gauge::LintFindings, policy.findings.len() as u64);
            for f in &policy.findings {
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "{LOG_PREFIX} policy lint [{}] {}: {}",
                        f.code, f.path, f.message
                    ),
                );
            }
            host.log(
                LogLevel::Info,
                &format!(
                    "{LOG_PREFIX} configuration accepted: mode {}, {} rules, {} linter findings",
                    policy.mode.as_str(),
                    policy.authorizer.rules.len(),
                    policy.findings.len()
                ),
            );
            Some(Arc::new(policy))
        }
        Err(e) => {
            host.log(
                LogLevel::Error,
                &format!("{LOG_PREFIX} configuration rejected: {e}"),
            );
            event.error = Some(e);
            emit(host, auditor, &event);
            host.increment(Metric::Configurations(false), 1);
            None
        }
    }
}
