//! The adapter against a fake Envoy: the callbacks of `abi` implemented here, in the test binary,
//! over one stream's headers, body chunks and filter state, each call counted. The hooks run as
//! Envoy runs them. What this shows that the end-to-end suite cannot count: how many callbacks each
//! request shape costs (`native_request_costs_stay_within_budget`), and how the body of a hook is
//! read and written across the chunks Envoy holds.
//!
//! Run with `cargo test --lib --features envoy-module dynamic_module` (scripts/test.sh does).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;

use super::abi::{self, EnvoyBuffer, EnvoyHeader, ModuleBuffer, ModuleHeader};
use super::hooks::*;

const CHECKOUT: &str = "spiffe://cluster.local/ns/shop/sa/checkout";
/// Any non-null pointer stands for Envoy's objects: the fake has one stream at a time.
const ENVOY_OBJECT: *mut c_void = 8 as *mut c_void;

#[derive(Default)]
struct FakeEnvoy {
    calls: BTreeMap<&'static str, u64>,
    /// Header maps by `abi::header_type`.
    maps: [Vec<(Vec<u8>, Vec<u8>)>; 4],
    /// This hook's data and what earlier hooks had Envoy hold, by direction (0 request).
    received: [Option<Vec<u8>>; 2],
    buffered: [Vec<u8>; 2],
    /// What went on past the filter, by direction.
    passed: [Vec<u8>; 2],
    replies: Vec<(u32, Vec<u8>)>,
    resets: u32,
    state: HashMap<Vec<u8>, Vec<u8>>,
    /// Dynamic metadata set true, as "namespace.key".
    marked: Vec<String>,
    counters: BTreeMap<usize, u64>,
    logs: Vec<String>,
    /// Bytes copied between Envoy and the module, both ways.
    bytes: u64,
}

thread_local! {
    static ENVOY: RefCell<FakeEnvoy> = RefCell::new(FakeEnvoy::default());
}

fn envoy<T>(f: impl FnOnce(&mut FakeEnvoy) -> T) -> T {
    ENVOY.with(|e| f(&mut e.borrow_mut()))
}

fn count(call: &'static str) {
    envoy(|e| *e.calls.entry(call).or_default() += 1);
}

/// # Safety
/// `b` points at `b.length` readable bytes (or is empty).
unsafe fn module_bytes(b: ModuleBuffer) -> Vec<u8> {
    if b.ptr.is_null() || b.length == 0 {
        return Vec::new();
    }
    // SAFETY: the module passes a live buffer of `length` bytes.
    unsafe { std::slice::from_raw_parts(b.ptr, b.length) }.to_vec()
}

fn lend(bytes: &[u8]) -> EnvoyBuffer {
    EnvoyBuffer {
        ptr: bytes.as_ptr() as *mut u8,
        length: bytes.len(),
    }
}

/// Direction index and whether the type is this hook's data, of an `abi::body_type`.
fn body_of(t: u32) -> (usize, bool) {
    match t {
        abi::body_type::RECEIVED_REQUEST => (0, true),
        abi::body_type::BUFFERED_REQUEST => (0, false),
        abi::body_type::RECEIVED_RESPONSE => (1, true),
        _ => (1, false),
    }
}

