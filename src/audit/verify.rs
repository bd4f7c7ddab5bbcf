//! Verification of an audit log (the CLI's `verify-audit`): every chain is followed event by event,
//! and gaps, reordering, altered and inserted events are reported with their line numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::chain::{
    alg, derived_kid, hex, keyed_hmac, kid_problem, mac_of_parts, sealed_parts, KeyedHmac,
};
use super::json::{read_sealed, Sealed};
use super::SCHEMA;

mod ends;
use ends::{End, Ends};

/// Something wrong with the log, at a line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub kind: &'static str,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub events: usize,
    /// Chains seen, with their last verified sequence number.
    pub chains: BTreeMap<String, u64>,
    /// Where each chain's part in this log begins and ends, so that parts read apart can be
    /// joined (`evidence merge`).
    pub spans: BTreeMap<String, ChainSpan>,
    pub problems: Vec<Problem>,
}

/// The part of one chain a log holds: its first event (whose mac a reader of the part before can
/// check: it was sealed over that part's last mac) and its last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSpan {
    pub first_seq: u64,
    /// The first event's canonical bytes (without its mac) and its mac, in hex.
    pub first_canonical: String,
    pub first_mac: String,
    pub last_seq: u64,
    pub last_mac: String,
    /// The key the chain names (keyed chains).
    pub kid: Option<String>,
}

/// What the verifier keeps of one chain.
#[derive(Default)]
struct State {
    next: u64,
    prev: Option<[u8; 32]>,
    /// The chain's first event in these logs (its last is filled in by `finish`).
    span: Option<ChainSpan>,
    end: End,
}

/// The keys a verifier holds, by id (`kid`). Each chain names the id of the key it is sealed
/// with; a chain sealed before events carried ids is tried against every key.
#[derive(Clone, Default)]
pub struct Keyring {
    /// Each key by its id, with its HMAC set up once (cloned for each event).
    keys: Vec<(String, Vec<u8>, Option<KeyedHmac>)>,
}

impl std::fmt::Debug for Keyring {
    /// Names the keys, never shows them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(k, _, _)| k.as_str()).collect();
        f.debug_struct("Keyring").field("kids", &kids).finish()
    }
}

impl Keyring {
    /// The key named `kid`; for a chain from before kids (`None`), every key.
    pub fn candidates(&self, kid: Option<&str>) -> Vec<&[u8]> {
        self.keys
            .iter()
            .filter(|(k, _, _)| kid.is_none_or(|kid| k == kid))
            .map(|(_, k, _)| k.as_slice())
            .collect()
    }

    /// Whether the keyring holds a key for `kid` (any key, for a chain from before kids).
    pub fn names(&self, kid: Option<&str>) -> bool {
        self.keys
            .iter()
            .any(|(k, _, _)| kid.is_none_or(|kid| k == kid))
    }

    /// Whether a key for `kid` sealed the canonical bytes `body` + `}` over `prev` as `stated`.
    pub fn seals(&self, kid: Option<&str>, prev: &[u8; 32], body: &str, stated: &[u8; 32]) -> bool {
        self.keys
            .iter()
            .filter(|(k, _, _)| kid.is_none_or(|kid| k == kid))
            .any(|(_, _, h)| {
                h.as_ref()
                    .is_some_and(|h| mac_of_parts(Some(h), prev, body) == *stated)
            })
    }

    /// A keyring of one key, under its derived id.
    pub fn single(key: &[u8]) -> Keyring {
        let mut ring = Keyring::default();
        ring.add(derived_kid(key), key.to_vec());
        ring
    }

    /// Adds a key; a later key under the same id replaces the earlier one.
    pub fn add(&mut self, kid: String, key: Vec<u8>) {
        self.keys.retain(|(k, _, _)| *k != kid);
        let hmac = keyed_hmac(&key);
        self.keys.push((kid, key, hmac));
    }

