//! The audit trail in OCSF (the Open Cybersecurity Schema Framework, version 1.1.0, which SIEMs and
//! security data lakes ingest): each sealed `access` event becomes an HTTP Activity record (class
//! 4002, with the `security_control` profile for the decision and the deciding rule), and a denial
//! whose card numbers went through in clear under `dry_run` also becomes a Detection Finding (class
//! 2004), the record a SOC alerts on. Each record's `metadata` names the event's chain, seq and mac,
//! so it points back to its sealed original. The field-by-field mapping is in the book
//! (docs/src/audit/ocsf.md).

use serde_json::{json, Map, Value};

use super::parse_rfc3339_millis;

/// The OCSF version the records follow.
pub const VERSION: &str = "1.1.0";

/// The places of an access event's `pan` counts.
const PLACES: [&str; 4] = [
    "request_headers",
    "request_body",
    "response_headers",
    "response_body",
];

/// OCSF's HTTP Activity activity for a method: its id and caption.
fn activity(method: &str) -> (u64, &'static str) {
    match method {
        "CONNECT" => (1, "Connect"),
        "DELETE" => (2, "Delete"),
        "GET" => (3, "Get"),
        "HEAD" => (4, "Head"),
        "OPTIONS" => (5, "Options"),
        "POST" => (6, "Post"),
        "PUT" => (7, "Put"),
        "TRACE" => (8, "Trace"),
        _ => (99, "Other"),
    }
}

