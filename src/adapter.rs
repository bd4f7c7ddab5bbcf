//! The proxy-wasm adapter: root and HTTP contexts that forward each callback to `filter`.

use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel as WasmLevel, MapType};

use crate::config::Policy;
use crate::filter::{self, RequestFlow, Verdict};
use crate::host::{Host, HostError, LogLevel};

/// `Host` over proxy-wasm host calls. Only the `Result`-returning calls are used: the SDK's
/// trait helpers unwrap host errors, which would trap the VM.
struct WasmHost;

impl Host for WasmHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        hostcalls::get_property(path.to_vec()).map_err(|s| HostError(format!("{s:?}")))
    }

    fn request_header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
            .ok()
            .flatten()
    }

    fn response_header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value(MapType::HttpResponseHeaders, name)
            .ok()
            .flatten()
    }

    fn send_local_reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        hostcalls::send_http_response(status, headers.to_vec(), Some(body))
            .map_err(|s| HostError(format!("{s:?}")))
    }

    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => WasmLevel::Debug,
            LogLevel::Info => WasmLevel::Info,
            LogLevel::Warn => WasmLevel::Warn,
            LogLevel::Error => WasmLevel::Error,
        };
        // Nothing sensible is left to do when the log itself fails.
        let _ = hostcalls::log(level, message);
    }

    fn now(&self) -> SystemTime {
        hostcalls::get_current_time().unwrap_or(UNIX_EPOCH)
    }
}

/// The root context: owns the compiled policy, shared with each request through an `Rc`.
#[derive(Default)]
struct Root {
    policy: Option<Rc<Policy>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let input = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default();
        self.policy = filter::configure(&WasmHost, &input);
        self.policy.is_some()
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            flow: RequestFlow::new(self.policy.clone()),
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
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        action(self.flow.on_request_headers(&WasmHost))
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        action(self.flow.on_response_headers(&WasmHost))
    }

    fn on_log(&mut self) {
        self.flow.on_done(&WasmHost);
    }
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(WasmLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::<Root>::default() });
}}
