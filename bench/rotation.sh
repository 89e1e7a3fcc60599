#!/usr/bin/env bash
# Proxy latency while a key rotation re-encrypts COUNT ciphertexts (issue: renewal and workers,
# must-show 4): a release Patchbay with COUNT bearer connections, an nginx upstream answering
# from memory, then wrk (8 connections) through the proxy for 5 s idle and for 5 s right after
# `POST /v1/keys/rotate`. Prints p50/p99 of both, their ratio, and whether the rotation was
# still running when the loaded run ended (otherwise the run did not overlap it).
#
# Usage: bench/rotation.sh [ciphertexts, default 100000]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

COUNT="${1:-100000}"
WORK="$(mktemp -d)"
UPSTREAM_PORT=18093
PATCHBAY_PORT=18094

trap 'stop_bench_patchbay "$WORK"' EXIT

start_bench_patchbay "$WORK" "$UPSTREAM_PORT" "$PATCHBAY_PORT"

echo "==> seeding $COUNT ciphertexts" >&2
python3 bench/seed.py "$PATCHBAY_PORT" "$TOKEN" "$COUNT"

run_wrk() {
  wrk -t 1 -c 8 -d 5s --latency -H "Authorization: Bearer $TOKEN" \
    -H "Patchbay-Connection: $CONNECTION" "http://127.0.0.1:$PATCHBAY_PORT/v1/proxy/user"
}
ms() { # wrk latency (e.g. 1.23ms, 850.00us, 1.20s) in ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /s$/ && v !~ /ms$/) n *= 1000; printf "%.3f", n }'
}
pct() { awk -v p="$1" '$1 == p { print $2; exit }' "$2"; }

run_wrk >"$WORK/idle.txt"
curl -sf -X POST -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PATCHBAY_PORT/v1/keys/rotate" >/dev/null
run_wrk >"$WORK/rotating.txt"
STATUS=$(curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PATCHBAY_PORT/v1/keys")
RUNNING=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1])["rotation"]; print("still running (%d of %d done)" % (r["done"], r["total"]) if not r["finished"] else "finished (%d of %d)" % (r["done"], r["total"]))' "$STATUS")

I50=$(ms "$(pct 50% "$WORK/idle.txt")"); I99=$(ms "$(pct 99% "$WORK/idle.txt")")
R50=$(ms "$(pct 50% "$WORK/rotating.txt")"); R99=$(ms "$(pct 99% "$WORK/rotating.txt")")
IRPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/idle.txt")
RRPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/rotating.txt")
echo "idle      p50 $I50 ms  p99 $I99 ms  ($IRPS req/s)"
echo "rotating  p50 $R50 ms  p99 $R99 ms  ($RRPS req/s)"
awk -v a="$R99" -v b="$I99" 'BEGIN { printf "p99 rotating / idle: %.2fx (target <= 2x)\n", a / b }'
echo "rotation at the end of the loaded run: $RUNNING"
