#!/usr/bin/env python3
"""The in-Envoy benchmark of pci-mesh-guard (run it through scripts/bench-envoy.sh).

One Envoy with one worker is the sidecar under test. It has one listener per variant (plaintext),
and one more per variant behind mTLS, which a client Envoy reaches with the checkout workload's
certificate. A third Envoy plays the backend for the shapes with bodies. wrk drives each
(shape, variant) in turn, for several rounds that alternate the variants, so that a slow moment of
this shared machine hits every variant alike. The result is medians and ratios, never one run.

Variants: no HTTP filter; the reference filters (bench/reference-filter: a no-op proxy-wasm filter,
one that reads each body chunk and writes it back, and the skeleton, which makes only the host calls
and the seal an audited filter cannot do without, its event written by the same access log as
pci-mesh-guard's); Envoy's RBAC with equivalent rules plus a
JSON file access log; pci-mesh-guard with authorization only; pci-mesh-guard with everything on
(20 rules, all four redaction places, one audit event per request). Both pci-mesh-guard variants use
the access_log sink (the event written by a file access log, as the RBAC variant's is); pmg-all-log
is everything on with the log sink (the event in the proxy log, at info, to a file). The native build
(an Envoy dynamic module) runs as pmg-native-authz and pmg-native-all, the same configurations as the
wasm variants, beside its own floors (bench/reference-module): noop-native, a dynamic module that does
nothing, and skeleton-native, the native twin of the skeleton (the same calls, seal and access log).

Shapes: GET without body (plaintext, and through the mTLS mesh), POST of a 16 KiB JSON body with a
few card numbers, GET of a 1 MiB JSON response of order records with a card number every ~8 KiB.
"""
import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKOUT = "spiffe://cluster.local/ns/shop/sa/checkout"

VARIANTS = ["none", "noop", "copy-back", "rbac+log", "skeleton", "pmg-authz", "pmg-all", "pmg-all-log",
            "noop-native", "skeleton-native", "pmg-native-authz", "pmg-native-all", "pmg-native-all-cel"]
