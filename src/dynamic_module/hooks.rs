//! The hooks Envoy calls, each forwarding to the request flow. Envoy requires every HTTP filter
//! hook of the ABI to be exported; those the filter has no use for do nothing.
//!
//! No panic may unwind into Envoy (it would abort the proxy): each hook runs its body under
//! `catch_unwind`. A stream whose hook panicked is reset, so nothing passes unchecked.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, Weak};

use super::abi::{self, ConfigEnvoyPtr, EnvoyBuffer, EnvoyHeader, FilterEnvoyPtr, ModuleBuffer};
use super::ticker::Ticker;
use super::{Enforcement, Metrics, ModuleConfig, ModuleHost};
use crate::filter::{RequestFlow, Verdict, LOG_PREFIX};
use crate::host::{Direction, Host, LogLevel};

/// One stream's filter: the flow and the configuration it belongs to.
struct Stream {
    flow: RequestFlow,
    config: *const ModuleConfig,
}

/// Writes a line to Envoy's log without a stream (a hook that failed before it had one).
fn log_critical(message: &str) {
    let metrics = Metrics::none();
    let host = ModuleHost::new(std::ptr::null_mut(), &metrics);
    host.log(LogLevel::Critical, &format!("{LOG_PREFIX} {message}"));
}

/// Runs a hook's body; a panic is caught, logged, and answered with `fallback`.
fn guard<T>(hook: &str, fallback: impl FnOnce() -> T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(_) => {
            log_critical(&format!("{hook} panicked; failing closed"));
            fallback()
        }
    }
}

/// Envoy's bytes of a hook argument.
///
/// SAFETY (for callers): `b` is a buffer Envoy passed to the current hook.
unsafe fn bytes_of<'a>(b: &EnvoyBuffer) -> &'a [u8] {
    if b.ptr.is_null() || b.length == 0 {
        return &[];
    }
    // SAFETY: Envoy passed `b.length` readable bytes at `b.ptr`, valid during the hook.
    unsafe { std::slice::from_raw_parts(b.ptr, b.length) }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    abi::ABI_VERSION.as_ptr()
}

