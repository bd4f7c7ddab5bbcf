#!/usr/bin/env python3
"""Writes pci-mesh-guard's wasm module as an OCI image that Istio's agent accepts, into an OCI image
layout directory, and prints the image manifest's digest (what a WasmPlugin's `sha256` pins).

The image is the "compat" variant of the Wasm image format: an OCI image manifest whose last (here,
only) layer is a tar.gz holding one file, `plugin.wasm` (media type
application/vnd.oci.image.layer.v1.tar+gzip). Istio, Envoy Gateway and other Wasm-aware tools read
that layout; it also moves through any registry and registry client like an ordinary image.

Reproducible: the archive's entry has fixed owner, mode and time, gzip writes no name and no time,
and the JSON documents are written with sorted keys and no whitespace. The same module always
gives the same manifest digest.

usage: oci_image.py MODULE.wasm LAYOUT_DIR TAG
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def canonical(doc):
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def layer_tar(module):
    """One regular file, plugin.wasm, owned by root, 0444, dated at the epoch."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("plugin.wasm")
        info.size, info.mode, info.mtime = len(module), 0o444, 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(module))
    return out.getvalue()


def gzipped(data):
    out = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[-1])
    module_path, layout, tag = sys.argv[1:]
    module = open(module_path, "rb").read()
    if module[:4] != b"\0asm":
        sys.exit(f"{module_path} is not a WebAssembly module")

    tar = layer_tar(module)
    layer = gzipped(tar)
    config = canonical({
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
    })

    def descriptor(media_type, blob, annotations=None):
        d = {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
             "size": len(blob)}
        if annotations:
            d["annotations"] = annotations
        return d

    manifest = canonical({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor(CONFIG, config),
        "layers": [descriptor(LAYER, layer)],
        "annotations": {
            "org.opencontainers.image.title": "pci-mesh-guard",
            "org.opencontainers.image.version": tag,
        },
    })

    shutil.rmtree(layout, ignore_errors=True)
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)
    for blob in (layer, config, manifest):
        with open(os.path.join(blobs, hashlib.sha256(blob).hexdigest()), "wb") as f:
            f.write(blob)
    with open(os.path.join(layout, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [descriptor(MANIFEST, manifest, {"org.opencontainers.image.ref.name": tag})]}
    with open(os.path.join(layout, "index.json"), "wb") as f:
        f.write(canonical(index))
    print("sha256:" + hashlib.sha256(manifest).hexdigest())


if __name__ == "__main__":
    main()
