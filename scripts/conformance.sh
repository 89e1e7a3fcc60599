#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance) against Patchbay:
#
# - its client scenarios (initialize, tools_call, sse-retry and the auth scenarios of
#   2025-11-25) against Patchbay's MCP client, driven through the API by
#   tests/conformance/client_adapter.py;
# - its server scenarios (server-initialize, ping, tools-*, dns-rebinding-protection) against
#   the gateway's /mcp/c/{connection}, in front of tests/conformance/upstream.py.
#
# Expected failures, with their reasons, are in tests/conformance/baseline.yml; an unexpected
# failure, or a listed scenario that passes, fails the run. Installs the suite into
# .tools/conformance (git-ignored); needs the peers' Python (.tools/venv, see scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE_VERSION=0.1.16
T=.tools/conformance
log() { printf '==> %s\n' "$*" >&2; }

if [ ! -f "$T/node_modules/@modelcontextprotocol/conformance/package.json" ]; then
  log "installing @modelcontextprotocol/conformance@$SUITE_VERSION into $T"
  mkdir -p "$T"
  npm install --prefix "$T" --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/conformance@$SUITE_VERSION" glob@14.0.6 >/dev/null
fi
PY=.tools/venv/bin/python
cargo build -q --bin patchbay

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # file needle what
  for _ in $(seq 1 120); do grep -q "$2" "$1" 2>/dev/null && return; sleep 0.25; done
  echo "$3 did not start:" >&2; cat "$1" >&2; exit 1
}

PB=$(free_port); PROXY=$(free_port); UP=$(free_port)
# Patchbay's public URL is the token-adding forwarder's: Origin checks and the OAuth callback
# go through it.
PATCHBAY_DATA_DIR="$work/data" PATCHBAY_LISTEN="127.0.0.1:$PB" \
  PATCHBAY_PUBLIC_URL="http://127.0.0.1:$PROXY" PATCHBAY_ALLOW_NET="127.0.0.0/8,::1/128" \
  PATCHBAY_TEST_RATE_LIMIT=0 PATCHBAY_TEST_TIMEOUT=20s \
  PATCHBAY_CLIENT_METADATA_URL="https://conformance-test.local/client-metadata.json" \
  target/debug/patchbay serve >"$work/serve.log" 2>&1 &
pids+=($!)
wait_for "$work/serve.log" "Admin token" "Patchbay"
TOKEN=$(sed -n 's/^Admin token[^:]*: //p' "$work/serve.log")
export PATCHBAY_URL="http://127.0.0.1:$PB" PATCHBAY_TOKEN="$TOKEN"
"$PY" tests/conformance/bearer_proxy.py "$PROXY" "$PB" >"$work/proxy.log" 2>&1 &
pids+=($!)
"$PY" tests/conformance/upstream.py "$UP" >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_for "$work/proxy.log" READY "the forwarder"
wait_for "$work/upstream.log" READY "the upstream"

suite() {
  CONFORMANCE_GLOB_FROM="$PWD/$T/package.json" node --import ./tests/conformance/globsync.mjs \
    "$T/node_modules/@modelcontextprotocol/conformance/dist/index.js" "$@" \
    --expected-failures tests/conformance/baseline.yml
}

status=0
log "conformance: client scenarios against Patchbay's MCP client"
for s in initialize tools_call sse-retry; do
  suite client --command "$PY tests/conformance/client_adapter.py" --scenario "$s" || status=1
done
suite client --command "$PY tests/conformance/client_adapter.py" --suite auth \
  --spec-version 2025-11-25 || status=1

log "conformance: server scenarios against /mcp/c/{connection}"
created=$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d "{\"name\":\"conformance-upstream\",\"kind\":\"mcp\",\"config\":{\"server_url\":\"http://127.0.0.1:$UP/mcp\"}}" \
  "$PATCHBAY_URL/v1/connections")
ID=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$created")
for s in server-initialize ping tools-list tools-call-simple-text tools-call-image \
  tools-call-audio tools-call-embedded-resource tools-call-mixed-content \
  tools-call-with-logging tools-call-error tools-call-with-progress tools-call-sampling \
  tools-call-elicitation dns-rebinding-protection; do
  suite server --url "http://127.0.0.1:$PROXY/mcp/c/$ID" --scenario "$s" || status=1
done
exit "$status"
