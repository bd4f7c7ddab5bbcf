//! Rule screens: a few bytes per rule, compiled with the rules, that `decide` reads before a rule
//! itself. A screen rejects a request only where the rule could not match it (a rule that names
//! principals, for a caller without one; a caller whose identity is in none of the rule's exact
//! principals; a method the rule does not list), so most rules are passed over without touching
//! their strings. Whatever a screen lets through, the rule decides in full.

use super::{Rule, RuleAction, StrMatch, STANDARD_METHODS};

/// The standard methods have a bit of their own; any other method shares `OTHER`.
const OTHER: u16 = 1 << 15;

fn method_bit(method: &str) -> u16 {
    STANDARD_METHODS
        .iter()
        .position(|m| *m == method)
        .map_or(OTHER, |i| 1 << i)
}

/// A 64-bit FNV-1a hash's bit: equal strings set the same bit.
fn principal_bit(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    1 << (h % 64)
}

/// One rule's screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Screen {
    action: RuleAction,
    /// The rule lists principals or namespaces: a caller without an identity cannot match.
    needs_principal: bool,
    /// The bits of the rule's principals when every one is exact; 0 when any is not (no screen).
    principals: u64,
    /// The bits of the rule's methods; 0 when it lists none (any method).
    methods: u16,
}

impl Screen {
    fn of(rule: &Rule) -> Screen {
        let exact = !rule.principals.is_empty()
            && rule
                .principals
                .iter()
                .all(|p| matches!(p, StrMatch::Exact(_)));
        Screen {
            action: rule.action,
            needs_principal: !rule.principals.is_empty() || !rule.namespaces.is_empty(),
            principals: if exact {
                rule.principals
                    .iter()
                    .filter_map(|p| match p {
                        StrMatch::Exact(e) => Some(principal_bit(e)),
                        _ => None,
                    })
                    .fold(0, |a, b| a | b)
            } else {
                0
            },
            methods: rule.methods.iter().fold(0, |a, m| a | method_bit(m)),
        }
    }

    fn admits(&self, action: RuleAction, req: &Facts) -> bool {
        self.action == action
            && (self.methods == 0 || self.methods & req.method != 0)
            && match req.principal {
                None => !self.needs_principal,
                Some(bit) => self.principals == 0 || self.principals & bit != 0,
            }
    }
}

/// The request as the screens see it, computed once per decision.
pub(super) struct Facts {
    principal: Option<u64>,
    method: u16,
}

impl Facts {
    pub(super) fn new(principal: Option<&str>, method: &str) -> Facts {
        Facts {
            principal: principal.map(principal_bit),
            method: method_bit(method),
        }
    }
}

/// The screens of a rule list, in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Screens(Vec<Screen>);

impl Screens {
    pub fn of(rules: &[Rule]) -> Screens {
        Screens(rules.iter().map(Screen::of).collect())
    }

    /// The first rule of `action` that matches, by index: screened first, then in full. Screens
    /// that were not built from `rules` (another length) are not trusted: every rule is matched.
    pub(super) fn first(
        &self,
        rules: &[Rule],
        action: RuleAction,
        req: &Facts,
        full: impl Fn(&Rule) -> bool,
    ) -> Option<usize> {
        if self.0.len() != rules.len() {
            return rules.iter().position(|r| r.action == action && full(r));
        }
        self.0
            .iter()
            .zip(rules)
            .position(|(s, r)| s.admits(action, req) && full(r))
    }
}
