//! Where chains end (`verify-audit --until`): a chain whose end is neither a `stop` nor vouched for
//! by a checkpoint lost its newest events. Two facts show it:
//! - a checkpoint (a `heartbeat` or `stop` of another chain of the VM) says the chain reached a
//!   seq beyond its last event in the logs;
//! - the chain's last sign of life (its last event, or the newest checkpoint naming that event)
//!   is older than the end of the period minus the heartbeat period, and no `stop` ended it.
//!
//! A chain that holds only its `config` event is not judged by time: Envoy configures one wasm VM
//! that only checks the configuration, takes no traffic and gets no timer.
//!
//! What is kept is a few numbers per chain, whatever the length of the logs.

use std::collections::BTreeMap;

use super::{Problem, Sealed};
use crate::audit::parse_rfc3339_millis;

/// A timer's lateness forgiven beyond the heartbeat period: a tenth of it, at least 2 s (the
/// plugin checks each second whether a heartbeat is due).
pub fn tolerance_ms(period_s: u64) -> i64 {
    (period_s.saturating_mul(100) as i64).max(2_000)
}

/// What the logs showed of one chain's end (kept in the verifier's state of the chain).
#[derive(Default)]
pub struct End {
    last_seq: u64,
    last_line: usize,
    /// The last event's `ts` as written, read only when the end is judged.
    last_ts: Option<([u8; 24], usize)>,
    /// The chain's last event is a `stop`.
    stopped: bool,
    /// The chain holds one event, its `config` (seq 1), and nothing else.
    config_only: bool,
    /// The heartbeat period its newest `config`, `heartbeat` or `stop` event stated.
    period_s: Option<u64>,
}

/// The furthest any checkpoint says a chain went.
struct Claim {
    seq: u64,
    by: String,
    by_seq: u64,
    line: usize,
    /// The newest time a checkpoint named this seq, and whether one of them was a `stop`.
    ts: Option<i64>,
    stop: bool,
    period_s: u64,
}

#[derive(Default)]
pub struct Ends {
    until: Option<i64>,
    claims: BTreeMap<String, Claim>,
}

impl End {
    fn last_ts(&self) -> Option<i64> {
        let (bytes, len) = self.last_ts.as_ref()?;
        let text = std::str::from_utf8(bytes.get(..*len)?).ok()?;
        parse_rfc3339_millis(text)
    }
}

/// A `ts` kept as its bytes (every `ts` the plugin writes is 24 bytes long).
fn ts_bytes(ts: &str) -> Option<([u8; 24], usize)> {
    let mut out = [0u8; 24];
    out.get_mut(..ts.len())?.copy_from_slice(ts.as_bytes());
    Some((out, ts.len()))
}

impl Ends {
    pub fn new(until: Option<i64>) -> Ends {
        Ends {
            until,
            ..Ends::default()
        }
    }

    /// Notes event `v`, verified as seq `seq` of `chain`, at `line`, in the chain's `end`.
    pub fn note(&mut self, end: &mut End, chain: &str, seq: u64, line: usize, v: &Sealed<'_>) {
        let kind = v.event();
        if seq >= end.last_seq {
            end.last_seq = seq;
            end.last_line = line;
            end.last_ts = v.ts.as_deref().and_then(ts_bytes);
            end.stopped = kind == "stop";
            end.config_only = seq == 1 && kind == "config";
        }
        if let Some(p) = v.heartbeat_s {
            end.period_s = Some(p);
        }
        if !matches!(kind, "heartbeat" | "stop") {
            return;
        }
        let ts = v.ts.as_deref().and_then(parse_rfc3339_millis);
        // A checkpoint written after the end of the period says nothing of the period.
        if let (Some(until), Some(at)) = (self.until, ts) {
            if at > until {
                return;
            }
        }
        for (of, at_seq) in &v.checkpoints {
            let (of, at_seq) = (of.as_str(), *at_seq);
            let claim = Claim {
                seq: at_seq,
                by: chain.to_owned(),
                by_seq: seq,
                line,
                ts,
                stop: kind == "stop",
                period_s: v.heartbeat_s.unwrap_or(0),
            };
            match self.claims.get_mut(of) {
                Some(c) if c.seq > at_seq => {}
                Some(c) if c.seq == at_seq => {
                    c.stop |= claim.stop;
                    if claim.ts > c.ts {
                        c.ts = claim.ts;
                    }
                }
                _ => {
                    self.claims.insert(of.to_owned(), claim);
                }
            }
        }
    }

    /// The chains that lost their newest events. Without `until`, only what a checkpoint shows
    /// of chains present in the logs; with it, also chains a checkpoint names but the logs lack,
    /// and chains silent for longer than their heartbeat period before `until`.
    pub fn truncated(&self, chains: &BTreeMap<&str, &End>) -> Vec<Problem> {
        let mut out = Vec::new();
        for (chain, claim) in &self.claims {
            let reached = chains.get(chain.as_str()).map(|e| e.last_seq);
            match reached {
                Some(last) if last < claim.seq => out.push(Problem {
                    line: claim.line,
                    kind: "truncated",
                    message: format!(
                        "chain {chain} ends at seq {last}, but chain {} at seq {} says it reached seq {}: seq {} to {} are missing",
                        claim.by, claim.by_seq, claim.seq, last + 1, claim.seq
                    ),
                }),
                None if self.until.is_some() => out.push(Problem {
                    line: claim.line,
                    kind: "truncated",
                    message: format!(
                        "chain {chain} has no event in the logs, but chain {} at seq {} says it reached seq {}: seq 1 to {} are missing",
                        claim.by, claim.by_seq, claim.seq, claim.seq
                    ),
                }),
                _ => {}
            }
        }
        let Some(until) = self.until else {
            return out;
        };
        for (chain, end) in chains {
            let claim = self.claims.get(*chain).filter(|c| c.seq == end.last_seq);
            // A chain of a `config` event alone is a VM that only checked the configuration (the
            // proxy-wasm host configures one VM that takes no traffic and gets no timer).
            if end.stopped || end.config_only || claim.is_some_and(|c| c.stop) {
                continue;
            }
            let alive = end.last_ts().max(claim.and_then(|c| c.ts));
            let period = end
                .period_s
                .filter(|p| *p > 0)
                .or(claim.map(|c| c.period_s).filter(|p| *p > 0));
            let (Some(alive), Some(period)) = (alive, period) else {
                // No heartbeats (off, or a log from before them): its end cannot be judged.
                continue;
            };
            let silent = until - alive;
            if silent > period as i64 * 1000 + tolerance_ms(period) {
                out.push(Problem {
                    line: end.last_line,
                    kind: "truncated",
                    message: format!(
                        "chain {chain}: its last event (seq {}) or checkpoint was {} s before the end of the period, its heartbeat period is {period} s, and no stop ended it: events after seq {} are missing",
                        end.last_seq,
                        silent / 1000,
                        end.last_seq
                    ),
                });
            }
        }
        out
    }
}
