//! The `audit` section of the configuration: the sink, and the collector's keys for `otlp_http`.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Sink};
use crate::audit::otlp::OtlpSettings;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAudit {
    sink: Sink,
    cluster: Option<String>,
    authority: Option<String>,
    path: Option<String>,
    flush_interval_ms: Option<u64>,
    max_batch: Option<u64>,
    max_queue: Option<u64>,
    timeout_ms: Option<u64>,
    required: Option<bool>,
    heartbeat_s: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    pub sink: Sink,
    /// The collector, with `sink: "otlp_http"`.
    pub otlp: Option<OtlpSettings>,
    /// How often each chain writes a `heartbeat` event (`audit.heartbeat_s`); `None` when 0.
    pub heartbeat: Option<Duration>,
}

/// `audit.heartbeat_s` when not given.
pub const DEFAULT_HEARTBEAT_S: u64 = 60;
/// The longest heartbeat period accepted: a day.
pub const MAX_HEARTBEAT_S: u64 = 86_400;

/// The `audit` section: with `sink: "otlp_http"` a `cluster` is required and the other keys have
/// defaults; with `log` or `access_log` the collector's keys would have no effect and are refused.
pub(super) fn compile_audit(a: RawAudit) -> Result<AuditSettings, ConfigError> {
    let at = |k: &str| format!("audit.{k}");
    let heartbeat = match a.heartbeat_s.unwrap_or(DEFAULT_HEARTBEAT_S) {
        0 => None,
        s if s <= MAX_HEARTBEAT_S => Some(Duration::from_secs(s)),
        _ => {
            return Err(ConfigError::new(
                at("heartbeat_s"),
                format!("must be from 0 (off) to {MAX_HEARTBEAT_S}"),
            ))
        }
    };
    if a.sink != Sink::OtlpHttp {
        let given = [
            ("cluster", a.cluster.is_some()),
            ("authority", a.authority.is_some()),
            ("path", a.path.is_some()),
            ("flush_interval_ms", a.flush_interval_ms.is_some()),
            ("max_batch", a.max_batch.is_some()),
            ("max_queue", a.max_queue.is_some()),
            ("timeout_ms", a.timeout_ms.is_some()),
            ("required", a.required.is_some()),
        ];
        if let Some((k, _)) = given.iter().find(|(_, g)| *g) {
            return Err(ConfigError::new(
                at(k),
                "only has an effect with sink \"otlp_http\"",
            ));
        }
        return Ok(AuditSettings {
            sink: a.sink,
            otlp: None,
            heartbeat,
        });
    }
    let cluster = a.cluster.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
        ConfigError::new(
            at("cluster"),
            "required with sink \"otlp_http\": the Envoy cluster of the collector",
        )
    })?;
    let ranged = |k: &str, v: Option<u64>, default: u64, lo: u64, hi: u64| match v {
        None => Ok(default),
        Some(n) if (lo..=hi).contains(&n) => Ok(n),
        Some(_) => Err(ConfigError::new(
            at(k),
            format!("must be from {lo} to {hi}"),
        )),
    };
    let path = a.path.unwrap_or_else(|| "/v1/logs".into());
    if !path.starts_with('/') {
        return Err(ConfigError::new(at("path"), "must start with '/'"));
    }
    let max_batch = ranged("max_batch", a.max_batch, 100, 1, 10_000)?;
    let max_queue = ranged("max_queue", a.max_queue, 1000, 1, 100_000)?;
    if max_queue < max_batch {
        return Err(ConfigError::new(
            at("max_queue"),
            "must be at least max_batch",
        ));
    }
    Ok(AuditSettings {
        sink: Sink::OtlpHttp,
        otlp: Some(OtlpSettings {
            authority: a.authority.unwrap_or_else(|| cluster.clone()),
            cluster,
            path,
            flush_interval: Duration::from_millis(ranged(
                "flush_interval_ms",
                a.flush_interval_ms,
                1000,
                10,
                60_000,
            )?),
            max_batch: max_batch as usize,
            max_queue: max_queue as usize,
            timeout: Duration::from_millis(ranged("timeout_ms", a.timeout_ms, 2000, 100, 60_000)?),
            required: a.required.unwrap_or(false),
        }),
        heartbeat,
    })
}
