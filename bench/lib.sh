# Shared by the bench scripts (sourced, not run).

# The cargo profile Patchbay is built with: `release` (what the README runs) unless
# PATCHBAY_PROFILE says otherwise (`optimized`: one codegen unit, fat LTO).
PATCHBAY_PROFILE=${PATCHBAY_PROFILE:-release}

# admin_token STDOUT STDERR SECONDS: the admin token a starting `patchbay serve` prints to
# STDOUT, waited for up to SECONDS; exits with its STDERR if it never comes.
admin_token() {
  local out=$1 err=$2 tries=$(($3 * 10)) token
  for _ in $(seq 1 "$tries"); do
    grep -q "Admin token" "$out" 2>/dev/null && break
    sleep 0.1
  done
  token=$(sed -n 's/^Admin token[^:]*: //p' "$out" | head -1)
  [ -n "$token" ] || { echo "patchbay did not start:" >&2; cat "$err" >&2; exit 1; }
  echo "$token"
}

# bench_connection PORT TOKEN UPSTREAM_PORT: creates the bearer connection the benchmarks proxy
# through (to the upstream on UPSTREAM_PORT) and prints its id.
bench_connection() {
  curl -s -X POST "http://127.0.0.1:$1/v1/connections" \
    -H "Authorization: Bearer $2" -H "Content-Type: application/json" \
    -d "{\"name\":\"bench\",\"kind\":\"http\",\"auth\":{\"type\":\"bearer\"},\"config\":{\"base_url\":\"http://127.0.0.1:$3\"},\"secrets\":{\"token\":\"upstream-token\"}}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}

# need_commands CMD...: installs those of the commands that are missing (each from the Debian
# package of the same name).
need_commands() {
  local missing=() c
  for c in "$@"; do command -v "$c" >/dev/null || missing+=("$c"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# static_upstream DIR PORT BODY: an nginx of its own (one worker) answering BODY as JSON on
# 127.0.0.1:PORT; its pid is in DIR/upstream.pid.
static_upstream() {
  mkdir -p "$1/upstream/logs"
  cat >"$1/upstream.conf" <<CONF
worker_processes 1;
pid $1/upstream.pid;
error_log $1/upstream/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  server { listen 127.0.0.1:$2;
    location / { default_type application/json; return 200 '$3'; } }
}
CONF
  nginx -c "$1/upstream.conf" -p "$1/upstream"
}

# start_bench_patchbay WORK UPSTREAM_PORT PATCHBAY_PORT: installs wrk and nginx when missing,
# builds Patchbay in release mode, starts a static nginx upstream on UPSTREAM_PORT and
# `patchbay serve` on PATCHBAY_PORT (data in WORK/data, loopback allowed), and creates the
# bearer connection to the upstream. Sets PB_PID, TOKEN and CONNECTION; the caller's cleanup
# stops WORK/upstream.pid and PB_PID.
start_bench_patchbay() {
  need_commands wrk nginx
  echo "==> building patchbay (profile $PATCHBAY_PROFILE)" >&2
  cargo build --profile "$PATCHBAY_PROFILE" -q -p patchbay-cli
  static_upstream "$1" "$2" '{"ok":true}'
  PATCHBAY_DATA_DIR="$1/data" setsid ./target/$PATCHBAY_PROFILE/patchbay serve \
    --listen "127.0.0.1:$3" --allow-net 127.0.0.0/8 >"$1/out" 2>"$1/err" &
  PB_PID=$!
  TOKEN=$(admin_token "$1/out" "$1/err" 30)
  CONNECTION=$(bench_connection "$3" "$TOKEN" "$2")
}

# stop_bench_patchbay WORK: stops what start_bench_patchbay started and removes WORK.
stop_bench_patchbay() {
  [ -f "$1/upstream.pid" ] && kill "$(cat "$1/upstream.pid")" 2>/dev/null || true
  [ -n "${PB_PID:-}" ] && kill "$PB_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$1"
}
