//! The OTLP sink's queue, batches, retries and answers, without a network.

use super::*;

fn settings() -> OtlpSettings {
    OtlpSettings {
        cluster: "otel".into(),
        authority: "otel:4318".into(),
        path: "/v1/logs".into(),
        flush_interval: Duration::from_millis(1000),
        max_batch: 3,
        max_queue: 5,
        timeout: Duration::from_secs(2),
        required: false,
    }
}

fn event(i: usize) -> String {
    format!(
        r#"{{"schema":"pci-mesh-guard/audit/v1","ts":"2026-11-25T00:42:03.045Z","event":"access","n":{i}}}"#
    )
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_795_567_323_045 + ms)
}

#[test]
fn encodes_an_export_logs_service_request() {
    let body = encode(&[event(1)]);
    let v: Value = serde_json::from_slice(&body).unwrap();
    let rec = &v["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    assert_eq!(rec["body"]["stringValue"], event(1));
    assert_eq!(rec["timeUnixNano"], "1795567323045000000");
    assert_eq!(
        rec["attributes"][0]["value"]["stringValue"],
        "pci-mesh-guard.access"
    );
    assert_eq!(
        v["resourceLogs"][0]["resource"]["attributes"][0]["value"]["stringValue"],
        "pci-mesh-guard"
    );
}

#[test]
fn flushes_when_a_batch_fills_or_the_interval_passes() {
    let mut s = Shipper::new(settings());
    s.push(event(1));
    assert!(s.due(at(0)).is_some(), "first flush: nothing sent yet");
    assert_eq!(s.answered(Some(200), b"{}", at(1)), Delivery::Sent(1));
    s.push(event(2));
    assert!(s.due(at(10)).is_none(), "not full, interval not passed");
    s.push(event(3));
    s.push(event(4));
    let body = s.due(at(20)).expect("a full batch goes at once");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(s.due(at(30)).is_none(), "one request at a time");
    assert_eq!(s.answered(Some(200), b"", at(40)), Delivery::Sent(3));
    assert_eq!(s.counts.sent, 4);
}

#[test]
fn retries_only_the_retryable_statuses_with_backoff_then_drops() {
    let mut s = Shipper::new(settings());
    s.push(event(1));
    s.due(at(0)).unwrap();
    assert_eq!(
        s.answered(Some(503), b"", at(1)),
        Delivery::Retry { attempt: 1 }
    );
    assert!(s.due(at(100)).is_none(), "still backing off");
    assert!(s.due(at(201)).is_some(), "retried after the backoff");
    let mut t = 201;
    for attempt in 2..MAX_ATTEMPTS {
        assert_eq!(
            s.answered(Some(429), b"", at(t)),
            Delivery::Retry { attempt }
        );
        t += 10_000;
        assert!(s.due(at(t)).is_some());
    }
    match s.answered(Some(504), b"", at(t)) {
        Delivery::Dropped { count: 1, .. } => {}
        d => panic!("{d:?}"),
    }
    assert_eq!(s.counts.dropped, 1);
    // 400 and 500 are not retried.
    for status in [400, 500] {
        s.push(event(2));
        s.due(at(t + 100_000)).unwrap();
        assert!(matches!(
            s.answered(Some(status), b"", at(t + 100_001)),
            Delivery::Dropped { .. }
        ));
        t += 200_000;
    }
}

#[test]
fn honours_partial_success() {
    let mut s = Shipper::new(settings());
    for i in 0..3 {
        s.push(event(i));
    }
    s.due(at(0)).unwrap();
    let answer = br#"{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"too old"}}"#;
    assert_eq!(
        s.answered(Some(200), answer, at(1)),
        Delivery::Partial {
            sent: 1,
            rejected: 2,
            message: "too old".into()
        }
    );
    assert_eq!((s.counts.sent, s.counts.dropped), (1, 2));
}

#[test]
fn a_full_queue_drops_and_says_so() {
    let mut s = Shipper::new(settings());
    for i in 0..5 {
        assert!(s.push(event(i)));
    }
    assert!(s.is_full());
    assert!(!s.push(event(6)));
    assert_eq!(s.counts.dropped, 1);
}

#[test]
fn parses_its_own_timestamps() {
    let t = parse_rfc3339_millis("2000-02-29T12:34:56.789Z").unwrap();
    assert_eq!(crate::audit::rfc3339_millis(t), "2000-02-29T12:34:56.789Z");
    assert!(parse_rfc3339_millis("2000-02-29 12:34:56").is_none());
}
