"""A session-era MCP server (plain JSON-RPC, no SDK) that misbehaves on purpose.

    mcp_misbehaving.py MODE [--port PORT]      (HTTP: Streamable HTTP, JSON answers)
    mcp_misbehaving.py MODE --stdio            (stdio: newline-delimited JSON-RPC)

MODE:
  paged          tools/list over three pages (cursors "p2", "p3"): a well-behaved paginator
  repeat-cursor  tools/list answers the same cursor forever
  silent         accepts requests and never answers them (HTTP: holds the request open)
  huge           tools/call answers 50 MB
  die            the process exits in the middle of tools/call
Over HTTP, GET /stats answers how many times each method was asked (initialize included), and
DELETE ends a session (counted as "delete").
Prints READY once it listens (HTTP) or at once (stdio, on stderr).
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOOLS = [
    {"name": f"tool{i}", "description": f"Tool number {i}", "inputSchema": {"type": "object"}}
    for i in range(7)
]


def answer(mode: str, message: dict):
    """The result of one request, or None to stay silent."""
    method = message.get("method")
    params = message.get("params") or {}
    if method == "initialize":
        return {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": f"misbehaving-{mode}", "version": "0.1"},
        }
    if mode == "silent":
        return None
    if method == "tools/list":
        cursor = params.get("cursor")
        if mode == "repeat-cursor":
            return {"tools": TOOLS[:1], "nextCursor": "again"}
        page = {None: 0, "p2": 1, "p3": 2}.get(cursor, 0)
        chunk = TOOLS[page * 3 : page * 3 + 3]
        result = {"tools": chunk}
        if page < 2:
            result["nextCursor"] = f"p{page + 2}"
        return result
    if method == "tools/call":
        if mode == "die":
            sys.stderr.write("dying in the middle of a call\n")
            sys.stderr.flush()
            os._exit(3)
        if mode == "huge":
            return {"content": [{"type": "text", "text": "x" * (50 * 1024 * 1024)}]}
        return {"content": [{"type": "text", "text": "ok"}]}
    if method == "ping":
        return {}
    return {"__error__": {"code": -32601, "message": f"method not found: {method}"}}


def reply(message: dict, result) -> dict:
    if "__error__" in result:
        return {"jsonrpc": "2.0", "id": message["id"], "error": result["__error__"]}
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def serve_stdio(mode: str) -> None:
    sys.stderr.write("READY\n")
    sys.stderr.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        message = json.loads(line)
        if "id" not in message:
            continue
        result = answer(mode, message)
        if result is None:
            continue
        sys.stdout.write(json.dumps(reply(message, result)) + "\n")
        sys.stdout.flush()


def serve_http(mode: str, port: int) -> None:
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def count(name: str) -> None:
        with lock:
            counts[name] = counts.get(name, 0) + 1

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/stats":
                with lock:
                    return self.send(200, dict(counts))
            self.send_response(405)
            self.send_header("content-length", "0")
            self.end_headers()

        def do_DELETE(self):
            count("delete")
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            message = json.loads(self.rfile.read(length) or b"{}")
            version = self.headers.get("mcp-protocol-version")
            if version == "2026-07-28":
                # A session-era server: the modern revision is an unknown version to it.
                return self.send(400, {"jsonrpc": "2.0", "id": None,
                                       "error": {"code": -32000, "message": "Bad Request"}})
            count(message.get("method", "?"))
            if "id" not in message:
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            result = answer(mode, message)
            if result is None:
                time.sleep(3600)
                return
            extra = {"mcp-session-id": "s1"} if message.get("method") == "initialize" else {}
            self.send(200, reply(message, result), extra)

        def send(self, status, body, extra=None):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("READY", flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["paged", "repeat-cursor", "silent", "huge", "die"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--stdio", action="store_true")
    args = parser.parse_args()
    if args.stdio:
        serve_stdio(args.mode)
    else:
        serve_http(args.mode, args.port)


if __name__ == "__main__":
    main()
