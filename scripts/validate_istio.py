#!/usr/bin/env python3
"""Validates Istio manifests against the CRD schemas Istio publishes (OpenAPI v3, as a Kubernetes API
server enforces them; the x-kubernetes-* extensions are left out), and prints the plugin
configuration each manifest carries, one JSON object per line, for the caller to check further.

usage: validate_istio.py CRDS.yaml MANIFEST.yaml...
"""
import json
import sys

import jsonschema
import yaml


def strip_extensions(node):
    if isinstance(node, dict):
        return {k: strip_extensions(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if isinstance(node, list):
        return [strip_extensions(v) for v in node]
    return node


def main():
    crds, manifests = sys.argv[1], sys.argv[2:]
    schemas = {}
    for doc in yaml.safe_load_all(open(crds)):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
        for v in doc["spec"]["versions"]:
            schemas[(f"{group}/{v['name']}", kind)] = strip_extensions(v["schema"]["openAPIV3Schema"])
    failed = False
    for path in manifests:
        for doc in yaml.safe_load_all(open(path)):
            key = (doc.get("apiVersion"), doc.get("kind"))
            schema = schemas.get(key)
            if schema is None:
                print(f"{path}: no schema for {key}", file=sys.stderr)
                failed = True
                continue
            errors = list(jsonschema.Draft7Validator(schema).iter_errors(doc))
            for e in errors:
                print(f"{path}: {'.'.join(map(str, e.absolute_path))}: {e.message}", file=sys.stderr)
            failed |= bool(errors)
            spec = doc.get("spec", {})
            if doc["kind"] == "WasmPlugin":
                print(json.dumps({"file": path, "config": json.dumps(spec.get("pluginConfig", {}))}))
            elif doc["kind"] == "EnvoyFilter":
                for p in spec.get("configPatches", []):
                    cfg = p["patch"]["value"]["typed_config"]["config"]["configuration"]["value"]
                    print(json.dumps({"file": path, "config": cfg}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
