//! The part of Envoy's dynamic-module C ABI (`abi.h`, ABI version `v0.2.0`, Envoy 1.40) that the
//! filter uses, declared by hand: the callbacks Envoy exports and the types they take.
//!
//! Envoy resolves a module's hooks by name but does not check the callbacks' signatures, so each
//! declaration here must match Envoy's exactly: `tests/native_module_abi.rs` checks that every
//! callback the module imports is one the pinned Envoy exports, and the end-to-end suite checks the
//! signatures by running them. A buffer passed by value is a `{pointer, length}` pair in two
//! registers, as in C.

use std::ffi::c_void;

/// The ABI version this module was written against; Envoy 1.38 and later only warn on a mismatch.
pub const ABI_VERSION: &[u8] = b"v0.2.0\0";

/// Envoy's filter configuration object (used for metrics on the main thread).
pub type ConfigEnvoyPtr = *mut c_void;
/// Envoy's per-stream filter object, valid until the stream's filter is destroyed.
pub type FilterEnvoyPtr = *mut c_void;

/// Bytes the module owns, which Envoy reads during the call only.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl ModuleBuffer {
    pub fn of(bytes: &[u8]) -> ModuleBuffer {
        ModuleBuffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }
}

/// Bytes Envoy owns, valid until the hook returns or the map or buffer they belong to changes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *mut u8,
    pub length: usize,
}

impl EnvoyBuffer {
    pub const EMPTY: EnvoyBuffer = EnvoyBuffer {
        ptr: std::ptr::null_mut(),
        length: 0,
    };
}

/// A header the module hands to Envoy (a local reply's).
#[repr(C)]
pub struct ModuleHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

/// A header as Envoy hands it over.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

impl EnvoyHeader {
    pub const EMPTY: EnvoyHeader = EnvoyHeader {
        key_ptr: std::ptr::null(),
        key_length: 0,
        value_ptr: std::ptr::null(),
        value_length: 0,
    };
}

/// `envoy_dynamic_module_type_log_level`: spdlog's levels.
pub mod log_level {
    pub const TRACE: u32 = 0;
    pub const DEBUG: u32 = 1;
    pub const INFO: u32 = 2;
    pub const WARN: u32 = 3;
    pub const ERROR: u32 = 4;
    pub const CRITICAL: u32 = 5;
    pub const OFF: u32 = 6;
}

/// `envoy_dynamic_module_type_http_header_type`.
pub mod header_type {
    pub const REQUEST_HEADERS: u32 = 0;
    pub const REQUEST_TRAILERS: u32 = 1;
    pub const RESPONSE_HEADERS: u32 = 2;
    pub const RESPONSE_TRAILERS: u32 = 3;
}

/// `envoy_dynamic_module_type_http_body_type`: the data of the current body hook (`RECEIVED_*`)
/// and what earlier hooks asked Envoy to hold (`BUFFERED_*`).
pub mod body_type {
    pub const RECEIVED_REQUEST: u32 = 0;
    pub const BUFFERED_REQUEST: u32 = 1;
    pub const RECEIVED_RESPONSE: u32 = 2;
    pub const BUFFERED_RESPONSE: u32 = 3;
}

/// The statuses the header, body and trailer hooks return (the request and response enums share
/// their values).
pub mod status {
    pub const CONTINUE: u32 = 0;
    /// Headers: stop here; body hooks still run.
    pub const HEADERS_STOP_ITERATION: u32 = 1;
    /// Body: Envoy holds this data and calls again with more.
    pub const BODY_STOP_AND_BUFFER: u32 = 1;
    pub const TRAILERS_STOP_ITERATION: u32 = 1;
}

/// `envoy_dynamic_module_type_http_filter_stream_reset_reason`.
pub const RESET_LOCAL: u32 = 0;

/// `envoy_dynamic_module_type_metrics_result`.
pub const METRICS_SUCCESS: u32 = 0;

