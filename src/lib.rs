//! pci-mesh-guard: an Envoy HTTP filter that enforces PCI DSS inside a service mesh.
//!
//! The core (`config`, `identity`, `authz`, `lint`, `pan`, `audit`) knows nothing of any host.
//! `filter` is the request flow over the `host::Host` trait. Two adapters bind it to a host:
//! `adapter` to proxy-wasm (built for wasm with the `proxy` feature, the default), and
//! `dynamic_module` to Envoy's dynamic-module C ABI (built natively with `envoy-module`).
// The adapters' FFI is unsafe (the wasm one reads the host's log level, which the SDK cannot do
// safely; the dynamic module declares Envoy's ABI by hand); everything else is safe code.
#![deny(unsafe_code)]

pub mod audit;
pub mod authz;
pub mod config;
/// The assessor's evidence from audit logs (native tools only).
#[cfg(not(target_arch = "wasm32"))]
pub mod evidence;
pub mod filter;
pub mod host;
pub mod identity;
pub mod lint;
pub mod pan;

#[cfg(all(target_arch = "wasm32", feature = "proxy"))]
mod adapter;
#[cfg(all(not(target_arch = "wasm32"), feature = "envoy-module"))]
mod dynamic_module;