/// `ip:port` or `[ip]:port` as a network endpoint's `ip` and `port`.
fn endpoint_address(source: &str, into: &mut Map<String, Value>) {
    let (ip, port) = match source.rsplit_once(':') {
        Some((ip, port)) if !ip.is_empty() => (ip, port.parse::<u16>().ok()),
        _ => (source, None),
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip.parse::<std::net::IpAddr>().is_ok() {
        into.insert("ip".into(), json!(ip));
        if let Some(port) = port {
            into.insert("port".into(), json!(port));
        }
    }
}

/// Card numbers let through in clear, over every place of the event.
fn passed_in_clear(event: &Value) -> u64 {
    PLACES
        .iter()
        .map(|p| event["pan"][p]["passed"].as_u64().unwrap_or(0))
        .sum()
}

/// The records of one sealed audit event: none for events other than `access`, the HTTP Activity
/// record, and after it the Detection Finding when the event calls for one.
pub fn records(event: &Value) -> Vec<Value> {
    if event["event"] != "access" {
        return Vec::new();
    }
    let Some(time) = event["ts"].as_str().and_then(parse_rfc3339_millis) else {
        return Vec::new();
    };
    let metadata = metadata(event);
    let activity = http_activity(event, time, metadata.clone());
    let mut out = vec![activity];
    let denied = event["decision"] == "deny";
    let clear = passed_in_clear(event);
    if denied && event["enforced"] == false && clear > 0 {
        out.push(finding(event, time, metadata, clear));
    }
    out
}

/// The metadata of every record of an event: the product, and where the sealed original is.
fn metadata(event: &Value) -> Value {
    let mut m = Map::new();
    m.insert("version".into(), json!(VERSION));
    m.insert(
        "product".into(),
        json!({
            "name": "pci-mesh-guard",
            "vendor_name": "pci-mesh-guard",
            "version": env!("CARGO_PKG_VERSION"),
        }),
    );
    m.insert("profiles".into(), json!(["security_control"]));
    m.insert("event_code".into(), event["event"].clone());
    for (from, to) in [
        ("chain", "log_name"),
        ("seq", "sequence"),
        ("mac", "uid"),
        ("ts", "original_time"),
    ] {
        if !event[from].is_null() {
            m.insert(to.into(), event[from].clone());
        }
    }
    if let Some(request_id) = event["request"]["id"].as_str().filter(|s| !s.is_empty()) {
        m.insert("correlation_uid".into(), json!(request_id));
    }
    Value::Object(m)
}

/// What OCSF has no field for: the decision's details, the card-number counts, the key's id.
fn unmapped(event: &Value) -> Value {
    let mut u = Map::new();
    for key in [
        "decision",
        "enforced",
        "mode",
        "reason",
        "identity_source",
        "peer_subject",
        "peer_cert_sha256",
        "redaction",
        "pan",
        "pan_tokens",
        "unscannable",
        "kid",
        "alg",
    ] {
        if !event[key].is_null() {
            u.insert(key.into(), event[key].clone());
        }
    }
    json!({ "pci_mesh_guard": u })
}

fn http_activity(event: &Value, time: i64, metadata: Value) -> Value {
    let method = event["request"]["method"].as_str().unwrap_or_default();
    let (activity_id, activity_name) = activity(method);
    let denied = event["decision"] == "deny";
    let enforced = event["enforced"] != false;
    // A denial under dry_run went through: allowed, and detected.
    let (action_id, action, disposition_id, disposition, severity_id, severity) =
        match (denied, enforced) {
            (false, _) => (1, "Allowed", 1, "Allowed", 1, "Informational"),
            (true, true) => (2, "Denied", 2, "Blocked", 2, "Low"),
            (true, false) => (1, "Allowed", 15, "Detected", 3, "Medium"),
        };
    let mut url = Map::new();
    url.insert("path".into(), event["request"]["path"].clone());
    if let Some(host) = event["request"]["host"].as_str().filter(|h| !h.is_empty()) {
        url.insert("hostname".into(), json!(host));
    }
    let mut request = Map::new();
    request.insert("http_method".into(), json!(method));
    request.insert("url".into(), Value::Object(url));
    if let Some(id) = event["request"]["id"].as_str().filter(|s| !s.is_empty()) {
        request.insert("uid".into(), json!(id));
    }
    let mut src = Map::new();
    if let Some(source) = event["source"].as_str() {
        endpoint_address(source, &mut src);
    }
    if let Some(caller) = event["principal"].as_str() {
        src.insert("svc_name".into(), json!(caller));
    }
    let mut dst = Map::new();
    if let Some(workload) = event["workload"].as_str() {
        dst.insert("svc_name".into(), json!(workload));
    }
    let reason = event["reason"].as_str().unwrap_or_default();
    let rule = event["rule"].as_str();
    let mut r = Map::new();
    r.insert("class_uid".into(), json!(4002));
    r.insert("class_name".into(), json!("HTTP Activity"));
    r.insert("category_uid".into(), json!(4));
    r.insert("category_name".into(), json!("Network Activity"));
    r.insert("activity_id".into(), json!(activity_id));
    r.insert("activity_name".into(), json!(activity_name));
    r.insert("type_uid".into(), json!(400_200 + activity_id));
    r.insert(
        "type_name".into(),
        json!(format!("HTTP Activity: {activity_name}")),
    );
    r.insert("time".into(), json!(time));
    r.insert("severity_id".into(), json!(severity_id));
    r.insert("severity".into(), json!(severity));
    r.insert("action_id".into(), json!(action_id));
    r.insert("action".into(), json!(action));
    r.insert("disposition_id".into(), json!(disposition_id));
    r.insert("disposition".into(), json!(disposition));
    r.insert("status_detail".into(), json!(reason));
    r.insert(
        "message".into(),
        json!(format!(
            "{} {method} {}: {reason}{}",
            event["decision"].as_str().unwrap_or_default(),
            event["request"]["path"].as_str().unwrap_or_default(),
            rule.map(|r| format!(" ({r})")).unwrap_or_default()
        )),
    );
    r.insert("http_request".into(), Value::Object(request));
    // OCSF 1.1.0 requires a response code: 0 when none was sent (a stream reset).
    r.insert(
        "http_response".into(),
        json!({ "code": event["status"].as_u64().unwrap_or(0) }),
    );
    r.insert("src_endpoint".into(), Value::Object(src));
    r.insert("dst_endpoint".into(), Value::Object(dst));
    if let Some(version) = event["tls_version"].as_str() {
        r.insert("tls".into(), json!({ "version": version }));
    }
    if let Some(rule) = rule {
        r.insert(
            "firewall_rule".into(),
            json!({ "name": rule, "type": "authorization rule" }),
        );
    }
    if let Some(ms) = event["duration_ms"].as_u64() {
        r.insert("duration".into(), json!(ms));
    }
    r.insert("metadata".into(), metadata);
    r.insert("unmapped".into(), unmapped(event));
    Value::Object(r)
}

/// The Detection Finding of a denial whose card numbers went through in clear under `dry_run`.
fn finding(event: &Value, time: i64, metadata: Value, clear: u64) -> Value {
    let path = event["request"]["path"].as_str().unwrap_or_default();
    let caller = event["principal"]
        .as_str()
        .unwrap_or("an unidentified caller");
    let mac = event["mac"].as_str().unwrap_or_default();
    json!({
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200_401,
        "type_name": "Detection Finding: Create",
        "time": time,
        "severity_id": 4,
        "severity": "High",
        "status_id": 1,
        "status": "New",
        "message": format!(
            "{clear} card numbers passed in clear on a request the policy denies ({caller}, {path}); mode dry_run let it through"
        ),
        "finding_info": {
            "uid": format!("pci-mesh-guard:{mac}"),
            "title": "Card numbers passed in clear on a denied request (dry_run)",
            "desc": "The policy denies this request, but the filter runs in dry_run: the request went through and its card numbers were not masked. Under enforce it would have been refused (PCI DSS 3.4.1, 7.2).",
            "types": ["Cardholder data exposure"],
            "data_sources": ["pci-mesh-guard audit trail"],
            "related_events": [{ "uid": mac, "type_uid": 400_200 + activity(event["request"]["method"].as_str().unwrap_or_default()).0 }],
        },
        "metadata": metadata,
        "unmapped": unmapped(event),
    })
}

#[cfg(test)]
mod tests;
