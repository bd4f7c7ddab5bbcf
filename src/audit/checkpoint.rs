//! Checkpoints (PCI DSS 10.2.1.6, 10.7.2): a chain's `heartbeat` events say it is still being
//! written, and a `stop` event that it ended on purpose. Both carry the last `seq` and `mac` of the
//! chains the writer vouches for (a wasm VM's access chain; in the native build, every worker's
//! chains, `Published` from their threads), so one chain vouches for the others' length: a log cut
//! after a checkpoint, or cut at its end while the proxy still runs, no longer reads as a shorter
//! intact log (`verify-audit --until`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{chain::hex, rfc3339_millis, Auditor, SCHEMA};

/// Where one chain stood when a checkpoint was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub chain: String,
    pub seq: u64,
    pub mac: String,
}

/// The `heartbeat` and `stop` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleEvent {
    pub schema: &'static str,
    pub ts: String,
    pub event: &'static str,
    /// Why a `stop` was written: `shutdown` (the plugin was unloaded) or `reconfigured` (a new
    /// configuration replaced the one in force; its `config` event follows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The heartbeat period in force, in seconds (0: off).
    pub heartbeat_s: u64,
    /// The VM's other chains that hold events, each at its last event.
    pub chains: Vec<Checkpoint>,
}

/// Where one VM's chains stand, shared with another thread: the native build's main thread writes
/// the heartbeats that vouch for its workers' chains. Updated as each event is sealed.
#[derive(Debug, Default)]
pub struct Published {
    chain: String,
    access: String,
    at: [(u64, [u8; 32]); 2],
}

pub type SharedPublished = Arc<Mutex<Published>>;

impl Published {
    /// The chains that hold events, at their last events.
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        [&self.chain, &self.access]
            .into_iter()
            .zip(self.at)
            .filter(|(_, (seq, _))| *seq > 0)
            .map(|(chain, (seq, mac))| Checkpoint {
                chain: chain.clone(),
                seq,
                mac: hex(&mac),
            })
            .collect()
    }
}

impl Auditor {
    /// Publishes where this auditor's chains stand, after each event, for another thread.
    pub fn publish(mut self) -> (Auditor, SharedPublished) {
        let shared = Arc::new(Mutex::new(Published {
            chain: self.chain.id().to_owned(),
            access: self.access_chain.id().to_owned(),
            at: [(0, [0; 32]); 2],
        }));
        self.published = Some(shared.clone());
        (self, shared)
    }

    /// Records the chains' state where it is published.
    pub(super) fn published_update(&self) {
        if let Some(Ok(mut p)) = self.published.as_ref().map(|p| p.lock()) {
            p.at = [
                (self.chain.seq(), *self.chain.last_mac()),
                (self.access_chain.seq(), *self.access_chain.last_mac()),
            ];
        }
    }

    /// Sets the heartbeat period of a newly accepted configuration; the next heartbeat is due a
    /// period after `now` (its `config` event).
    pub fn set_heartbeat(&mut self, period: Option<Duration>, now: SystemTime) {
        self.heartbeat = period;
        self.last_heartbeat = now;
    }

    /// The heartbeat period in seconds, 0 when off.
    pub fn heartbeat_s(&self) -> u64 {
        self.heartbeat.map_or(0, |p| p.as_secs())
    }

    /// Whether a heartbeat is due at `now`: a period has passed since the last one.
    pub fn heartbeat_due(&self, now: SystemTime) -> bool {
        self.heartbeat.is_some_and(|period| {
            now.duration_since(self.last_heartbeat)
                .is_ok_and(|since| since >= period)
        })
    }

    /// The `heartbeat` event for `now`, or the `stop` event (with its reason); the heartbeat
    /// clock restarts.
    pub fn lifecycle(&mut self, now: SystemTime, stop: Option<&'static str>) -> LifecycleEvent {
        self.lifecycle_with(now, stop, Vec::new())
    }

    /// As `lifecycle`, vouching also for `others`: chains this VM does not write.
    pub fn lifecycle_with(
        &mut self,
        now: SystemTime,
        stop: Option<&'static str>,
        others: Vec<Checkpoint>,
    ) -> LifecycleEvent {
        self.last_heartbeat = now;
        let mut chains = self.checkpoints();
        chains.extend(others);
        LifecycleEvent {
            schema: SCHEMA,
            ts: rfc3339_millis(now),
            event: if stop.is_some() { "stop" } else { "heartbeat" },
            reason: stop,
            heartbeat_s: self.heartbeat_s(),
            chains,
        }
    }

    /// The VM's chains other than the proxy log's, at their last events (those with events).
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        let c = &self.access_chain;
        if c.seq() == 0 {
            return Vec::new();
        }
        vec![Checkpoint {
            chain: c.id().to_owned(),
            seq: c.seq(),
            mac: hex(c.last_mac()),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AccessEvent;
    use std::time::UNIX_EPOCH;

    #[test]
    fn a_heartbeat_is_due_a_period_after_the_last_one() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut a = Auditor::new("c".into(), Some("0123456789abcdef"));
        assert!(!a.heartbeat_due(t0 + Duration::from_secs(3600)), "off");
        a.set_heartbeat(Some(Duration::from_secs(60)), t0);
        assert!(!a.heartbeat_due(t0 + Duration::from_secs(59)));
        assert!(a.heartbeat_due(t0 + Duration::from_secs(60)));
        assert!(
            !a.heartbeat_due(t0),
            "a clock that went back is not a period"
        );
        let e = a.lifecycle(t0 + Duration::from_secs(61), None);
        assert_eq!((e.event, e.heartbeat_s, e.reason), ("heartbeat", 60, None));
        assert!(!a.heartbeat_due(t0 + Duration::from_secs(120)), "restarted");
    }

    #[test]
    fn checkpoints_name_the_access_chain_once_it_holds_events() {
        let mut a = Auditor::new("c".into(), Some("0123456789abcdef"));
        assert!(a.checkpoints().is_empty());
        let event = AccessEvent {
            schema: SCHEMA,
            ts: rfc3339_millis(UNIX_EPOCH),
            event: "access",
            decision: "allow",
            enforced: true,
            mode: "enforce",
            reason: "rule",
            rule: None,
            principal: None,
            workload: None,
            identity_source: None,
            peer_subject: None,
            peer_cert_sha256: None,
            source: None,
            tls_version: None,
            request: Default::default(),
            status: Some(200),
            duration_ms: 0,
            redaction: Default::default(),
            pan: Default::default(),
            pan_tokens: Vec::new(),
            unscannable: Vec::new(),
        };
        let line = a.access_line(&event);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let points = a.checkpoints();
        assert_eq!(points.len(), 1);
        assert_eq!(
            (
                points[0].chain.as_str(),
                points[0].seq,
                points[0].mac.as_str()
            ),
            ("c.access", 1, v["mac"].as_str().unwrap())
        );
        let stop = a.lifecycle(UNIX_EPOCH, Some("shutdown"));
        assert_eq!((stop.event, stop.reason), ("stop", Some("shutdown")));
    }
}
