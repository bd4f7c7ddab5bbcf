//! `on_configure`: the plugin configuration parsed, compiled and linted, and its `config` event.

use std::sync::Arc;

use crate::audit::{self, ConfigEvent, SharedAuditor};
use crate::config::{Policy, Sink};
use crate::host::{Gauge, Host, LogLevel, Metric};

use super::{emit, LOG_PREFIX};

/// Parses and compiles the plugin configuration, logging the outcome: a `config` audit event, and
/// on rejection one error line naming the offending key. `None` means the plugin must not start.
pub fn configure<H: Host>(host: &H, input: &[u8], auditor: &SharedAuditor) -> Option<Arc<Policy>> {
    let (keyed, key_problem) = match auditor.try_borrow() {
        Ok(a) => (a.keyed(), a.key_problem.clone()),
        Err(_) => (false, Some("audit chain unavailable".to_string())),
    };
    let result = match key_problem {
        Some(problem) => Err(format!("vm_config.environment_variables.{problem}")),
        None => Policy::parse(input).map_err(|e| e.to_string()),
    };
    let mut event = ConfigEvent {
        schema: audit::SCHEMA,
        ts: audit::rfc3339_millis(host.now()),
        event: "config",
        accepted: result.is_ok(),
        error: None,
        config_sha256: audit::sha256_hex(input),
        mode: None,
        rules: 0,
        findings: Vec::new(),
        access_chain: None,
        warnings: Vec::new(),
    };
    if !keyed {
        event.warnings.push(format!(
            "no {} in the VM environment: events are chained with plain SHA-256, which anyone can recompute",
            audit::chain::KEY_ENV
        ));
    }
    match result {
        Ok(policy) => {
            event.mode = Some(policy.mode.as_str());
            event.rules = policy.authorizer.rules.len();
            event.findings = policy.findings.clone();
            if policy.audit.sink == Sink::AccessLog {
                event.access_chain = auditor
                    .try_borrow()
                    .ok()
                    .map(|a| a.access_chain_id().to_owned());
            }
            if let Ok(mut a) = auditor.try_borrow_mut() {
                a.configure_sink(policy.audit.otlp.clone());
            }
            emit(host, auditor, &event);
            host.increment(Metric::Configurations(true), 1);
            host.set_gauge(Gauge::LintFindings, policy.findings.len() as u64);
            super::sink::report_drops(host, auditor);
            for w in &event.warnings {
                host.log(LogLevel::Warn, &format!("{LOG_PREFIX} {w}"));
            }
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
