//! Redaction helpers of the request flow: header maps, body streams, the audit-safe path, and
//! what the headers say about a body (encoding, JSON).

use crate::config::Policy;
use crate::host::{Direction, Host, LogLevel, Map};
use crate::pan::{self, Counts, Options, Redactor};

use super::{BodyStream, Side, LOG_PREFIX};

pub(super) fn body_stream(dir: Direction, policy: &Policy, side: &Side, json: bool) -> BodyStream {
    let opts = Options {
        json,
        ..side.opts.unwrap_or(Options {
            masking: policy.redaction.masking,
            mask: true,
            json,
        })
    };
    let patterns = policy.redaction.patterns.clone();
    let mut redactor = Redactor::new(opts, patterns, side.mask_patterns);
    if let Some(t) = &side.tokens {
        redactor = redactor.with_tokens(t.clone());
    }
    BodyStream::new(dir, redactor)
}

/// Redacts every value of a header or trailer map in place, counting into the side's headers.
pub(super) fn redact_map<H: Host>(host: &H, map: Map, policy: &Policy, side: &mut Side) {
    let Some(opts) = side.opts else {
        return;
    };
    for (name, mut value) in host.headers(map) {
        let before = side.headers.found + side.headers.patterns;
        pan::redact_all_with(
            &mut value,
            &opts,
            &policy.redaction.patterns,
            side.mask_patterns,
            &mut side.headers,
            side.tokens.as_mut(),
        );
        let changed = side.headers.found + side.headers.patterns != before;
        if changed && (opts.mask || side.mask_patterns) {
            if let Err(e) = host.set_header(map, &name, &value) {
                host.log(LogLevel::Error, &format!("{LOG_PREFIX} {name}: {e}"));
                let dir = match map {
                    Map::RequestHeaders | Map::RequestTrailers => Direction::Request,
                    Map::ResponseHeaders | Map::ResponseTrailers => Direction::Response,
                };
                host.reset(dir);
            }
        }
    }
}

/// The path as the audit trail may hold it: PANs and pattern matches always masked.
pub(super) fn audit_safe(policy: &Policy, path: &str) -> String {
    let mut bytes = path.as_bytes().to_vec();
    let opts = Options {
        masking: policy.redaction.masking,
        mask: true,
        json: false,
    };
    pan::redact_all(
        &mut bytes,
        &opts,
        &policy.redaction.patterns,
        true,
        &mut Counts::default(),
    );
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The body is content-encoded (gzip, br, ...) and cannot be scanned as it is.
pub(super) fn is_encoded<H: Host>(host: &H, map: Map) -> bool {
    match host.header(map, "content-encoding") {
        None => false,
        Some(v) => {
            let v = String::from_utf8_lossy(&v);
            v.split(',')
                .map(str::trim)
                .any(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
        }
    }
}

pub(super) fn is_json<H: Host>(host: &H, map: Map) -> bool {
    host.header(map, "content-type").is_some_and(|v| {
        let v = String::from_utf8_lossy(&v).to_ascii_lowercase();
        v.contains("json")
    })
}
