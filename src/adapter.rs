//! The proxy-wasm adapter: root and HTTP contexts that forward each callback to `filter`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{
    Action, BufferType, ContextType, LogLevel as WasmLevel, MapType, MetricType,
};

use crate::audit::{chain, Auditor, SharedAuditor, TOKEN_KEY_ENV};
use crate::config::Policy;
use crate::filter::{
    self, CallerLabels, ConnectionCache, RequestFlow, SharedCallers, SharedConnections, Verdict,
};
use crate::host::{Direction, Gauge, Headers, Host, HostError, LogLevel, Map, Metric, Property};

thread_local! {
    /// Ids of the counters of `Metric::ALL`, defined once per VM.
    static METRICS: RefCell<Vec<Option<u32>>> = const { RefCell::new(Vec::new()) };
    /// Ids of the gauges of `Gauge::ALL`.
    static GAUGES: RefCell<Vec<Option<u32>>> = const { RefCell::new(Vec::new()) };
    /// Ids of the counters named at run time (denials by caller), defined on first use; the flow
    /// bounds how many names there are.
    static NAMED: RefCell<HashMap<String, Option<u32>>> = RefCell::new(HashMap::new());
}

/// Defines the counters, once per VM: before the first configuration, so that its own `config`
/// event is counted too.
fn define_metrics() {
    if METRICS.with(|m| !m.borrow().is_empty()) {
        return;
    }
    let ids = Metric::all()
        .map(|m| hostcalls::define_metric(MetricType::Counter, &m.name()).ok())
        .collect();
    METRICS.with(|m| *m.borrow_mut() = ids);
    let gauges = Gauge::ALL
        .iter()
        .map(|g| hostcalls::define_metric(MetricType::Gauge, g.name()).ok())
        .collect();
    GAUGES.with(|g| *g.borrow_mut() = gauges);
}

