//! The floor of any Envoy dynamic-module HTTP filter: every hook returns at once, calling nothing
//! back (what a native filter costs before it does anything). Envoy loads it as
//! `dynamic_module_config: {name: pmg_noop_module}`; it needs no configuration.

use std::ffi::c_void;

/// Envoy's `{pointer, length}` buffer, passed by value.
#[repr(C)]
pub struct Buffer {
    ptr: *const u8,
    length: usize,
}

/// Any non-null pointer: Envoy only hands it back.
const SOMETHING: *const c_void = 1 as *const c_void;
/// The ABI version the hooks follow (Envoy 1.40).
const ABI_VERSION: &[u8] = b"v0.2.0\0";
/// `Continue`, in every status enum of the ABI.
const CONTINUE: u32 = 0;

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    ABI_VERSION.as_ptr()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    _envoy: *mut c_void,
    _name: Buffer,
    _config: Buffer,
) -> *const c_void {
    SOMETHING
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    _config: *const c_void,
    _filter: *mut c_void,
) -> *const c_void {
    SOMETHING
}

/// Hooks of one stream that answer `Continue`.
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
    envoy_dynamic_module_on_http_filter_request_headers(end_of_stream: bool);
    envoy_dynamic_module_on_http_filter_request_body(end_of_stream: bool);
    envoy_dynamic_module_on_http_filter_request_trailers();
    envoy_dynamic_module_on_http_filter_response_headers(end_of_stream: bool);
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
    envoy_dynamic_module_on_http_filter_destroy(stream: *const c_void);
    envoy_dynamic_module_on_http_filter_stream_complete(filter: *mut c_void, stream: *const c_void);
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
