//! `Host` over the dynamic-module callbacks: one stream's filter (or, on the main thread while a
//! configuration is made, none), converting types and nothing more.

use std::cell::RefCell;
use std::time::SystemTime;

use super::abi::{self, EnvoyBuffer, EnvoyHeader, FilterEnvoyPtr, ModuleBuffer, ModuleHeader};
use super::metrics::Metrics;
use crate::host::{Direction, Gauge, Headers, Host, HostError, LogLevel, Map, Metric, Property};
use crate::identity::{ISTIO_LOCAL_PRINCIPAL, ISTIO_PEER_PRINCIPAL};

/// The calls of one hook. `filter` is null on the main thread (a configuration being made), where
/// only logs and metrics can be reached.
pub struct ModuleHost<'a> {
    pub filter: FilterEnvoyPtr,
    pub metrics: &'a Metrics,
    /// The body chunks of one direction as last listed in this hook, until the body changes: a
    /// body hook reads the size, the bytes and writes them back, and lists them once.
    chunks: RefCell<Option<(Direction, Vec<EnvoyBuffer>)>>,
}

fn header_type(map: Map) -> u32 {
    match map {
        Map::RequestHeaders => abi::header_type::REQUEST_HEADERS,
        Map::ResponseHeaders => abi::header_type::RESPONSE_HEADERS,
        Map::RequestTrailers => abi::header_type::REQUEST_TRAILERS,
        Map::ResponseTrailers => abi::header_type::RESPONSE_TRAILERS,
    }
}

/// The body types of a direction: (this hook's data, what Envoy holds from earlier hooks).
fn body_types(dir: Direction) -> (u32, u32) {
    match dir {
        Direction::Request => (
            abi::body_type::RECEIVED_REQUEST,
            abi::body_type::BUFFERED_REQUEST,
        ),
        Direction::Response => (
            abi::body_type::RECEIVED_RESPONSE,
            abi::body_type::BUFFERED_RESPONSE,
        ),
    }
}

fn failed(call: &str) -> HostError {
    HostError(format!("{call} refused"))
}

/// Envoy's bytes as a slice.
///
/// SAFETY (for callers): `b` must come from an Envoy callback of the current hook, with no
/// change to the map or buffer it points into since.
unsafe fn envoy_bytes<'b>(ptr: *const u8, length: usize) -> &'b [u8] {
    if ptr.is_null() || length == 0 {
        &[]
    } else {
        // SAFETY: Envoy gave `length` readable bytes at `ptr`, valid for this hook (see above).
        unsafe { std::slice::from_raw_parts(ptr, length) }
    }
}

