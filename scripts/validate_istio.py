#!/usr/bin/env python3
"""Validates Istio manifests against Istio's resource types (the cloudcoil-models-istio package: models
generated from the CRD schemas Istio publishes), and prints the plugin configuration each manifest
carries, one JSON object per line, for the caller to check further.

A field the type does not define is an error, as it is for `kubectl apply` (strict field validation,
the default since Kubernetes 1.27); the models alone would ignore it, so the manifest is compared with
what the model kept.

usage: validate_istio.py MANIFEST.yaml...
"""
import json
import sys

import pydantic
import yaml
from cloudcoil.models.istio.extensions import v1alpha1 as extensions
from cloudcoil.models.istio.networking import v1alpha3 as networking
from cloudcoil.models.istio.security import v1 as security
from cloudcoil.models.istio.telemetry import v1 as telemetry

TYPES = {
    ("extensions.istio.io/v1alpha1", "WasmPlugin"): extensions.WasmPlugin,
    ("networking.istio.io/v1alpha3", "EnvoyFilter"): networking.EnvoyFilter,
    ("security.istio.io/v1", "PeerAuthentication"): security.PeerAuthentication,
    ("security.istio.io/v1", "AuthorizationPolicy"): security.AuthorizationPolicy,
    ("telemetry.istio.io/v1", "Telemetry"): telemetry.Telemetry,
}


def unknown_fields(given, kept, path=""):
    """Paths of `given` that the validated model did not keep."""
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [path or "."]
        out = []
        for k, v in given.items():
            p = f"{path}.{k}" if path else k
            out += unknown_fields(v, kept[k], p) if k in kept else [p]
        return out
    if isinstance(given, list) and isinstance(kept, list):
        return [u for i, (g, k) in enumerate(zip(given, kept)) for u in unknown_fields(g, k, f"{path}[{i}]")]
    return []


def check(path, doc):
    """Errors of one document, as lines."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    model = TYPES.get(key)
    if model is None:
        return [f"{path}: no schema for {key}"]
    try:
        parsed = model.model_validate(doc)
    except pydantic.ValidationError as e:
        return [f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
    kept = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return [f"{path}: {p}: unknown field" for p in unknown_fields(doc, kept)]


def main():
    failed = False
    for path in sys.argv[1:]:
        for doc in yaml.safe_load_all(open(path)):
            if not doc:
                continue
            errors = check(path, doc)
            for e in errors:
                print(e, file=sys.stderr)
            failed |= bool(errors)
            spec = doc.get("spec", {})
            if doc.get("kind") == "WasmPlugin":
                print(json.dumps({"file": path, "config": json.dumps(spec.get("pluginConfig", {}))}))
            elif doc.get("kind") == "EnvoyFilter":
                for p in spec.get("configPatches", []):
                    typed = p["patch"]["value"]["typed_config"]
                    if typed["@type"].endswith("DynamicModuleFilter"):
                        # The native build: the same JSON, as the dynamic module's filter_config.
                        cfg = typed["filter_config"]["value"]
                    else:
                        cfg = typed["config"]["configuration"]["value"]
                    print(json.dumps({"file": path, "config": cfg}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
