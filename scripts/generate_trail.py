#!/usr/bin/env python3
"""Generates a valid, keyed audit trail of the size of a real mesh, to measure `verify-audit` and
`evidence` on (scripts/bench-evidence.sh). Each workload's sidecar writes one chain of access
events, sealed as the plugin seals them (HMAC-SHA256 over the previous mac and the canonical bytes,
`kid` named); the chains are spread over one log file per node. Deterministic for given arguments.

usage: generate_trail.py --events N --workloads W --flows F --nodes K --key KEY OUT_DIR
"""
import argparse
import hashlib
import hmac
import os
import random

SCHEMA = "pci-mesh-guard/audit/v1"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--workloads", type=int, default=20)
    p.add_argument("--flows", type=int, default=100)
    p.add_argument("--nodes", type=int, default=8)
    p.add_argument("--key", required=True)
    p.add_argument("--kid", default=None)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("out")
    a = p.parse_args()
    rng = random.Random(a.seed)
    key = a.key.encode()
    kid = a.kid or hashlib.sha256(key).hexdigest()[:16]
    namespaces = max(1, a.workloads // 10)
    workloads = [
        f"spiffe://cluster.local/ns/ns{i % namespaces:03d}/sa/svc{i:04d}" for i in range(a.workloads)
    ]
    # The flows are distinct (caller, callee) pairs, shaped as a mesh is: most calls stay in the
    # caller's namespace, many go to a few shared namespaces (the first three), a few anywhere.
    by_ns = {}
    for w in workloads:
        by_ns.setdefault(w.split("/")[4], []).append(w)
    shared = [w for ns in sorted(by_ns)[:3] for w in by_ns[ns]]
    flows, seen = [], set()
    tries = 0
    while len(flows) < min(a.flows, a.workloads * (a.workloads - 1)) and tries < 100 * a.flows:
        tries += 1
        caller = workloads[len(flows) % a.workloads]
        r = rng.random()
        if r < 0.70:
            callee = rng.choice(by_ns[caller.split("/")[4]])
        elif r < 0.95:
            callee = rng.choice(shared)
        else:
            callee = rng.choice(workloads)
        if caller != callee and (caller, callee) not in seen:
            seen.add((caller, callee))
            flows.append((caller, callee))
    chains = {w: hashlib.sha256(f"{a.seed}/{w}".encode()).hexdigest()[:32] for w in workloads}
    state = {w: (0, bytes(32)) for w in workloads}
    os.makedirs(a.out, exist_ok=True)
    files = [open(os.path.join(a.out, f"node{n:02d}.log"), "w", buffering=1 << 20) for n in range(a.nodes)]
    node_of = {w: i % a.nodes for i, w in enumerate(workloads)}
    keyed = hmac.new(key, digestmod=hashlib.sha256)
    t0 = 1_796_000_000
    for i in range(a.events):
        caller, callee = flows[i % len(flows)]
        seq, prev = state[callee]
        seq += 1
        k = i % 20
        deny = k == 0
        dry = k == 1
        # Card numbers come from the payment namespaces only (the first five).
        pan = 1 if k in (2, 3, 4) and int(caller.split("/")[4][2:]) < 5 else 0
        secs = t0 + i // 1000
        ts = "%s.%03dZ" % (_iso(secs), i % 1000)
        ev = (
            '{"schema":"%s","ts":"%s","event":"access","decision":"%s","enforced":%s,"mode":"%s",'
            '"reason":"%s","rule":%s,"principal":"%s","workload":"%s","identity_source":"certificate",'
            '"source":"10.%d.%d.%d:%d","tls_version":"TLSv1.3","request":{"method":"%s","path":"/v1/items/%d",'
            '"host":"svc","id":"req-%d"},"status":%d,"duration_ms":%d,"redaction":{"request":"%s","response":"%s"},'
            '"pan":{"request_headers":{"found":0,"redacted":0,"passed":0},"request_body":{"found":%d,"redacted":%d,"passed":%d},'
            '"response_headers":{"found":0,"redacted":0,"passed":0},"response_body":{"found":0,"redacted":0,"passed":0}}'
            % (
                SCHEMA, ts, "deny" if deny or dry else "allow", "false" if dry else "true",
                "dry_run" if dry else "enforce", "default" if deny or dry else "rule",
                "null" if deny or dry else '"allow-%d"' % (i % len(flows) % 50), caller, callee,
                i % 250, i // 250 % 250, i % 7, 30000 + i % 30000, "POST" if pan else "GET",
                i % 1000, i, 403 if deny else 200, i % 9, "dry_run" if dry else "mask",
                "dry_run" if dry else "mask", pan, 0 if dry else pan, pan if dry else 0,
            )
        )
        canon = ev + ',"seq":%d,"chain":"%s","alg":"hmac-sha256","kid":"%s"}' % (seq, chains[callee], kid)
        m = keyed.copy()
        m.update(prev)
        m.update(canon.encode())
        mac = m.digest()
        state[callee] = (seq, mac)
        files[node_of[callee]].write(canon[:-1] + ',"mac":"%s"}\n' % mac.hex())
    for f in files:
        f.close()


def _iso(secs):
    days, sod = divmod(secs, 86400)
    # Days since the epoch to a civil date (proleptic Gregorian).
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (m <= 2)
    return "%04d-%02d-%02dT%02d:%02d:%02d" % (y, m, d, sod // 3600, sod // 60 % 60, sod % 60)


if __name__ == "__main__":
    main()
