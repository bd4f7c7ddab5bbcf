//! The native floors of the in-Envoy benchmark, as an Envoy dynamic module (`pmg_reference_module`)
//! whose filter configuration names its mode.
//!
//! `noop`: every hook returns at once, calling nothing back (what a native filter costs before it
//! does anything). `skeleton`: only the calls an audited, redacting filter cannot do without on an
//! allowed GET, and the seal of its event, as the wasm reference filter's skeleton: the connection's
//! id (as on a keep-alive connection whose facts are kept), the request and response header maps,
//! two clock reads, an HMAC-SHA256 over a 1,000-byte event chained to the previous one, the event
//! handed to Envoy's access log through filter state, and two counters. It decides, parses and
//! scans nothing.
//!
//! Hand-written FFI for a benchmark's reference only; pci-mesh-guard's own is
//! `src/dynamic_module/abi.rs`, with the reasoning behind each `unsafe`.
#![allow(clippy::missing_safety_doc)]

use std::cell::RefCell;
use std::ffi::c_void;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Envoy's `{pointer, length}` buffer, passed by value.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Buffer {
    ptr: *const u8,
    length: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Header {
    key: Buffer,
    value: Buffer,
}

const EMPTY: Buffer = Buffer {
    ptr: std::ptr::null(),
    length: 0,
};

extern "C" {
    fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: *mut c_void,
        name: Buffer,
        labels: *const Buffer,
        labels_length: usize,
        id: *mut usize,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: *mut c_void,
        id: usize,
        labels: *const Buffer,
        labels_length: usize,
        value: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_get_headers_size(filter: *mut c_void, t: u32) -> usize;
    fn envoy_dynamic_module_callback_http_get_headers(
        filter: *mut c_void,
        t: u32,
        result: *mut Header,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter: *mut c_void,
        id: u32,
        result: *mut u64,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter: *mut c_void,
        key: Buffer,
        value: Buffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_set_dynamic_metadata_bool(
        filter: *mut c_void,
        ns: Buffer,
        key: Buffer,
        value: bool,
    );
}

fn buf(b: &[u8]) -> Buffer {
    Buffer {
        ptr: b.as_ptr(),
        length: b.len(),
    }
}

/// Any non-null pointer for the no-op's objects: Envoy only hands them back.
const SOMETHING: *const c_void = std::ptr::dangling::<c_void>();
const ABI_VERSION: &[u8] = b"v0.2.0\0";
/// `Continue`, in every status enum of the ABI.
const CONTINUE: u32 = 0;
const CONNECTION_ID: u32 = 28;
const REQUEST_HEADERS: u32 = 0;
const RESPONSE_HEADERS: u32 = 2;

/// The skeleton's configuration: its two counters.
struct Skeleton {
    counters: [usize; 2],
}

/// One stream of the skeleton.
struct Stream {
    config: *const Skeleton,
    headers: usize,
}

thread_local! {
    /// The chain of this worker's events: the key's state and the previous seal.
    static CHAIN: RefCell<(Option<Hmac<Sha256>>, [u8; 32])> =
        RefCell::new((Hmac::<Sha256>::new_from_slice(b"bench-audit-key-0123456789").ok(), [0; 32]));
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    ABI_VERSION.as_ptr()
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    envoy: *mut c_void,
    _name: Buffer,
    config: Buffer,
) -> *const c_void {
    let mode = if config.ptr.is_null() {
        &[][..]
    } else {
        std::slice::from_raw_parts(config.ptr, config.length)
    };
    if mode != b"skeleton" {
        return SOMETHING;
    }
    let mut counters = [0usize; 2];
    for (i, c) in counters.iter_mut().enumerate() {
        let name = format!("reference_skeleton_{i}");
        envoy_dynamic_module_callback_http_filter_config_define_counter(
            envoy,
            buf(name.as_bytes()),
            std::ptr::null(),
            0,
            c,
        );
    }
    Box::into_raw(Box::new(Skeleton { counters })) as *const c_void
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: *const c_void,
    _filter: *mut c_void,
) -> *const c_void {
    if config == SOMETHING {
        return SOMETHING;
    }
    Box::into_raw(Box::new(Stream {
        config: config as *const Skeleton,
        headers: 0,
    })) as *const c_void
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(stream: *const c_void) {
    if stream != SOMETHING && !stream.is_null() {
        drop(Box::from_raw(stream as *mut Stream));
    }
}

/// The stream of a skeleton hook, `None` for the no-op.
unsafe fn skeleton<'a>(stream: *const c_void) -> Option<&'a mut Stream> {
    if stream == SOMETHING {
        return None;
    }
    (stream as *mut Stream).as_mut()
}

/// Reads a header map whole, as a filter that scans every value must.
unsafe fn read_headers(filter: *mut c_void, t: u32) -> usize {
    let n = envoy_dynamic_module_callback_http_get_headers_size(filter, t);
    let mut all = vec![
        Header {
            key: EMPTY,
            value: EMPTY
        };
        n
    ];
    envoy_dynamic_module_callback_http_get_headers(filter, t, all.as_mut_ptr());
    all.iter().map(|h| h.value.length).sum::<usize>() + n
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    filter: *mut c_void,
    stream: *const c_void,
    _end: bool,
) -> u32 {
    if let Some(s) = skeleton(stream) {
        let mut id = 0u64;
        envoy_dynamic_module_callback_http_filter_get_attribute_int(filter, CONNECTION_ID, &mut id);
        s.headers = read_headers(filter, REQUEST_HEADERS) + id as usize;
        let _ = SystemTime::now();
    }
    CONTINUE
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    filter: *mut c_void,
    stream: *const c_void,
    _end: bool,
) -> u32 {
    if let Some(s) = skeleton(stream) {
        s.headers += read_headers(filter, RESPONSE_HEADERS);
    }
    CONTINUE
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    filter: *mut c_void,
    stream: *const c_void,
) {
    let Some(s) = skeleton(stream) else { return };
    let _ = SystemTime::now();
    let mut event = vec![b'x'; 1000];
    event[0] = s.headers as u8;
    CHAIN.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(mut mac) = c.0.clone() {
            mac.update(&c.1);
            mac.update(&event);
            c.1 = mac.finalize().into_bytes().into();
            event[1] = c.1[0];
        }
    });
    envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter,
        buf(b"wasm.pmg_audit"),
        buf(&event),
    );
    // The mark the native listeners' access log selects the event by.
    envoy_dynamic_module_callback_http_set_dynamic_metadata_bool(
        filter,
        buf(b"pci_mesh_guard"),
        buf(b"audit_event"),
        true,
    );
    if let Some(config) = s.config.as_ref() {
        for &c in &config.counters {
            envoy_dynamic_module_callback_http_filter_increment_counter(
                filter,
                c,
                std::ptr::null(),
                0,
                1,
            );
        }
    }
}