NATIVE = ("noop-native", "skeleton-native", "pmg-native-authz", "pmg-native-all", "pmg-native-all-cel")
# Run only when named: pmg-native-all with its access log selected by a CEL expression, as the wasm
# build's must be, instead of the native build's metadata mark.
OPTIONAL = ("pmg-native-all-cel",)
# The variants that mask card numbers.
MASKING = ("pmg-all", "pmg-all-log", "pmg-native-all", "pmg-native-all-cel")
SHAPES = {
    # name: (path, uses the backend, unit, mTLS)
    "GET": ("/get", False, "req/s", False),
    "GET mTLS": ("/get", False, "req/s", True),
    "POST 16 KiB": ("/post", True, "req/s", False),
    "1 MiB response": ("/orders", True, "MB/s", False),
}
BODY_SHAPES = ("POST 16 KiB", "1 MiB response")
PANS = ["4111111111111111", "5555555555554444", "378282246310005", "6011000990139424"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Payloads
# ---------------------------------------------------------------------------------------------

def order(rng, i, pan=None):
    rec = {
        "order_id": 100000000 + i,
        "customer": {"id": rng.randrange(10**8), "email": f"user{rng.randrange(10**6)}@example.com"},
        "amount": {"value": rng.randrange(100, 10**6), "currency": "EUR"},
        "created": f"2026-11-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
        "items": [{"sku": rng.randrange(10**6), "qty": rng.randrange(1, 9), "price": rng.randrange(100, 99999)}
                  for _ in range(rng.randrange(1, 5))],
        "status": rng.choice(["paid", "shipped", "refunded"]),
        "phone": f"+4930{rng.randrange(10**7):07d}",
    }
    if pan:
        rec["card"] = {"number": pan, "exp": "12/29"}
    return rec


def json_records(size, pan_every, seed):
    """A JSON array of order records, about `size` bytes, with a card number every `pan_every` bytes."""
    rng = random.Random(seed)
    out, total, since, i = [], 2, 0, 0
    while total < size:
        pan = None
        if since >= pan_every:
            pan, since = PANS[i % len(PANS)], 0
        text = json.dumps(order(rng, i, pan), separators=(",", ":"))
        out.append(text)
        total += len(text) + 1
        since += len(text) + 1
        i += 1
    return ("[" + ",".join(out) + "]").encode()


# ---------------------------------------------------------------------------------------------
# Envoy configurations
# ---------------------------------------------------------------------------------------------

def pmg_config(everything, mtls, sink="access_log"):
    """20 rules; with mTLS the checkout caller matches rule 19, in plaintext the default allows."""
    rules = [{"name": "nobody-reaches-admin", "action": "deny", "paths": ["/admin", "/admin/*"]}]
    for i in range(18):
        rules.append({"name": f"team{i}-may-call-svc{i}",
                      "principals": [f"spiffe://cluster.local/ns/team{i}/sa/svc{i}"],
                      "paths": [f"/v1/svc{i}", f"/v1/svc{i}/*"], "methods": ["GET", "POST"]})
    rules.append({"name": "checkout-may-call", "principals": [CHECKOUT],
                  "paths": ["/get", "/post", "/orders"], "methods": ["GET", "POST"]})
    on = everything
    return json.dumps({
        "identity": {"require_mtls": mtls, "trust_domains": ["cluster.local"]},
        "authorization": {"default_action": "deny" if mtls else "allow", "rules": rules},
        "redaction": {"request_headers": on, "request_body": on, "response_headers": on, "response_body": on},
        "audit": {"sink": sink},
    })


def wasm_filter(name, path, config, env=None):
    vm = {"vm_id": name, "runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": path}}}
    if env:
        vm["environment_variables"] = {"key_values": env}
    return {
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name, "root_id": name, "fail_open": False, "vm_config": vm,
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": config},
            },
        },
    }


def native_filter(name, module, config):
    """A dynamic module, found by name in the sidecar's ENVOY_DYNAMIC_MODULES_SEARCH_PATH."""
    return {
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": module, "do_not_close": True},
            "filter_name": name,
            "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": config},
        },
    }


def rbac_filters(mtls):
    """Istio's shape for the same policy: a DENY filter, then an ALLOW filter (20 policies)."""
    def path_method(paths, methods):
        return {"and_rules": {"rules": [
            {"or_rules": {"rules": [
                {"url_path": {"path": ({"prefix": p[:-1]} if p.endswith("*") else {"exact": p})}} for p in paths]}},
            {"or_rules": {"rules": [
                {"header": {"name": ":method", "string_match": {"exact": m}}} for m in methods]}},
        ]}}

    def principal(id_):
        return {"authenticated": {"principal_name": {"exact": id_}}}

    deny = {"policies": {"nobody-reaches-admin": {
        "permissions": [{"or_rules": {"rules": [
            {"url_path": {"path": {"exact": "/admin"}}}, {"url_path": {"path": {"prefix": "/admin/"}}}]}}],
        "principals": [{"any": True}]}}}
    allow = {}
    for i in range(18):
        allow[f"team{i}-may-call-svc{i}"] = {
            "permissions": [path_method([f"/v1/svc{i}", f"/v1/svc{i}/*"], ["GET", "POST"])],
            "principals": [principal(f"spiffe://cluster.local/ns/team{i}/sa/svc{i}")]}
    allow["checkout-may-call"] = {
        "permissions": [path_method(["/get", "/post", "/orders"], ["GET", "POST"])],
        "principals": [principal(CHECKOUT)]}
    if not mtls:
        allow["default-allow"] = {"permissions": [{"any": True}], "principals": [{"any": True}]}
    typ = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
    return [
        {"name": "rbac-deny", "typed_config": {"@type": typ, "rules": {"action": "DENY", **deny}}},
        {"name": "rbac-allow", "typed_config": {"@type": typ, "rules": {"action": "ALLOW", "policies": allow}}},
    ]