/// Sets the VM memory gauge when the linear memory has grown since it was last set: one compare
/// per request, a host call only on growth.
fn record_memory() {
    thread_local! {
        static RECORDED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    let bytes = core::arch::wasm32::memory_size(0).saturating_mul(64 * 1024);
    if RECORDED.with(|r| r.replace(bytes)) != bytes {
        WasmHost.set_gauge(Gauge::VmMemoryBytes, bytes as u64);
    }
}

fn map_type(map: Map) -> MapType {
    match map {
        Map::RequestHeaders => MapType::HttpRequestHeaders,
        Map::ResponseHeaders => MapType::HttpResponseHeaders,
        Map::RequestTrailers => MapType::HttpRequestTrailers,
        Map::ResponseTrailers => MapType::HttpResponseTrailers,
    }
}

fn buffer_type(dir: Direction) -> BufferType {
    match dir {
        Direction::Request => BufferType::HttpRequestBody,
        Direction::Response => BufferType::HttpResponseBody,
    }
}

fn host_error(s: proxy_wasm::types::Status) -> HostError {
    HostError(format!("{s:?}"))
}

/// `Host` over proxy-wasm host calls. Only calls that neither unwrap a host error nor decode
/// header values as UTF-8 are used (the SDK's string-valued map calls panic on a value that is not
/// UTF-8, which a client can send), so no request can trap the VM.
struct WasmHost;

impl WasmHost {
    fn header_of(&self, map: MapType, name: &str) -> Option<Vec<u8>> {
        hostcalls::get_map_value_bytes(map, name).ok().flatten()
    }
}

impl Host for WasmHost {
    fn property(&self, property: Property) -> Result<Option<Vec<u8>>, HostError> {
        hostcalls::get_property(property.path().to_vec()).map_err(host_error)
    }

    fn header(&self, map: Map, name: &str) -> Option<Vec<u8>> {
        hostcalls::get_map_value_bytes(map_type(map), name)
            .ok()
            .flatten()
    }

    fn headers(&self, map: Map) -> Headers {
        header_map(map_type(map)).unwrap_or_default()
    }

    fn set_header(&self, map: Map, name: &str, value: &[u8]) -> Result<(), HostError> {
        hostcalls::set_map_value_bytes(map_type(map), name, Some(value)).map_err(host_error)
    }

    fn add_header(&self, map: Map, name: &str, value: &[u8]) -> Result<(), HostError> {
        hostcalls::add_map_value_bytes(map_type(map), name, value).map_err(host_error)
    }

    fn body(&self, dir: Direction, start: usize, len: usize) -> Option<Vec<u8>> {
        match hostcalls::get_buffer(buffer_type(dir), start, len) {
            Ok(Some(b)) => Some(b),
            Ok(None) => Some(Vec::new()),
            Err(_) => None,
        }
    }

    fn set_body(
        &self,
        dir: Direction,
        start: usize,
        len: usize,
        data: &[u8],
    ) -> Result<(), HostError> {
        hostcalls::set_buffer(buffer_type(dir), start, len, data).map_err(host_error)
    }

    fn send_local_reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        hostcalls::send_http_response(status, headers.to_vec(), Some(body)).map_err(host_error)
    }

    fn set_filter_state(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        hostcalls::set_property(vec![name], Some(value)).map_err(host_error)
    }

    fn reset(&self, dir: Direction) {
        let _ = match dir {
            Direction::Request => hostcalls::reset_http_request(),
            Direction::Response => hostcalls::reset_http_response(),
        };
    }

    fn increment(&self, metric: Metric, by: u64) {
        let index = metric.index();
        let id = METRICS.with(|m| index.and_then(|i| m.borrow().get(i).copied().flatten()));
        if let (Some(id), Ok(by)) = (id, i64::try_from(by)) {
            let _ = hostcalls::increment_metric(id, by);
        }
    }

    fn count_denial(&self, caller: &str, reason: &str, dry_run: bool) {
        // A counter per name, defined on first use (its labels are in its name).
        let name = filter::denial_stat_name(caller, reason, dry_run);
        let id = NAMED.with(|named| {
            let mut named = named.try_borrow_mut().ok()?;
            if let Some(id) = named.get(&name) {
                return *id;
            }
            let id = hostcalls::define_metric(MetricType::Counter, &name).ok();
            named.insert(name, id);
            id
        });
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    fn set_gauge(&self, gauge: Gauge, value: u64) {
        let index = Gauge::ALL.iter().position(|g| *g == gauge);
        let id = GAUGES.with(|g| index.and_then(|i| g.borrow().get(i).copied().flatten()));
        if let Some(id) = id {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => WasmLevel::Debug,
            LogLevel::Info => WasmLevel::Info,
            LogLevel::Warn => WasmLevel::Warn,
            LogLevel::Error => WasmLevel::Error,
            LogLevel::Critical => WasmLevel::Critical,
        };
        // Nothing sensible is left to do when the log itself fails.
        let _ = hostcalls::log(level, message);
    }

    fn log_level(&self) -> Option<LogLevel> {
        match host_log_level() {
            Some(0..=1) => Some(LogLevel::Debug),
            Some(2) => Some(LogLevel::Info),
            Some(3) => Some(LogLevel::Warn),
            Some(4) => Some(LogLevel::Error),
            // spdlog's `off`: nothing is written.
            Some(6) => None,
            // `critical`, or an answer this build does not know: the level most likely shown.
            Some(_) | None => Some(LogLevel::Critical),
        }
    }

    fn now(&self) -> SystemTime {
        hostcalls::get_current_time().unwrap_or(UNIX_EPOCH)
    }
}

/// The host's log level as the number it gives (spdlog's: 0 trace ... 5 critical, 6 off), `None`
/// if the call fails. The SDK's `hostcalls::get_log_level` cannot be used: it stores the number
/// straight into its `LogLevel` enum, which has no variant for Envoy's 6 (`off`), and it panics
/// when the call fails.
#[allow(unsafe_code, clashing_extern_declarations)]
fn host_log_level() -> Option<u32> {
    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_get_log_level(return_level: *mut u32) -> u32;
    }
    let mut level: u32 = 0;
    // SAFETY: the host writes one u32 through the pointer, which points at a live local u32;
    // any value it writes is a valid u32. Status 0 is proxy-wasm's `Ok`.
    let status = unsafe { proxy_get_log_level(&mut level) };
    (status == 0).then_some(level)
}

/// A header or trailer map in the host's serialized form, kept as it is: one buffer, however many
/// entries (the SDK's `hostcalls::get_map_bytes` makes a `String` and a `Vec` of each entry, and
/// panics when the call fails). `None` when the call fails or the bytes are not a map.
#[allow(unsafe_code, clashing_extern_declarations)]
fn header_map(map: MapType) -> Option<Headers> {
    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_get_header_map_pairs(
            map_type: MapType,
            return_map_data: *mut *mut u8,
            return_map_size: *mut usize,
        ) -> u32;
    }
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer and a size through the two pointers, which point at live
    // locals. Status 0 is proxy-wasm's `Ok`.
    let status = unsafe { proxy_get_header_map_pairs(map, &mut data, &mut size) };
    if status != 0 {
        return None;
    }
    if data.is_null() {
        return Some(Headers::default());
    }
    // The host got `data` from this module's `proxy_on_memory_allocate(size)`: a boxed slice of
    // exactly `size` bytes, filled and handed over.
    // SAFETY: the Vec owns that allocation with its length and capacity, as the SDK does too.
    let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
    Headers::from_serialized(bytes)
}

