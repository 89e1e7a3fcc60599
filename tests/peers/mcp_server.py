"""An MCP server built with the official Python SDK, for Patchbay's tests.

    mcp_server.py PORT [--era both|modern|legacy] [--bearer TOKEN] [--transport http|stdio]

`--era modern` serves only the stateless revision 2026-07-28 (an `initialize` or a session-era
request is refused, naming the versions it speaks); `--era legacy` serves only the session era
(a 2026-07-28 request is refused the way servers of that era refuse an unknown version);
`both` is the SDK's own dual-era serving. With `--bearer`, every request must carry that token.
Prints READY once it listens. Its tools: echo, add, fail, slow, lines.
"""

import argparse
import asyncio
import json
import sys

from mcp.server.mcpserver import MCPServer

MODERN = "2026-07-28"
HANDSHAKE = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")


def build() -> MCPServer:
    server = MCPServer(name="patchbay-test-python", version="1.0.0")

    @server.tool()
    def echo(message: str) -> str:
        """Echoes the message back."""
        return f"Echo: {message}"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Adds two integers."""
        return a + b

    @server.tool()
    def fail(reason: str = "asked to fail") -> str:
        """Always fails (an error result)."""
        raise ValueError(reason)

    @server.tool()
    async def slow(seconds: float) -> str:
        """Answers after some seconds."""
        await asyncio.sleep(seconds)
        return f"slept {seconds}"

    @server.tool()
    def lines(count: int) -> str:
        """Answers `count` lines of text."""
        return "\n".join(f"line {i}" for i in range(count))

    return server


def error_body(code: int, message: str, data=None) -> bytes:
    error = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()


class Gate:
    """Refuses what the chosen era does not speak, and requests without the bearer."""

    def __init__(self, app, era: str, bearer: str | None):
        self.app, self.era, self.bearer = app, era, bearer

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if self.bearer is not None and headers.get("authorization") != f"Bearer {self.bearer}":
            return await respond(
                send,
                401,
                b'{"error": "unauthorized"}',
                [(b"www-authenticate", b'Bearer realm="mcp"')],
            )
        version = headers.get("mcp-protocol-version")
        method = scope["method"]
        if self.era == "modern":
            if method in ("GET", "DELETE"):
                return await respond(send, 405, b"")
            if version is None or version in HANDSHAKE:
                body = error_body(
                    -32022,
                    f"Unsupported protocol version; this server speaks {MODERN}",
                    {"supported": [MODERN], "requested": version},
                )
                return await respond(send, 400, body)
        if self.era == "legacy" and version is not None and version not in HANDSHAKE:
            body = error_body(-32000, "Bad Request: Unsupported protocol version")
            return await respond(send, 400, body)
        return await self.app(scope, receive, send)


async def respond(send, status: int, body: bytes, extra=()):
    headers = [(b"content-type", b"application/json"), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--era", choices=["both", "modern", "legacy"], default="both")
    parser.add_argument("--bearer")
    parser.add_argument("--transport", choices=["http", "stdio"], default="http")
    args = parser.parse_args()
    server = build()
    if args.transport == "stdio":
        server.run("stdio")
        return
    import socket

    import uvicorn

    app = Gate(server.streamable_http_app(), args.era, args.bearer)
    # Listening before READY: connections made from then on wait in the backlog.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    config = uvicorn.Config(app, log_level="warning")
    print("READY", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
