//! Path and value matching: `StrMatch` patterns compile or are refused as Istio refuses them, and
//! match as their form says; `strip_query` gives a prefix without `?` or `#`; a path that
//! `is_normalized` accepts has no dot segment, empty segment, backslash or encoded separator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pci_mesh_guard::authz::{is_normalized, strip_query, StrMatch};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, value) = s.split_once('\n').unwrap_or((s, ""));
    match StrMatch::compile(pattern) {
        Ok(m) => {
            let matched = m.matches(value);
            let want = if pattern == "*" {
                true
            } else if let Some(p) = pattern.strip_suffix('*') {
                value.starts_with(p)
            } else if let Some(sfx) = pattern.strip_prefix('*') {
                value.ends_with(sfx)
            } else {
                value == pattern
            };
            assert_eq!(matched, want, "{pattern:?} against {value:?}");
        }
        Err(_) => {
            let stars = pattern.matches('*').count();
            assert!(
                pattern.is_empty()
                    || stars > 1
                    || (stars == 1 && !pattern.starts_with('*') && !pattern.ends_with('*')),
                "{pattern:?} refused"
            );
        }
    }
    for path in [pattern, value] {
        let bare = strip_query(path);
        assert!(path.starts_with(bare));
        assert!(!bare.contains(['?', '#']));
        if is_normalized(path) {
            assert!(path.starts_with('/'));
            assert!(!path.contains('\\'));
            let lower = path.to_ascii_lowercase();
            assert!(!lower.contains("%2f") && !lower.contains("%5c") && !lower.contains("%2e"));
            let trimmed = path.trim_start_matches('/');
            let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
            if !trimmed.is_empty() {
                for seg in trimmed.split('/') {
                    assert!(!seg.is_empty() && seg != "." && seg != "..", "{path:?}");
                }
            }
        }
    }
});
