"""Clients that try to hold a Patchbay server (driven by bench/hold.sh).

Measures /healthz and proxied-request latency with no hostile clients (the baseline), then
again while IDLE silent connections and SLOW slow-header connections (a byte a second) are
held open; reports when the hostile connections were closed, the server's resident memory
before, during and after, and the size of the answer to a megabyte of bad fields.
Every loop is bounded in count and time; all traffic stays on 127.0.0.1.
"""

import asyncio
import json
import resource
import statistics
import sys
import time
import urllib.request

PORT, TOKEN, CONNECTION, PID = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
IDLE, SLOW, TIMEOUT = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
SAMPLES = 400


def rss_mib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def request(path, headers=""):
    """One request on a fresh connection; seconds until the whole answer arrived."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n{headers}\r\n".encode()
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    if answer.split(b" ", 2)[1:2] != [b"200"]:
        raise RuntimeError(f"{path} answered {answer[:40]!r}")
    return time.perf_counter() - started


async def latencies(path, headers=""):
    out = []
    deadline = time.monotonic() + 20
    for _ in range(SAMPLES):
        if time.monotonic() > deadline:
            break
        out.append(await request(path, headers))
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000


async def measure(label):
    proxied = f"Authorization: Bearer {TOKEN}\r\nPatchbay-Connection: {CONNECTION}\r\n"
    h = await latencies("/healthz")
    p = await latencies("/v1/proxy/hold", proxied)
    print(
        f"{label:<10} /healthz p50 {pct(h, 0.5):6.2f} ms  p99 {pct(h, 0.99):6.2f} ms   "
        f"proxy p50 {pct(p, 0.5):6.2f} ms  p99 {pct(p, 0.99):6.2f} ms   ({len(h)}+{len(p)} requests)"
    )
    return pct(h, 0.99), pct(p, 0.99)


async def idle_connection(closed):
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    started = time.monotonic()
    try:
        await asyncio.wait_for(reader.read(), TIMEOUT + 15)
        closed.append(time.monotonic() - started)
    except (asyncio.TimeoutError, ConnectionError):
        pass
    writer.close()


async def slow_connection(closed):
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    started = time.monotonic()
    head = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"

    async def dribble():
        for b in head:
            writer.write(bytes([b]))
            try:
                await writer.drain()
            except ConnectionError:
                return
            await asyncio.sleep(1)

    sending = asyncio.ensure_future(dribble())
    try:
        await asyncio.wait_for(reader.read(), TIMEOUT + 15)
        closed.append(time.monotonic() - started)
    except (asyncio.TimeoutError, ConnectionError):
        pass
    sending.cancel()
    writer.close()


def bad_fields():
    config = {"base_url": "https://api.example.com"}
    n = 0
    while len(json.dumps(config)) < 1000 * 1024:
        for _ in range(1000):
            config[f"unknown_field_{n:06}"] = n
            n += 1
    body = json.dumps({"name": "flood", "kind": "http", "config": config}).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/v1/connections",
        data=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(req, timeout=10)
        raise RuntimeError("a body of bad fields was accepted")
    except urllib.error.HTTPError as e:
        answer = e.read()
        doc = json.loads(answer)
        return len(body), e.code, len(answer), len(doc.get("errors", [])), doc.get("errors_omitted")


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rss_start = rss_mib()
    base_h, base_p = await measure("baseline")
    idle_closed, slow_closed = [], []
    hostile = [asyncio.ensure_future(idle_connection(idle_closed)) for _ in range(IDLE)]
    hostile += [asyncio.ensure_future(slow_connection(slow_closed)) for _ in range(SLOW)]
    await asyncio.sleep(0.5)
    rss_held = rss_mib()
    held_h, held_p = await measure("held")
    await asyncio.wait(hostile, timeout=TIMEOUT + 20)
    rss_after = rss_mib()
    print(
        f"hostile    {len(idle_closed)}/{IDLE} idle closed (median {statistics.median(idle_closed or [0]):.1f} s), "
        f"{len(slow_closed)}/{SLOW} slow-header closed (median {statistics.median(slow_closed or [0]):.1f} s, "
        f"max {max(slow_closed or [0]):.1f} s); header timeout {TIMEOUT:.0f} s"
    )
    print(
        f"memory     resident {rss_start:.0f} MiB at start, {rss_held:.0f} MiB while held, "
        f"{rss_after:.0f} MiB after"
    )
    print(f"ratio      held / baseline p99: /healthz {held_h / base_h:.2f}x, proxy {held_p / base_p:.2f}x")
    sent, status, size, listed, omitted = bad_fields()
    print(
        f"bad body   {sent / 1024:.0f} KiB of bad fields -> {status}, a {size / 1024:.1f} KiB problem "
        f"document listing {listed} errors and counting {omitted} more; "
        f"resident {rss_mib():.0f} MiB after"
    )
    ok = len(idle_closed) == IDLE and len(slow_closed) == SLOW and size < 64 * 1024
    print("result     " + ("every hostile connection closed; answers kept coming" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


asyncio.run(main())
