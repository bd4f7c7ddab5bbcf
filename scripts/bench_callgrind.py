#!/usr/bin/env python3
"""What a keep-alive GET costs in Envoy per variant, counted by valgrind instead of timed: one
sidecar (the listeners of scripts/bench_envoy.py, plaintext, one worker) runs under
`valgrind --tool=callgrind --cache-sim=yes`; each variant gets warm-up requests, then N requests
between two dumps. Instruction counts and simulated L1 misses do not move with the machine's load,
so variants compare exactly from run to run.

Valgrind's CPU has no SHA extensions, so the seal's SHA-256 runs in software here; the table gives
those instructions apart, and an estimate of the request's cost on a CPU with them: instructions,
less the software SHA-256, plus a few thousand for the seal, plus ten per L1 miss. The estimate's
ratios track those of scripts/bench-envoy.sh.
"""
import argparse
import glob
import http.client
import json
import os
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_envoy as bench  # noqa: E402

VARIANTS = ["noop-native", "rbac+log", "skeleton-native", "pmg-native-authz", "pmg-native-all"]
# Accepted by --variants, not run by default (see scripts/bench_envoy.py).
OPTIONAL = ["pmg-native-all-cel"]
# What the seal costs with SHA instructions, as instructions (an HMAC over ~1 KB is ~20 blocks).
SEAL_WITH_SHA_NI = 3000
MISS = 10


def sidecar(a, ports):
    listeners = [bench.listener(f"plain-{v}", ports[v], [bench.hcm(v, False, a)]) for v in a.variants]
    return {"admin": bench.admin(), "static_resources": {
        "listeners": listeners, "clusters": [bench.cluster("backend", 9)]}}


def get(port, n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(n):
        c.request("GET", "/get")
        r = c.getresponse()
        r.read()
        if r.status != 200:
            sys.exit(f"port {port}: status {r.status}")
    c.close()


def software_sha(path):
    """Inclusive instructions of sha2's compression function, from callgrind_annotate."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True).stdout
    best = 0
    for line in out.splitlines():
        if "sha2::sha256::compress256 [" in line:
            best = max(best, int(line.split()[0].replace(",", "")))
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--envoy", required=True)
    ap.add_argument("--native", required=True)
    ap.add_argument("--reference-module", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANTS + OPTIONAL:
            sys.exit(f"unknown variant {v!r}; variants: {', '.join(VARIANTS + OPTIONAL)}")
    a = types.SimpleNamespace(variants=variants, compare={}, work=args.work, pmg=None, reference=None)
    os.makedirs(os.path.join(a.work, "modules"), exist_ok=True)
    for so in (args.native, args.reference_module):
        link = os.path.join(a.work, "modules", os.path.basename(so))
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(os.path.abspath(so), link)
    for f in glob.glob(os.path.join(a.work, "cg.out*")):
        os.remove(f)
    ports = {v: bench.free_port() for v in variants}
    config = os.path.join(a.work, "sidecar.json")
    with open(config, "w") as f:
        json.dump(sidecar(a, ports), f)
    admin_file = os.path.join(a.work, "admin")
    if os.path.exists(admin_file):
        os.remove(admin_file)
    env = dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=os.path.join(a.work, "modules"),
               PCI_MESH_GUARD_AUDIT_KEY="bench-audit-key-0123456789")
    out = os.path.join(a.work, "cg.out")
    log = open(os.path.join(a.work, "envoy.log"), "w")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--cache-sim=yes", "--instr-atstart=no",
                          f"--callgrind-out-file={out}", args.envoy, "-c", config, "--concurrency", "1",
                          "--use-dynamic-base-id", "--admin-address-path", admin_file, "--log-level", "warn"],
                         env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while True:
            if p.poll() is not None:
                sys.exit(f"envoy under valgrind exited; see {log.name}")
            if os.path.exists(admin_file) and open(admin_file).read().strip():
                try:
                    c = http.client.HTTPConnection(open(admin_file).read().strip(), timeout=5)
                    c.request("GET", "/ready")
                    if c.getresponse().status == 200:
                        break
                except OSError:
                    pass
            if time.time() > deadline:
                sys.exit("envoy under valgrind did not become ready in 5 minutes")
            time.sleep(1)
        ctl = ["callgrind_control"]
        subprocess.run(ctl + ["-i", "on", str(p.pid)], check=True, capture_output=True)
        for v in variants:
            get(ports[v], 50)
        for v in variants:
            subprocess.run(ctl + ["-z", str(p.pid)], check=True, capture_output=True)
            get(ports[v], args.requests)
            subprocess.run(ctl + ["-d", v, str(p.pid)], check=True, capture_output=True)
    finally:
        p.terminate()
        p.wait(timeout=120)
    rows = {}
    for path in glob.glob(out + ".*"):
        text = open(path).read()
        # "desc: Trigger: dump <variant>", as callgrind_control -d names the dump.
        variant = next((ln.split()[-1] for ln in text.splitlines() if ln.startswith("desc: Trigger")), "")
        events = next(ln.split()[1:] for ln in text.splitlines() if ln.startswith("events:"))
        totals = next(ln.split()[1:] for ln in text.splitlines() if ln.startswith("totals:"))
        t = dict(zip(events, (int(x) for x in totals)))
        n = args.requests
        sha = software_sha(path)
        misses = t["I1mr"] + t["D1mr"] + t["D1mw"]
        est = t["Ir"] - sha + (SEAL_WITH_SHA_NI * n if sha else 0) + MISS * misses
        rows[variant] = (t["Ir"] / n, sha / n, t["I1mr"] / n, (t["D1mr"] + t["D1mw"]) / n, est / n)
    base = rows.get("rbac+log")
    print(f"{args.requests} keep-alive GETs per variant, Envoy under callgrind with cache simulation; per GET:")
    print()
    print("| variant | instructions | of which SHA-256 in software | L1 misses (instructions, data) "
          "| estimate with SHA instructions | estimate to RBAC + access log |")
    print("|---|---:|---:|---:|---:|---:|")
    for v in variants:
        if v not in rows:
            continue
        ir, sha, i1, d1, est = rows[v]
        ratio = f"{base[4] / est:.2f}" if base else "-"
        print(f"| {v} | {ir:,.0f} | {sha:,.0f} | {i1:,.0f}, {d1:,.0f} | {est:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
