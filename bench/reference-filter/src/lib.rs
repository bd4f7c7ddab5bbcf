//! The reference filters of the in-Envoy benchmark: the cost floor of any proxy-wasm HTTP filter.
//!
//! Plugin configuration `noop`: every callback returns at once (what a wasm filter costs before it
//! does anything). `copy-back`: every request and response body chunk is read from the host and
//! written back unchanged (the floor of a filter that must see and may rewrite every body byte).

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { copy_back: false }) });
}}

struct Root {
    copy_back: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default();
        match config.as_slice() {
            b"" | b"noop" => self.copy_back = false,
            b"copy-back" => self.copy_back = true,
            _ => return false,
        }
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            copy_back: self.copy_back,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    copy_back: bool,
}

impl Stream {
    fn copy(&self, buffer: BufferType, size: usize) -> Action {
        if self.copy_back && size > 0 {
            if let Ok(Some(bytes)) = hostcalls::get_buffer(buffer, 0, size) {
                let _ = hostcalls::set_buffer(buffer, 0, size, &bytes);
            }
        }
        Action::Continue
    }
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_body(&mut self, size: usize, _end: bool) -> Action {
        self.copy(BufferType::HttpRequestBody, size)
    }

    fn on_http_response_body(&mut self, size: usize, _end: bool) -> Action {
        self.copy(BufferType::HttpResponseBody, size)
    }
}
