#!/usr/bin/env bash
# The whole test suite, on any machine of ours: makes sure PostgreSQL and MariaDB run
# (starting or installing them), installs the test peers into .tools/ (git-ignored): aiosmtpd,
# standardwebhooks, the MCP SDK and moto (an S3-compatible server) from PyPI, the MCP reference server and oidc-provider from npm, then runs every test,
# the MCP conformance suite (scripts/conformance.sh, which installs it from npm), the web UI in
# headless Chromium (scripts/ui-test.sh, which installs Chromium, playwright-core and axe-core) and a short
# schemathesis pass (scripts/schemathesis.sh, which installs schemathesis from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

ensure_postgres() {
  if pg_up; then return; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL"
    apt_install postgresql
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

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  apt-get install -y -qq "$@" >/dev/null
}

maria_up() { mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1; }

ensure_mariadb() {
  if maria_up; then return; fi
  if [ ! -x /usr/sbin/mariadbd ]; then
    log "installing MariaDB"
    apt_install mariadb-server
  fi
  log "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do maria_up && break; sleep 0.5; done
  maria_up || { echo "MariaDB did not come up on 127.0.0.1:3306" >&2; exit 1; }
}

# What the tests expect of the database servers, however they came to run (already up,
# started here, or just installed): PostgreSQL's `test` database; MariaDB's root reachable over
# loopback TCP with an empty password (a fresh Debian install lets root in through the socket
# only) and its `test` database.
ensure_test_databases() {
  if ! psql "$PATCHBAY_TEST_POSTGRES_URL" -Atqc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    log "creating PostgreSQL's test database"
    psql "$PATCHBAY_TEST_POSTGRES_URL" -qc "CREATE DATABASE test" >/dev/null
  fi
  if ! mysql -h 127.0.0.1 -u root -e "SELECT 1" >/dev/null 2>&1; then
    log "letting root reach MariaDB over loopback TCP without a password"
    mysql -u root <<'SQL' || echo "could not open MariaDB's root to loopback TCP; tests against MariaDB will fail" >&2
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'root'@'::1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
  fi
  mysql -h 127.0.0.1 -u root -e "CREATE DATABASE IF NOT EXISTS test"
}

# Password checks need roles that trust authentication does not cover: patchbay_pw for the
# Rust tests, patchbay_ui for the browser tests.
ensure_postgres_password_rule() {
  local hba role
  hba=$(psql "$PATCHBAY_TEST_POSTGRES_URL" -Atc "SHOW hba_file")
  for role in patchbay_pw patchbay_ui; do
    if ! grep -q "$role" "$hba"; then
      log "adding a password rule for the $role test role to $hba"
      sed -i "1i host all $role ::1/128 scram-sha-256" "$hba"
      sed -i "1i host all $role 127.0.0.1/32 scram-sha-256" "$hba"
      psql "$PATCHBAY_TEST_POSTGRES_URL" -qAtc "SELECT pg_reload_conf()" >/dev/null
    fi
  done
}

ensure_tools() {
  mkdir -p .tools
  if ! .tools/venv/bin/python -c "import aiosmtpd, standardwebhooks, mcp, moto.server, boto3, asyncssh, bcrypt, pyftpdlib, OpenSSL, stripe, slack_sdk, twilio" >/dev/null 2>&1; then
    log "installing the Python test peers and webhook signers into .tools/venv"
    [ -x .tools/venv/bin/python ] || python3 -m venv .tools/venv
    .tools/venv/bin/pip install -q --disable-pip-version-check aiosmtpd==1.4.6 standardwebhooks==1.1.0 mcp==2.3.0 \
      'moto[server]==5.2.5' asyncssh==2.24.1 bcrypt==5.0.0 pyftpdlib==2.2.0 pyopenssl==26.4.0 \
      stripe==16.1.0 slack-sdk==3.47.0 twilio==9.13.0
  fi
  if [ ! -f .tools/node_modules/@modelcontextprotocol/server-everything/dist/index.js ] || [ ! -d .tools/node_modules/oidc-provider ] || [ ! -d .tools/node_modules/@octokit/webhooks-methods ]; then
    log "installing @modelcontextprotocol/server-everything, oidc-provider and @octokit/webhooks-methods into .tools"
    npm install --prefix .tools --no-audit --no-fund --loglevel=error \
      @modelcontextprotocol/server-everything@2026.8.31 oidc-provider@9.13.3 @octokit/webhooks-methods@6.0.0 >/dev/null
  fi
}

ensure_postgres
export PATCHBAY_TEST_POSTGRES_URL="${PATCHBAY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ensure_postgres_password_rule
ensure_mariadb
ensure_test_databases
ensure_tools

# The databases of PostgreSQL tests (one each): dropped before the run (an interrupted one may
# have left some) and after it, whatever its outcome, so none survives.
drop_test_databases() {
  psql "$PATCHBAY_TEST_POSTGRES_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'pbtest\_%'" 2>/dev/null |
    while read -r db; do
      psql "$PATCHBAY_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
drop_test_databases
trap drop_test_databases EXIT

log "checking formatting"
cargo fmt --all -- --check

if cargo nextest --version >/dev/null 2>&1; then
  log "running the test suite (nextest)"
  cargo nextest run --workspace --no-fail-fast "$@"
else
  log "running the test suite (cargo test)"
  cargo test --workspace --no-fail-fast "$@"
fi

# The official MCP conformance suite: Patchbay's MCP client and its gateway (the whole suite
# only, not a filtered run).
if [ "$#" -eq 0 ]; then
  log "the MCP conformance suite"
  scripts/conformance.sh
fi

# The web UI in headless Chromium (the whole suite only, not a filtered run).
if [ "$#" -eq 0 ]; then
  log "the web UI in a browser"
  scripts/ui-test.sh
fi

# The API against its own OpenAPI document, briefly (the whole suite only, not a filtered run);
# `scripts/schemathesis.sh` alone runs 100 examples per operation.
if [ "$#" -eq 0 ]; then
  log "schemathesis: a short run against the OpenAPI document"
  SHORT=1 EXAMPLES="${SCHEMATHESIS_EXAMPLES:-10}" scripts/schemathesis.sh
fi
