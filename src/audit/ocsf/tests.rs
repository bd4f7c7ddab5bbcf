use super::*;

fn event(decision: &str, enforced: bool, passed: u64) -> Value {
    json!({
        "schema": "pci-mesh-guard/audit/v1", "ts": "2026-12-07T20:31:00.004Z", "event": "access",
        "decision": decision, "enforced": enforced, "mode": if enforced { "enforce" } else { "dry_run" },
        "reason": if decision == "allow" { "rule" } else { "default" },
        "rule": if decision == "allow" { json!("checkout-may-charge") } else { Value::Null },
        "principal": "spiffe://cluster.local/ns/shop/sa/checkout",
        "workload": "spiffe://cluster.local/ns/payments/sa/payments-api",
        "identity_source": "certificate", "source": "10.1.2.3:40312", "tls_version": "TLSv1.3",
        "request": {"method": "POST", "path": "/v1/charges", "host": "payments-api", "id": "req-1"},
        "status": 200, "duration_ms": 3,
        "redaction": {"request": "dry_run", "response": "dry_run"},
        "pan": {"request_headers": {"found": 0, "redacted": 0, "passed": 0},
                "request_body": {"found": passed, "redacted": 0, "passed": passed},
                "response_headers": {"found": 0, "redacted": 0, "passed": 0},
                "response_body": {"found": 0, "redacted": 0, "passed": 0}},
        "seq": 42, "chain": "47c6", "alg": "hmac-sha256", "kid": "2026-q4", "mac": "5b1e"
    })
}

#[test]
fn an_allowed_request_is_an_informational_http_activity_pointing_at_its_seal() {
    let out = records(&event("allow", true, 0));
    assert_eq!(out.len(), 1);
    let r = &out[0];
    assert_eq!(
        (r["class_uid"].as_u64(), r["type_uid"].as_u64()),
        (Some(4002), Some(400_206))
    );
    assert_eq!(
        (r["activity_name"].as_str(), r["time"].as_i64()),
        (Some("Post"), Some(1_796_675_460_004))
    );
    assert_eq!(
        (
            r["action_id"].as_u64(),
            r["disposition_id"].as_u64(),
            r["severity_id"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(r["firewall_rule"]["name"], "checkout-may-charge");
    assert_eq!(
        r["src_endpoint"],
        json!({"ip": "10.1.2.3", "port": 40312, "svc_name": "spiffe://cluster.local/ns/shop/sa/checkout"})
    );
    assert_eq!(
        r["dst_endpoint"]["svc_name"],
        "spiffe://cluster.local/ns/payments/sa/payments-api"
    );
    assert_eq!(r["http_request"]["url"]["path"], "/v1/charges");
    assert_eq!(r["http_request"]["uid"], "req-1");
    assert_eq!(r["http_response"]["code"], 200);
    assert_eq!(r["tls"]["version"], "TLSv1.3");
    let m = &r["metadata"];
    assert_eq!(
        (
            m["log_name"].as_str(),
            m["sequence"].as_u64(),
            m["uid"].as_str()
        ),
        (Some("47c6"), Some(42), Some("5b1e"))
    );
    assert_eq!(m["version"], VERSION);
    assert_eq!(r["unmapped"]["pci_mesh_guard"]["kid"], "2026-q4");
}

#[test]
fn denials_are_blocked_or_under_dry_run_detected_and_clear_card_numbers_raise_a_finding() {
    let blocked = records(&event("deny", true, 0));
    assert_eq!(blocked.len(), 1);
    assert_eq!(
        (
            blocked[0]["action_id"].as_u64(),
            blocked[0]["disposition_id"].as_u64()
        ),
        (Some(2), Some(2))
    );
    assert!(
        blocked[0].get("firewall_rule").is_none(),
        "no rule decided a default denial"
    );

    assert_eq!(
        records(&event("deny", false, 0)).len(),
        1,
        "no card number: no finding"
    );
    let dry = records(&event("deny", false, 2));
    assert_eq!(dry.len(), 2);
    assert_eq!(
        (
            dry[0]["action_id"].as_u64(),
            dry[0]["disposition_id"].as_u64()
        ),
        (Some(1), Some(15))
    );
    let f = &dry[1];
    assert_eq!(
        (
            f["class_uid"].as_u64(),
            f["type_uid"].as_u64(),
            f["severity_id"].as_u64()
        ),
        (Some(2004), Some(200_401), Some(4))
    );
    assert_eq!(f["finding_info"]["uid"], "pci-mesh-guard:5b1e");
    assert_eq!(f["finding_info"]["related_events"][0]["uid"], "5b1e");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .starts_with("2 card numbers passed in clear"));
    // An allowed request whose card numbers a grant let through is what the grant is for.
    assert_eq!(records(&event("allow", true, 2)).len(), 1);
}

#[test]
fn other_events_and_unreadable_times_make_no_record() {
    let mut e = event("allow", true, 0);
    e["event"] = json!("heartbeat");
    assert!(records(&e).is_empty());
    let mut e = event("allow", true, 0);
    e["ts"] = json!("yesterday");
    assert!(records(&e).is_empty());
}

#[test]
fn sources_are_split_into_address_and_port_when_they_are_ones() {
    let mut m = Map::new();
    endpoint_address("[2001:db8::1]:8443", &mut m);
    assert_eq!(Value::Object(m), json!({"ip": "2001:db8::1", "port": 8443}));
    let mut m = Map::new();
    endpoint_address("envoy://internal", &mut m);
    assert!(m.is_empty());
    assert_eq!(activity("PATCH"), (99, "Other"));
}
