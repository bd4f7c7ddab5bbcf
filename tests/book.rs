//! The documentation book stays true to the code: the configuration reference lists exactly the
//! keys the parser accepts, each with a default the parser agrees with. (scripts/test.sh builds
//! the book and checks its links: scripts/book.sh; tests/observed_by_prometheus.rs checks that
//! every alert's runbook_url names its page.)
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeSet;
use std::path::PathBuf;

use pci_mesh_guard::config::{accepted_keys, Policy};

fn reference() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/src/reference/configuration.md");
    std::fs::read_to_string(path).expect("the configuration reference")
}

/// The rows of the reference's key table (the one headed `| key | type | default | ...`):
/// (key, type, default).
fn rows() -> Vec<(String, String, String)> {
    let text = reference();
    let table = text
        .split("\n| key | type | default |")
        .nth(1)
        .expect("the reference's key table");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").map(|c| c.trim_matches(['|', ' '])).collect();
            let cell = |i: usize| cells.get(i).copied().unwrap_or_default().to_owned();
            let key = cell(0).trim_matches('`').to_owned();
            (key, cell(1), cell(2))
        })
        .collect()
}

#[test]
fn the_configuration_reference_lists_exactly_the_keys_the_parser_accepts() {
    let documented: BTreeSet<String> = rows().into_iter().map(|(k, _, _)| k).collect();
    let accepted: BTreeSet<String> = accepted_keys().into_iter().collect();
    assert!(accepted.len() >= 40, "{accepted:?}");
    let undocumented: Vec<_> = accepted.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "keys the parser accepts but the reference does not list: {undocumented:?}; \
         keys the reference lists but the parser refuses: {unknown:?}"
    );
}

/// Each documented default, written out explicitly, gives the same policy as leaving the key out.
#[test]
fn each_documented_default_is_the_parsers() {
    let checked = [
        "mode",
        "strict",
        "identity.source",
        "identity.require_mtls",
        "identity.min_tls_version",
        "identity.trust_xfcc",
        "authorization.default_action",
        "redaction.request_headers",
        "redaction.request_body",
        "redaction.response_headers",
        "redaction.response_body",
        "redaction.keep_first",
        "redaction.keep_last",
        "redaction.mask_char",
        "redaction.compressed_body",
        "audit.sink",
        "audit.heartbeat_s",
    ];
    let rows = rows();
    let bare = format!(
        "{:?}",
        Policy::parse(b"{}").expect("the empty configuration")
    );
    for key in checked {
        let (_, _, default) = rows
            .iter()
            .find(|(k, _, _)| k == key)
            .unwrap_or_else(|| panic!("{key} is not in the reference"));
        let literal = default.trim_matches('`');
        let value = match literal {
            "true" | "false" => literal.to_owned(),
            _ if literal.parse::<u64>().is_ok() => literal.to_owned(),
            _ => format!("{literal:?}"),
        };
        let json = match key.split_once('.') {
            Some((section, k)) => format!(r#"{{"{section}": {{"{k}": {value}}}}}"#),
            None => format!(r#"{{"{key}": {value}}}"#),
        };
        let explicit = Policy::parse(json.as_bytes())
            .unwrap_or_else(|e| panic!("{key}: the documented default {literal} is refused: {e}"));
        // The digest of the configuration text differs; everything compiled from it must not.
        let explicit = format!("{explicit:?}");
        let strip = |s: &str| s.split("config_sha256").next().unwrap_or(s).to_owned();
        assert_eq!(
            strip(&explicit),
            strip(&bare),
            "{key}: documented default {literal}"
        );
    }
}
