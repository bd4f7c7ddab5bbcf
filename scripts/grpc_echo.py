#!/usr/bin/env python3
"""A gRPC service and client for the end-to-end tests (grpcio, no generated code).

    grpc_echo.py serve --port-file F --record R
        serves pmg.test.Payments/Charge on 127.0.0.1 (HTTP/2 cleartext): records each request
        message it receives (one JSON line in R), answers a message whose text holds a card on
        file and ends in an undecided digit group, and sends trailing metadata with a card number.
    grpc_echo.py call --port P --caller NAME --text TEXT
        calls Charge through the client sidecar as workload NAME and prints one JSON object: the
        status code, the reply's text (decoded from the protobuf message), its size, and the
        trailing metadata.

Messages are protobuf with one field: `string text = 1;`, encoded and decoded here by hand.
"""
import argparse
import json
import os
import sys
import threading
from concurrent import futures

import grpc

METHOD = "/pmg.test.Payments/Charge"
LOCK = threading.Lock()
# Ends in "4111 1111": the redactor cannot decide it before the body ends, so it holds those
# bytes back until the trailers come.
REPLY = "charged; card on file 4111 1111 1111 1111; reference 4111 1111"


def encode(text):
    data = text.encode()
    n, varint = len(data), bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        varint.append(b | (0x80 if n else 0))
        if not n:
            break
    return b"\x0a" + bytes(varint) + data


def decode(message):
    """The text of field 1; raises ValueError if the message is not that."""
    if not message or message[0] != 0x0A:
        raise ValueError("no field 1")
    n, shift, i = 0, 0, 1
    while True:
        b = message[i]
        n |= (b & 0x7F) << shift
        shift += 7
        i += 1
        if not b & 0x80:
            break
    text = message[i:i + n]
    if len(text) != n or i + n != len(message):
        raise ValueError("length does not match")
    return text.decode()


def serve(args):
    def charge(request, context):
        try:
            text, valid = decode(request), True
        except (ValueError, IndexError, UnicodeDecodeError):
            text, valid = request.hex(), False
        metadata = dict(context.invocation_metadata())
        with LOCK, open(args.record, "a") as f:
            f.write(json.dumps({"valid": valid, "text": text, "size": len(request),
                                "caller": metadata.get("x-forwarded-client-cert", "")}) + "\n")
        context.set_trailing_metadata((("x-card-echo", "5555 5555 5555 4444"),))
        return encode(REPLY)

    handler = grpc.method_handlers_generic_handler("pmg.test.Payments", {
        "Charge": grpc.unary_unary_rpc_method_handler(charge),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    open(args.record, "a").close()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, args.port_file)
    server.wait_for_termination()


def call(args):
    with grpc.insecure_channel(f"127.0.0.1:{args.port}") as channel:
        stub = channel.unary_unary(METHOD)
        try:
            reply, rpc = stub.with_call(encode(args.text), timeout=10,
                                        metadata=(("x-mesh-caller", args.caller),))
            out = {"code": "OK", "size": len(reply), "trailers": dict(rpc.trailing_metadata())}
            try:
                out["text"] = decode(reply)
            except (ValueError, IndexError, UnicodeDecodeError) as e:
                out["text"], out["undecodable"] = reply.hex(), str(e)
        except grpc.RpcError as e:
            out = {"code": e.code().name, "details": e.details(),
                   "trailers": dict(e.trailing_metadata() or ())}
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port-file", required=True)
    s.add_argument("--record", required=True)
    c = sub.add_parser("call")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--caller", required=True)
    c.add_argument("--text", required=True)
    args = ap.parse_args()
    serve(args) if args.cmd == "serve" else call(args)


if __name__ == "__main__":
    sys.exit(main())
