//! The plugin's counters and gauges as Envoy stats of the module's configuration: defined once,
//! in `on_http_filter_config_new` (Envoy allows no later definition), and counted from any worker.

use super::abi::{self, ConfigEnvoyPtr, FilterEnvoyPtr, ModuleBuffer};
use crate::host::{Gauge, Metric};

/// The denial counter's name and labels (`Host::count_denial`).
const DENIALS: &str = "pci_mesh_guard_denied_callers_total";
const DENIAL_LABELS: [&str; 3] = ["caller", "reason", "dry_run"];

/// Ids of the defined stats (`None`: Envoy refused the definition, and the stat is not kept).
pub struct Metrics {
    config: ConfigEnvoyPtr,
    /// By `Metric::index`.
    counters: Vec<Option<usize>>,
    /// By position in `Gauge::ALL`.
    gauges: Vec<Option<usize>>,
    denials: Option<usize>,
}

impl Metrics {
    /// Metrics that count nothing (no configuration to define them in).
    pub fn none() -> Metrics {
        Metrics {
            config: std::ptr::null_mut(),
            counters: Vec::new(),
            gauges: Vec::new(),
            denials: None,
        }
    }

    /// Defines every stat in `config` (Envoy's configuration object, during `config_new`).
    pub fn define(config: ConfigEnvoyPtr) -> Metrics {
        let define = |name: &str, labels: &[&str], gauge: bool| {
            let labels: Vec<ModuleBuffer> = labels
                .iter()
                .map(|l| ModuleBuffer::of(l.as_bytes()))
                .collect();
            let mut id = 0usize;
            // SAFETY: `config` is Envoy's live configuration object of this `config_new` call; the
            // name and labels outlive the call, in which Envoy copies them; `id` is a local.
            let result = unsafe {
                let f = if gauge {
                    abi::envoy_dynamic_module_callback_http_filter_config_define_gauge
                } else {
                    abi::envoy_dynamic_module_callback_http_filter_config_define_counter
                };
                f(
                    config,
                    ModuleBuffer::of(name.as_bytes()),
                    labels.as_ptr(),
                    labels.len(),
                    &mut id,
                )
            };
            (result == abi::METRICS_SUCCESS).then_some(id)
        };
        Metrics {
            config,
            counters: Metric::all()
                .map(|m| define(&m.name(), &[], false))
                .collect(),
            gauges: Gauge::ALL
                .iter()
                // The VM memory gauge has no meaning without a VM.
                .map(|g| (*g != Gauge::VmMemoryBytes).then(|| define(g.name(), &[], true))?)
                .collect(),
            denials: define(DENIALS, &DENIAL_LABELS, false),
        }
    }

    pub fn counter(&self, index: usize) -> Option<usize> {
        self.counters.get(index).copied().flatten()
    }

    pub fn gauge(&self, gauge: Gauge) -> Option<usize> {
        let i = Gauge::ALL.iter().position(|g| *g == gauge)?;
        self.gauges.get(i).copied().flatten()
    }

    pub fn denials(&self) -> Option<usize> {
        self.denials
    }

    /// Adds to a counter: through the stream's filter on a worker, through the configuration on
    /// the main thread (`filter` null).
    pub fn add(&self, filter: FilterEnvoyPtr, id: usize, labels: &[&str], by: u64) {
        let labels: Vec<ModuleBuffer> = labels
            .iter()
            .map(|l| ModuleBuffer::of(l.as_bytes()))
            .collect();
        // SAFETY: `filter` is null or the live filter of the current hook; `config` is the live
        // configuration these ids were defined in; the labels outlive the call.
        unsafe {
            if !filter.is_null() {
                abi::envoy_dynamic_module_callback_http_filter_increment_counter(
                    filter,
                    id,
                    labels.as_ptr(),
                    labels.len(),
                    by,
                );
            } else if !self.config.is_null() {
                abi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
                    self.config,
                    id,
                    labels.as_ptr(),
                    labels.len(),
                    by,
                );
            }
        }
    }

    /// Sets a gauge, as `add` reaches it.
    pub fn set(&self, filter: FilterEnvoyPtr, id: usize, value: u64) {
        let none: [ModuleBuffer; 0] = [];
        // SAFETY: as in `add`.
        unsafe {
            if !filter.is_null() {
                abi::envoy_dynamic_module_callback_http_filter_set_gauge(
                    filter,
                    id,
                    none.as_ptr(),
                    0,
                    value,
                );
            } else if !self.config.is_null() {
                abi::envoy_dynamic_module_callback_http_filter_config_set_gauge(
                    self.config,
                    id,
                    none.as_ptr(),
                    0,
                    value,
                );
            }
        }
    }
}
