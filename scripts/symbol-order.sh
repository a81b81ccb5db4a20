#!/usr/bin/env bash
# The release binary's function order (link/symbol-order.txt): the functions
# the daemon runs to start, take webhooks, post to Slack and sit idle are
# linked next to each other, so the kernel maps about 4 MiB of code instead
# of nearly all 9 (docs/performance.md "Memory"). build.rs hands the file to
# the linker in release builds.
#
#   scripts/symbol-order.sh            regenerate link/symbol-order.txt
#   scripts/symbol-order.sh --check    fail when it no longer matches the build
#   scripts/symbol-order.sh --check BINARY   the same for a binary already built
#
# The names in the file carry the hashes rustc gives each crate, so they go
# stale when the toolchain, Cargo.lock or a crate's features change: --check
# (run by scripts/test.sh) builds the release binary and fails when under 95%
# of the listed names are in it, or when they do not sit together (the order
# was not applied). Regenerate then, and commit the file with the change that
# made it stale.
#
# Regenerating needs valgrind, python3, curl, openssl and PostgreSQL at
# 127.0.0.1:5432 (or TEST_DATABASE_URL's server): it runs the daemon under
# callgrind on SQLite and on PostgreSQL with the example config, sends the
# sample ratings, a readiness probe and a metrics scrape, waits through the
# timers, stops it, and lists every function that ran.
# CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
order_file=link/symbol-order.txt
target_dir=${CARGO_TARGET_DIR:-target}
bin=$target_dir/release/csatwatch

# Exactly `cargo build --release`: rustc's names depend on the profile (the
# release profile keeps the symbol table for this; Cargo.toml says so).
build() {
  cargo build --release --locked --bin csatwatch >&2
}

if [[ ${1:-} == --check ]]; then
  if [[ -n ${2:-} ]]; then bin=$2; else build; fi
  python3 - "$bin" "$order_file" <<'PY'
import subprocess, sys
binary, order_file = sys.argv[1], sys.argv[2]
listed = [l.strip() for l in open(order_file) if l.strip() and not l.startswith("#")]
# name -> (address, size); symbols without a size count as present, size 0.
symbols = {}
for line in subprocess.run(["nm", "--defined-only", "-S", binary],
                           capture_output=True, text=True, check=True).stdout.splitlines():
    parts = line.split()
    if len(parts) >= 3:
        size = int(parts[1], 16) if len(parts) == 4 else 0
        symbols[parts[-1]] = (int(parts[0], 16), size)
spans = [symbols[name] for name in listed if name in symbols]
share = len(spans) / len(listed) if listed else 0.0
print(f"symbol-order: {len(spans)} of {len(listed)} listed functions are in the release build ({share:.1%})")
if share < 0.95:
    sys.exit(f"symbol-order: {order_file} is stale (under 95% of its names are in the build): "
             "run scripts/symbol-order.sh and commit the file")
# Applied: the listed functions sit together, not spread over the whole code.
size = sum(s for _, s in spans)
extent = max(a + s for a, s in spans) - min(a for a, _ in spans)
packed = size / extent
print(f"symbol-order: they fill {packed:.0%} of the {extent / 2**20:.1f} MiB they span")
if packed < 0.9:
    sys.exit("symbol-order: the release build did not take the order (build.rs passes it to "
             "the linker; is another linker configured?)")
PY
  exit 0
fi

for tool in valgrind python3 curl openssl nm; do
  command -v "$tool" >/dev/null || { echo "symbol-order.sh: needs $tool" >&2; exit 1; }
done
build
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

