"""An MCP server built with the official Python SDK, for Patchbay's tests.

    mcp_server.py PORT [--era both|modern|legacy] [--bearer TOKEN] [--transport http|stdio]
                       [--auth-issuer URL [--step-up TOOL=SCOPE]]

`--era modern` serves only the stateless revision 2026-07-28 (an `initialize` or a session-era
request is refused, naming the versions it speaks); `--era legacy` serves only the session era
(a 2026-07-28 request is refused the way servers of that era refuse an unknown version);
`both` is the SDK's own dual-era serving. With `--bearer`, every request must carry that token.
With `--auth-issuer`, the server is protected by MCP authorization: the SDK's own resource
server (protected-resource metadata, 401 with `resource_metadata`) requiring the scope
`mcp:tools`, checking tokens by introspection at the issuer (RFC 7662, as client mcp-rs) and
accepting only tokens bound to this server (their audience); `--step-up TOOL=SCOPE` answers a
call of TOOL without SCOPE with 403 `insufficient_scope`.
Prints READY once it listens. Its tools: echo, add, fail, slow, progress, grow, lines, admin.
"""

import argparse
import asyncio
import base64
import json
import sys
import urllib.parse
import urllib.request

from mcp.server.mcpserver import Context, MCPServer

MODERN = "2026-07-28"
HANDSHAKE = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")


class Introspection:
    """Checks tokens at the authorization server (RFC 7662) as the resource server's client."""

    def __init__(self, issuer: str, resource: str):
        self.endpoint = issuer.rstrip("/") + "/token/introspection"
        self.resource = resource
        self.basic = base64.b64encode(b"mcp-rs:mcp-rs-secret").decode()

    def introspect(self, token: str) -> dict:
        body = f"token={urllib.parse.quote(token)}".encode()
        req = urllib.request.Request(
            self.endpoint,
            data=body,
            headers={
                "authorization": f"Basic {self.basic}",
                "content-type": "application/x-www-form-urlencoded",
            },
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    async def verify_token(self, token: str):
        from mcp.server.auth.provider import AccessToken

        info = await asyncio.to_thread(self.introspect, token)
        aud = info.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not info.get("active") or self.resource not in auds:
            return None
        return AccessToken(
            token=token,
            client_id=info.get("client_id", ""),
            scopes=str(info.get("scope", "")).split(),
            expires_at=info.get("exp"),
            resource=self.resource,
        )


def build(auth=None) -> MCPServer:
    if auth is None:
        server = MCPServer(name="patchbay-test-python", version="1.0.0")
    else:
        from mcp.server.auth.settings import AuthSettings

        issuer, resource, verifier = auth
        server = MCPServer(
            name="patchbay-test-python",
            version="1.0.0",
            auth=AuthSettings(
                issuer_url=issuer,
                resource_server_url=resource,
                required_scopes=["mcp:tools"],
                validate_token_resource=True,
            ),
            token_verifier=verifier,
        )

    @server.tool()
    def admin() -> str:
        """Needs the scope mcp:admin when the server is started with --step-up admin=mcp:admin."""
        return "admin done"

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
    async def progress(steps: int, ctx: Context) -> str:
        """Reports progress and logs a message at each of `steps` steps."""
        for i in range(steps):
            await ctx.report_progress(i + 1, steps, f"step {i + 1}")
            await ctx.info(f"step {i + 1} of {steps}")
        return f"{steps} steps done"

    @server.tool()
    async def grow(name: str, ctx: Context) -> str:
        """Adds a tool called `name` and says that the tool list changed."""

        def added() -> str:
            return f"{name} here"

        server.add_tool(added, name=name, description=f"Added at run time: {name}")
        try:
            await ctx.notify_tools_changed()  # 2026-07-28: subscriptions/listen streams
        except Exception:
            pass
        try:
            await ctx.session.send_tool_list_changed()  # the session era
        except Exception:
            pass
        return f"added {name}"

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

    def __init__(self, app, era: str, bearer: str | None, step_up=None):
        self.app, self.era, self.bearer, self.step_up = app, era, bearer, step_up

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if self.step_up is not None and scope["method"] == "POST":
            receive = await self.check_scope(headers, receive, send)
            if receive is None:
                return
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


    async def check_scope(self, headers, receive, send):
        """Answers 403 insufficient_scope to a call of the step-up tool without its scope; the
        body, read to see, is replayed to the app."""
        tool, needed, verifier, metadata = self.step_up
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            request = json.loads(body)
        except ValueError:
            request = {}
        if (
            isinstance(request, dict)
            and request.get("method") == "tools/call"
            and (request.get("params") or {}).get("name") == tool
        ):
            token = headers.get("authorization", "").removeprefix("Bearer ")
            info = await asyncio.to_thread(verifier.introspect, token) if token else {}
            if needed not in str(info.get("scope", "")).split():
                challenge = (
                    f'Bearer error="insufficient_scope", scope="mcp:tools {needed}", '
                    f'resource_metadata="{metadata}"'
                )
                await respond(send, 403, b'{"error": "insufficient_scope"}', [(b"www-authenticate", challenge.encode())])
                return None
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay


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
    parser.add_argument("--auth-issuer")
    parser.add_argument("--step-up")
    args = parser.parse_args()
    auth, step_up = None, None
    if args.auth_issuer:
        resource = f"http://127.0.0.1:{args.port}/mcp"
        verifier = Introspection(args.auth_issuer, resource)
        auth = (args.auth_issuer, resource, verifier)
        if args.step_up:
            tool, needed = args.step_up.split("=", 1)
            metadata = f"http://127.0.0.1:{args.port}/.well-known/oauth-protected-resource/mcp"
            step_up = (tool, needed, verifier, metadata)
    server = build(auth)
    if args.transport == "stdio":
        server.run("stdio")
        return
    import socket

    import uvicorn

    app = Gate(server.streamable_http_app(), args.era, args.bearer, step_up)
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
