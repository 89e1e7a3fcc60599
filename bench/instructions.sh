#!/usr/bin/env bash
# User-space instructions per proxied request, counted by valgrind's callgrind: a measure that
# does not drift with the machine's load, for comparing two versions of the proxy's hot path
# (bench/proxy.sh measures throughput, which on a shared machine moves by several percent from
# run to run). Counts Patchbay (`GET /v1/proxy/user` through a bearer connection) and the
# per-core yardstick (bench/minimal-proxy) on the same upstream, after a warm-up, over the same
# requests (4 keep-alive connections in turn). Kernel time is not counted.
#
# Usage: bench/instructions.sh [requests, default 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

REQUESTS="${1:-2000}"
WORK="$(mktemp -d)"
UPSTREAM_PORT=18181
PATCHBAY_PORT=18183
MINIMAL_PORT=18186

cleanup() {
  [ -f "$WORK/upstream.pid" ] && kill "$(cat "$WORK/upstream.pid")" 2>/dev/null || true
  for pid in ${PB_PID:-} ${MC_PID:-}; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

need_commands valgrind nginx wrk

echo "==> building patchbay (profile $PATCHBAY_PROFILE) and the yardstick (release)" >&2
cargo build --profile "$PATCHBAY_PROFILE" -q -p patchbay-cli
MINIMAL_TARGET="$PWD/target/minimal-proxy"
(cd bench/minimal-proxy && CARGO_TARGET_DIR="$MINIMAL_TARGET" cargo build --release -q --locked)

static_upstream "$WORK" "$UPSTREAM_PORT" '{"ok":true,"user":"octocat"}'

# under_callgrind NAME COMMAND...: starts COMMAND with instrumentation off; its pid in $!.
under_callgrind() {
  local name=$1
  shift
  setsid valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$WORK/$name.out" "$@" >"$WORK/$name.stdout" 2>"$WORK/$name.stderr" </dev/null &
}

under_callgrind minimal "$MINIMAL_TARGET/release/minimal-proxy" "127.0.0.1:$MINIMAL_PORT" \
  "127.0.0.1:$UPSTREAM_PORT" per-core
MC_PID=$!
PATCHBAY_DATA_DIR="$WORK/data" under_callgrind patchbay ./target/$PATCHBAY_PROFILE/patchbay serve \
  --listen "127.0.0.1:$PATCHBAY_PORT" --allow-net 127.0.0.0/8
PB_PID=$!
TOKEN=$(admin_token "$WORK/patchbay.stdout" "$WORK/patchbay.stderr" 120)
CONNECTION=$(bench_connection "$PATCHBAY_PORT" "$TOKEN" "$UPSTREAM_PORT")
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$MINIMAL_PORT/user" 2>/dev/null | grep -q octocat && break
  sleep 0.2
done

# count NAME PID PORT PATH [HEADER...]: instructions per request of the process PID.
count() {
  local name=$1 pid=$2 port=$3 path=$4
  shift 4
  local headers=()
  for h in "$@"; do headers+=(-H "$h"); done
  wrk -t1 -c4 -d3s "${headers[@]}" "http://127.0.0.1:$port$path" >/dev/null
  callgrind_control -i on "$pid" >/dev/null
  local done
  done=$(python3 - "$port" "$path" "$REQUESTS" "$@" <<'PY'
import socket, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
extra = "".join(h + "\r\n" for h in sys.argv[4:])
req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()
connect = lambda: socket.create_connection(("127.0.0.1", port))
socks = [connect() for _ in range(4)]
done, reconnects = 0, 0
while done < n:
    for i in range(4):
        socks[i].sendall(req)
    for i in range(4):
        buf = b""
        while b"octocat" not in buf:
            chunk = socks[i].recv(65536)
            if not chunk:
                # Closed by the server (seen now and then under valgrind): counted, not fatal.
                reconnects += 1
                if reconnects > 10:
                    sys.exit("the server keeps closing connections")
                socks[i] = connect()
                break
            buf += chunk
        else:
            done += 1
print(done)
if reconnects:
    print(f"{reconnects} connection(s) closed by the server and reopened", file=sys.stderr)
PY
)
  callgrind_control -i off "$pid" >/dev/null
  callgrind_control -d "$pid" >/dev/null
  sleep 1
  local total
  total=$(sed -n 's/^totals: //p' "$WORK/$name.out".*1 2>/dev/null | head -1)
  [ -n "$total" ] || total=$(sed -n 's/^summary: //p' "$WORK/$name.out".* | sort -n | tail -1)
  python3 -c "print(round($total / $done))"
}

echo "==> $REQUESTS requests each, under callgrind" >&2
PB=$(count patchbay "$PB_PID" "$PATCHBAY_PORT" /v1/proxy/user "Authorization: Bearer $TOKEN" \
  "Patchbay-Connection: $CONNECTION")
MC=$(count minimal "$MC_PID" "$MINIMAL_PORT" /user)
echo "instructions per request (user space): patchbay $PB, minimal-per-core $MC"
python3 -c "print('patchbay / minimal-per-core: %.2fx' % ($PB / $MC))"