impl<'a> ModuleHost<'a> {
    /// The calls of one hook of the stream `filter` (null: no stream, on the main thread).
    pub fn new(filter: FilterEnvoyPtr, metrics: &'a Metrics) -> ModuleHost<'a> {
        ModuleHost {
            filter,
            metrics,
            chunks: RefCell::new(None),
        }
    }

    /// The body as the flow sees it in this hook: what Envoy holds from earlier hooks, then this
    /// hook's data (Envoy passes them on in that order). Empty chunks are left out.
    fn body_chunks(&self, dir: Direction) -> Vec<EnvoyBuffer> {
        self.with_body_chunks(dir, <[EnvoyBuffer]>::to_vec)
    }

    /// `f` over the body's chunks as `body_chunks` lists them, listed once per hook and lent
    /// from there. `f` must not change the body.
    fn with_body_chunks<R>(&self, dir: Direction, f: impl FnOnce(&[EnvoyBuffer]) -> R) -> R {
        let listed = matches!(&*self.chunks.borrow(), Some((d, _)) if *d == dir);
        if !listed {
            let chunks = self.list_body_chunks(dir);
            *self.chunks.borrow_mut() = Some((dir, chunks));
        }
        let chunks = self.chunks.borrow();
        f(chunks.as_ref().map_or(&[], |(_, c)| c.as_slice()))
    }

    fn list_body_chunks(&self, dir: Direction) -> Vec<EnvoyBuffer> {
        let (received, buffered) = body_types(dir);
        let mut chunks = Vec::new();
        for t in [buffered, received] {
            // SAFETY: `filter` is the live filter of this hook; the array has room for the count
            // Envoy gave just before, in the same hook.
            unsafe {
                let n =
                    abi::envoy_dynamic_module_callback_http_get_body_chunks_size(self.filter, t);
                if n == 0 {
                    continue;
                }
                let at = chunks.len();
                chunks.resize(at + n, EnvoyBuffer::EMPTY);
                let filled = abi::envoy_dynamic_module_callback_http_get_body_chunks(
                    self.filter,
                    t,
                    chunks.as_mut_ptr().add(at),
                );
                if !filled {
                    chunks.truncate(at);
                }
            }
        }
        chunks.retain(|c| !c.ptr.is_null() && c.length > 0);
        chunks
    }

    /// The size of the body as `body_chunks` shows it.
    pub fn body_size(&self, dir: Direction) -> usize {
        self.with_body_chunks(dir, |chunks| chunks.iter().map(|c| c.length).sum())
    }

    /// Replaces the whole body with `data`: Envoy's held bytes and this hook's are drained, and
    /// `data` becomes this hook's (or, outside a body hook, the held body).
    fn replace_body(&self, dir: Direction, data: &[u8]) -> Result<(), HostError> {
        self.chunks.borrow_mut().take();
        let (received, buffered) = body_types(dir);
        // SAFETY: `filter` is the live filter of this hook; `data` outlives the calls.
        unsafe {
            for t in [buffered, received] {
                let n = abi::envoy_dynamic_module_callback_http_get_body_size(self.filter, t);
                if n > 0 && !abi::envoy_dynamic_module_callback_http_drain_body(self.filter, t, n) {
                    return Err(failed("drain_body"));
                }
            }
            self.append_body(dir, data)
        }
    }

    fn append_body(&self, dir: Direction, data: &[u8]) -> Result<(), HostError> {
        if data.is_empty() {
            return Ok(());
        }
        self.chunks.borrow_mut().take();
        let (received, buffered) = body_types(dir);
        // SAFETY: `filter` is the live filter of this hook; `data` outlives the calls. Appending
        // to this hook's data fails outside a body hook, where the held body takes it instead.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_append_body(
                self.filter,
                received,
                ModuleBuffer::of(data),
            ) || abi::envoy_dynamic_module_callback_http_append_body(
                self.filter,
                buffered,
                ModuleBuffer::of(data),
            )
        };
        ok.then_some(()).ok_or_else(|| failed("append_body"))
    }

    fn string_attribute(&self, id: u32) -> Option<Vec<u8>> {
        let mut out = EnvoyBuffer::EMPTY;
        // SAFETY: `filter` is the live filter of this hook; `out` is a local Envoy fills in, and
        // its bytes are copied before the hook returns.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(
                self.filter,
                id,
                &mut out,
            )
            .then(|| envoy_bytes(out.ptr, out.length).to_vec())
        }
    }

    /// A string object of the stream's filter state (or of its connection's, which the stream's
    /// lookup reaches too): `None` when there is none under `key` or it is not a string.
    fn filter_state_string(&self, key: &str) -> Option<Vec<u8>> {
        let mut out = EnvoyBuffer::EMPTY;
        // SAFETY: `filter` is the live filter of this hook; `key` and `out` outlive the call, and
        // the bytes Envoy points `out` at are copied before the hook returns.
        unsafe {
            abi::envoy_dynamic_module_callback_http_get_filter_state_bytes(
                self.filter,
                ModuleBuffer::of(key.as_bytes()),
                &mut out,
            )
            .then(|| envoy_bytes(out.ptr, out.length).to_vec())
        }
    }
}