/// `envoy_dynamic_module_type_attribute_id`: positions in the enum.
pub mod attribute {
    pub const SOURCE_ADDRESS: u32 = 24;
    pub const CONNECTION_ID: u32 = 28;
    pub const CONNECTION_MTLS: u32 = 29;
    pub const CONNECTION_TLS_VERSION: u32 = 31;
    pub const CONNECTION_SUBJECT_PEER_CERTIFICATE: u32 = 33;
    pub const CONNECTION_URI_SAN_LOCAL_CERTIFICATE: u32 = 36;
    pub const CONNECTION_URI_SAN_PEER_CERTIFICATE: u32 = 37;
    pub const CONNECTION_SHA256_PEER_CERTIFICATE_DIGEST: u32 = 38;
}

extern "C" {
    pub fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);
    /// The current level of Envoy's `dynamic_modules` logger (`log_level`).
    pub fn envoy_dynamic_module_callback_get_log_level() -> u32;
    /// Envoy's worker count; main thread only.
    pub fn envoy_dynamic_module_callback_get_concurrency() -> u32;

    /// A scheduler that runs `on_http_filter_config_scheduled` on the main thread; its `commit`
    /// may be called from any thread. It holds the configuration weakly: a commit after the
    /// configuration is gone does nothing.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config: ConfigEnvoyPtr,
    ) -> *mut c_void;
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: *mut c_void,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        scheduler: *mut c_void,
    );

    /// Defines a counter; only during `on_http_filter_config_new`.
    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *const ModuleBuffer,
        label_names_length: usize,
        id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *const ModuleBuffer,
        label_names_length: usize,
        id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_set_gauge(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;

    /// The index (0 to concurrency - 1) of the worker the stream runs on.
    pub fn envoy_dynamic_module_callback_http_filter_get_worker_index(
        filter: FilterEnvoyPtr,
    ) -> u32;

    /// The `index`th value of `key`; `count` (nullable) receives how many values it has.
    pub fn envoy_dynamic_module_callback_http_get_header(
        filter: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
        index: usize,
        count: *mut usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter: FilterEnvoyPtr,
        header_type: u32,
    ) -> usize;
    /// Fills `result`, which must have room for `get_headers_size` entries.
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter: FilterEnvoyPtr,
        header_type: u32,
        result: *mut EnvoyHeader,
    ) -> bool;
    /// Replaces every value of `key` with `value`.
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    /// Sets the stream's dynamic metadata `ns`/`key` to a boolean (Envoy copies both names).
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_bool(
        filter: FilterEnvoyPtr,
        ns: ModuleBuffer,
        key: ModuleBuffer,
        value: bool,
    );
    pub fn envoy_dynamic_module_callback_http_add_header(
        filter: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter: FilterEnvoyPtr,
        body_type: u32,
    ) -> usize;
    /// Fills `result`, which must have room for `get_body_chunks_size` entries.
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: FilterEnvoyPtr,
        body_type: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_body_size(
        filter: FilterEnvoyPtr,
        body_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_drain_body(
        filter: FilterEnvoyPtr,
        body_type: u32,
        bytes: usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_append_body(
        filter: FilterEnvoyPtr,
        body_type: u32,
        data: ModuleBuffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: FilterEnvoyPtr,
        status: u32,
        headers: *mut ModuleHeader,
        headers_length: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );
    pub fn envoy_dynamic_module_callback_http_filter_reset_stream(
        filter: FilterEnvoyPtr,
        reason: u32,
        details: ModuleBuffer,
    );
    /// Stores a copy of `value` as a string in the stream's filter state.
    pub fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter: FilterEnvoyPtr,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    /// Points `result` at a string object of the stream's filter state (Envoy's memory, valid
    /// until the hook returns); false when there is none under `key`.
    pub fn envoy_dynamic_module_callback_http_get_filter_state_bytes(
        filter: FilterEnvoyPtr,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: FilterEnvoyPtr,
        id: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter: FilterEnvoyPtr,
        id: u32,
        result: *mut u64,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_bool(
        filter: FilterEnvoyPtr,
        id: u32,
        result: *mut bool,
    ) -> bool;
}
