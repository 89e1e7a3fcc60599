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
