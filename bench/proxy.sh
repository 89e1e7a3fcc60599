#!/usr/bin/env bash
# Proxy throughput and added latency (SPEC §8), all on loopback, in one run:
#   direct        wrk → upstream
#   nginx         wrk → nginx proxy (a process of its own, worker_processes auto) injecting a
#                 static Authorization header → upstream
#   nginx-shared  the same proxy served by the upstream's own nginx worker (one event loop on
#                 both sides of the hop, so nothing has to be woken between them; the setup of
#                 earlier runs, kept for comparison)
#   patchbay      wrk → patchbay /v1/proxy (a bearer connection) → upstream
#   minimal-multi, minimal-per-core
#                 bench/minimal-proxy, the least a hyper proxy does (a yardstick, not Patchbay),
#                 on tokio's multi-threaded runtime and with one runtime per core
# The upstream is an nginx instance of its own (one worker) answering a small body from
# memory. 64 keep-alive connections. This machine's speed drifts (other tenants, scheduling),
# so the runs are interleaved over several rounds and medians compared. Prints requests/s,
# p50/p99 latency, and the ratios. Needs wrk and nginx (installed with apt-get when missing)
# and builds Patchbay in release mode.
#
# Usage: bench/proxy.sh [seconds per run, default 5] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

DURATION="${1:-5}"
ROUNDS="${2:-3}"
CONNECTIONS=64
THREADS=2
WORK="$(mktemp -d)"
UPSTREAM_PORT=18081
SHARED_PORT=18082
PATCHBAY_PORT=18083
NGINX_PORT=18084
MINIMAL_MULTI_PORT=18085
MINIMAL_CORE_PORT=18086