/// The root context: owns the compiled policy, the VM's audit chain and the facts of its recent
/// connections, each shared with every request through an `Rc`.
struct Root {
    policy: Option<Arc<Policy>>,
    auditor: SharedAuditor,
    connections: SharedConnections,
    callers: SharedCallers,
}

impl Root {
    fn new() -> Root {
        let seed = WasmHost
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // The key comes from the VM environment (Envoy vm_config.environment_variables).
        let key = std::env::var(chain::KEY_ENV).ok();
        Root {
            policy: None,
            auditor: Auditor::with_key_id(
                chain::new_chain_id(seed),
                key.as_deref(),
                std::env::var(chain::KEY_ID_ENV).ok().as_deref(),
            )
            .with_token_key(std::env::var(TOKEN_KEY_ENV).ok().as_deref())
            .shared(),
            connections: ConnectionCache::shared(),
            callers: CallerLabels::shared(),
        }
    }
}

impl Context for Root {
    /// The plugin is unloaded (its configuration removed, or the proxy stopping): the chain's
    /// `stop` event says its end is no loss.
    fn on_done(&mut self) -> bool {
        if self.policy.take().is_some() {
            filter::audit_stop(&WasmHost, &self.auditor, "shutdown");
        }
        true
    }

    fn on_http_call_response(
        &mut self,
        _token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let status = WasmHost
            .header_of(MapType::HttpCallResponseHeaders, ":status")
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<u16>().ok());
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        filter::audit_answer(&WasmHost, &self.auditor, status, &body);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let input = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default();
        define_metrics();
        if self.policy.is_some() {
            filter::audit_stop(&WasmHost, &self.auditor, "reconfigured");
        }
        self.policy = filter::configure(&WasmHost, &input, &self.auditor);
        record_memory();
        if let Some(p) = &self.policy {
            // The otlp_http sink is driven by the timer: due batches leave within a tick. The
            // heartbeat is checked each second, so one is written at most a second late.
            let tick = if p.audit.otlp.is_some() {
                Duration::from_millis(100)
            } else if p.audit.heartbeat.is_some() {
                Duration::from_secs(1)
            } else {
                Duration::ZERO
            };
            let _ = hostcalls::set_tick_period(tick);
        }
        self.policy.is_some()
    }

    fn on_tick(&mut self) {
        let Some(body) = filter::audit_tick(&WasmHost, &self.auditor) else {
            return;
        };
        let settings = self
            .auditor
            .try_borrow()
            .ok()
            .and_then(|a| a.shipper.as_ref().map(|s| s.settings.clone()));
        let Some(settings) = settings else {
            return;
        };
        let headers = vec![
            (":method", "POST"),
            (":path", settings.path.as_str()),
            (":authority", settings.authority.as_str()),
            ("content-type", "application/json"),
        ];
        if let Err(e) = hostcalls::dispatch_http_call(
            &settings.cluster,
            headers,
            Some(&body),
            vec![],
            settings.timeout,
        ) {
            filter::audit_dispatch_failed(
                &WasmHost,
                &self.auditor,
                &format!("cannot send to cluster {}: {e:?}", settings.cluster),
            );
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            flow: RequestFlow::new(self.policy.clone(), self.auditor.clone())
                .with_connections(self.connections.clone())
                .with_callers(self.callers.clone()),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    flow: RequestFlow,
}

fn action(v: Verdict) -> Action {
    match v {
        Verdict::Continue => Action::Continue,
        Verdict::Stop => Action::Pause,
    }
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        action(self.flow.on_request_headers(&WasmHost, end_of_stream))
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        action(self.flow.on_request_body(&WasmHost, size, end_of_stream))
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> Action {
        action(self.flow.on_request_trailers(&WasmHost))
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        action(self.flow.on_response_headers(&WasmHost, end_of_stream))
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        action(self.flow.on_response_body(&WasmHost, size, end_of_stream))
    }

    fn on_http_response_trailers(&mut self, _trailers: usize) -> Action {
        action(self.flow.on_response_trailers(&WasmHost))
    }

    fn on_log(&mut self) {
        self.flow.on_done(&WasmHost);
        record_memory();
    }
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(WasmLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::new()) });
}}
