//! pci-mesh-guard: a proxy-wasm HTTP filter that enforces PCI DSS inside a service mesh.
//!
//! The core (`config`, `identity`, `authz`, `lint`, `pan`, `audit`) knows nothing of proxy-wasm.
//! `filter` is the request flow over the `host::Host` trait; `adapter` binds it to proxy-wasm
//! and exists only when built for wasm with the `proxy` feature (the default).
// One call in `adapter` is unsafe (reading the host's log level, which the SDK cannot do safely);
// everything else is safe code.
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
