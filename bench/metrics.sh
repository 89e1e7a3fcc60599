#!/usr/bin/env bash
# What a `/metrics` scrape costs (issue: renewal and workers, must-show 5): a release Patchbay
# after a mixed load (proxied calls through a bearer connection, API reads, 404s) so that the
# exposition holds its usual series; then COUNT sequential scrapes of `/metrics` and, in the
# same run and over the same keep-alive connection, COUNT of `/healthz` as the baseline.
# Prints the exposition's size and series, p50/p99 of both, their ratio, and the proxy's
# throughput with and without a scraper polling every 100 ms beside it.
#
# Usage: bench/metrics.sh [scrapes, default 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

COUNT="${1:-2000}"
WORK="$(mktemp -d)"
UPSTREAM_PORT=18095
PATCHBAY_PORT=18096

cleanup() {
  [ -f "$WORK/upstream.pid" ] && kill "$(cat "$WORK/upstream.pid")" 2>/dev/null || true
  [ -n "${PB_PID:-}" ] && kill "$PB_PID" 2>/dev/null || true
  [ -n "${SCRAPER:-}" ] && kill "$SCRAPER" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

need_commands wrk nginx
echo "==> building patchbay (release)" >&2
cargo build --release -q -p patchbay-cli

static_upstream "$WORK" "$UPSTREAM_PORT" '{"ok":true}'
PATCHBAY_DATA_DIR="$WORK/data" setsid ./target/release/patchbay serve \
  --listen "127.0.0.1:$PATCHBAY_PORT" --allow-net 127.0.0.0/8 >"$WORK/out" 2>"$WORK/err" &
PB_PID=$!
TOKEN=$(admin_token "$WORK/out" "$WORK/err" 30)
CONNECTION=$(bench_connection "$PATCHBAY_PORT" "$TOKEN" "$UPSTREAM_PORT")
BASE="http://127.0.0.1:$PATCHBAY_PORT"

proxy_load() { # seconds: wrk through the proxy; prints requests/s
  wrk -t 1 -c 16 -d "${1}s" -H "Authorization: Bearer $TOKEN" \
    -H "Patchbay-Connection: $CONNECTION" "$BASE/v1/proxy/user" | awk '/Requests\/sec/ {print $2}'
}

echo "==> mixed load" >&2
proxy_load 2 >/dev/null
for path in /v1/connections /v1/projects /v1/tokens /v1/audit /v1/providers /v1/nothing "/v1/connections/$CONNECTION"; do
  for _ in 1 2 3; do curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE$path"; done
done

python3 - "$PATCHBAY_PORT" "$COUNT" <<'PY'
import http.client, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port)
def timed(path):
    out = []
    for _ in range(count):
        t = time.perf_counter()
        conn.request("GET", path)
        body = conn.getresponse().read()
        out.append(time.perf_counter() - t)
    out.sort()
    return out, body
health, _ = timed("/healthz")
metrics, body = timed("/metrics")
health2, _ = timed("/healthz")
base = sorted(health + health2)
def pct(xs, p): return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000
series = sum(1 for l in body.decode().splitlines() if l and not l.startswith("#"))
print(f"exposition: {len(body)} bytes, {series} series")
print(f"/healthz  p50 {pct(base, .5):.3f} ms  p99 {pct(base, .99):.3f} ms")
print(f"/metrics  p50 {pct(metrics, .5):.3f} ms  p99 {pct(metrics, .99):.3f} ms")
print(f"scrape / healthz: p50 {pct(metrics, .5) / pct(base, .5):.2f}x  p99 {pct(metrics, .99) / pct(base, .99):.2f}x")
PY

QUIET=$(proxy_load 5)
( while true; do curl -s -o /dev/null "$BASE/metrics"; sleep 0.1; done ) &
SCRAPER=$!
SCRAPED=$(proxy_load 5)
kill "$SCRAPER" 2>/dev/null || true
SCRAPER=
echo "proxy req/s: $QUIET alone, $SCRAPED with a scrape every 100 ms"
awk -v a="$SCRAPED" -v b="$QUIET" 'BEGIN { printf "with scrapes / alone: %.3fx\n", a / b }'
