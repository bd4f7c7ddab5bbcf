//! Redaction helpers of the request flow: header maps, body streams, the audit-safe path, and
//! what the headers say about a body (encoding, JSON).

use std::borrow::Cow;

use crate::config::Policy;
use crate::host::{Direction, Headers, Host, LogLevel, Map};
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

/// A header map as the host gave it, read once per callback: every lookup and the redaction
/// share one host call.
pub(super) struct HeaderMap(Headers);

impl HeaderMap {
    pub(super) fn read<H: Host>(host: &H, map: Map) -> HeaderMap {
        HeaderMap(host.headers(map))
    }

    /// The first value of `name` (lowercase, as Envoy keeps names).
    pub(super) fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name)
    }

    /// A value as a number (`:status`); `None` when absent or not one.
    pub(super) fn number(&self, name: &str) -> Option<u32> {
        std::str::from_utf8(self.get(name)?).ok()?.parse().ok()
    }

    /// A value the flow only reads while the map is held (the path), as text; empty when absent.
    pub(super) fn str(&self, name: &str) -> Cow<'_, str> {
        self.get(name)
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
    }

    /// The `:method`: one of the standard methods without a copy, any other as text.
    pub(super) fn method(&self) -> Cow<'static, str> {
        let value = self.get(":method").unwrap_or_default();
        match crate::authz::STANDARD_METHODS
            .iter()
            .find(|m| m.as_bytes() == value)
        {
            Some(m) => Cow::Borrowed(m),
            None => Cow::Owned(String::from_utf8_lossy(value).into_owned()),
        }
    }

    /// A value the flow keeps (host, request id), as text; empty when absent.
    pub(super) fn text(&self, name: &str) -> String {
        self.get(name)
            .map(|v| match std::str::from_utf8(v) {
                Ok(text) => text.to_owned(),
                Err(_) => String::from_utf8_lossy(v).into_owned(),
            })
            .unwrap_or_default()
    }
}

/// Redacts every value of a header or trailer map in place, counting into the side's headers.
pub(super) fn redact_map<H: Host>(host: &H, map: Map, policy: &Policy, side: &mut Side) {
    redact_entries(host, map, HeaderMap::read(host, map), policy, side);
}

/// Redacts the values of `entries`, read from `map`, writing back those that changed. A name the
/// map holds more than once is written back whole (every value, in order): setting one value of
/// it would replace all of them with that one.
pub(super) fn redact_entries<H: Host>(
    host: &H,
    map: Map,
    entries: HeaderMap,
    policy: &Policy,
    side: &mut Side,
) {
    let Some(opts) = side.opts else {
        return;
    };
    let writes = opts.mask || side.mask_patterns;
    let mut entries = entries.0;
    let mut changed = Vec::new();
    for i in 0..entries.len() {
        let before = side.headers.found + side.headers.patterns;
        pan::redact_all_with(
            entries.value_mut(i),
            &opts,
            &policy.redaction.patterns,
            side.mask_patterns,
            &mut side.headers,
            side.tokens.as_mut(),
        );
        if writes && side.headers.found + side.headers.patterns != before {
            changed.push(i);
        }
    }
    let mut done: Vec<&[u8]> = Vec::new();
    for i in changed {
        let name = entries.name(i);
        if done.contains(&name) {
            continue;
        }
        let text = String::from_utf8_lossy(name);
        let mut same = entries.iter().filter(|(n, _)| *n == name);
        let result = match (same.next(), same.next()) {
            (Some((_, first)), Some(_)) => {
                done.push(name);
                host.set_header(map, &text, first).and_then(|()| {
                    entries
                        .iter()
                        .filter(|(n, _)| *n == name)
                        .skip(1)
                        .try_for_each(|(_, v)| host.add_header(map, &text, v))
                })
            }
            _ => host.set_header(map, &text, entries.value(i)),
        };
        if let Err(e) = result {
            host.log(LogLevel::Error, &format!("{LOG_PREFIX} {text}: {e}"));
            let dir = match map {
                Map::RequestHeaders | Map::RequestTrailers => Direction::Request,
                Map::ResponseHeaders | Map::ResponseTrailers => Direction::Response,
            };
            host.reset(dir);
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
    // Masking writes ASCII over whole characters' bytes, so the text stays UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The body is content-encoded (gzip, br, ...) and cannot be scanned as it is.
pub(super) fn is_encoded(headers: &HeaderMap) -> bool {
    match headers.get("content-encoding") {
        None => false,
        Some(v) => {
            let v = String::from_utf8_lossy(v);
            v.split(',')
                .map(str::trim)
                .any(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
        }
    }
}

pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .is_some_and(|v| v.windows(4).any(|w| w.eq_ignore_ascii_case(b"json")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(method: &str) -> HeaderMap {
        HeaderMap(
            [(":method", method), (":path", "/a%20b")]
                .into_iter()
                .collect(),
        )
    }

    #[test]
    fn a_standard_method_is_borrowed_and_any_other_kept_as_sent() {
        assert!(matches!(map("GET").method(), Cow::Borrowed("GET")));
        assert!(matches!(map("PATCH").method(), Cow::Borrowed("PATCH")));
        assert_eq!(map("PURGE").method(), "PURGE");
        assert!(matches!(map("PURGE").method(), Cow::Owned(_)));
        // Case matters, as in HTTP: `get` is not `GET`.
        assert_eq!(map("get").method(), "get");
        let none = HeaderMap(Headers::default());
        assert_eq!(none.method(), "");
        assert_eq!(none.str(":path"), "");
        assert_eq!(map("GET").str(":path"), "/a%20b");
    }
}