/// The configurations in use, by filter name and configuration bytes. Envoy makes one filter
/// configuration per HTTP connection manager that lists the filter (a sidecar has several
/// listeners); those with the same configuration share one `ModuleConfig`, and so one chain per
/// worker, as the wasm build's listeners share their VM's root context. Only `config_new` and
/// `config_destroy` take the lock, on Envoy's main thread; never a request.
static IN_USE: Mutex<Vec<(Vec<u8>, Weak<Enforcement>)>> = Mutex::new(Vec::new());

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    envoy: ConfigEnvoyPtr,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    guard("on_http_filter_config_new", std::ptr::null, || {
        // SAFETY: `name` and `config` are the buffers Envoy passed to this hook.
        let (name, input) = unsafe { (bytes_of(&name), bytes_of(&config)) };
        let key = [name, b"\0", input].concat();
        let Ok(mut in_use) = IN_USE.lock() else {
            log_critical("configuration registry poisoned; configuration refused");
            return std::ptr::null();
        };
        in_use.retain(|(_, c)| c.strong_count() > 0);
        // Stats are defined per Envoy configuration (a stream counts through its own).
        let metrics = Metrics::define(envoy);
        let shared = in_use
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, c)| c.upgrade());
        let enforcement = match shared {
            Some(e) => e,
            None => {
                let host = ModuleHost::new(std::ptr::null_mut(), &metrics);
                // SAFETY: called on the main thread during `config_new`, as the ABI requires.
                let workers =
                    unsafe { abi::envoy_dynamic_module_callback_get_concurrency() } as usize;
                let Some(e) = Enforcement::new(&host, input, workers) else {
                    return std::ptr::null();
                };
                let e = Arc::new(e);
                in_use.push((key, Arc::downgrade(&e)));
                e
            }
        };
        // The main thread is asked each second whether a heartbeat is due.
        let ticker = enforcement
            .heartbeat_period()
            .and_then(|_| Ticker::start(envoy, std::time::Duration::from_secs(1)));
        if enforcement.heartbeat_period().is_some() && ticker.is_none() {
            log_critical("no scheduler for the heartbeat timer: audit heartbeats are not written");
        }
        let config = ModuleConfig {
            enforcement,
            metrics,
            ticker,
        };
        Box::into_raw(Box::new(config)) as *const c_void
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    guard(
        "on_http_filter_config_destroy",
        || (),
        || {
            if !config.is_null() {
                // SAFETY: `config` came from `Box::into_raw` in `config_new`, and Envoy destroys it
                // once, after every stream that used it.
                let mut config = unsafe { Box::from_raw(config as *mut ModuleConfig) };
                // The timer first: its thread ends before the chains do.
                drop(config.ticker.take());
                // The last configuration of its enforcement (both are only made and destroyed on
                // the main thread): its chains end here.
                if Arc::strong_count(&config.enforcement) == 1 {
                    let host = ModuleHost::new(std::ptr::null_mut(), &config.metrics);
                    config.enforcement.stop(&host);
                }
                drop(config);
            }
        },
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: *const c_void,
    filter: FilterEnvoyPtr,
) -> *const c_void {
    guard("on_http_filter_new", std::ptr::null, || {
        // SAFETY: `config` came from `config_new` and outlives its streams.
        let Some(cfg) = (unsafe { (config as *const ModuleConfig).as_ref() }) else {
            return std::ptr::null();
        };
        // SAFETY: `filter` is the live filter Envoy passed to this hook.
        let worker =
            unsafe { abi::envoy_dynamic_module_callback_http_filter_get_worker_index(filter) };
        let e = &cfg.enforcement;
        let config = cfg as *const ModuleConfig;
        // Each stream built where it is allocated: the flow is a few hundred bytes.
        let stream = match e.workers.get(worker as usize) {
            Some(w) => Box::new(Stream {
                flow: RequestFlow::kept(
                    Some(e.policy.clone()),
                    w.auditor.clone(),
                    Some(w.connections.clone()),
                    Some(w.callers.clone()),
                ),
                config,
            }),
            // A worker Envoy did not count at configuration: its requests are refused.
            None => {
                log_critical(&format!("stream on unknown worker {worker}"));
                Box::new(Stream {
                    flow: RequestFlow::new(None, super::new_auditor(0).shared()),
                    config,
                })
            }
        };
        Box::into_raw(stream) as *const c_void
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(stream: *const c_void) {
    guard(
        "on_http_filter_destroy",
        || (),
        || {
            if !stream.is_null() {
                // SAFETY: `stream` came from `Box::into_raw` in `filter_new`; Envoy destroys it once.
                drop(unsafe { Box::from_raw(stream as *mut Stream) });
            }
        },
    )
}

/// Runs `f` on the stream's flow with a host for this hook; a panic resets the stream.
fn on_stream(
    hook: &str,
    filter: FilterEnvoyPtr,
    stream: *const c_void,
    stop: u32,
    f: impl FnOnce(&mut RequestFlow, &ModuleHost<'_>) -> u32,
) -> u32 {
    let reset = || {
        // SAFETY: `filter` is the live filter Envoy passed to this hook.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_reset_stream(
                filter,
                abi::RESET_LOCAL,
                ModuleBuffer::of(b"pci_mesh_guard"),
            )
        };
        stop
    };
    guard(hook, reset, || {
        // SAFETY: `stream` came from `filter_new` for this filter and lives until
        // `filter_destroy`; Envoy runs one hook of a stream at a time, on its worker.
        let Some(s) = (unsafe { (stream as *mut Stream).as_mut() }) else {
            return stop;
        };
        // SAFETY: the configuration outlives its streams.
        let Some(config) = (unsafe { s.config.as_ref() }) else {
            return stop;
        };
        let host = ModuleHost::new(filter, &config.metrics);
        f(&mut s.flow, &host)
    })
}

fn headers_status(v: Verdict) -> u32 {
    match v {
        Verdict::Continue => abi::status::CONTINUE,
        Verdict::Stop => abi::status::HEADERS_STOP_ITERATION,
    }
}

fn body_status(v: Verdict) -> u32 {
    match v {
        Verdict::Continue => abi::status::CONTINUE,
        Verdict::Stop => abi::status::BODY_STOP_AND_BUFFER,
    }
}

fn trailers_status(v: Verdict) -> u32 {
    match v {
        Verdict::Continue => abi::status::CONTINUE,
        Verdict::Stop => abi::status::TRAILERS_STOP_ITERATION,
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    filter: FilterEnvoyPtr,
    stream: *const c_void,
    end_of_stream: bool,
) -> u32 {
    let stop = abi::status::HEADERS_STOP_ITERATION;
    on_stream("request_headers", filter, stream, stop, |flow, host| {
        headers_status(flow.on_request_headers(host, end_of_stream))
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    filter: FilterEnvoyPtr,
    stream: *const c_void,
    end_of_stream: bool,
) -> u32 {
    let stop = abi::status::BODY_STOP_AND_BUFFER;
    on_stream("request_body", filter, stream, stop, |flow, host| {
        let size = host.body_size(Direction::Request);
        body_status(flow.on_request_body(host, size, end_of_stream))
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    filter: FilterEnvoyPtr,
    stream: *const c_void,
) -> u32 {
    let stop = abi::status::TRAILERS_STOP_ITERATION;
    on_stream("request_trailers", filter, stream, stop, |flow, host| {
        trailers_status(flow.on_request_trailers(host))
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    filter: FilterEnvoyPtr,
    stream: *const c_void,
    end_of_stream: bool,
) -> u32 {
    let stop = abi::status::HEADERS_STOP_ITERATION;
    on_stream("response_headers", filter, stream, stop, |flow, host| {
        headers_status(flow.on_response_headers(host, end_of_stream))
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    filter: FilterEnvoyPtr,
    stream: *const c_void,
    end_of_stream: bool,
) -> u32 {
    let stop = abi::status::BODY_STOP_AND_BUFFER;
    on_stream("response_body", filter, stream, stop, |flow, host| {
        let size = host.body_size(Direction::Response);
        body_status(flow.on_response_body(host, size, end_of_stream))
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    filter: FilterEnvoyPtr,
    stream: *const c_void,
) -> u32 {
    let stop = abi::status::TRAILERS_STOP_ITERATION;
    on_stream("response_trailers", filter, stream, stop, |flow, host| {
        trailers_status(flow.on_response_trailers(host))
    })
}

/// The stream is over; Envoy's access log runs next, so an event left in filter state here is
/// the one it writes.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    filter: FilterEnvoyPtr,
    stream: *const c_void,
) {
    on_stream("stream_complete", filter, stream, 0, |flow, host| {
        flow.on_done(host);
        0
    });
}

// Hooks the filter does not use (it makes no callouts, schedules nothing, and is not a terminal
// filter); Envoy refuses a module that lacks any of them.

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _filter: FilterEnvoyPtr,
    _stream: *const c_void,
    _callout_id: u64,
    _result: u32,
    _headers: *const EnvoyHeader,
    _headers_size: usize,
    _body_chunks: *const EnvoyBuffer,
    _body_chunks_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _filter: FilterEnvoyPtr,
    _stream: *const c_void,
    _stream_id: u64,
    _headers: *const EnvoyHeader,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _filter: FilterEnvoyPtr,
    _stream: *const c_void,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _filter: FilterEnvoyPtr,
    _stream: *const c_void,
    _stream_id: u64,
    _trailers: *const EnvoyHeader,
    _trailers_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _filter: FilterEnvoyPtr,
    _stream: *const c_void,
    _stream_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _filter: FilterEnvoyPtr,
    _stream: *const c_void,
    _stream_id: u64,
    _reason: u32,
) {
}

/// The main thread's tick (see `Ticker`): a heartbeat when one is due.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    _envoy: ConfigEnvoyPtr,
    config: *const c_void,
    _event_id: u64,
) {
    guard(
        "on_http_filter_config_scheduled",
        || (),
        || {
            // SAFETY: `config` came from `config_new`; Envoy calls this hook on the main thread
            // while the configuration lives (its scheduler holds it weakly).
            let Some(cfg) = (unsafe { (config as *const ModuleConfig).as_ref() }) else {
                return;
            };
            let host = ModuleHost::new(std::ptr::null_mut(), &cfg.metrics);
            cfg.enforcement.heartbeat(&host);
        },
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _filter: FilterEnvoyPtr,
    _stream: *const c_void,
    _event_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _filter: FilterEnvoyPtr,
    _stream: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _filter: FilterEnvoyPtr,
    _stream: *const c_void,
) {
}
