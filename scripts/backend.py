#!/usr/bin/env python3
"""The local mesh's backend: records every request it receives and answers with fixture bodies.

Each request becomes one JSON line in --record: method, path, headers, body length, SHA-256 and
(up to --keep bytes) the body itself, so tests and the demo can show what the backend really saw.

Answers:
  /fixture/<name>  the file <name> from --fixtures, with a content type guessed from its suffix;
                   with ?encoding=gzip, gzip-compressed and labelled so (whatever the request's
                   accept-encoding says, as a careless upstream would)
  /reset-midway    a JSON body with a card number, cut off after its first half by a TCP reset
  /v1/stream-card  a card number in a response header (x-card-on-file), and a chunked body whose
                   card number is split across two chunks written 50 ms apart
  anything else    {"ok": true, "received_bytes": N}
A request header `x-backend-status: NNN` sets the response status.
"""
import argparse
import gzip
import hashlib
import json
import mimetypes
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pci-mesh-guard-test-backend"
    # Headers and body leave in two writes: without TCP_NODELAY the body waits for the ACK of the
    # headers, which the peer delays (about 40 ms a response).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet: the record file is the log
        pass

    def read_body(self):
        """Reads a Content-Length or chunked body, hashing all of it, keeping a bounded prefix."""
        digest, kept, total = hashlib.sha256(), bytearray(), 0

        def take(data):
            nonlocal total
            digest.update(data)
            total += len(data)
            room = self.server.keep - len(kept)
            if room > 0:
                kept.extend(data[:room])

        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                while size > 0:
                    data = self.rfile.read(min(size, 1 << 16))
                    if not data:
                        raise ConnectionError("body ended early")
                    take(data)
                    size -= len(data)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                data = self.rfile.read(min(left, 1 << 16))
                if not data:
                    raise ConnectionError("body ended early")
                take(data)
                left -= len(data)
        return bytes(kept), total, digest.hexdigest()

    def handle_any(self):
        body, total, sha = self.read_body()
        record = {
            "method": self.command,
            "path": self.path,
            "headers": [[k.lower(), v] for k, v in self.headers.items()],
            "body_bytes": total,
            "body_sha256": sha,
            "body": body.decode("utf-8", "replace"),
            "body_truncated": total > len(body),
        }
        with LOCK, open(self.server.record, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

        if self.path.startswith("/reset-midway"):
            self.reset_midway()
            return
        if self.path.startswith("/v1/stream-card"):
            self.stream_card()
            return
        status = int(self.headers.get("x-backend-status", "200"))
        ctype, encoding = "application/json", None
        if self.path.startswith("/fixture/"):
            name, _, query = self.path[len("/fixture/"):].partition("?")
            name = os.path.basename(name)
            try:
                with open(os.path.join(self.server.fixtures, name), "rb") as f:
                    out = f.read()
                ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
                if "encoding=gzip" in query:
                    out, encoding = gzip.compress(out), "gzip"
            except OSError:
                status, out = 404, b'{"error":"no such fixture"}'
        else:
            out = json.dumps({"ok": True, "received_bytes": total}).encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        if encoding:
            self.send_header("content-encoding", encoding)
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    def stream_card(self):
        """A card number in a header, and one in a body that streams in two chunks."""
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("x-card-on-file", "5555555555554444")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for part in (b"card on file: 4111 1111 11", b"11 1111, thank you"):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
            time.sleep(0.05)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def reset_midway(self):
        """Promises a body, sends the first half of it (a card number among it), then resets."""
        out = b'{"cards":["4111 1111 1111 1111","5555555555554444"],"pad":"' + b"x" * 4000 + b'"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out[: len(out) // 2])
        self.wfile.flush()
        self.close_connection = True
        # SO_LINGER 0: close() sends RST rather than FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def finish(self):
        try:
            super().finish()
        except (OSError, ValueError):
            pass  # the connection was reset on purpose

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    ap.add_argument("--port-file", required=True, help="where to write the port it listens on")
    ap.add_argument("--record", required=True, help="JSON-lines file of received requests")
    ap.add_argument("--fixtures", required=True, help="directory of fixture bodies")
    ap.add_argument("--keep", type=int, default=1 << 20, help="body bytes kept per request")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.record, server.fixtures, server.keep = args.record, args.fixtures, args.keep
    open(args.record, "a").close()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
