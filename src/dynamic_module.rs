//! The Envoy dynamic-module adapter: `libpci_mesh_guard.so`, loaded by Envoy's
//! `envoy.filters.http.dynamic_modules` filter, runs the same request flow as the wasm build, natively.
//!
//! Envoy makes one filter configuration (`on_http_filter_config_new`, on the main thread) and
//! shares it with every worker; each stream then lives on one worker. The configuration holds the
//! compiled policy, shared, and one `Worker` per Envoy worker with what the wasm build keeps per VM:
//! the audit chains, the connection facts, the denied callers. A stream touches only its own
//! worker's, so the request path takes no lock, and each worker's events form a chain of their own.
//!
//! `abi` declares the C ABI by hand; `hooks` exports what Envoy calls; `host` implements `Host`
//! over the callbacks; `metrics` defines the stats; `ticker` is the heartbeat's timer. Every
//! `unsafe` block of the crate is here.
#![allow(unsafe_code)]

mod abi;
mod hooks;
mod host;
mod metrics;
#[cfg(test)]
mod tests;
mod ticker;

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::audit::{chain, Auditor, Checkpoint, SharedAuditor, SharedPublished, TOKEN_KEY_ENV};
use crate::config::Policy;
use crate::filter::{self, CallerLabels, ConnectionCache, SharedCallers, SharedConnections};
use crate::host::Host;

use host::ModuleHost;
use metrics::Metrics;

/// Where a rejection says the keys come from.
const KEY_ORIGIN: &str = "the process environment: ";

/// What one Envoy worker keeps across its streams, as each wasm VM does.
struct Worker {
    auditor: SharedAuditor,
    /// Where its chains stand, for the main thread's heartbeats.
    published: SharedPublished,
    connections: SharedConnections,
    callers: SharedCallers,
}

/// A new audit chain with the keys of the process environment.
fn new_auditor(seed: u64) -> Auditor {
    let key = std::env::var(chain::KEY_ENV).ok();
    let kid = std::env::var(chain::KEY_ID_ENV).ok();
    Auditor::with_key_id(chain::new_chain_id(seed), key.as_deref(), kid.as_deref())
        .with_token_key(std::env::var(TOKEN_KEY_ENV).ok().as_deref())
        .with_key_origin(KEY_ORIGIN)
}

/// What the filter enforces under one configuration: the compiled policy, shared, and a `Worker`
/// per Envoy worker.
pub struct Enforcement {
    policy: Arc<Policy>,
    /// The main thread's chain, which recorded the configuration.
    main: SharedAuditor,
    workers: Box<[Worker]>,
}

// SAFETY: an `Enforcement` is made on Envoy's main thread and then only read, except for its
// workers' `Rc` state: `workers[i]` is touched only by hooks of streams on worker `i`
// (`get_worker_index`), which Envoy runs on that worker's thread alone, after it received the
// configuration through Envoy's own (synchronizing) hand-over. Its `stop` and its drop run on the
// main thread when the last configuration that uses it is destroyed, after every stream that used
// it is gone, so no worker touches its state any more.
unsafe impl Send for Enforcement {}
// SAFETY: as for `Send`: shared access never touches one worker's state from two threads.
unsafe impl Sync for Enforcement {}

impl Enforcement {
    /// Parses and compiles the configuration on the main thread; `None` when it is rejected (the
    /// reason is logged, naming the key, and written as a `config` event).
    fn new(host: &ModuleHost<'_>, input: &[u8], workers: usize) -> Option<Enforcement> {
        let seed = host
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // The main thread's chain records the configuration once, as the wasm build's main VM does.
        let main = new_auditor(seed).shared();
        let policy = filter::configure(host, input, &main)?;
        let workers = (0..workers)
            .map(|i| {
                let (auditor, published) = new_auditor(seed.wrapping_add(i as u64 + 1)).publish();
                let w = Worker {
                    auditor: auditor.shared(),
                    published,
                    connections: ConnectionCache::shared(),
                    callers: CallerLabels::shared(),
                };
                filter::join(host, input, &w.auditor, &policy);
                w
            })
            .collect();
        Some(Enforcement {
            policy,
            main,
            workers,
        })
    }

    /// Ends every chain of the configuration with its `stop` event: called on the main thread when
    /// the last Envoy configuration that uses it is destroyed, after all their streams. The main
    /// thread's stop comes last and names where every worker's chains ended.
    fn stop<H: Host>(&self, host: &H) {
        for w in self.workers.iter() {
            filter::audit_stop(host, &w.auditor, "shutdown");
        }
        filter::audit_stop_vouching(host, &self.main, "shutdown", self.workers_checkpoints());
    }

    /// The main thread's timer: a heartbeat when one is due, in the main thread's chain, naming
    /// where every worker's chains stand (the workers have no timer of their own).
    fn heartbeat<H: Host>(&self, host: &H) {
        filter::audit_heartbeat_vouching(host, &self.main, || self.workers_checkpoints());
    }

    fn workers_checkpoints(&self) -> Vec<Checkpoint> {
        self.workers
            .iter()
            .filter_map(|w| w.published.lock().ok().map(|p| p.checkpoints()))
            .flatten()
            .collect()
    }

    /// The heartbeat period of the policy, if heartbeats are on.
    fn heartbeat_period(&self) -> Option<std::time::Duration> {
        self.policy.audit.heartbeat
    }
}

/// One filter configuration of Envoy's (one per HTTP connection manager that lists the filter):
/// its stats, defined in it, and the enforcement it shares with Envoy's other configurations of
/// the same filter and JSON.
pub struct ModuleConfig {
    enforcement: Arc<Enforcement>,
    metrics: Metrics,
    /// Asks Envoy's main thread each second to check whether a heartbeat is due; stopped (and
    /// its thread joined) before the configuration is gone.
    ticker: Option<ticker::Ticker>,
}

// SAFETY: `enforcement` is `Sync`; `metrics` holds ids and Envoy's configuration object, which
// Envoy lets any thread count through.
unsafe impl Send for ModuleConfig {}
// SAFETY: as for `Send`.
unsafe impl Sync for ModuleConfig {}
