//! Denials counted by caller: `pci_mesh_guard_denied_callers_total{caller, reason, dry_run}`, for
//! "who is being refused" on a dashboard without reading the audit trail.
//!
//! A label per caller is a series per caller, and a series is never forgotten by the proxy. So each
//! VM names at most `CALLERS_NAMED` distinct callers; later ones are counted as `other`. A caller
//! is its authenticated SPIFFE ID (validated, so it cannot hold the `;.;` that ends a tag);
//! a request denied before an identity was established (plaintext, weak TLS, an untrusted
//! certificate) is counted as `unauthenticated`: its source address would be a series per client.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

/// Callers with a series of their own, per VM.
pub const CALLERS_NAMED: usize = 100;
/// The caller of a request denied without an authenticated identity.
pub const UNAUTHENTICATED: &str = "unauthenticated";
/// The caller label once `CALLERS_NAMED` callers have their own.
pub const OTHER: &str = "other";

/// The callers that have a series of their own.
#[derive(Default)]
pub struct CallerLabels {
    named: HashSet<Box<str>>,
}

pub type SharedCallers = Rc<RefCell<CallerLabels>>;

impl CallerLabels {
    pub fn shared() -> SharedCallers {
        Rc::new(RefCell::new(CallerLabels::default()))
    }

    /// The label a denial of `principal` is counted under.
    pub fn label<'a>(&mut self, principal: Option<&'a str>) -> &'a str {
        let Some(p) = principal.filter(|p| is_label_safe(p)) else {
            return UNAUTHENTICATED;
        };
        if self.named.contains(p) {
            return p;
        }
        if self.named.len() < CALLERS_NAMED {
            self.named.insert(p.into());
            return p;
        }
        OTHER
    }
}

/// The label of a caller when no VM-wide bound is kept (a flow without a shared set).
pub fn unbounded_label(principal: Option<&str>) -> &str {
    principal
        .filter(|p| is_label_safe(p))
        .unwrap_or(UNAUTHENTICATED)
}

/// Whether `value` can stand in a stat name as a tag value: no byte that could end the tag or be
/// mistaken for one (a SPIFFE ID has none).
fn is_label_safe(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/:%".contains(&b))
}

/// The Envoy stat name of a denial of `caller` for `reason`.
pub fn stat_name(caller: &str, reason: &str, dry_run: bool) -> String {
    format!(
        "caller=.={caller};.;reason=.={reason};.;dry_run=.={dry_run};.;pci_mesh_guard_denied_callers_total"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_keeps_its_own_label_up_to_the_bound_then_becomes_other() {
        let mut labels = CallerLabels::default();
        let ids: Vec<String> = (0..=CALLERS_NAMED)
            .map(|i| format!("spiffe://cluster.local/ns/shop/sa/caller-{i}"))
            .collect();
        for id in &ids[..CALLERS_NAMED] {
            assert_eq!(labels.label(Some(id)), id.as_str());
        }
        assert_eq!(labels.label(Some(&ids[CALLERS_NAMED])), OTHER);
        // One already named keeps its label after the bound is reached.
        assert_eq!(labels.label(Some(&ids[7])), ids[7].as_str());
        assert_eq!(labels.named.len(), CALLERS_NAMED);
    }

    #[test]
    fn a_request_without_identity_or_with_an_unsafe_one_is_unauthenticated() {
        let mut labels = CallerLabels::default();
        assert_eq!(labels.label(None), UNAUTHENTICATED);
        assert_eq!(
            labels.label(Some("spiffe://x/a;.;reason=.=rule")),
            UNAUTHENTICATED
        );
        assert_eq!(labels.label(Some("")), UNAUTHENTICATED);
        assert_eq!(unbounded_label(Some("a\"b")), UNAUTHENTICATED);
        assert!(labels.named.is_empty());
    }

    #[test]
    fn the_stat_name_carries_three_tags_before_the_metric() {
        assert_eq!(
            stat_name(
                "spiffe://cluster.local/ns/marketing/sa/newsletter",
                "default",
                false
            ),
            "caller=.=spiffe://cluster.local/ns/marketing/sa/newsletter;.;reason=.=default;.;\
             dry_run=.=false;.;pci_mesh_guard_denied_callers_total"
        );
    }
}
