#!/usr/bin/env bash
# Proxy throughput and added latency (SPEC §8), all on loopback, in one run:
#   direct   wrk → upstream
#   nginx    wrk → nginx (injects a static Authorization header) → upstream
#   patchbay wrk → patchbay /v1/proxy (bearer connection) → upstream
# The upstream is nginx answering a small body from memory. 64 keep-alive connections, a fixed
# duration per run (bounded). Prints requests/s, p50/p99 latency, and the ratios against nginx
# and the direct call. Needs wrk and nginx (installed with apt-get when missing) and builds
# Patchbay in release mode.
#
# Usage: bench/proxy.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-10}"
CONNECTIONS=64
THREADS=2
WORK="$(mktemp -d)"
UPSTREAM_PORT=18081
NGINX_PORT=18082
PATCHBAY_PORT=18083

cleanup() {
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  [ -n "${PB_PID:-}" ] && kill "$PB_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  echo "==> installing wrk and nginx" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null
fi

echo "==> building patchbay (release)" >&2
cargo build --release -q -p patchbay-cli

mkdir -p "$WORK/nginx/logs"
cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$UPSTREAM_PORT; keepalive 128; }
  server {
    listen 127.0.0.1:$UPSTREAM_PORT;
    location / { default_type application/json; return 200 '{"ok":true,"user":"octocat"}'; }
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer static-upstream-token";
    }
  }
}
EOF
nginx -c "$WORK/nginx.conf" -p "$WORK/nginx"

DATA="$WORK/patchbay"
PATCHBAY_DATA_DIR="$DATA" ./target/release/patchbay serve --listen "127.0.0.1:$PATCHBAY_PORT" \
  --allow-net 127.0.0.0/8 >"$WORK/serve.out" 2>"$WORK/serve.err" &
PB_PID=$!
for _ in $(seq 1 100); do
  grep -q "Admin token" "$WORK/serve.out" 2>/dev/null && break
  sleep 0.1
done
TOKEN=$(sed -n 's/^Admin token[^:]*: //p' "$WORK/serve.out" | head -1)
[ -n "$TOKEN" ] || { echo "patchbay did not start:"; cat "$WORK/serve.err"; exit 1; }
CONNECTION=$(curl -s -X POST "http://127.0.0.1:$PATCHBAY_PORT/v1/connections" \
  -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
  -d "{\"name\":\"bench\",\"kind\":\"http\",\"auth\":{\"type\":\"bearer\"},\"config\":{\"base_url\":\"http://127.0.0.1:$UPSTREAM_PORT\"},\"secrets\":{\"token\":\"upstream-token\"}}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
# The same request must work before it is measured.
curl -sf "http://127.0.0.1:$PATCHBAY_PORT/v1/proxy/user" -H "Authorization: Bearer $TOKEN" \
  -H "Patchbay-Connection: $CONNECTION" >/dev/null

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

echo "==> ${DURATION}s per run, $CONNECTIONS connections, $THREADS wrk threads" >&2
read -r D_RPS D_P50 D_P99 < <(measure "http://127.0.0.1:$UPSTREAM_PORT/user")
read -r N_RPS N_P50 N_P99 < <(measure "http://127.0.0.1:$NGINX_PORT/user")
read -r P_RPS P_P50 P_P99 < <(measure -H "Authorization: Bearer $TOKEN" -H "Patchbay-Connection: $CONNECTION" \
  "http://127.0.0.1:$PATCHBAY_PORT/v1/proxy/user")
echo "==> the same, one connection at a time (latency without queueing)" >&2
export WRK_CONNECTIONS=1 WRK_THREADS=1
read -r _ D1_P50 D1_P99 < <(measure "http://127.0.0.1:$UPSTREAM_PORT/user")
read -r _ N1_P50 N1_P99 < <(measure "http://127.0.0.1:$NGINX_PORT/user")
read -r _ P1_P50 P1_P99 < <(measure -H "Authorization: Bearer $TOKEN" -H "Patchbay-Connection: $CONNECTION" \
  "http://127.0.0.1:$PATCHBAY_PORT/v1/proxy/user")
unset WRK_CONNECTIONS WRK_THREADS
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$PB_PID/status")

python3 - "$D_RPS" "$D_P50" "$D_P99" "$N_RPS" "$N_P50" "$N_P99" "$P_RPS" "$P_P50" "$P_P99" "$RSS_KB" \
  "$D1_P50" "$D1_P99" "$N1_P50" "$N1_P99" "$P1_P50" "$P1_P99" <<'PY'
import sys
d_rps, d50, d99, n_rps, n50, n99, p_rps, p50, p99 = map(float, sys.argv[1:10])
rss = int(sys.argv[10]) / 1024
d1_50, d1_99, n1_50, n1_99, p1_50, p1_99 = map(float, sys.argv[11:17])
print(f"{'':10} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
for name, r, a, b in [("direct", d_rps, d50, d99), ("nginx", n_rps, n50, n99), ("patchbay", p_rps, p50, p99)]:
    print(f"{name:10} {r:>10.0f} {a:>8.3f} {b:>8.3f}")
print(f"patchbay / nginx throughput: {p_rps / n_rps:.2f}x   (target >= 0.9x)")
print(f"patchbay / direct throughput: {p_rps / d_rps:.2f}x")
print(f"added latency under load: patchbay p50 {p50 - d50:+.3f} ms, p99 {p99 - d99:+.3f} ms; nginx p50 {n50 - d50:+.3f} ms, p99 {n99 - d99:+.3f} ms")
print(f"one connection: direct p50 {d1_50:.3f} p99 {d1_99:.3f}; nginx p50 {n1_50:.3f} p99 {n1_99:.3f}; patchbay p50 {p1_50:.3f} p99 {p1_99:.3f} ms")
print(f"added latency, one connection: patchbay p50 {p1_50 - d1_50:+.3f} ms (target <= 0.2), p99 {p1_99 - d1_99:+.3f} ms (target <= 1); nginx p50 {n1_50 - d1_50:+.3f} ms, p99 {n1_99 - d1_99:+.3f} ms")
print(f"patchbay resident memory after the runs: {rss:.1f} MiB")
PY
