#!/usr/bin/env python3
"""A local OTLP/HTTP logs receiver for the tests: every POST to /v1/logs is parsed into an
`ExportLogsServiceRequest` with the opentelemetry-proto definitions (unknown fields refused), and
one JSON line per request goes to --record: whether it was valid and the bodies of its records.

--mode ok       answer 200 {}
--mode partial  answer 200 with partialSuccess rejecting one record
--mode slow     wait --delay seconds, then answer 200
--mode 503      answer 503 (a collector in trouble)
--mode 500      answer 500 (a collector failing: not worth a retry)
--mode 429      answer 429 (a collector throttling: retried with backoff)
"""
import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        record = {"path": self.path, "content_type": self.headers.get("content-type"), "at": time.time()}
        try:
            req = json_format.Parse(body, logs_service_pb2.ExportLogsServiceRequest())
            record["valid"] = True
            record["records"] = [
                lr.body.string_value
                for rl in req.resource_logs
                for sl in rl.scope_logs
                for lr in sl.log_records
            ]
        except Exception as e:  # any parse failure is what the test must see
            record["valid"] = False
            record["error"] = str(e)
        with LOCK, open(self.server.record, "a") as f:
            f.write(json.dumps(record) + "\n")
        mode = self.server.mode
        status, out = 200, b"{}"
        if mode == "slow":
            time.sleep(self.server.delay)
        elif mode in ("503", "500", "429"):
            status, out = int(mode), b'{"error":"overloaded"}'
        elif mode == "partial":
            out = json.dumps({"partialSuccess": {"rejectedLogRecords": "1", "errorMessage": "one rejected"}}).encode()
        if not record["valid"]:
            status, out = 400, b'{"error":"invalid request"}'
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--record", required=True)
    ap.add_argument("--mode", default="ok", choices=["ok", "partial", "slow", "503", "500", "429"])
    ap.add_argument("--delay", type=float, default=5.0)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.record, server.mode, server.delay = args.record, args.mode, args.delay
    open(args.record, "a").close()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
