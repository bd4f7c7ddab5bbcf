#!/usr/bin/env python3
"""Pulls pci-mesh-guard's OCI image from a registry with oras (a client other than the skopeo that
pushed it) and reads it the way Istio's agent does: the manifest's digest (what a WasmPlugin's
`sha256` is compared with), then `plugin.wasm` from the tar.gz of the last layer.
Prints one JSON object: the digest, the media types, and the module's size and SHA-256.

usage: oci_pull.py REGISTRY/REPOSITORY:TAG   (plain HTTP: for a local registry)
"""
import hashlib
import io
import json
import sys
import tarfile

import oras.provider

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def main():
    ref = sys.argv[1]
    registry = oras.provider.Registry(hostname=ref.split("/", 1)[0], insecure=True)
    container = registry.get_container(ref)
    raw = registry.do_request(f"{registry.prefix}://{container.manifest_url()}", "GET",
                              headers={"Accept": OCI_MANIFEST})
    if raw.status_code != 200:
        sys.exit(f"manifest of {ref}: HTTP {raw.status_code}")
    manifest = registry.get_manifest(container, allowed_media_type=[OCI_MANIFEST])
    last = manifest["layers"][-1]
    layer = registry.get_blob(container, last["digest"]).content
    if "sha256:" + hashlib.sha256(layer).hexdigest() != last["digest"]:
        sys.exit("the layer's bytes do not match its digest")
    module = None
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        for member in tar:
            if member.name.rsplit("/", 1)[-1] == "plugin.wasm":
                module = tar.extractfile(member).read()
                break
    if module is None:
        sys.exit("no plugin.wasm in the last layer")
    print(json.dumps({
        "manifest_digest": "sha256:" + hashlib.sha256(raw.content).hexdigest(),
        "manifest_media_type": manifest.get("mediaType"),
        "config_media_type": manifest["config"]["mediaType"],
        "layer_media_types": [l["mediaType"] for l in manifest["layers"]],
        "module_size": len(module),
        "module_sha256": hashlib.sha256(module).hexdigest(),
    }))


if __name__ == "__main__":
    main()
