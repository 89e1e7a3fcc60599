#!/usr/bin/env bash
# MCP tool calls through Patchbay's gateway against the same calls made directly, all on
# loopback, in one run:
#   direct      bench/mcp-bench load → the upstream (rmcp, Streamable HTTP, JSON answers)
#   one         → Patchbay /mcp/c/{connection} (the connection's tools under their own names)
#   all         → Patchbay /mcp (every connection's tools, as bench__echo)
#   forward     → bench/mcp-bench forward, the least a gateway does (every request passed on
#                 as it came, no parsing, auth or audit): a yardstick of what one more hop
#                 costs on this machine, not Patchbay
# each at 1 and 64 concurrent client sessions (2025-11-25, one call at a time per session).
# Patchbay reaches the upstream through its pooled upstream session. The runs are interleaved
# over several rounds and medians compared; prints calls/s, p50/p99 latency, the ratio to
# direct and the added latency, then the memory of idle gateway sessions (resident memory of
# Patchbay before and after starting them, per session). Builds Patchbay (release) and
# bench/mcp-bench.
#
# Usage: bench/mcp.sh [seconds per run, default 5] [rounds, default 3] [idle sessions, default 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

DURATION="${1:-5}"
ROUNDS="${2:-3}"
IDLE="${3:-2000}"
WORK="$(mktemp -d)"
UPSTREAM_PORT=18181
PATCHBAY_PORT=18182
FORWARD_PORT=18183

cleanup() {
  for pid in ${PB_PID:-} ${UP_PID:-} ${FW_PID:-}; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "==> building patchbay (profile $PATCHBAY_PROFILE) and bench/mcp-bench" >&2
cargo build --profile "$PATCHBAY_PROFILE" -q -p patchbay-cli
cargo build --release -q --manifest-path bench/mcp-bench/Cargo.toml
BENCH=bench/mcp-bench/target/release/mcp-bench

"$BENCH" serve "$UPSTREAM_PORT" >"$WORK/upstream.out" 2>&1 &
UP_PID=$!
"$BENCH" forward "$FORWARD_PORT" "http://127.0.0.1:$UPSTREAM_PORT/mcp" >"$WORK/forward.out" 2>&1 &
FW_PID=$!
PATCHBAY_DATA_DIR="$WORK/data" PATCHBAY_TEST_RATE_LIMIT=0 PATCHBAY_TOOL_CALL_RATE_LIMIT=0 ./target/$PATCHBAY_PROFILE/patchbay serve \
  --listen "127.0.0.1:$PATCHBAY_PORT" --allow-net 127.0.0.0/8 >"$WORK/out" 2>"$WORK/err" &
PB_PID=$!
TOKEN=$(admin_token "$WORK/out" "$WORK/err" 30)
for _ in $(seq 1 50); do grep -q READY "$WORK/upstream.out" && break; sleep 0.1; done
CONNECTION=$(curl -s -X POST "http://127.0.0.1:$PATCHBAY_PORT/v1/connections" \
  -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
  -d "{\"name\":\"bench\",\"kind\":\"mcp\",\"config\":{\"server_url\":\"http://127.0.0.1:$UPSTREAM_PORT/mcp\"}}" |
  python3 -c 'import json,sys; c=json.load(sys.stdin); assert c["test_status"]=="success", c; print(c["id"])')

DIRECT="http://127.0.0.1:$UPSTREAM_PORT/mcp"
ONE="http://127.0.0.1:$PATCHBAY_PORT/mcp/c/$CONNECTION"
ALL="http://127.0.0.1:$PATCHBAY_PORT/mcp"
FORWARD="http://127.0.0.1:$FORWARD_PORT/mcp"
run() { # name url tool sessions
  local out
  out=$(timeout $((DURATION + 60)) "$BENCH" load "$2" "$3" "$4" "$DURATION" "$TOKEN")
  echo "$1 $4 $out" >>"$WORK/results"
}
# Warm-up: the pooled upstream session, the caches.
timeout 60 "$BENCH" load "$ONE" echo 8 1 "$TOKEN" >/dev/null
timeout 60 "$BENCH" load "$ALL" bench__echo 8 1 "$TOKEN" >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  echo "==> round $round of $ROUNDS" >&2
  for sessions in 1 64; do
    run direct "$DIRECT" echo "$sessions"
    run one "$ONE" echo "$sessions"
    run all "$ALL" bench__echo "$sessions"
    run forward "$FORWARD" echo "$sessions"
  done
done

python3 - "$WORK/results" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, sessions, data = line.split(" ", 2)
    r = json.loads(data)
    if r["errors"]:
        sys.exit(f"{name} at {sessions} sessions: {r['errors']} failed calls")
    rows.setdefault((name, int(sessions)), []).append(r)
med = lambda rs, k: statistics.median(x[k] for x in rs)
print(f"{'path':8} {'sessions':>8} {'calls/s':>10} {'p50 µs':>8} {'p99 µs':>8} {'× direct':>9} {'+p50 µs':>8} {'+p99 µs':>8}")
for sessions in (1, 64):
    d = rows[("direct", sessions)]
    for name in ("direct", "one", "all", "forward"):
        rs = rows[(name, sessions)]
        print(f"{name:8} {sessions:>8} {med(rs,'calls_per_s'):>10.0f} {med(rs,'p50_us'):>8.0f} {med(rs,'p99_us'):>8.0f}"
              f" {med(rs,'calls_per_s')/med(d,'calls_per_s'):>9.2f} {med(rs,'p50_us')-med(d,'p50_us'):>8.0f} {med(rs,'p99_us')-med(d,'p99_us'):>8.0f}")
PY

# Gateway sessions live in the store (any replica continues them), not in a process.
rss() { awk '/VmRSS/ {print $2}' "/proc/$PB_PID/status"; }
disk() { du -sk "$WORK/data" | cut -f1; }
before=$(rss); disk_before=$(disk)
"$BENCH" idle "$ALL" "$IDLE" "$TOKEN" >"$WORK/idle"
sleep 1
after=$(rss); disk_after=$(disk)
python3 - "$before" "$after" "$disk_before" "$disk_after" "$(cat "$WORK/idle")" <<'PY'
import json, sys
before, after, disk_before, disk_after = map(int, sys.argv[1:5])
n = max(json.loads(sys.argv[5])["sessions"], 1)
print(f"idle gateway sessions: {n}; resident memory {before} KiB -> {after} KiB "
      f"({(after - before) * 1024 / n:.0f} bytes per session); store {disk_before} KiB -> "
      f"{disk_after} KiB ({(disk_after - disk_before) * 1024 / n:.0f} bytes per session)")
PY
