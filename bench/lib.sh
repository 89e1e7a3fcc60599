# Shared by the bench scripts (sourced, not run).

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