port=18391
slack_port=18392
# Stands in for Slack's chat.postMessage: every call succeeds.
python3 - "$slack_port" <<'PY' &
import http.server, sys
class Slack(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = b'{"ok":true,"channel":"C1","ts":"1.2"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Slack).serve_forever()
PY
pids+=($!)

pg_base=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export PGOPTIONS="-c client_min_messages=warning"
pg_db=csatwatch_symbol_order
for db in sqlite postgres; do
  case $db in
    sqlite) url="sqlite://$work/data/csatwatch.db" ;;
    postgres)
      psql "$pg_base" -q -c "DROP DATABASE IF EXISTS $pg_db" -c "CREATE DATABASE $pg_db" >/dev/null
      url="${pg_base%/*}/$pg_db" ;;
  esac
  CSATWATCH__SERVER__LISTEN=127.0.0.1:$port \
  CSATWATCH__DATABASE__URL=$url \
  CSATWATCH__SLACK__BOT_TOKEN=xoxb-symbol-order \
  CSATWATCH__SLACK__API_BASE_URL=http://127.0.0.1:$slack_port/api \
    valgrind --tool=callgrind --dump-instr=yes --compress-pos=no --compress-strings=no \
      --callgrind-out-file="$work/callgrind.$db" \
      "$bin" --config config/csatwatch.example.toml serve 2>"$work/log.$db" &
  daemon=$!
  pids+=("$daemon")
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null \
    || { echo "symbol-order.sh: the daemon did not start on $db:" >&2; tail -20 "$work/log.$db" >&2; exit 1; }
  export CSATWATCH_URL=http://127.0.0.1:$port
  for rating in bad good bad; do
    for ticket in 4242 4343; do
      scripts/send-sample-rating.sh "$rating" "$ticket" | grep -q '^HTTP 2' \
        || { echo "symbol-order.sh: a sample rating was refused on $db" >&2; exit 1; }
    done
  done
  curl -sf "http://127.0.0.1:$port/metrics" >/dev/null
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null
  # The timers (gauges, the dispatcher's heartbeat) run while it is idle.
  sleep 20
  kill -TERM "$daemon"
  wait "$daemon" || { echo "symbol-order.sh: the daemon did not stop cleanly on $db" >&2; exit 1; }
  if [[ $db == postgres ]]; then
    psql "$pg_base" -q -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null
  fi
done

mkdir -p "$(dirname "$order_file")"
python3 - "$bin" "$order_file" "$work"/callgrind.sqlite "$work"/callgrind.postgres <<'PY'
import bisect, os, subprocess, sys
binary, order_file, profiles = sys.argv[1], sys.argv[2], sys.argv[3:]
name = os.path.basename(binary)
functions = []
for line in subprocess.run(["nm", "--defined-only", "-S", binary],
                           capture_output=True, text=True, check=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 4 and parts[2] in "tTwW":
        functions.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
functions.sort()
starts = [f[0] for f in functions]

def ran(profile):
    """The functions of the binary that ran at least one instruction."""
    hot, ours = set(), False
    for line in open(profile, errors="replace"):
        if line.startswith("ob="):
            ours = line.rstrip().endswith("/" + name)
        elif ours and line.startswith("0x"):
            address = int(line.split()[0], 16)
            i = bisect.bisect_right(starts, address) - 1
            if i >= 0 and address < functions[i][0] + functions[i][1]:
                hot.add(i)
    return hot

sqlite, postgres = (ran(p) for p in profiles)
# What both backends run first, then SQLite's own, then PostgreSQL's: each
# daemon's code is then one run of pages. Address order within each keeps
# the compiler's neighbours together.
groups = [sorted(sqlite & postgres), sorted(sqlite - postgres), sorted(postgres - sqlite)]
hot = [i for group in groups for i in group]
size = sum(functions[i][1] for i in hot)
with open(order_file, "w") as out:
    out.write("# Generated by scripts/symbol-order.sh; do not edit. The functions the daemon\n"
              "# ran to start, take webhooks and sit idle (those both backends ran, then\n"
              "# SQLite's, then PostgreSQL's), for the linker's --symbol-ordering-file:\n"
              f"# {len(hot)} functions, {size / 2**20:.1f} MiB.\n")
    for i in hot:
        out.write(functions[i][2] + "\n")
shares = ", ".join(f"{sum(functions[i][1] for i in g) / 2**20:.1f}" for g in groups)
print(f"symbol-order: wrote {order_file}: {len(hot)} functions, {size / 2**20:.1f} MiB of code "
      f"(both, SQLite only, PostgreSQL only: {shares} MiB)")
PY
