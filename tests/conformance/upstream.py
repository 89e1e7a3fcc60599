"""The upstream behind `/mcp/c/{connection}` in the conformance suite's server scenarios: an
MCP server (official Python SDK) with the tools those scenarios call.

    upstream.py PORT    (prints READY once it listens)
"""

import asyncio
import base64
import socket
import sys

import mcp_types as types
import uvicorn
from mcp.server.mcpserver import Context, MCPServer

# A 1×1 PNG and a short silent WAV.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()
WAV = base64.b64encode(
    b"RIFF" + (36 + 8).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
    + (8000).to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little")
    + b"data" + (8).to_bytes(4, "little") + bytes([128] * 8)
).decode()


def build() -> MCPServer:
    server = MCPServer(name="patchbay-conformance-upstream", version="1.0.0")

    @server.tool()
    def test_simple_text() -> str:
        """Answers a simple text."""
        return "This is a simple text response for testing."

    @server.tool()
    def test_image_content() -> list:
        """Answers an image."""
        return [types.ImageContent(type="image", data=PNG, mime_type="image/png")]

    @server.tool()
    def test_audio_content() -> list:
        """Answers audio."""
        return [types.AudioContent(type="audio", data=WAV, mime_type="audio/wav")]

    def embedded():
        return types.EmbeddedResource(
            type="resource",
            resource=types.TextResourceContents(
                uri="test://embedded-resource",
                mime_type="text/plain",
                text="This is an embedded resource content.",
            ),
        )

    @server.tool()
    def test_embedded_resource() -> list:
        """Answers an embedded resource."""
        return [embedded()]

    @server.tool()
    def test_multiple_content_types() -> list:
        """Answers text, an image and a resource."""
        return [
            types.TextContent(type="text", text="Multiple content types test:"),
            types.ImageContent(type="image", data=PNG, mime_type="image/png"),
            embedded(),
        ]

    @server.tool()
    async def test_tool_with_logging(ctx: Context) -> str:
        """Logs three messages while it runs."""
        for message in ("Tool execution started", "Tool processing data", "Tool execution completed"):
            await ctx.info(message)
            await asyncio.sleep(0.05)
        return "Tool with logging executed successfully"

    @server.tool()
    def test_error_handling() -> str:
        """Always fails."""
        raise ValueError("This tool intentionally returns an error for testing")

    @server.tool()
    async def test_tool_with_progress(ctx: Context) -> str:
        """Reports progress 0, 50 and 100 of 100."""
        for done in (0, 50, 100):
            await ctx.report_progress(done, 100, f"Completed step {done} of 100")
            await asyncio.sleep(0.05)
        return "Tool with progress executed successfully"

    @server.tool()
    async def test_sampling(prompt: str, ctx: Context) -> str:
        """Asks the client's model (sampling)."""
        result = await ctx.session.create_message(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
            max_tokens=100,
        )
        return f"LLM response: {getattr(result.content, 'text', result.content)}"

    @server.tool()
    async def test_elicitation(message: str, ctx: Context) -> str:
        """Asks the user (elicitation)."""
        result = await ctx.session.elicit(
            message=message,
            requested_schema={"type": "object", "properties": {"username": {"type": "string"}}},
        )
        return f"User response: {result.action}"

    return server


def main() -> None:
    port = int(sys.argv[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    config = uvicorn.Config(build().streamable_http_app(), log_level="warning")
    print("READY", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
