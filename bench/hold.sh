#!/usr/bin/env bash
# Clients that try to hold the server: a release Patchbay with a 5 s header timeout, a loopback
# upstream behind a bearer connection, then bench/hold.py — /healthz and proxy latency (p50,
# p99) before and while 1,000 idle and 100 slow-header connections are held, when those were
# closed, resident memory, and the answer to a megabyte of bad fields. Exits non-zero when a
# hostile connection outlived the timeout or the problem document was not bounded.
#
# Usage: bench/hold.sh [idle connections, default 1000] [slow-header connections, default 100]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

IDLE="${1:-1000}"
SLOW="${2:-100}"
TIMEOUT=5
WORK="$(mktemp -d)"
UPSTREAM_PORT=18091
PATCHBAY_PORT=18092

cleanup() {
  for pid in ${PB_PID:-} ${UP_PID:-}; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "==> building patchbay (profile $PATCHBAY_PROFILE)" >&2
cargo build --profile "$PATCHBAY_PROFILE" -q -p patchbay-cli

mkdir -p "$WORK/www"
echo "held" >"$WORK/www/hold"
python3 -m http.server "$UPSTREAM_PORT" --bind 127.0.0.1 --directory "$WORK/www" >/dev/null 2>&1 &
UP_PID=$!

PATCHBAY_MASTER_KEY="$(head -c 32 /dev/urandom | base64)" target/$PATCHBAY_PROFILE/patchbay \
  --data-dir "$WORK/data" serve --listen "127.0.0.1:$PATCHBAY_PORT" --allow-net 127.0.0.0/8 \
  --header-timeout "${TIMEOUT}s" >"$WORK/out" 2>"$WORK/err" &
PB_PID=$!
TOKEN=$(admin_token "$WORK/out" "$WORK/err" 30)
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$UPSTREAM_PORT/hold" >/dev/null && break; sleep 0.1; done
CONNECTION=$(bench_connection "$PATCHBAY_PORT" "$TOKEN" "$UPSTREAM_PORT")

echo "==> $IDLE idle and $SLOW slow-header connections against a ${TIMEOUT} s header timeout" >&2
timeout 120 python3 bench/hold.py "$PATCHBAY_PORT" "$TOKEN" "$CONNECTION" "$PB_PID" "$IDLE" "$SLOW" "$TIMEOUT"
echo "open-file limit of the server: $(awk '/Max open files/ {print $4}' /proc/$PB_PID/limits)"
curl -s "http://127.0.0.1:$PATCHBAY_PORT/healthz"; echo