/// Hooks that answer `Continue` at once.
macro_rules! continues {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[no_mangle]
        pub extern "C" fn $name(_filter: *mut c_void, _stream: *const c_void $(, $arg: $ty)*) -> u32 {
            let _ = ($($arg,)*);
            CONTINUE
        }
    )*};
}

continues! {
    envoy_dynamic_module_on_http_filter_request_body(end_of_stream: bool);
    envoy_dynamic_module_on_http_filter_request_trailers();
    envoy_dynamic_module_on_http_filter_response_body(end_of_stream: bool);
    envoy_dynamic_module_on_http_filter_response_trailers();
}

/// Hooks that do nothing.
macro_rules! nothing {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[no_mangle]
        pub extern "C" fn $name($($arg: $ty),*) {
            let _ = ($($arg,)*);
        }
    )*};
}

nothing! {
    envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void);
    envoy_dynamic_module_on_http_filter_http_callout_done(
        filter: *mut c_void, stream: *const c_void, id: u64, result: u32,
        headers: *const c_void, headers_size: usize, body: *const c_void, body_size: usize);
    envoy_dynamic_module_on_http_filter_http_stream_headers(
        filter: *mut c_void, stream: *const c_void, id: u64, headers: *const c_void,
        headers_size: usize, end_stream: bool);
    envoy_dynamic_module_on_http_filter_http_stream_data(
        filter: *mut c_void, stream: *const c_void, id: u64, data: *const c_void,
        data_count: usize, end_stream: bool);
    envoy_dynamic_module_on_http_filter_http_stream_trailers(
        filter: *mut c_void, stream: *const c_void, id: u64, trailers: *const c_void,
        trailers_size: usize);
    envoy_dynamic_module_on_http_filter_http_stream_complete(
        filter: *mut c_void, stream: *const c_void, id: u64);
    envoy_dynamic_module_on_http_filter_http_stream_reset(
        filter: *mut c_void, stream: *const c_void, id: u64, reason: u32);
    envoy_dynamic_module_on_http_filter_scheduled(
        filter: *mut c_void, stream: *const c_void, id: u64);
    envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
        filter: *mut c_void, stream: *const c_void);
    envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
        filter: *mut c_void, stream: *const c_void);
}
