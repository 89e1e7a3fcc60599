#!/usr/bin/env bash
# What a `/metrics` scrape costs (issue: renewal and workers, must-show 5): a release Patchbay
# after a mixed load (proxied calls through a bearer connection, API reads, 404s) so that the
# exposition holds its usual series; then COUNT sequential scrapes of `/metrics` and, in the
# same run and over the same keep-alive connection, COUNT of `/healthz` as the baseline.
# Prints the exposition's size and series, p50/p99 of both, their ratio, and the proxy's
# throughput with and without a scraper polling every 100 ms beside it (three interleaved
# rounds).
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
  [ -n "${SCRAPER:-}" ] && kill "$SCRAPER" 2>/dev/null || true
  stop_bench_patchbay "$WORK"
}
trap cleanup EXIT

start_bench_patchbay "$WORK" "$UPSTREAM_PORT" "$PATCHBAY_PORT"
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

# The proxy alone and beside a scraper (one keep-alive connection, a scrape every 100 ms),
# interleaved over three rounds; medians compared.
scraper() {
  python3 - "$PATCHBAY_PORT" <<'PY' &
import http.client, sys, time
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
while True:
    conn.request("GET", "/metrics")
    conn.getresponse().read()
    time.sleep(0.1)
PY
  SCRAPER=$!
}
ALONE=(); BESIDE=()
for _ in 1 2 3; do
  ALONE+=("$(proxy_load 5)")
  scraper
  BESIDE+=("$(proxy_load 5)")
  kill "$SCRAPER" 2>/dev/null || true
  wait "$SCRAPER" 2>/dev/null || true
  SCRAPER=
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
A=$(median "${ALONE[@]}"); B=$(median "${BESIDE[@]}")
echo "proxy req/s (median of 3): $A alone (${ALONE[*]}), $B with a scrape every 100 ms (${BESIDE[*]})"
awk -v a="$B" -v b="$A" 'BEGIN { printf "with scrapes / alone: %.3fx\n", a / b }'