ACCESS_LOG_FORMAT = {
    "start_time": "%START_TIME%", "method": "%REQ(:METHOD)%", "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%", "response_code": "%RESPONSE_CODE%", "response_flags": "%RESPONSE_FLAGS%",
    "bytes_received": "%BYTES_RECEIVED%", "bytes_sent": "%BYTES_SENT%", "duration": "%DURATION%",
    "upstream_host": "%UPSTREAM_HOST%", "downstream_peer_uri_san": "%DOWNSTREAM_PEER_URI_SAN%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%", "request_id": "%REQ(X-REQUEST-ID)%",
    "authority": "%REQ(:AUTHORITY)%", "user_agent": "%REQ(USER-AGENT)%",
}


def hcm(variant, mtls, a):
    filters = []
    if variant in a.compare:
        filters.append(wasm_filter(
            f"cmp-{variant}", a.compare[variant], pmg_config(True, mtls),
            {"PCI_MESH_GUARD_AUDIT_KEY": "bench-audit-key-0123456789"}))
    elif variant == "pmg-all-log":
        filters.append(wasm_filter(
            variant, a.pmg, pmg_config(True, mtls, "log"),
            {"PCI_MESH_GUARD_AUDIT_KEY": "bench-audit-key-0123456789"}))
    elif variant in ("noop", "copy-back", "skeleton"):
        filters.append(wasm_filter(f"ref-{variant}", a.reference, variant))
    elif variant in ("noop-native", "skeleton-native"):
        filters.append(native_filter(variant, "pmg_reference_module", variant.split("-")[0]))
    elif variant.startswith("pmg-native-"):
        # The audit key comes from the sidecar's environment (Envoys.start).
        filters.append(native_filter(variant, "pci_mesh_guard", pmg_config(variant in MASKING, mtls)))
    elif variant == "rbac+log":
        filters += rbac_filters(mtls)
    elif variant.startswith("pmg-"):
        filters.append(wasm_filter(
            f"{variant}", a.pmg, pmg_config(variant == "pmg-all", mtls),
            {"PCI_MESH_GUARD_AUDIT_KEY": "bench-audit-key-0123456789"}))
    filters.append({"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})
    config = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": variant, "normalize_path": True, "merge_slashes": True,
        "route_config": {"virtual_hosts": [{"name": "api", "domains": ["*"], "routes": [
            {"match": {"path": "/get"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}},
            {"match": {"prefix": "/"}, "route": {"cluster": "backend", "timeout": "0s"}},
        ]}]},
        "http_filters": filters,
    }
    if variant == "rbac+log":
        config["access_log"] = [{"name": "envoy.access_loggers.file", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": os.path.join(a.work, "access.log"),
            "log_format": {"json_format": ACCESS_LOG_FORMAT}}}]
    elif variant.startswith("pmg-") or variant in a.compare or variant in ("skeleton", "skeleton-native"):
        # The access_log sink's events, as envoy-config/server-sidecar.yaml writes them: the native
        # builds' streams selected by the metadata they mark, the wasm builds' by an expression.
        config["access_log"] = [{"name": "envoy.access_loggers.file", "filter": audit_log_filter(variant in NATIVE and variant not in OPTIONAL),
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": os.path.join(a.work, "audit.log"),
                "log_format": {"text_format_source": {"inline_string": "%FILTER_STATE(wasm.pmg_audit:PLAIN)%\n"}}}}]
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": config}


def audit_log_filter(native):
    """The access log filter that selects the streams carrying an access event."""
    if native:
        return {"metadata_filter": {"match_if_key_not_found": False, "matcher": {
            "filter": "pci_mesh_guard", "path": [{"key": "audit_event"}],
            "value": {"bool_match": True}}}}
    return {"extension_filter": {
        "name": "envoy.access_loggers.extension_filters.cel", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
            "expression": "'wasm.pmg_audit' in filter_state"}}}


