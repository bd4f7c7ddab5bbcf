//! The reference filters of the in-Envoy benchmark: the cost floor of any proxy-wasm HTTP filter,
//! and the cost floor of any filter that does what pci-mesh-guard must do for every request.
//!
//! Plugin configuration `noop`: every callback returns at once (what a wasm filter costs before it
//! does anything). `copy-back`: every request and response body chunk is read from the host and
//! written back unchanged (the floor of a filter that must see and may rewrite every body byte).
//! `skeleton`: only the host calls an audited, redacting filter cannot do without on an allowed
//! GET, and the seal of its event: the peer's connection (one `connection.id` property, as on a
//! keep-alive connection whose facts are cached), the request and response header maps (to
//! authorize and to find card numbers in them), two clock reads, an HMAC-SHA256 over a 1,000-byte
//! event chained to the previous one, the event handed to Envoy's access log through filter state,
//! and two counters. It decides nothing, parses nothing and writes no JSON.
//! `trap`: does nothing, except that a request with the header `x-trap` makes the VM trap (a
//! panic, which aborts): what a sidecar does when its filter's VM fails (`tests/survives_a_vm_trap.rs`).

use std::cell::RefCell;
use std::rc::Rc;

use hmac::{Hmac, Mac};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
use sha2::Sha256;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { mode: Mode::Noop, seal: Rc::new(RefCell::new(Seal::default())) })
    });
}}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Noop,
    CopyBack,
    Skeleton,
    Trap,
}

/// The skeleton's chain and counters, shared by the streams of one VM.
#[derive(Default)]
struct Seal {
    keyed: Option<Hmac<Sha256>>,
    prev: [u8; 32],
    counters: [u32; 2],
}

struct Root {
    mode: Mode,
    seal: Rc<RefCell<Seal>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default();
        self.mode = match config.as_slice() {
            b"" | b"noop" => Mode::Noop,
            b"copy-back" => Mode::CopyBack,
            b"skeleton" => Mode::Skeleton,
            b"trap" => Mode::Trap,
            _ => return false,
        };
        if self.mode == Mode::Skeleton {
            let mut seal = self.seal.borrow_mut();
            seal.keyed = Hmac::<Sha256>::new_from_slice(b"bench-audit-key-0123456789").ok();
            for (slot, name) in seal
                .counters
                .iter_mut()
                .zip(["skeleton.requests", "skeleton.events"])
            {
                *slot = hostcalls::define_metric(MetricType::Counter, name).unwrap_or(0);
            }
        }
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            mode: self.mode,
            seal: self.seal.clone(),
            headers: 0,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    mode: Mode,
    seal: Rc<RefCell<Seal>>,
    /// Header pairs read, so that the reads cannot be optimised away.
    headers: usize,
}

impl Stream {
    fn copy(&self, buffer: BufferType, size: usize) -> Action {
        if self.mode == Mode::CopyBack && size > 0 {
            if let Ok(Some(bytes)) = hostcalls::get_buffer(buffer, 0, size) {
                let _ = hostcalls::set_buffer(buffer, 0, size, &bytes);
            }
        }
        Action::Continue
    }
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end: bool) -> Action {
        if self.mode == Mode::Trap
            && hostcalls::get_map_value(MapType::HttpRequestHeaders, "x-trap")
                .ok()
                .flatten()
                .is_some()
        {
            panic!("x-trap: the VM traps here, as a bug would make it");
        }
        if self.mode == Mode::Skeleton {
            let _ = hostcalls::get_property(vec!["connection", "id"]);
            self.headers = hostcalls::get_map(MapType::HttpRequestHeaders).map_or(0, |h| h.len());
            let _ = hostcalls::get_current_time();
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end: bool) -> Action {
        if self.mode != Mode::Skeleton {
            return Action::Continue;
        }
        self.headers += hostcalls::get_map(MapType::HttpResponseHeaders).map_or(0, |h| h.len());
        let _ = hostcalls::get_current_time();
        let mut event = vec![b'x'; 1000];
        event[0] = self.headers as u8;
        let mut seal = self.seal.borrow_mut();
        if let Some(mut mac) = seal.keyed.clone() {
            mac.update(&seal.prev);
            mac.update(&event);
            seal.prev = mac.finalize().into_bytes().into();
            event[1] = seal.prev[0];
        }
        let _ = hostcalls::set_property(vec!["wasm", "pmg_audit"], Some(&event));
        for &c in &seal.counters {
            let _ = hostcalls::increment_metric(c, 1);
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, size: usize, _end: bool) -> Action {
        self.copy(BufferType::HttpRequestBody, size)
    }

    fn on_http_response_body(&mut self, size: usize, _end: bool) -> Action {
        self.copy(BufferType::HttpResponseBody, size)
    }
}