// The callbacks, as Envoy 1.40 implements them for one stream.

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_log(_level: u32, message: ModuleBuffer) {
    count("log");
    // SAFETY: the module passes its message for the call.
    let m = unsafe { module_bytes(message) };
    envoy(|e| e.logs.push(String::from_utf8_lossy(&m).into_owned()));
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_get_log_level() -> u32 {
    count("get_log_level");
    abi::log_level::INFO
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_get_concurrency() -> u32 {
    2
}

/// The fake's scheduler: a pointer to nothing the module reads, and a count of its commits.
static COMMITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static mut SCHEDULER: u8 = 0;

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
    _config: *mut c_void,
) -> *mut c_void {
    std::ptr::addr_of_mut!(SCHEDULER).cast()
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
    _scheduler: *mut c_void,
    _event_id: u64,
) {
    COMMITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
    _scheduler: *mut c_void,
) {
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_define_counter(
    _config: *mut c_void,
    _name: ModuleBuffer,
    _labels: *const ModuleBuffer,
    _labels_length: usize,
    id: *mut usize,
) -> u32 {
    define(id)
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
    _config: *mut c_void,
    _name: ModuleBuffer,
    _labels: *const ModuleBuffer,
    _labels_length: usize,
    id: *mut usize,
) -> u32 {
    define(id)
}

fn define(id: *mut usize) -> u32 {
    thread_local! { static NEXT: std::cell::Cell<usize> = const { std::cell::Cell::new(1) }; }
    // SAFETY: the module passes a live `usize` to write the id into.
    unsafe { *id = NEXT.with(|n| n.replace(n.get() + 1)) };
    abi::METRICS_SUCCESS
}

fn add(call: &'static str, id: usize, value: u64) -> u32 {
    count(call);
    envoy(|e| *e.counters.entry(id).or_default() += value);
    abi::METRICS_SUCCESS
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
    _config: *mut c_void,
    id: usize,
    _labels: *const ModuleBuffer,
    _labels_length: usize,
    value: u64,
) -> u32 {
    add("config_increment_counter", id, value)
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
    _config: *mut c_void,
    _id: usize,
    _labels: *const ModuleBuffer,
    _labels_length: usize,
    _value: u64,
) -> u32 {
    count("config_set_gauge");
    abi::METRICS_SUCCESS
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_increment_counter(
    _filter: *mut c_void,
    id: usize,
    _labels: *const ModuleBuffer,
    _labels_length: usize,
    value: u64,
) -> u32 {
    add("increment_counter", id, value)
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_set_gauge(
    _filter: *mut c_void,
    _id: usize,
    _labels: *const ModuleBuffer,
    _labels_length: usize,
    _value: u64,
) -> u32 {
    count("set_gauge");
    abi::METRICS_SUCCESS
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_get_worker_index(_f: *mut c_void) -> u32 {
    count("get_worker_index");
    1
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_header(
    _filter: *mut c_void,
    header_type: u32,
    key: ModuleBuffer,
    result: *mut EnvoyBuffer,
    index: usize,
    _count: *mut usize,
) -> bool {
    count("get_header");
    // SAFETY: the module passes its key for the call.
    let key = unsafe { module_bytes(key) };
    envoy(|e| {
        let map = &e.maps[header_type as usize];
        let found = map.iter().filter(|(k, _)| *k == key).nth(index);
        // SAFETY: `result` is the module's live out-parameter.
        unsafe { *result = found.map_or(EnvoyBuffer::EMPTY, |(_, v)| lend(v)) };
        found.is_some()
    })
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_headers_size(
    _filter: *mut c_void,
    header_type: u32,
) -> usize {
    count("get_headers_size");
    envoy(|e| e.maps[header_type as usize].len())
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_headers(
    _filter: *mut c_void,
    header_type: u32,
    result: *mut EnvoyHeader,
) -> bool {
    count("get_headers");
    envoy(|e| {
        for (i, (k, v)) in e.maps[header_type as usize].iter().enumerate() {
            // SAFETY: the module sized the array by `get_headers_size`.
            unsafe {
                *result.add(i) = EnvoyHeader {
                    key_ptr: k.as_ptr(),
                    key_length: k.len(),
                    value_ptr: v.as_ptr(),
                    value_length: v.len(),
                }
            };
        }
        true
    })
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_set_header(
    _filter: *mut c_void,
    header_type: u32,
    key: ModuleBuffer,
    value: ModuleBuffer,
) -> bool {
    count("set_header");
    // SAFETY: the module passes both buffers for the call.
    let (key, value) = unsafe { (module_bytes(key), module_bytes(value)) };
    envoy(|e| {
        let map = &mut e.maps[header_type as usize];
        map.retain(|(k, _)| *k != key);
        map.push((key, value));
    });
    true
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_add_header(
    _filter: *mut c_void,
    header_type: u32,
    key: ModuleBuffer,
    value: ModuleBuffer,
) -> bool {
    count("add_header");
    // SAFETY: the module passes both buffers for the call.
    let (key, value) = unsafe { (module_bytes(key), module_bytes(value)) };
    envoy(|e| e.maps[header_type as usize].push((key, value)));
    true
}

/// A body type's one chunk, if it has bytes (the fake keeps each body in one chunk).
fn chunk_of(e: &FakeEnvoy, t: u32) -> Option<&Vec<u8>> {
    let (d, received) = body_of(t);
    let b = if received {
        e.received[d].as_ref()?
    } else {
        &e.buffered[d]
    };
    (!b.is_empty()).then_some(b)
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_body_chunks_size(
    _filter: *mut c_void,
    body_type: u32,
) -> usize {
    count("get_body_chunks_size");
    envoy(|e| usize::from(chunk_of(e, body_type).is_some()))
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_body_chunks(
    _filter: *mut c_void,
    body_type: u32,
    result: *mut EnvoyBuffer,
) -> bool {
    count("get_body_chunks");
    envoy(|e| match chunk_of(e, body_type) {
        Some(c) => {
            // SAFETY: the module sized the array by `get_body_chunks_size` (1).
            unsafe { *result = lend(c) };
            true
        }
        None => false,
    })
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_body_size(
    _filter: *mut c_void,
    body_type: u32,
) -> usize {
    count("get_body_size");
    envoy(|e| chunk_of(e, body_type).map_or(0, Vec::len))
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_drain_body(
    _filter: *mut c_void,
    body_type: u32,
    n: usize,
) -> bool {
    count("drain_body");
    envoy(|e| {
        let (d, received) = body_of(body_type);
        let b = if received {
            match e.received[d].as_mut() {
                Some(b) => b,
                None => return false,
            }
        } else {
            &mut e.buffered[d]
        };
        b.drain(..n.min(b.len()));
        true
    })
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_append_body(
    _filter: *mut c_void,
    body_type: u32,
    data: ModuleBuffer,
) -> bool {
    count("append_body");
    // SAFETY: the module passes its data for the call.
    let data = unsafe { module_bytes(data) };
    envoy(|e| {
        e.bytes += data.len() as u64;
        let (d, received) = body_of(body_type);
        let b = if received {
            // Outside a body hook there is no data of this hook to add to.
            match e.received[d].as_mut() {
                Some(b) => b,
                None => return false,
            }
        } else {
            &mut e.buffered[d]
        };
        b.extend_from_slice(&data);
        true
    })
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_send_response(
    _filter: *mut c_void,
    status: u32,
    _headers: *mut ModuleHeader,
    _headers_length: usize,
    body: ModuleBuffer,
    _details: ModuleBuffer,
) {
    count("send_response");
    // SAFETY: the module passes its body for the call.
    let body = unsafe { module_bytes(body) };
    envoy(|e| e.replies.push((status, body)));
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_reset_stream(
    _filter: *mut c_void,
    _reason: u32,
    _details: ModuleBuffer,
) {
    count("reset_stream");
    envoy(|e| e.resets += 1);
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
    _filter: *mut c_void,
    key: ModuleBuffer,
    value: ModuleBuffer,
) -> bool {
    count("set_filter_state_bytes");
    // SAFETY: the module passes both buffers for the call.
    let (key, value) = unsafe { (module_bytes(key), module_bytes(value)) };
    envoy(|e| e.state.insert(key, value));
    true
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_filter_state_bytes(
    _filter: *mut c_void,
    key: ModuleBuffer,
    result: *mut EnvoyBuffer,
) -> bool {
    count("get_filter_state_bytes");
    // SAFETY: the module passes the key for the call.
    let key = unsafe { module_bytes(key) };
    envoy(|e| {
        let found = e.state.get(&key);
        // SAFETY: `result` is the module's live out-parameter; the value stays in the map, which
        // nothing changes until the module has copied it.
        unsafe { *result = found.map_or(EnvoyBuffer::EMPTY, |v| lend(v)) };
        found.is_some()
    })
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_set_dynamic_metadata_bool(
    _filter: *mut c_void,
    ns: ModuleBuffer,
    key: ModuleBuffer,
    value: bool,
) {
    count("set_dynamic_metadata_bool");
    // SAFETY: the module passes both buffers for the call.
    let (ns, key) = unsafe { (module_bytes(ns), module_bytes(key)) };
    if value {
        let name = format!(
            "{}.{}",
            String::from_utf8_lossy(&ns),
            String::from_utf8_lossy(&key)
        );
        envoy(|e| e.marked.push(name));
    }
}

fn attribute(id: u32) -> Option<&'static [u8]> {
    use abi::attribute as a;
    Some(match id {
        a::SOURCE_ADDRESS => b"10.1.2.3:41234",
        a::CONNECTION_TLS_VERSION => b"TLSv1.3",
        a::CONNECTION_URI_SAN_PEER_CERTIFICATE => CHECKOUT.as_bytes(),
        a::CONNECTION_URI_SAN_LOCAL_CERTIFICATE => {
            b"spiffe://cluster.local/ns/payments/sa/payments-api"
        }
        a::CONNECTION_SUBJECT_PEER_CERTIFICATE => b"CN=checkout",
        a::CONNECTION_SHA256_PEER_CERTIFICATE_DIGEST => b"ab12",
        _ => return None,
    })
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
    _filter: *mut c_void,
    id: u32,
    result: *mut EnvoyBuffer,
) -> bool {
    count("get_attribute_string");
    let v = attribute(id);
    // SAFETY: `result` is the module's live out-parameter; the bytes are static.
    unsafe { *result = v.map_or(EnvoyBuffer::EMPTY, lend) };
    v.is_some()
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
    _filter: *mut c_void,
    id: u32,
    result: *mut u64,
) -> bool {
    count("get_attribute_int");
    // SAFETY: `result` is the module's live out-parameter.
    unsafe { *result = 42 };
    id == abi::attribute::CONNECTION_ID
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_get_attribute_bool(
    _filter: *mut c_void,
    id: u32,
    result: *mut bool,
) -> bool {
    count("get_attribute_bool");
    // SAFETY: `result` is the module's live out-parameter.
    unsafe { *result = true };
    id == abi::attribute::CONNECTION_MTLS
}

// Driving the hooks as Envoy does.

/// The everything-on policy of the wasm adapter's cost test (the benchmark's: 20 rules, the caller
/// matching the last allow rule), one audit event per request through the `access_log` sink.
fn bench_policy() -> String {
    crate::filter::tests::cost::bench_policy("access_log")
}

/// A configuration of its own: Envoy's configurations with the same JSON share their workers'
/// state, and each test thread must have its own.
fn config(json: &str) -> *const c_void {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let json = format!("{json}{}", " ".repeat(n));
    std::env::set_var(crate::audit::chain::KEY_ENV, "bench-audit-key-0123456789");
    envoy_dynamic_module_on_http_filter_config_new(
        ENVOY_OBJECT,
        lend(b"pci-mesh-guard"),
        lend(json.as_bytes()),
    )
}

fn put(map: u32, pairs: &[(&str, &str)]) {
    envoy(|e| {
        e.maps[map as usize] = pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    });
}

/// One request through the hooks: `chunks` of the body in `dir` (none: no body), the response
/// headers unless the request was answered locally, then the end of the stream.
fn request(config: *const c_void, method: &str, path: &str, dir: usize, chunks: &[&[u8]]) {
    let stream = envoy_dynamic_module_on_http_filter_new(config, ENVOY_OBJECT);
    assert!(!stream.is_null());
    put(
        abi::header_type::REQUEST_HEADERS,
        &[
            (":method", method),
            (":path", path),
            (":authority", "payments-api"),
            (":scheme", "https"),
            ("user-agent", "checkout/2.3.1"),
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("x-request-id", "req-1"),
            ("x-forwarded-proto", "https"),
        ],
    );
    let body = |d: usize, stream| {
        for (i, c) in chunks.iter().enumerate() {
            envoy(|e| e.received[d] = Some(c.to_vec()));
            let end = i + 1 == chunks.len();
            let status = if d == 0 {
                envoy_dynamic_module_on_http_filter_request_body(ENVOY_OBJECT, stream, end)
            } else {
                envoy_dynamic_module_on_http_filter_response_body(ENVOY_OBJECT, stream, end)
            };
            envoy(|e| {
                let r = e.received[d].take().unwrap_or_default();
                e.buffered[d].extend_from_slice(&r);
                if status == abi::status::CONTINUE {
                    let b = std::mem::take(&mut e.buffered[d]);
                    e.passed[d].extend_from_slice(&b);
                }
            });
        }
    };
    let end = chunks.is_empty() || dir != 0;
    let status = envoy_dynamic_module_on_http_filter_request_headers(ENVOY_OBJECT, stream, end);
    if status == abi::status::CONTINUE {
        if dir == 0 {
            body(0, stream);
        }
        put(
            abi::header_type::RESPONSE_HEADERS,
            &[
                (":status", "200"),
                ("content-type", "application/json"),
                ("date", "Wed, 25 Nov 2026 07:36:16 GMT"),
                ("server", "envoy"),
            ],
        );
        let end = chunks.is_empty() || dir != 1;
        envoy_dynamic_module_on_http_filter_response_headers(ENVOY_OBJECT, stream, end);
        if dir == 1 {
            body(1, stream);
        }
    }
    envoy_dynamic_module_on_http_filter_stream_complete(ENVOY_OBJECT, stream);
    envoy_dynamic_module_on_http_filter_destroy(stream);
}

/// Callbacks made and bytes copied by one request of `shape`, on a keep-alive connection whose
/// first request was served already.
fn measure(shape: &str) -> (BTreeMap<&'static str, u64>, u64) {
    let config = config(&bench_policy());
    assert!(!config.is_null());
    if shape != "GET allowed, new connection" {
        // Keep-alive, the mesh norm: the connection's facts are known from its first request.
        request(config, "GET", "/get", 0, &[]);
    }
    envoy(|e| *e = FakeEnvoy::default());
    let orders: Vec<u8> = br#"{"order_id":100000123,"amount":{"value":129900,"currency":"EUR"},"card":"4111111111111111","created":"2026-11-25T07:36:16Z"},"#
        .iter()
        .copied()
        .cycle()
        .take(1 << 20)
        .collect();
    match shape {
        "GET allowed" | "GET allowed, new connection" => request(config, "GET", "/get", 0, &[]),
        "GET denied" => request(config, "GET", "/admin", 0, &[]),
        "POST 16 KiB, 4 chunks" => {
            let chunks: Vec<&[u8]> = orders[..16 << 10].chunks(4 << 10).collect();
            request(config, "POST", "/post", 0, &chunks)
        }
        "1 MiB response, 16 chunks" => {
            let chunks: Vec<&[u8]> = orders.chunks(64 << 10).collect();
            request(config, "GET", "/orders", 1, &chunks)
        }
        _ => unreachable!("{shape}"),
    }
    let (events, marked) = envoy(|e| (e.state.len(), e.marked.clone()));
    assert_eq!(events, 1, "{shape}: one access event in filter state");
    // And the mark an access log's `metadata_filter` selects it by.
    assert_eq!(marked, ["pci_mesh_guard.audit_event"], "{shape}");
    // The request's calls, not the configuration's end (its chains' `stop` events).
    let cost = envoy(|e| (std::mem::take(&mut e.calls), e.bytes));
    envoy_dynamic_module_on_http_filter_config_destroy(config);
    cost
}

const SHAPES: [&str; 5] = [
    "GET allowed, new connection",
    "GET allowed",
    "GET denied",
    "POST 16 KiB, 4 chunks",
    "1 MiB response, 16 chunks",
];

/// The callbacks each shape may make, and the body bytes it may copy into Envoy: lower them when
/// a change makes requests cheaper. (A request on a new connection reads its seven facts: 8
/// attribute callbacks where a known connection makes 1, which is why they are kept per worker.
/// Each shape's access event also marks the stream's metadata: one callback that spares Envoy's
/// access log an expression per request.)
const BUDGETS: [(&str, u64, u64); 4] = [
    ("GET allowed", 11, 0),
    ("GET denied", 10, 0),
    ("POST 16 KiB, 4 chunks", 24, 0),
    ("1 MiB response, 16 chunks", 88, 460_000),
];

#[test]
fn print_native_request_costs() {
    println!("| request shape | callbacks | body bytes written | callbacks by kind |");
    println!("|---|---:|---:|---|");
    for shape in SHAPES {
        let (calls, bytes) = measure(shape);
        let kinds: Vec<String> = calls.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let total: u64 = calls.values().sum();
        println!("| {shape} | {total} | {bytes} | {} |", kinds.join(", "));
    }
}

#[test]
fn native_request_costs_stay_within_budget() {
    for (shape, budget, bytes_budget) in BUDGETS {
        let (calls, bytes) = measure(shape);
        let total: u64 = calls.values().sum();
        assert!(
            total <= budget && bytes <= bytes_budget,
            "{shape} now makes {total} callbacks and writes {bytes} body bytes (budget {budget} and {bytes_budget}): {calls:?}"
        );
    }
}

/// A stream whose request headers were let through, for the body tests below.
fn open_stream(config: *const c_void) -> *const c_void {
    let stream = envoy_dynamic_module_on_http_filter_new(config, ENVOY_OBJECT);
    put(
        abi::header_type::REQUEST_HEADERS,
        &[
            (":method", "POST"),
            (":path", "/post"),
            ("content-type", "text/plain"),
        ],
    );
    let status = envoy_dynamic_module_on_http_filter_request_headers(ENVOY_OBJECT, stream, false);
    assert_eq!(status, abi::status::CONTINUE);
    stream
}

#[test]
fn a_body_held_by_envoy_and_this_hooks_data_are_read_and_masked_as_one() {
    let config = config(&bench_policy());
    let stream = open_stream(config);
    // An earlier filter had Envoy hold the first half; this hook brings the second.
    envoy(|e| {
        e.buffered[0] = b"pay 4111 1111".to_vec();
        e.received[0] = Some(b" 1111 1111 now".to_vec());
    });
    let status = envoy_dynamic_module_on_http_filter_request_body(ENVOY_OBJECT, stream, true);
    assert_eq!(status, abi::status::CONTINUE);
    let (held, data) = envoy(|e| (e.buffered[0].clone(), e.received[0].clone().unwrap()));
    assert_eq!(
        String::from_utf8_lossy(&[held, data].concat()),
        "pay **** **** **** 1111 now"
    );
    // Same length, so written where the bytes lie: nothing drained or appended.
    envoy(|e| {
        assert_eq!(
            (e.calls.get("drain_body"), e.calls.get("append_body")),
            (None, None)
        )
    });
    envoy_dynamic_module_on_http_filter_stream_complete(ENVOY_OBJECT, stream);
    envoy_dynamic_module_on_http_filter_destroy(stream);
    envoy_dynamic_module_on_http_filter_config_destroy(config);
}

#[test]
fn a_tail_held_when_the_trailers_come_is_added_to_the_body_before_them() {
    let config = config(&bench_policy());
    let stream = open_stream(config);
    let mut passed = Vec::new();
    for chunk in [&b"abc "[..], b"4111 1111 1111 1111"] {
        envoy(|e| e.received[0] = Some(chunk.to_vec()));
        let status = envoy_dynamic_module_on_http_filter_request_body(ENVOY_OBJECT, stream, false);
        assert_eq!(status, abi::status::CONTINUE, "never paused");
        passed.extend(envoy(|e| e.received[0].take().unwrap_or_default()));
    }
    assert!(
        passed.len() < 21,
        "the undecided digits are held: {passed:?}"
    );
    let status = envoy_dynamic_module_on_http_filter_request_trailers(ENVOY_OBJECT, stream);
    assert_eq!(status, abi::status::CONTINUE);
    passed.extend(envoy(|e| std::mem::take(&mut e.buffered[0])));
    assert_eq!(String::from_utf8_lossy(&passed), "abc **** **** **** 1111");
    envoy(|e| assert_eq!(e.resets, 0));
    envoy_dynamic_module_on_http_filter_stream_complete(ENVOY_OBJECT, stream);
    envoy_dynamic_module_on_http_filter_destroy(stream);
    envoy_dynamic_module_on_http_filter_config_destroy(config);
}

#[test]
fn a_rejected_configuration_is_refused_and_logged_by_its_key() {
    let config = config(r#"{"authorization": {"rulez": []}}"#);
    assert!(config.is_null());
    let logged = envoy(|e| e.logs.join("\n"));
    assert!(
        logged.contains("configuration rejected: authorization.rulez"),
        "{logged}"
    );
}

/// What the module wrote as the stream's access event (its `access_log` sink's filter state).
fn written_event() -> serde_json::Value {
    let text = envoy(|e| e.state.get(&b"wasm.pmg_audit"[..]).cloned())
        .expect("an access event in filter state");
    let text = String::from_utf8(text).expect("UTF-8");
    let json = crate::audit::verify::event_text(&text).unwrap_or(&text);
    serde_json::from_str(json).expect("the event's JSON")
}

#[test]
fn in_a_waypoint_the_caller_is_the_tunnel_peer_the_waypoint_put_in_filter_state() {
    const FRAUD: &str = "spiffe://cluster.local/ns/risk/sa/fraud-scoring";
    const WAYPOINT: &str = "spiffe://cluster.local/ns/payments/sa/waypoint";
    let json = r#"{"identity": {"source": "istio_waypoint"},
        "authorization": {"rules": [{"name": "fraud-reads", "action": "allow",
            "principals": ["spiffe://cluster.local/ns/risk/sa/*"], "methods": ["GET"]}]},
        "audit": {"sink": "access_log"}}"#;
    let config = config(json);
    assert!(!config.is_null());
    envoy(|e| *e = FakeEnvoy::default());
    envoy(|e| {
        e.state
            .insert(b"io.istio.peer_principal".to_vec(), FRAUD.into());
        e.state
            .insert(b"io.istio.local_principal".to_vec(), WAYPOINT.into());
    });
    request(config, "GET", "/get", 0, &[]);
    let event = written_event();
    assert_eq!(event["decision"], "allow", "{event}");
    // Not the connection's certificate (the fake's names checkout): the tunnel's peer.
    assert_eq!(event["principal"], FRAUD);
    assert_eq!(event["identity_source"], "istio_waypoint");
    assert_eq!(event["workload"], WAYPOINT);
    assert_eq!(event["tls_version"], serde_json::Value::Null);
    assert_eq!(envoy(|e| e.replies.len()), 0);

    envoy_dynamic_module_on_http_filter_config_destroy(config);

    // Without a tunnel identity the waypoint's stream is refused as plaintext would be. (A new
    // configuration: the fake's one connection id is known to the first one's workers.)
    let config = self::config(json);
    envoy(|e| *e = FakeEnvoy::default());
    request(config, "GET", "/get", 0, &[]);
    let event = written_event();
    assert_eq!(
        (&event["decision"], &event["reason"]),
        (&"deny".into(), &"no_mtls".into())
    );
    assert_eq!(envoy(|e| e.replies.first().map(|r| r.0)), Some(403));
    envoy_dynamic_module_on_http_filter_config_destroy(config);
}

#[test]
fn the_last_configuration_of_a_policy_ends_its_chains_with_stops() {
    let json = format!("{}{}", bench_policy(), " ".repeat(4096));
    std::env::set_var(crate::audit::chain::KEY_ENV, "bench-audit-key-0123456789");
    let new = || {
        envoy_dynamic_module_on_http_filter_config_new(
            ENVOY_OBJECT,
            lend(b"pci-mesh-guard"),
            lend(json.as_bytes()),
        )
    };
    let stops = || -> Vec<serde_json::Value> {
        envoy(|e| e.logs.clone())
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event"] == "stop")
            .collect()
    };
    let (first, second) = (new(), new());
    assert!(!first.is_null() && !second.is_null());
    request(first, "GET", "/get", 0, &[]);
    let before = stops().len();
    // Another listener's configuration of the same JSON shares the chains: they go on.
    envoy_dynamic_module_on_http_filter_config_destroy(second);
    assert_eq!(stops().len(), before, "the policy is still in use");
    envoy_dynamic_module_on_http_filter_config_destroy(first);
    let ended: Vec<serde_json::Value> = stops().into_iter().skip(before).collect();
    assert!(
        ended.len() >= 2,
        "the main thread's chain and each worker's: {ended:?}"
    );
    assert!(ended.iter().all(|e| e["reason"] == "shutdown"));
    assert!(
        ended.iter().any(|e| e["chains"][0]["seq"] == 1),
        "a worker's stop names its access chain's one event: {ended:?}"
    );
}

#[test]
fn the_main_threads_tick_writes_heartbeats_naming_every_workers_chains() {
    let mut v: serde_json::Value = serde_json::from_str(&bench_policy()).unwrap();
    v["audit"]["heartbeat_s"] = 1.into();
    let config = config(&v.to_string());
    assert!(!config.is_null());
    request(config, "GET", "/get", 0, &[]);
    let beats = || -> Vec<serde_json::Value> {
        envoy(|e| e.logs.clone())
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event"] == "heartbeat")
            .collect()
    };
    let before = beats().len();
    envoy_dynamic_module_on_http_filter_config_scheduled(ENVOY_OBJECT, config, 0);
    assert_eq!(beats().len(), before, "not due before a second has passed");
    std::thread::sleep(std::time::Duration::from_millis(1_050));
    envoy_dynamic_module_on_http_filter_config_scheduled(ENVOY_OBJECT, config, 0);
    let all = beats();
    assert_eq!(all.len(), before + 1);
    let beat = &all[before];
    let points = beat["chains"].as_array().unwrap();
    // Each of the two workers' proxy chains (its config event), and the access chain of the one
    // that served the request.
    assert_eq!(points.len(), 3, "{beat}");
    assert!(points
        .iter()
        .any(|p| p["chain"].as_str().unwrap().ends_with(".access") && p["seq"] == 1));
    assert!(
        COMMITS.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the ticker commits"
    );
    envoy_dynamic_module_on_http_filter_config_destroy(config);
}
