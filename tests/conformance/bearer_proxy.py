"""A loopback HTTP/1.1 forwarder that adds `Authorization: Bearer <token>` to every request.

    bearer_proxy.py LISTEN_PORT UPSTREAM_PORT   (the token in PATCHBAY_TOKEN)

The conformance suite's server scenarios cannot send a token; this stands in for a client
configured with one. Everything else (Host, Origin, the body, streamed answers) passes
unchanged, one request per connection. Prints READY once it listens.
"""

import asyncio
import os
import sys

TOKEN = os.environ["PATCHBAY_TOKEN"].encode()
HEAD_MAX = 64 * 1024


async def pipe(reader, writer):
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(client_r, client_w, upstream_port):
    try:
        head = await client_r.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        client_w.close()
        return
    lines = head[:-4].split(b"\r\n")
    kept = [
        line
        for line in lines[1:]
        if not line.lower().startswith((b"authorization:", b"connection:", b"keep-alive:"))
    ]
    length = 0
    for line in kept:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await client_r.readexactly(length) if length else b""
    request = b"\r\n".join(
        [lines[0], *kept, b"Authorization: Bearer " + TOKEN, b"Connection: close", b"", b""]
    )
    up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
    up_w.write(request + body)
    await up_w.drain()
    # The answer streams back until the upstream closes; a caller that goes closes it all.
    back = asyncio.ensure_future(pipe(up_r, client_w))
    forth = asyncio.ensure_future(pipe(client_r, up_w))
    await back
    forth.cancel()


async def main():
    listen, upstream = int(sys.argv[1]), int(sys.argv[2])
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, upstream), "127.0.0.1", listen, limit=HEAD_MAX
    )
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
