#!/usr/bin/env bash
# The whole test suite, on any machine of ours: makes sure PostgreSQL runs (starting or
# installing it), then runs every test of the workspace on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

ensure_postgres() {
  if pg_up; then return; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    # Local TCP connections as in development: trust on loopback only.
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
    done
  fi
  log "starting PostgreSQL"
  for v in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
  done
  for _ in $(seq 1 60); do pg_up && return; sleep 0.5; done
  echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
  exit 1
}

ensure_postgres
export PATCHBAY_TEST_POSTGRES_URL="${PATCHBAY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# Databases left by earlier runs (one per PostgreSQL test) are dropped first.
psql "$PATCHBAY_TEST_POSTGRES_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'pbtest\_%'" 2>/dev/null |
  while read -r db; do psql "$PATCHBAY_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done

log "checking formatting"
cargo fmt --all -- --check

if cargo nextest --version >/dev/null 2>&1; then
  log "running the test suite (nextest)"
  cargo nextest run --workspace --no-fail-fast "$@"
else
  log "running the test suite (cargo test)"
  cargo test --workspace --no-fail-fast "$@"
fi
