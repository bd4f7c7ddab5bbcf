//! The native build's hand-written ABI against the Envoy it is built for: every callback the module
//! imports is one the pinned Envoy exports (Envoy 1.38 and later only warn on an ABI version
//! mismatch, so a misspelt or retired callback would otherwise fail only when first called), and
//! the module exports every hook Envoy 1.40 requires of an HTTP filter (one missing makes Envoy
//! refuse the configuration). The signatures themselves are judged by the end-to-end suite.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The hooks Envoy 1.40 resolves for an HTTP filter and refuses a module without.
const REQUIRED_HOOKS: &[&str] = &[
    "envoy_dynamic_module_on_program_init",
    "envoy_dynamic_module_on_http_filter_config_new",
    "envoy_dynamic_module_on_http_filter_config_destroy",
    "envoy_dynamic_module_on_http_filter_new",
    "envoy_dynamic_module_on_http_filter_destroy",
    "envoy_dynamic_module_on_http_filter_stream_complete",
    "envoy_dynamic_module_on_http_filter_request_headers",
    "envoy_dynamic_module_on_http_filter_request_body",
    "envoy_dynamic_module_on_http_filter_request_trailers",
    "envoy_dynamic_module_on_http_filter_response_headers",
    "envoy_dynamic_module_on_http_filter_response_body",
    "envoy_dynamic_module_on_http_filter_response_trailers",
    "envoy_dynamic_module_on_http_filter_http_callout_done",
    "envoy_dynamic_module_on_http_filter_http_stream_headers",
    "envoy_dynamic_module_on_http_filter_http_stream_data",
    "envoy_dynamic_module_on_http_filter_http_stream_trailers",
    "envoy_dynamic_module_on_http_filter_http_stream_complete",
    "envoy_dynamic_module_on_http_filter_http_stream_reset",
    "envoy_dynamic_module_on_http_filter_scheduled",
    "envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark",
    "envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark",
];

/// The dynamic symbols of an ELF file, defined (`true`) or undefined, by `nm -D`.
fn dynamic_symbols(file: &Path, defined: bool) -> BTreeSet<String> {
    let flag = if defined {
        "--defined-only"
    } else {
        "--undefined-only"
    };
    let out = Command::new("nm")
        .args(["-D", flag])
        .arg(file)
        .output()
        .expect("run nm (binutils)");
    assert!(out.status.success(), "nm -D {}", file.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|s| s.split('@').next().unwrap_or(s).to_string())
        .collect()
}

#[test]
fn every_callback_the_module_imports_is_exported_by_the_envoy_it_is_built_for() {
    let module = mesh::native_module();
    let imported: BTreeSet<String> = dynamic_symbols(&module, false)
        .into_iter()
        .filter(|s| s.starts_with("envoy_dynamic_module_callback_"))
        .collect();
    assert!(
        imported.len() >= 20,
        "the module imports the callbacks it uses: {imported:?}"
    );
    for envoy in mesh::envoys().into_iter().filter(|e| e.is_native()) {
        let exported = dynamic_symbols(&envoy.bin, true);
        let missing: Vec<&String> = imported.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "Envoy {envoy} does not export {missing:?}"
        );
    }
}

#[test]
fn the_module_exports_every_hook_envoy_requires_of_an_http_filter() {
    let exported = dynamic_symbols(&mesh::native_module(), true);
    let missing: Vec<&&str> = REQUIRED_HOOKS
        .iter()
        .filter(|h| !exported.contains(**h))
        .collect();
    assert!(missing.is_empty(), "the module lacks {missing:?}");
}
