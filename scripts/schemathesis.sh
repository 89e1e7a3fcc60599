#!/usr/bin/env bash
# Property-based tests of the whole API against its own OpenAPI document: schemathesis (from
# PyPI, into .tools/venv, git-ignored) with every check, against a Patchbay started here on the
# embedded store. EXAMPLES sets the examples per operation (default 100); SHORT=1 is the test
# command's run (see CONNECTIONS below); ONLY=<path regex> tests just the matching operations.
# Usage: scripts/schemathesis.sh [schemathesis options other than path filters].
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES=${EXAMPLES:-100}
log() { printf '==> %s\n' "$*" >&2; }

if ! .tools/venv/bin/st --version >/dev/null 2>&1; then
  log "installing schemathesis into .tools/venv"
  [ -x .tools/venv/bin/python ] || python3 -m venv .tools/venv
  .tools/venv/bin/pip install -q --disable-pip-version-check schemathesis==4.32.5
fi

log "building patchbay"
cargo build -q -p patchbay-cli

WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PATCHBAY_MASTER_KEY="$(head -c 32 /dev/urandom | base64)" PATCHBAY_DATA_DIR="$WORK/data" \
  PATCHBAY_TEST_RATE_LIMIT=0 setsid target/debug/patchbay serve --listen "127.0.0.1:$PORT" \
  >"$WORK/out" 2>"$WORK/err" &
PID=$!
trap 'kill -- -$PID 2>/dev/null || kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do grep -q "Admin token" "$WORK/out" 2>/dev/null && break; sleep 0.1; done
TOKEN=$(sed -n 's/^Admin token[^:]*: //p' "$WORK/out" | head -1)
[ -n "$TOKEN" ] || { cat "$WORK/err" >&2; exit 1; }
curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/openapi.json" >"$WORK/openapi.json"

# Token revocation runs last, in a pass of its own: GET /v1/tokens lists the run's own token
# and revoking it would leave every later request unauthenticated. Blocking webhook actions
# retry a receiver that fails for up to ~15 s by design, hence the 60 s limits. One worker:
# Python 3.11's parser is not safe to call from two threads at once, and Hypothesis parses its
# own sources while it runs ("AST constructor recursion depth mismatch"). The hooks make the
# references a body needs real, through the same server; scripts/schemathesis.toml holds the
# settings of single operations.
export PATCHBAY_URL="http://127.0.0.1:$PORT" PATCHBAY_TOKEN="$TOKEN"
st() {
  PYTHONPATH=scripts SCHEMATHESIS_HOOKS=schemathesis_hooks .tools/venv/bin/st \
    --config-file scripts/schemathesis.toml run "$WORK/openapi.json" \
    --url "http://127.0.0.1:$PORT" -H "Authorization: Bearer $TOKEN" --checks all \
    --max-examples "$EXAMPLES" --workers 1 --seed 1 --request-timeout 60 --max-response-time 60 \
    --no-color "$@"
}
# A connection body has one schema per kind, case, auth type and provider (about 190): their
# coverage phase alone sends some 50,000 requests (about four minutes); an MCP discovery's body
# is an MCP connection's; actions and nodes run on real connections and wait on upstreams that
# do not resolve (up to 5 s each). SHORT=1 (the test command's run) fuzzes these without their
# coverage phase.
CONNECTIONS='/v1/connections|/v1/connections/test|/v1/mcp/discover|/v1/actions/[a-z]+|/v1/nodes/run'
set +e
rc=0
run() { st "$@"; local r=$?; [ "$rc" -ne 0 ] || rc=$r; }
if [ -n "${ONLY:-}" ]; then
  log "schemathesis: the operations matching $ONLY, $EXAMPLES examples each"
  run --include-path-regex "$ONLY" "$@"
  exit $rc
elif [ "${SHORT:-}" = 1 ]; then
  log "schemathesis: every check, $EXAMPLES examples per operation"
  run --exclude-path-regex "^(/v1/tokens/\{id\}|$CONNECTIONS)\$" "$@"
  log "schemathesis: connection bodies, actions and nodes, $EXAMPLES examples each, no coverage phase"
  run --include-path-regex "^($CONNECTIONS)\$" --phases examples,fuzzing "$@"
else
  log "schemathesis: every check, $EXAMPLES examples per operation"
  run --exclude-path-regex '^/v1/tokens/\{id\}$' "$@"
fi
log "schemathesis: token revocation"
run --include-path-regex '^/v1/tokens/\{id\}$' "$@"
set -e
me=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/me")
log "the run's token after both passes: GET /v1/me answered $me"
exit $rc