def tls_context(pki, name, require_client=True, upstream=False):
    common = {
        "tls_certificates": [{"certificate_chain": {"filename": f"{pki}/{name}.pem"},
                              "private_key": {"filename": f"{pki}/{name}.key"}}],
        "validation_context": {"trusted_ca": {"filename": f"{pki}/ca.pem"}},
    }
    if upstream:
        return {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": "payments-api.local", "common_tls_context": common}}
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "require_client_certificate": require_client, "common_tls_context": common}}


def cluster(name, port, tls=None):
    c = {"name": name, "type": "STATIC", "connect_timeout": "2s",
         "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
             {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}
    if tls:
        c["transport_socket"] = tls
    return c


def listener(name, port, filters, tls=None):
    chain = {"filters": filters}
    if tls:
        chain["transport_socket"] = tls
    return {"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [chain]}


def admin():
    return {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}


def configs(a, ports):
    pki = os.path.join(a.work, "pki")
    backend = {"admin": admin(), "static_resources": {"listeners": [listener("backend", ports["backend"], [{
        "name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "backend",
            "route_config": {"max_direct_response_body_size_bytes": 4 << 20, "virtual_hosts": [
                {"name": "backend", "domains": ["*"], "routes": [
                    {"match": {"path": "/orders"}, "direct_response": {
                        "status": 200, "body": {"filename": os.path.join(a.work, "orders.json")}},
                     "response_headers_to_add": [{"header": {"key": "content-type", "value": "application/json"}}]},
                    {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "{\"ok\":true}"}}},
                ]}]},
            "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}])]}}
    sidecar_listeners, client_listeners, client_clusters = [], [], []
    for v in a.variants:
        sidecar_listeners.append(listener(f"plain-{v}", ports[("plain", v)], [hcm(v, False, a)]))
        sidecar_listeners.append(listener(f"mtls-{v}", ports[("mtls", v)], [hcm(v, True, a)],
                                          tls_context(pki, "payments-api")))
        client_clusters.append(cluster(f"to-{v}", ports[("mtls", v)], tls_context(pki, "checkout", upstream=True)))
        client_listeners.append(listener(f"client-{v}", ports[("client", v)], [{
            "name": "envoy.filters.network.http_connection_manager", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "client",
                "route_config": {"virtual_hosts": [{"name": "out", "domains": ["*"], "routes": [
                    {"match": {"prefix": "/"}, "route": {"cluster": f"to-{v}", "timeout": "0s"}}]}]},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]))
    sidecar = {"admin": admin(), "static_resources": {
        "listeners": sidecar_listeners, "clusters": [cluster("backend", ports["backend"])]}}
    client = {"admin": admin(), "static_resources": {"listeners": client_listeners, "clusters": client_clusters}}
    return {"backend": backend, "sidecar": sidecar, "client": client}


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------

class Envoys:
    def __init__(self, a):
        self.a, self.procs = a, []

    def start(self, name, config):
        path = os.path.join(self.a.work, f"{name}.json")
        with open(path, "w") as f:
            json.dump(config, f)
        admin_file = os.path.join(self.a.work, f"{name}.admin")
        log = open(os.path.join(self.a.work, f"{name}.log"), "w")
        # The native variants' modules, by name from one directory; the native build's audit key.
        env = dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=os.path.join(self.a.work, "modules"),
                   PCI_MESH_GUARD_AUDIT_KEY="bench-audit-key-0123456789")
        p = subprocess.Popen([self.a.envoy, "-c", path, "--concurrency", "1", "--use-dynamic-base-id",
                              "--admin-address-path", admin_file, "--log-level", "info"],
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        self.procs.append(p)
        deadline = time.time() + 60
        while time.time() < deadline:
            if p.poll() is not None:
                sys.exit(f"{name} Envoy exited during start-up; see {log.name}")
            try:
                addr = open(admin_file).read().strip()
                if addr and urllib.request.urlopen(f"http://{addr}/ready", timeout=1).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        sys.exit(f"{name} Envoy not ready after 60 s; see {log.name}")

    def stop(self):
        # SIGTERM: Envoy flushes its access logs on the way out.
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


COMPARED = set()


def check(port, path, variant):
    """One request before measuring: the variant must answer 200, and pmg-all must mask."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).read()
    if path == "/orders":
        masked = PANS[0].encode() not in body
        if masked != (variant in MASKING or variant in COMPARED):
            sys.exit(f"{variant}: card numbers {'passed' if not masked else 'masked'} unexpectedly")


def wrk(a, port, path, lua):
    cmd = ["wrk", "-t1", f"-c{a.connections}", f"-d{a.duration}s", f"http://127.0.0.1:{port}{path}"]
    if lua:
        cmd[1:1] = ["-s", lua]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if non2xx:
        sys.exit(f"wrk on :{port}{path}: {non2xx.group(1)} non-2xx answers\n{out}")
    if not m:
        sys.exit(f"wrk on :{port}{path}: no rate\n{out}")
    return float(m.group(1)), errors.group(0) if errors else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--envoy", required=True)
    ap.add_argument("--pmg", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--native", help="the native build, libpci_mesh_guard.so (for the native variants)")
    ap.add_argument("--reference-module",
                    help="bench/reference-module's libpmg_reference_module.so (noop-native, skeleton-native)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--variants", default=",".join(v for v in VARIANTS if v not in OPTIONAL),
                    help="the built-in variants to run (ratios to a variant left out are not printed)")
    ap.add_argument("--compare", action="append", default=[], metavar="LABEL=WASM",
                    help="also measure this build of pci-mesh-guard, everything on, as variant LABEL")
    a = ap.parse_args()
    a.compare = dict(c.split("=", 1) for c in a.compare)
    chosen = [v for v in a.variants.split(",") if v]
    for v in chosen:
        if v not in VARIANTS:
            sys.exit(f"unknown variant {v!r}; variants: {', '.join(VARIANTS)}")
    if any(v in NATIVE for v in chosen) and not (a.native and a.reference_module):
        sys.exit("the native variants need --native and --reference-module")
    a.variants = chosen + list(a.compare)
    COMPARED.update(a.compare)
    shapes = [s for s in a.shapes.split(",") if s]
    for s in shapes:
        if s not in SHAPES:
            sys.exit(f"unknown shape {s!r}; shapes: {', '.join(SHAPES)}")

    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    modules = os.path.join(a.work, "modules")
    os.makedirs(modules)
    for so in (a.native, a.reference_module):
        if so:
            os.symlink(os.path.abspath(so), os.path.join(modules, os.path.basename(so)))
    subprocess.run([os.path.join(ROOT, "scripts/pki.sh"), os.path.join(a.work, "pki")],
                   check=True, stdout=subprocess.DEVNULL)
    orders = json_records(1 << 20, 8 << 10, seed=1)
    with open(os.path.join(a.work, "orders.json"), "wb") as f:
        f.write(orders)
    post = json_records(16 << 10, 5 << 10, seed=2)
    lua = os.path.join(a.work, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["content-type"] = "application/json"\n')
        f.write(f"wrk.body = {json.dumps(post.decode())}\n")

    ports = {"backend": free_port()}
    for v in a.variants:
        for kind in ("plain", "mtls", "client"):
            ports[(kind, v)] = free_port()
    cfg = configs(a, ports)
    envoys = Envoys(a)
    results = {(s, v): [] for s in shapes for v in a.variants}
    try:
        for name in ("backend", "sidecar", "client"):
            envoys.start(name, cfg[name])
        for s in shapes:
            path, _, _, mtls = SHAPES[s]
            for v in a.variants:
                check(ports[("client" if mtls else "plain", v)], path, v)
        started = time.time()
        for r in range(a.rounds):
            for s in shapes:
                path, _, unit, mtls = SHAPES[s]
                n = len(a.variants)
                order_ = a.variants[r % n:] + a.variants[:r % n]
                for v in order_:
                    port = ports[("client" if mtls else "plain", v)]
                    rate, errors = wrk(a, port, path, lua if s == "POST 16 KiB" else None)
                    value = rate * len(orders) / 1e6 if unit == "MB/s" else rate
                    results[(s, v)].append(value)
                    print(f"round {r + 1}/{a.rounds}  {s:<15} {v:<10} {value:>10.1f} {unit} {errors}",
                          file=sys.stderr, flush=True)
                    # The sidecar log and access log grow with every request; keep the disk calm.
                    for f in ("sidecar.log", "access.log", "audit.log"):
                        p = os.path.join(a.work, f)
                        if os.path.exists(p) and os.path.getsize(p) > (256 << 20):
                            os.truncate(p, 0)
        elapsed = time.time() - started
    finally:
        envoys.stop()

    audit_log = os.path.join(a.work, "audit.log")
    events = 0
    if os.path.exists(audit_log):
        with open(audit_log, "rb") as f:
            events = sum(1 for line in f if line.startswith(b'{"schema":"pci-mesh-guard/audit/v1"'))
    if events == 0 and any(v.startswith("pmg-") and v != "pmg-all-log" or v in COMPARED for v in a.variants):
        sys.exit("the access_log sink's events never reached audit.log")
    medians = {k: statistics.median(v) for k, v in results.items()}
    out = {"rounds": a.rounds, "duration_s": a.duration, "connections": a.connections,
           "measuring_s": round(elapsed), "shapes": {}}
    for s in shapes:
        unit = SHAPES[s][2]
        def floor(v):
            # A native filter's floor is the native no-op; a wasm filter's, the wasm no-op (copy-back
            # where bodies pass).
            if v in NATIVE:
                return "noop-native"
            return "copy-back" if s in BODY_SHAPES else "noop"
        out["shapes"][s] = {"unit": unit, "variants": {
            v: {"median": round(medians[(s, v)], 1), "runs": [round(x, 1) for x in results[(s, v)]],
                "floor": floor(v),
                **{key: (round(medians[(s, v)] / medians[(s, ref)], 3) if (s, ref) in medians else None)
                   for key, ref in (("vs_floor", floor(v)), ("vs_noop", "noop"), ("vs_none", "none"),
                                    ("vs_rbac_log", "rbac+log"), ("vs_skeleton", "skeleton"),
                                    ("vs_noop_native", "noop-native"),
                                    ("vs_skeleton_native", "skeleton-native"))}}
            for v in a.variants}}
    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(table(out))


def table(out):
    lines = [f"{out['rounds']} rounds of {out['duration_s']} s per variant and shape, wrk -t1 "
             f"-c{out['connections']}, one Envoy worker; medians, and ratios of medians.", "",
             "| shape | variant | median | to the floor | to no-op wasm | to no-op native | to no filter "
             "| to RBAC + access log | to skeleton | to native skeleton |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s, d in out["shapes"].items():
        for v, r in d["variants"].items():
            def ratio(key):
                return "-" if r[key] is None else f"{r[key]:.2f}"
            lines.append(f"| {s} | {v} | {r['median']:,.0f} {d['unit']} | {ratio('vs_floor')} ({r['floor']}) | "
                         f"{ratio('vs_noop')} | {ratio('vs_noop_native')} | {ratio('vs_none')} | "
                         f"{ratio('vs_rbac_log')} | {ratio('vs_skeleton')} | {ratio('vs_skeleton_native')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