cleanup() {
  for pid in "$WORK"/*.pid; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  for pid in ${PB_PID:-} ${MM_PID:-} ${MC_PID:-}; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

need_commands wrk nginx

echo "==> building patchbay (profile $PATCHBAY_PROFILE)" >&2
cargo build --profile "$PATCHBAY_PROFILE" -q -p patchbay-cli
MINIMAL_TARGET="$PWD/target/minimal-proxy"
(cd bench/minimal-proxy && CARGO_TARGET_DIR="$MINIMAL_TARGET" cargo build --release -q --locked)

# nginx_instance NAME WORKERS SERVER-BLOCKS: an nginx of its own (master and workers).
nginx_instance() {
  mkdir -p "$WORK/$1/logs"
  {
    echo "worker_processes $2;"
    echo "pid $WORK/$1.pid;"
    echo "error_log $WORK/$1/logs/error.log warn;"
    echo "events { worker_connections 4096; }"
    echo "http {"
    echo "  access_log off;"
    echo "  upstream app { server 127.0.0.1:$UPSTREAM_PORT; keepalive 128; }"
    echo "  $3"
    echo "}"
  } > "$WORK/$1.conf"
  nginx -c "$WORK/$1.conf" -p "$WORK/$1"
}
PROXY='location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer static-upstream-token";
    }'
ANSWER="location / { default_type application/json; return 200 '{\"ok\":true,\"user\":\"octocat\"}'; }"
nginx_instance upstream 1 "server { listen 127.0.0.1:$UPSTREAM_PORT; $ANSWER }
  server { listen 127.0.0.1:$SHARED_PORT; $PROXY }"
nginx_instance proxy auto "server { listen 127.0.0.1:$NGINX_PORT; $PROXY }"

# Every server runs in a session of its own, as nginx does once it daemonizes: with the kernel's
# autogroup scheduling, a proxy left in this script's session would share one CPU share with
# wrk, while nginx gets one of its own.
setsid "$MINIMAL_TARGET/release/minimal-proxy" "127.0.0.1:$MINIMAL_MULTI_PORT" \
  "127.0.0.1:$UPSTREAM_PORT" multi &
MM_PID=$!
setsid "$MINIMAL_TARGET/release/minimal-proxy" "127.0.0.1:$MINIMAL_CORE_PORT" \
  "127.0.0.1:$UPSTREAM_PORT" per-core &
MC_PID=$!

DATA="$WORK/patchbay"
PATCHBAY_DATA_DIR="$DATA" setsid ./target/$PATCHBAY_PROFILE/patchbay serve --listen "127.0.0.1:$PATCHBAY_PORT" \
  --allow-net 127.0.0.0/8 >"$WORK/serve.out" 2>"$WORK/serve.err" &
PB_PID=$!
TOKEN=$(admin_token "$WORK/serve.out" "$WORK/serve.err" 10)
CONNECTION=$(bench_connection "$PATCHBAY_PORT" "$TOKEN" "$UPSTREAM_PORT")
# Every target must answer the same before it is measured.
for url in "http://127.0.0.1:$UPSTREAM_PORT/user" "http://127.0.0.1:$NGINX_PORT/user" \
  "http://127.0.0.1:$SHARED_PORT/user" "http://127.0.0.1:$MINIMAL_MULTI_PORT/user" \
  "http://127.0.0.1:$MINIMAL_CORE_PORT/user"; do
  curl -sf "$url" | grep -q octocat
done
curl -sf "http://127.0.0.1:$PATCHBAY_PORT/v1/proxy/user" -H "Authorization: Bearer $TOKEN" \
  -H "Patchbay-Connection: $CONNECTION" | grep -q octocat

# wrk's report → "requests_per_second p50_ms p99_ms"; WRK_CONNECTIONS/WRK_THREADS override the
# load (one connection measures the latency a request adds without queueing).
measure() {
  local out
  out=$(wrk -t"${WRK_THREADS:-$THREADS}" -c"${WRK_CONNECTIONS:-$CONNECTIONS}" -d"${DURATION}s" --latency "$@")
  python3 - "$out" <<'PY'
import re, sys
text = sys.argv[1]
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    if not m:
        sys.exit(f"cannot read the latency {v!r} in:\n{text}")
    n, unit = m.groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if errors:
    sys.exit(f"{errors.group(1)} failed responses:\n{text}")
print(f"{rps:.0f} {p50:.3f} {p99:.3f}")
PY
}

PROXIED=(-H "Authorization: Bearer $TOKEN" -H "Patchbay-Connection: $CONNECTION"
  "http://127.0.0.1:$PATCHBAY_PORT/v1/proxy/user")
RESULTS="$WORK/results"
: > "$RESULTS"
echo "==> $ROUNDS rounds of ${DURATION}s runs, $CONNECTIONS connections, $THREADS wrk threads" >&2
for round in $(seq 1 "$ROUNDS"); do
  echo "direct $(measure "http://127.0.0.1:$UPSTREAM_PORT/user")" >> "$RESULTS"
  echo "nginx $(measure "http://127.0.0.1:$NGINX_PORT/user")" >> "$RESULTS"
  echo "nginx-shared $(measure "http://127.0.0.1:$SHARED_PORT/user")" >> "$RESULTS"
  echo "patchbay $(measure "${PROXIED[@]}")" >> "$RESULTS"
  echo "minimal-multi $(measure "http://127.0.0.1:$MINIMAL_MULTI_PORT/user")" >> "$RESULTS"
  echo "minimal-per-core $(measure "http://127.0.0.1:$MINIMAL_CORE_PORT/user")" >> "$RESULTS"
  echo "    round $round: $(tail -6 "$RESULTS" | awk '{printf "%s %s  ", $1, $2}')" >&2
done
echo "==> the same, one connection at a time (latency without queueing)" >&2
export WRK_CONNECTIONS=1 WRK_THREADS=1
for round in $(seq 1 "$ROUNDS"); do
  echo "direct-1 $(measure "http://127.0.0.1:$UPSTREAM_PORT/user")" >> "$RESULTS"
  echo "nginx-1 $(measure "http://127.0.0.1:$NGINX_PORT/user")" >> "$RESULTS"
  echo "patchbay-1 $(measure "${PROXIED[@]}")" >> "$RESULTS"
done
unset WRK_CONNECTIONS WRK_THREADS
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$PB_PID/status")

python3 - "$RESULTS" "$RSS_KB" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rps, p50, p99 = line.split()
    rows.setdefault(name, []).append((float(rps), float(p50), float(p99)))
med = {k: tuple(statistics.median(r[i] for r in v) for i in range(3)) for k, v in rows.items()}
print(f"medians of {len(rows['patchbay'])} interleaved rounds")
print(f"{'':17} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
for name in ["direct", "nginx", "nginx-shared", "patchbay", "minimal-multi", "minimal-per-core"]:
    r, a, b = med[name]
    print(f"{name:17} {r:>10.0f} {a:>8.3f} {b:>8.3f}")
for mine, other, note in [("patchbay", "nginx", "   (target >= 0.9x)"),
                          ("patchbay", "nginx-shared", ""),
                          ("minimal-multi", "nginx", ""), ("minimal-per-core", "nginx", "")]:
    rs = [p[0] / o[0] for p, o in zip(rows[mine], rows[other])]
    each = ", ".join(f"{r:.2f}" for r in rs)
    print(f"{mine} / {other}: {statistics.median(rs):.2f}x, median of the rounds ({each}){note}")
print(f"patchbay / direct: {med['patchbay'][0] / med['direct'][0]:.2f}x")
d1, n1, p1 = med["direct-1"], med["nginx-1"], med["patchbay-1"]
print(f"one connection: direct p50 {d1[1]:.3f} p99 {d1[2]:.3f}; nginx p50 {n1[1]:.3f} "
      f"p99 {n1[2]:.3f}; patchbay p50 {p1[1]:.3f} p99 {p1[2]:.3f} ms")
print(f"added latency, one connection: patchbay p50 {p1[1] - d1[1]:+.3f} ms (target <= 0.2), "
      f"p99 {p1[2] - d1[2]:+.3f} ms (target <= 1); nginx p50 {n1[1] - d1[1]:+.3f} ms, "
      f"p99 {n1[2] - d1[2]:+.3f} ms")
print(f"patchbay resident memory after the runs: {int(sys.argv[2]) / 1024:.1f} MiB")
PY
