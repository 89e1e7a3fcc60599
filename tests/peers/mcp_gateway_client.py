"""The official Python SDK's client against Patchbay's MCP gateway, for Patchbay's tests.

    mcp_gateway_client.py URL TOKEN MODE [NAME JSON_ARGUMENTS]

TOKEN `-` sends none. MODE: `legacy` (initialize, a session) or `auto` (the stateless
2026-07-28 revision first). Lists the tools, calls NAME when given, and prints one JSON object:
{"protocol_version", "server", "tools": [names], "call": result | "call_error": text} or
{"error": text} when it could not connect.
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main() -> None:
    url, token, mode = sys.argv[1:4]
    headers = {} if token == "-" else {"Authorization": f"Bearer {token}"}
    out: dict = {}
    try:
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            transport = streamable_http_client(url, http_client=http)
            async with Client(transport, mode=mode) as client:
                out["protocol_version"] = client.protocol_version
                out["server"] = client.server_info.name if client.server_info else None
                listed = await client.list_tools()
                out["tools"] = [t.name for t in listed.tools]
                if len(sys.argv) > 5:
                    try:
                        result = await client.call_tool(sys.argv[4], json.loads(sys.argv[5]))
                        out["call"] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
                    except Exception as e:  # noqa: BLE001 - the test reads the reason
                        out["call_error"] = f"{type(e).__name__}: {e}"
    except BaseException as e:  # noqa: BLE001 - exception groups included
        out["error"] = f"{type(e).__name__}: {e!r}"
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
