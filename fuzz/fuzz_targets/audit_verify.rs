//! The audit-log verifier reads any text, line by line: it never panics, counts each line that
//! carries an event once, and finds nothing wrong in a log without events. A line that names a
//! chain or a mac but does not verify is a problem, never silently skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pci_mesh_guard::audit::verify::{event_text, verify};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    for key in [None, Some(&b"0123456789abcdef0123"[..])] {
        for partial in [false, true] {
            let report = verify(lines.iter().copied(), key, partial);
            let carrying = lines
                .iter()
                .filter(|l| {
                    event_text(l).is_some()
                        || l.contains(r#""chain":""#)
                        || l.contains(r#","mac":""#)
                })
                .count();
            assert_eq!(report.events, carrying);
            if carrying == 0 {
                assert!(report.problems.is_empty());
            }
        }
    }
});