    /// Adds the keys of a keyring file: one key per line, as `KID KEY` or as `KEY` alone (its
    /// derived id); blank lines and lines starting with `#` are skipped. An error names the line.
    pub fn add_file_text(&mut self, text: &str) -> Result<(), String> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let (kid, key) = match line.split_once(' ') {
                Some((kid, key)) => {
                    if let Some(why) = kid_problem(kid) {
                        return Err(format!("line {}: key id {kid:?} {why}", i + 1));
                    }
                    (kid.to_owned(), key.as_bytes().to_vec())
                }
                None => (derived_kid(line.as_bytes()), line.as_bytes().to_vec()),
            };
            self.add(kid, key);
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// The audit event in a log line: the whole line (JSON lines) or the JSON object that ends an
/// Envoy log line. `None` for lines that hold no event.
pub fn event_text(line: &str) -> Option<&str> {
    // JSON lines start with the event; an Envoy log line has its prefix first.
    let at = if line.starts_with(MARKER) {
        0
    } else {
        line.find(MARKER)?
    };
    line.get(at..).map(str::trim_end)
}

/// How every event begins: `{"schema":"pci-mesh-guard/audit/v1"`.
const MARKER: &str = "{\"schema\":\"pci-mesh-guard/audit/v1\"";
const _: () = assert!(MARKER.len() == SCHEMA.len() + 12);

/// Verifies every event of `lines`. `key` is the chains' HMAC key, if they are keyed. With
/// `partial`, a chain may start after seq 1 (a rotated log): its first event is taken as the anchor.
pub fn verify<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    key: Option<&[u8]>,
    partial: bool,
) -> Report {
    let keyring = key.map(Keyring::single).unwrap_or_default();
    verify_with(lines, &keyring, partial)
}

/// Verifies every event of `lines` with the keys of `keyring`, each chain with the key its events
/// name (`kid`). A keyed chain whose key the keyring lacks is `unverifiable`, named with its kid.
pub fn verify_with<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    keyring: &Keyring,
    partial: bool,
) -> Report {
    let mut v = Verifier::new(keyring, partial);
    for line in lines {
        v.feed(line);
    }
    v.finish()
}

/// Verification one line at a time, for logs read as streams: what it keeps is one state per
/// chain, whatever the log's length.
pub struct Verifier<'k> {
    keyring: &'k Keyring,
    partial: bool,
    report: Report,
    chains: BTreeMap<String, State>,
    /// Lines fed so far.
    line: usize,
    ends: Ends,
}

impl<'k> Verifier<'k> {
    pub fn new(keyring: &'k Keyring, partial: bool) -> Verifier<'k> {
        Verifier {
            keyring,
            partial,
            report: Report::default(),
            chains: BTreeMap::new(),
            line: 0,
            ends: Ends::new(None),
        }
    }

    /// Judges where chains end against `until` (milliseconds since the epoch), the end of the
    /// period the logs cover: a chain silent for longer than its heartbeat period before it,
    /// without a `stop`, is `truncated`.
    pub fn until(mut self, until: i64) -> Verifier<'k> {
        self.ends = Ends::new(Some(until));
        self
    }

    /// Problems found so far.
    pub fn problems(&self) -> usize {
        self.report.problems.len()
    }

    pub fn finish(mut self) -> Report {
        let ends: BTreeMap<&str, &End> = self
            .chains
            .iter()
            .map(|(chain, s)| (chain.as_str(), &s.end))
            .collect();
        self.report.problems.extend(self.ends.truncated(&ends));
        for (chain, state) in self.chains {
            let last = state.next.saturating_sub(1);
            self.report.chains.insert(chain.clone(), last);
            if let (Some(mut span), Some(prev)) = (state.span, state.prev) {
                span.last_seq = last;
                span.last_mac = hex(&prev);
                self.report.spans.insert(chain, span);
            }
        }
        self.report
    }

