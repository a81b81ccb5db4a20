#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit and integration tests,
# on SQLite and on PostgreSQL. PostgreSQL must answer; this script fails
# (it does not skip) when it does not.
#
#   TEST_DATABASE_URL  a role that may CREATE DATABASE
#                      (default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail
cd "$(dirname "$0")/.."

export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CSATWATCH_REQUIRE_POSTGRES=1

pg_answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -d "$TEST_DATABASE_URL"
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

if ! pg_answers; then
  # A machine where the server is installed but stopped: start it.
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "test.sh: PostgreSQL is not answering; trying to start it" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 20); do pg_answers && break; sleep 0.5; done
  fi
fi
if ! pg_answers; then
  echo "test.sh: PostgreSQL does not answer at $TEST_DATABASE_URL; the suite needs it (see README, 'Tests')" >&2
  exit 1
fi

# Drop databases left by earlier interrupted runs.
if command -v psql >/dev/null 2>&1; then
  psql -qAt "$TEST_DATABASE_URL" -c \
    "SELECT 'DROP DATABASE IF EXISTS ' || quote_ident(datname) || ';' FROM pg_database WHERE datname LIKE 'csatwatch_test_%'" \
    | psql -q "$TEST_DATABASE_URL" >/dev/null || true
fi

# --- Dashboard browser test (tests/it/dashboard_browser.rs) -------------------
# It drives Debian's chromium through puppeteer-core and checks pages with
# axe-core (npm). Install what is missing; the test fails, never skips, when
# the browser cannot run.
if ! command -v chromium >/dev/null 2>&1; then
  echo "test.sh: installing chromium for the dashboard browser test" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "test.sh: installing Node.js for the dashboard browser test" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
if [ ! -d tests/browser/node_modules/puppeteer-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
  (cd tests/browser && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
# ------------------------------------------------------------------------------

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked "$@"

if command -v psql >/dev/null 2>&1; then
  psql -qAt "$TEST_DATABASE_URL" -c \
    "SELECT 'DROP DATABASE IF EXISTS ' || quote_ident(datname) || ';' FROM pg_database WHERE datname LIKE 'csatwatch_test_%'" \
    | psql -q "$TEST_DATABASE_URL" >/dev/null || true
fi
