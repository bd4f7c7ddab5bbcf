use super::*;
use crate::audit::json::parse_unique;

#[test]
fn reads_the_fields_as_a_tree_would() {
    let text = r#"{"schema":"s","ts":"2026-12-07T20:00:00.000Z","event":"heartbeat","heartbeat_s":60,"chains":[{"chain":"c.access","seq":7,"mac":"m"},{"chain":3}],"x":{"y":[1,-2,3.5,null,true,{"z":"\u00e9"}]},"seq":12,"chain":"c\u0041","alg":"hmac-sha256","kid":"k","mac":"ab"}"#;
    let s = read_sealed(text).unwrap();
    let v = parse_unique(text).unwrap();
    assert_eq!(s.chain.as_deref(), v["chain"].as_str());
    assert_eq!(
        s.chain.as_deref(),
        Some("cA"),
        "an escaped value is unescaped"
    );
    assert_eq!(
        (s.seq, s.alg.as_deref(), s.kid.as_deref()),
        (v["seq"].as_u64(), v["alg"].as_str(), v["kid"].as_str())
    );
    assert_eq!(
        (s.ts.as_deref(), s.event(), s.heartbeat_s),
        (v["ts"].as_str(), "heartbeat", Some(60))
    );
    assert_eq!(s.checkpoints, vec![("c.access".to_owned(), 7)]);
    let odd = read_sealed(r#"{"seq":"1","chain":2,"alg":null,"heartbeat_s":-1}"#).unwrap();
    assert_eq!(
        (odd.seq, odd.chain, odd.alg, odd.heartbeat_s),
        (None, None, None, None)
    );
}

#[test]
fn refuses_a_key_named_twice_at_any_depth_as_the_tree_reader_does() {
    let many: String = (0..40).map(|i| format!(r#""k{i}":{i},"#)).collect();
    for text in [
        r#"{"alg":"a","seq":1,"alg":"b"}"#.to_owned(),
        r#"{"pan":{"request":{"found":1,"found":2}}}"#.to_owned(),
        r#"{"a":[{"x":1},{"y":2,"y":2}]}"#.to_owned(),
        r#"{"chains":[{"chain":"a","chain":"b","seq":1}]}"#.to_owned(),
        r#"{"chains":{"a":1,"a":2}}"#.to_owned(),
        r#"{"s\u0065q":1,"seq":2}"#.to_owned(),
        format!("{{{many}\"k39\":0}}"),
        format!("{{{many}\"k3\":0}}"),
    ] {
        let e = read_sealed(&text).unwrap_err().to_string();
        assert!(e.contains("duplicate key"), "{text}: {e}");
        assert!(parse_unique(&text).is_err(), "{text}");
    }
    let fine = format!("{{{many}\"k40\":0}}");
    assert!(read_sealed(&fine).is_ok());
    assert!(read_sealed(r#"{"a":{"k":1},"b":{"k":1}}"#).is_ok());
    assert!(read_sealed("[1]").is_err(), "an event is an object");
    assert!(read_sealed(r#"{"a":1} x"#).is_err(), "and nothing after it");
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(read_sealed(&deep).is_err());
}
