#!/usr/bin/env python3
"""Validates Istio manifests against Istio's resource types (the cloudcoil-models-istio package: models
generated from the CRD schemas Istio publishes), and prints the plugin configuration each manifest
carries, one JSON object per line, for the caller to check further.

TrafficExtension (Istio 1.30) is newer than any published models: it is checked against
schemas/istio-trafficextension-v1alpha1.schema.json (its CRD's fields, types, enums and bounds) and
the CEL rules of that CRD, restated in `traffic_extension_rules` below.

A field the type does not define is an error, as it is for `kubectl apply` (strict field validation,
the default since Kubernetes 1.27); the models alone would ignore it, so the manifest is compared with
what the model kept.

usage: validate_istio.py MANIFEST.yaml...
"""
import json
import os
import sys
from urllib.parse import urlparse

import jsonschema

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


TRAFFIC_EXTENSION = ("extensions.istio.io/v1alpha1", "TrafficExtension")
SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "schemas")


def traffic_extension_rules(spec):
    """The CRD's CEL rules (x-kubernetes-validations), which a JSON schema cannot say."""
    out = []
    if "selector" in spec and "targetRefs" in spec:
        out.append("spec: only one of targetRefs or selector can be set")
    if ("wasm" in spec) == ("lua" in spec):
        out.append("spec: exactly one of wasm or lua must be set")
    labels = spec.get("selector", {}).get("matchLabels", {})
    if any("*" in k or not k for k in labels) or any("*" in v for v in labels.values()):
        out.append("spec.selector.matchLabels: wildcards and empty keys are not allowed")
    for i, ref in enumerate(spec.get("targetRefs", [])):
        if ref.get("namespace"):
            out.append(f"spec.targetRefs[{i}].namespace: cross namespace referencing is not supported")
    ports = [p.get("number") for m in spec.get("match", []) for p in m.get("ports", [])]
    if len(ports) != len(set(ports)):
        out.append("spec.match.ports: a port number is listed twice")
    wasm = spec.get("wasm", {})
    if "url" in wasm:
        url = wasm["url"]
        scheme = urlparse(url if "://" in url else "http://" + url).scheme
        if scheme not in ("", "http", "https", "file", "oci"):
            out.append(f"spec.wasm.url: scheme {scheme!r} is not one of http, https, file, oci")
    env = wasm.get("vmConfig", {}).get("env", [])
    names = [e.get("name") for e in env]
    if len(names) != len(set(names)):
        out.append("spec.wasm.vmConfig.env: a name is listed twice")
    for i, e in enumerate(env):
        if e.get("valueFrom") == "HOST" and "value" in e:
            out.append(f"spec.wasm.vmConfig.env[{i}]: value may only be set when valueFrom is INLINE")
    return out


def check_traffic_extension(path, doc):
    schema = json.load(open(os.path.join(SCHEMAS, "istio-trafficextension-v1alpha1.schema.json")))
    errors = [
        f"{path}: {'.'.join(map(str, e.absolute_path)) or '.'}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)
    ]
    return errors + [f"{path}: {e}" for e in traffic_extension_rules(doc.get("spec") or {})]


def check(path, doc):
    """Errors of one document, as lines."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key == TRAFFIC_EXTENSION:
        return check_traffic_extension(path, doc)
    model = TYPES.get(key)
    if model is None:
        return [f"{path}: no schema for {key}"]
    return check_model(path, doc, model)


def check_model(path, doc, model):
    """Errors of `doc` as a `model` (a cloudcoil resource type), unknown fields included."""
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
            elif doc.get("kind") == "TrafficExtension" and "wasm" in spec:
                config = spec["wasm"].get("pluginConfig", {})
                print(json.dumps({"file": path, "config": json.dumps(config)}))
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