/// The parts of `chunks`, laid end to end, that fall within `start..end`: each chunk, the range
/// `lo..hi` of its bytes inside, and where that range begins counted from `start`.
fn spans(
    chunks: &[EnvoyBuffer],
    start: usize,
    end: usize,
) -> impl Iterator<Item = (EnvoyBuffer, usize, usize, usize)> + '_ {
    let mut at = 0usize;
    chunks.iter().filter_map(move |c| {
        let (from, to) = (at, at.saturating_add(c.length));
        at = to;
        if to <= start || from >= end {
            return None;
        }
        let lo = start.saturating_sub(from);
        let hi = end.min(to) - from;
        Some((*c, lo, hi, from + lo - start))
    })
}

impl Host for ModuleHost<'_> {
    fn property(&self, property: Property) -> Result<Option<Vec<u8>>, HostError> {
        use abi::attribute as a;
        if self.filter.is_null() {
            return Err(failed("property outside a stream"));
        }
        let string = |id| Ok(self.string_attribute(id));
        match property {
            Property::ConnectionId => {
                let mut id = 0u64;
                // SAFETY: `filter` is the live filter of this hook; `id` is a local.
                let found = unsafe {
                    abi::envoy_dynamic_module_callback_http_filter_get_attribute_int(
                        self.filter,
                        a::CONNECTION_ID,
                        &mut id,
                    )
                };
                Ok(found.then(|| id.to_le_bytes().to_vec()))
            }
            Property::Mtls => {
                let mut mtls = false;
                // SAFETY: as above; Envoy writes a C++ bool (0 or 1) into the local.
                let found = unsafe {
                    abi::envoy_dynamic_module_callback_http_filter_get_attribute_bool(
                        self.filter,
                        a::CONNECTION_MTLS,
                        &mut mtls,
                    )
                };
                Ok(found.then(|| vec![u8::from(mtls)]))
            }
            Property::TlsVersion => string(a::CONNECTION_TLS_VERSION),
            Property::PeerUriSan => string(a::CONNECTION_URI_SAN_PEER_CERTIFICATE),
            Property::PeerSubject => string(a::CONNECTION_SUBJECT_PEER_CERTIFICATE),
            Property::PeerCertSha256 => string(a::CONNECTION_SHA256_PEER_CERTIFICATE_DIGEST),
            Property::LocalUriSan => string(a::CONNECTION_URI_SAN_LOCAL_CERTIFICATE),
            Property::SourceAddress => string(a::SOURCE_ADDRESS),
            Property::IstioPeerPrincipal => Ok(self.filter_state_string(ISTIO_PEER_PRINCIPAL)),
            Property::IstioLocalPrincipal => Ok(self.filter_state_string(ISTIO_LOCAL_PRINCIPAL)),
        }
    }

    fn header(&self, map: Map, name: &str) -> Option<Vec<u8>> {
        if self.filter.is_null() {
            return None;
        }
        let mut out = EnvoyBuffer::EMPTY;
        // SAFETY: `filter` is the live filter of this hook; `name` and `out` outlive the call;
        // the value is copied before anything changes the map.
        unsafe {
            abi::envoy_dynamic_module_callback_http_get_header(
                self.filter,
                header_type(map),
                ModuleBuffer::of(name.as_bytes()),
                &mut out,
                0,
                std::ptr::null_mut(),
            )
            .then(|| envoy_bytes(out.ptr, out.length).to_vec())
        }
    }

    fn headers(&self, map: Map) -> Headers {
        if self.filter.is_null() {
            return Headers::default();
        }
        let t = header_type(map);
        // SAFETY: `filter` is the live filter of this hook; the array has room for the count
        // Envoy gave just before; the entries are copied before anything changes the map.
        unsafe {
            let n = abi::envoy_dynamic_module_callback_http_get_headers_size(self.filter, t);
            let mut raw = vec![EnvoyHeader::EMPTY; n];
            if n == 0
                || !abi::envoy_dynamic_module_callback_http_get_headers(
                    self.filter,
                    t,
                    raw.as_mut_ptr(),
                )
            {
                return Headers::default();
            }
            let size = raw.iter().map(|h| h.key_length + h.value_length).sum();
            let mut headers = Headers::with_capacity(n, size);
            for h in &raw {
                headers.push(
                    envoy_bytes(h.key_ptr, h.key_length),
                    envoy_bytes(h.value_ptr, h.value_length),
                );
            }
            headers
        }
    }

    fn set_header(&self, map: Map, name: &str, value: &[u8]) -> Result<(), HostError> {
        if self.filter.is_null() {
            return Err(failed("set_header outside a stream"));
        }
        // SAFETY: `filter` is the live filter of this hook; Envoy copies both buffers.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_set_header(
                self.filter,
                header_type(map),
                ModuleBuffer::of(name.as_bytes()),
                ModuleBuffer::of(value),
            )
        };
        ok.then_some(()).ok_or_else(|| failed("set_header"))
    }

    fn add_header(&self, map: Map, name: &str, value: &[u8]) -> Result<(), HostError> {
        if self.filter.is_null() {
            return Err(failed("add_header outside a stream"));
        }
        // SAFETY: `filter` is the live filter of this hook; Envoy copies both buffers.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_add_header(
                self.filter,
                header_type(map),
                ModuleBuffer::of(name.as_bytes()),
                ModuleBuffer::of(value),
            )
        };
        ok.then_some(()).ok_or_else(|| failed("add_header"))
    }

    fn body(&self, dir: Direction, start: usize, len: usize) -> Option<Vec<u8>> {
        if self.filter.is_null() {
            return None;
        }
        let end = start.checked_add(len)?;
        let mut out = Vec::with_capacity(len);
        self.with_body_chunks(dir, |chunks| {
            for (c, lo, hi, _) in spans(chunks, start, end) {
                // SAFETY: the chunk is Envoy's memory for this hook, unchanged since it was listed.
                let bytes = unsafe { envoy_bytes(c.ptr, c.length) };
                out.extend_from_slice(bytes.get(lo..hi)?);
            }
            Some(())
        })?;
        (out.len() == len).then_some(out)
    }

    fn set_body(
        &self,
        dir: Direction,
        start: usize,
        len: usize,
        data: &[u8],
    ) -> Result<(), HostError> {
        if self.filter.is_null() {
            return Err(failed("set_body outside a stream"));
        }
        let chunks = self.body_chunks(dir);
        let total: usize = chunks.iter().map(|c| c.length).sum();
        let end = start.checked_add(len).ok_or_else(|| failed("set_body"))?;
        if end > total {
            return Err(failed("set_body past the body's end"));
        }
        if data.len() == len {
            // Same length: written where the bytes lie, in Envoy's own memory.
            for (c, lo, hi, at) in spans(&chunks, start, end) {
                let src = data
                    .get(at..at + (hi - lo))
                    .ok_or_else(|| failed("set_body"))?;
                // `lo..hi` lies within the chunk and `src` has exactly `hi - lo` bytes.
                // SAFETY: the chunk is Envoy's writable memory for this hook, `c.length` bytes
                // at `c.ptr`, unchanged since it was listed.
                unsafe {
                    std::ptr::copy_nonoverlapping(src.as_ptr(), c.ptr.add(lo), hi - lo);
                }
            }
            return Ok(());
        }
        if start == 0 && len == total {
            return self.replace_body(dir, data);
        }
        if start == total && len == 0 {
            return self.append_body(dir, data);
        }
        Err(failed("set_body of a middle range with another length"))
    }

    fn send_local_reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        if self.filter.is_null() {
            return Err(failed("send_response outside a stream"));
        }
        let mut raw: Vec<ModuleHeader> = headers
            .iter()
            .map(|(k, v)| ModuleHeader {
                key_ptr: k.as_ptr(),
                key_length: k.len(),
                value_ptr: v.as_ptr(),
                value_length: v.len(),
            })
            .collect();
        // SAFETY: `filter` is the live filter of this hook; the headers, body and details
        // outlive the call, in which Envoy copies them.
        unsafe {
            abi::envoy_dynamic_module_callback_http_send_response(
                self.filter,
                status,
                raw.as_mut_ptr(),
                raw.len(),
                ModuleBuffer::of(body),
                ModuleBuffer::of(b""),
            );
        }
        Ok(())
    }

    fn reset(&self, _dir: Direction) {
        if self.filter.is_null() {
            return;
        }
        // SAFETY: `filter` is the live filter of this hook; the details outlive the call.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_reset_stream(
                self.filter,
                abi::RESET_LOCAL,
                ModuleBuffer::of(b"pci_mesh_guard"),
            );
        }
    }

    fn increment(&self, metric: Metric, by: u64) {
        if let Some(id) = metric.index().and_then(|i| self.metrics.counter(i)) {
            self.metrics.add(self.filter, id, &[], by);
        }
    }

    fn count_denial(&self, caller: &str, reason: &str, dry_run: bool) {
        if let Some(id) = self.metrics.denials() {
            let dry_run = if dry_run { "true" } else { "false" };
            self.metrics
                .add(self.filter, id, &[caller, reason, dry_run], 1);
        }
    }

    fn set_gauge(&self, gauge: Gauge, value: u64) {
        if let Some(id) = self.metrics.gauge(gauge) {
            self.metrics.set(self.filter, id, value);
        }
    }

    fn mark_metadata(&self, ns: &str, key: &str) -> bool {
        if self.filter.is_null() {
            return false;
        }
        // SAFETY: `filter` is the live filter of this hook; Envoy copies both names.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_dynamic_metadata_bool(
                self.filter,
                ModuleBuffer::of(ns.as_bytes()),
                ModuleBuffer::of(key.as_bytes()),
                true,
            )
        };
        true
    }

    fn set_filter_state(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        if self.filter.is_null() {
            return Err(failed("filter state outside a stream"));
        }
        // The same key as the wasm build's (`wasm.<name>`), so one access log serves both; written
        // on the stack (it is set on every request).
        const PREFIX: &[u8] = b"wasm.";
        let mut stack = [0u8; 64];
        let heap;
        let key: &[u8] = match stack.get_mut(..PREFIX.len() + name.len()) {
            Some(key) => {
                let (prefix, rest) = key.split_at_mut(PREFIX.len());
                prefix.copy_from_slice(PREFIX);
                rest.copy_from_slice(name.as_bytes());
                key
            }
            None => {
                heap = [PREFIX, name.as_bytes()].concat();
                &heap
            }
        };
        // SAFETY: `filter` is the live filter of this hook; Envoy copies both buffers.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_set_filter_state_bytes(
                self.filter,
                ModuleBuffer::of(key),
                ModuleBuffer::of(value),
            )
        };
        ok.then_some(())
            .ok_or_else(|| failed("set_filter_state_bytes"))
    }

    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => abi::log_level::DEBUG,
            LogLevel::Info => abi::log_level::INFO,
            LogLevel::Warn => abi::log_level::WARN,
            LogLevel::Error => abi::log_level::ERROR,
            LogLevel::Critical => abi::log_level::CRITICAL,
        };
        // SAFETY: Envoy reads the message during the call only.
        unsafe {
            abi::envoy_dynamic_module_callback_log(level, ModuleBuffer::of(message.as_bytes()))
        }
    }

    fn log_level(&self) -> Option<LogLevel> {
        // SAFETY: takes and returns plain values.
        match unsafe { abi::envoy_dynamic_module_callback_get_log_level() } {
            abi::log_level::TRACE | abi::log_level::DEBUG => Some(LogLevel::Debug),
            abi::log_level::INFO => Some(LogLevel::Info),
            abi::log_level::WARN => Some(LogLevel::Warn),
            abi::log_level::ERROR => Some(LogLevel::Error),
            abi::log_level::OFF => None,
            // `critical`, or a level this build does not know: the level most likely shown.
            _ => Some(LogLevel::Critical),
        }
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn ships_by_http(&self) -> bool {
        false
    }

    fn adds_body_at_trailers(&self) -> bool {
        true
    }
}
