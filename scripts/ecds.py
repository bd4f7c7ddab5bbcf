#!/usr/bin/env python3
"""Delivers a plugin configuration to an Istio-shaped sidecar (envoy-config/istio-shaped-sidecar.yaml)
as istiod's ECDS does: a discovery response holding the filter, with this configuration and
module, moved into the directory Envoy watches (Envoy reads a whole file or none).

MODULE is the wasm build (a .wasm file: a Wasm filter, as a WasmPlugin becomes) or the native one
(libpci_mesh_guard.so: a dynamic-module filter, as an EnvoyFilter inserts it). For the wasm build the
audit chain and PAN token keys come from the environment (PCI_MESH_GUARD_AUDIT_KEY,
PCI_MESH_GUARD_TOKEN_KEY) into the VM's, as the sidecar's own environment gives them in Istio; the
native module reads them from Envoy's environment itself.

usage: ecds.py CONFIG.json MODULE ECDS_DIR VERSION
"""
import json
import os
import sys

NAME = "payments.pci-mesh-guard"  # Istio names a WasmPlugin's filter <namespace>.<name>


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__.strip().splitlines()[-1])
    config_path, module, ecds_dir, version = sys.argv[1:]
    env = {k: os.environ[k] for k in ("PCI_MESH_GUARD_AUDIT_KEY", "PCI_MESH_GUARD_TOKEN_KEY")
           if k in os.environ}
    configuration = {
        "@type": "type.googleapis.com/google.protobuf.StringValue",
        "value": open(config_path).read(),
    }
    if module.endswith(".so"):
        # Envoy finds the module by name in $ENVOY_DYNAMIC_MODULES_SEARCH_PATH.
        typed_config = {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": "pci_mesh_guard", "do_not_close": True},
            "filter_name": "pci-mesh-guard",
            "filter_config": configuration,
        }
    else:
        typed_config = {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": NAME,
                "root_id": "pci-mesh-guard",
                # As failStrategy FAIL_CLOSE: a failing VM refuses requests.
                "fail_open": False,
                "configuration": configuration,
                "vm_config": {
                    "vm_id": "pci-mesh-guard",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": os.path.abspath(module)}},
                    "environment_variables": {"key_values": env},
                },
            },
        }
    response = {
        "version_info": version,
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": NAME,
            "typed_config": typed_config,
        }],
    }
    ecds_dir = os.path.abspath(ecds_dir)
    staged = os.path.join(os.path.dirname(ecds_dir), f".ecds-{version}.yaml")
    with open(staged, "w") as f:
        json.dump(response, f)
    os.replace(staged, os.path.join(ecds_dir, "pci-mesh-guard.yaml"))


if __name__ == "__main__":
    main()