    /// Verifies the next line of the log, and gives back the fields verification read, when it
    /// holds a well-formed sealed event (whatever its verification found).
    pub fn feed<'l>(&mut self, line: &'l str) -> Option<Sealed<'l>> {
        self.line += 1;
        let n = self.line;
        // A line that carries any of the sealed event's markers is an event; one whose schema
        // marker was damaged must not slip by as an ordinary log line.
        let text = event_text(line);
        if text.is_none() && !line.contains(r#""chain":""#) && !line.contains(r#","mac":""#) {
            return None;
        }
        self.report.events += 1;
        let mut problem = |kind, message: String| {
            self.report.problems.push(Problem {
                line: n,
                kind,
                message,
            })
        };
        let Some(text) = text else {
            problem("altered", "an event whose schema marker is damaged".into());
            return None;
        };
        // A key named twice would leave `seq`, `chain` or `alg` (or any field a reader relies on)
        // to whichever copy a parser keeps: such an event is refused, whatever its mac says.
        let parsed = match read_sealed(text) {
            Ok(v) => Some(v),
            Err(e) if e.to_string().starts_with("duplicate key") => {
                problem("duplicate_key", format!("{e}"));
                return None;
            }
            Err(_) => None,
        };
        let (Some(v), Some((body, stated))) = (parsed, sealed_parts(text)) else {
            problem("altered", "not a well-formed sealed event".into());
            return None;
        };
        let (Some(chain), Some(seq), Some(a)) = (v.chain.as_deref(), v.seq, v.alg.as_deref())
        else {
            problem("altered", "event without seq, chain or alg".into());
            return Some(v);
        };
        // Chains count from 1; a number with no successor cannot be part of one either.
        if seq == 0 || seq == u64::MAX {
            problem(
                "altered",
                format!("chain {chain}: seq {seq} is out of range"),
            );
            return Some(v);
        }
        let keyed = a == alg(true);
        // The keys this event may be sealed with: the one its kid names, or (an event from
        // before kids) any key of the ring.
        let keyring = self.keyring;
        let kid = v.kid.as_deref();
        if keyed && !keyring.names(kid) {
            let message = match v.kid.as_deref() {
                Some(kid) => format!("chain {chain} is sealed with key {kid}, not in the keyring"),
                None => format!("chain {chain} is keyed (hmac-sha256): give its key"),
            };
            problem("unverifiable", message);
            return Some(v);
        }
        let sealed_by = |prev: &[u8; 32]| {
            if keyed {
                keyring.seals(kid, prev, body, &stated)
            } else {
                mac_of_parts(None, prev, body) == stated
            }
        };
        if !keyed && a != alg(false) {
            problem("altered", format!("unknown alg {a:?}"));
            return Some(v);
        }
        // Looked up before inserted: a chain's id is allocated once, not for each event.
        if !self.chains.contains_key(chain) {
            self.chains.insert(chain.to_owned(), State::default());
        }
        let Some(state) = self.chains.get_mut(chain) else {
            return Some(v);
        };
        let expected = state.next;
        if state.prev.is_some() && seq < expected {
            problem(
                "reordered",
                format!(
                    "chain {chain}: seq {seq} after seq {} (out of order, repeated or inserted)",
                    expected - 1
                ),
            );
            return Some(v);
        }
        match state.prev {
            Some(prev) if seq == expected => {
                if !sealed_by(&prev) {
                    problem(
                        "altered",
                        format!("chain {chain}: seq {seq} does not match its mac"),
                    );
                }
            }
            Some(_) => problem(
                "gap",
                format!(
                    "chain {chain}: seq {expected} to {} missing before seq {seq}",
                    seq - 1
                ),
            ),
            None if seq == 1 => {
                if !sealed_by(&[0; 32]) {
                    problem(
                        "altered",
                        format!("chain {chain}: seq 1 does not match its mac"),
                    );
                }
            }
            // The log starts in the middle of a chain: fine for a rotated log, a gap otherwise.
            None if self.partial => {}
            None => problem(
                "gap",
                format!(
                    "chain {chain}: starts at seq {seq}, seq 1 to {} missing",
                    seq - 1
                ),
            ),
        }
        state.next = seq + 1;
        state.prev = Some(stated);
        self.ends.note(&mut state.end, chain, seq, n, &v);
        if state.span.is_none() {
            state.span = Some(ChainSpan {
                first_seq: seq,
                first_canonical: format!("{body}}}"),
                first_mac: hex(&stated),
                // Filled in by `finish`, from the chain's state.
                last_seq: seq,
                last_mac: String::new(),
                kid: v.kid.as_deref().map(str::to_owned),
            });
        }
        Some(v)
    }
}

#[cfg(test)]
mod ends_tests;
#[cfg(test)]
mod tests;
