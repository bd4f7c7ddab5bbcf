//! The `access` event written by hand, field by field, into one buffer: one is written for every
//! request, and a generic serializer spent a tenth of the request's time in the VM on it. The
//! bytes are exactly the ones `serde_json` writes for the same event (a test holds them to it), so
//! nothing downstream, `verify-audit` included, can tell the difference.

use super::{AccessEvent, PanCounts, PlaceCounts};

impl AccessEvent<'_> {
    /// The event's JSON line, before sealing.
    pub fn to_json(&self) -> String {
        let mut w = Writer(String::with_capacity(1536));
        w.raw("{");
        w.key_const("schema", self.schema, false);
        // Written by `rfc3339_millis`: digits and `-:.TZ` only.
        w.key_const("ts", &self.ts, true);
        w.key_const("event", self.event, true);
        w.key_const("decision", self.decision, true);
        w.key_raw("enforced", if self.enforced { "true" } else { "false" });
        w.key_const("mode", self.mode, true);
        w.key_const("reason", self.reason, true);
        w.key_opt("rule", self.rule);
        w.key_opt("principal", self.principal);
        w.key_opt("workload", self.workload);
        if let Some(s) = self.identity_source {
            w.key_const("identity_source", s, true);
        }
        if let Some(s) = self.peer_subject {
            w.key_str("peer_subject", s, true);
        }
        if let Some(s) = self.peer_cert_sha256 {
            w.key_str("peer_cert_sha256", s, true);
        }
        w.key_opt("source", self.source);
        w.key_opt("tls_version", self.tls_version);
        w.key("request");
        w.raw("{");
        w.key_str("method", &self.request.method, false);
        w.key_str("path", &self.request.path, true);
        w.key_str("host", &self.request.host, true);
        w.key_str("id", &self.request.id, true);
        w.raw("}");
        w.key("status");
        match self.status {
            Some(s) => w.num(u64::from(s)),
            None => w.raw("null"),
        }
        w.key("duration_ms");
        w.num(self.duration_ms);
        w.key("redaction");
        w.raw("{");
        w.key_const("request", self.redaction.request, false);
        w.key_const("response", self.redaction.response, true);
        w.raw("}");
        w.key("pan");
        w.pan(&self.pan);
        if !self.pan_tokens.is_empty() {
            w.key("pan_tokens");
            w.list(self.pan_tokens.iter().map(String::as_str));
        }
        if !self.unscannable.is_empty() {
            w.key("unscannable");
            w.list(self.unscannable.iter().copied());
        }
        w.raw("}");
        w.0
    }
}

/// Appends `n` in decimal, as JSON writes an unsigned integer.
pub(super) fn push_decimal(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    // ASCII digits only.
    out.push_str(std::str::from_utf8(digits.get(i..).unwrap_or(&[])).unwrap_or("0"));
}

struct Writer(String);

impl Writer {
    fn raw(&mut self, s: &str) {
        self.0.push_str(s);
    }

    /// `,"key":` (the comma unless the key opens its object, which `key_str(.., false)` marks).
    fn key(&mut self, key: &str) {
        self.0.push_str(",\"");
        self.0.push_str(key);
        self.0.push_str("\":");
    }

    fn key_str(&mut self, key: &str, value: &str, comma: bool) {
        if comma {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":");
        self.string(value);
    }

    /// A value of the filter's own (a constant, or the timestamp), which needs no escaping.
    fn key_const(&mut self, key: &str, value: &str, comma: bool) {
        if comma {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":\"");
        self.0.push_str(value);
        self.0.push('"');
    }

    fn key_raw(&mut self, key: &str, value: &str) {
        self.key(key);
        self.0.push_str(value);
    }

    fn key_opt(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(v) => self.string(v),
            None => self.0.push_str("null"),
        }
    }

    fn num(&mut self, n: u64) {
        push_decimal(&mut self.0, n);
    }

    fn list<'s>(&mut self, items: impl Iterator<Item = &'s str>) {
        self.0.push('[');
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.string(item);
        }
        self.0.push(']');
    }

    fn pan(&mut self, pan: &PanCounts) {
        self.0.push_str("{\"request_headers\":");
        self.place(&pan.request_headers);
        self.key("request_body");
        self.place(&pan.request_body);
        self.key("response_headers");
        self.place(&pan.response_headers);
        self.key("response_body");
        self.place(&pan.response_body);
        self.0.push('}');
    }

    fn place(&mut self, c: &PlaceCounts) {
        // Most places of most requests saw nothing: their object is always the same.
        if c.found == 0
            && c.redacted == 0
            && c.passed == 0
            && c.brands.is_empty()
            && c.patterns == 0
        {
            self.0.push_str("{\"found\":0,\"redacted\":0,\"passed\":0}");
            return;
        }
        self.0.push_str("{\"found\":");
        self.num(c.found);
        self.key("redacted");
        self.num(c.redacted);
        self.key("passed");
        self.num(c.passed);
        if !c.brands.is_empty() {
            self.key("brands");
            self.0.push('{');
            for (i, (brand, n)) in c.brands.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                self.string(brand);
                self.0.push(':');
                self.num(*n);
            }
            self.0.push('}');
        }
        if c.patterns != 0 {
            self.key("patterns");
            self.num(c.patterns);
        }
        self.0.push('}');
    }

    /// A JSON string, escaped as `serde_json` escapes it: `"` and `\`, the short forms of
    /// backspace, form feed, newline, carriage return and tab, `\u00XX` (lower-case hex) for the
    /// other control characters; everything else as it is.
    fn string(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.0.push('"');
        if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            self.0.push_str(s);
            self.0.push('"');
            return;
        }
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let short = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                0x08 => "\\b",
                0x0c => "\\f",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.push_str(s.get(start..i).unwrap_or(""));
            start = i + 1;
            if short.is_empty() {
                self.0.push_str("\\u00");
                self.0.push(char::from(HEX[usize::from(b >> 4)]));
                self.0.push(char::from(HEX[usize::from(b & 15)]));
            } else {
                self.0.push_str(short);
            }
        }
        self.0.push_str(s.get(start..).unwrap_or(""));
        self.0.push('"');
    }
}

// Its property test needs proptest, a native-only dev-dependency.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
