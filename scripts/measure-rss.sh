#!/usr/bin/env bash
# Measures csatwatch's resident memory (RSS) idle and after a burst of signed
# webhooks, to size container and Kubernetes resources. Prints each run and
# the medians.
#
#   scripts/measure-rss.sh [BINARY] [RUNS] [REQUESTS] [PARALLEL]
#
# Defaults: target/release/csatwatch, 3 runs, 1000 webhooks, 8 at a time.
# Needs curl and openssl. SQLite in a temp folder; alerts go to the log.
set -euo pipefail
BIN="${1:-target/release/csatwatch}"
RUNS="${2:-3}"
REQUESTS="${3:-1000}"
PARALLEL="${4:-8}"
SECRET="measure-secret"
PORT="${PORT:-18089}"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

post_one() {
  local i="$1" sentiment body sig
  if (( i % 2 )); then sentiment=1; else sentiment=5; fi
  body="{\"ticket\":{\"id\":\"T$i\"},\"rating\":{\"score\":$sentiment,\"comment\":\"measurement $i\"}}"
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
  curl -s -o /dev/null -w '%{http_code}\n' -X POST "http://127.0.0.1:$PORT/webhooks/bench" \
    -H 'content-type: application/json' -H "X-Signature: sha256=$sig" --data-binary "$body"
}
export -f post_one
export SECRET PORT

idle_all=(); burst_all=()
for run in $(seq 1 "$RUNS"); do
  dir=$(mktemp -d)
  cat > "$dir/csatwatch.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
[database]
url = "sqlite://$dir/csatwatch.db"
[log]
format = "json"
level = "warn"
[[sources]]
name = "bench"
kind = "generic"
secret = "$SECRET"
signature_prefix = "sha256="
[sources.fields]
conversation_id = "/ticket/id"
score = "/rating/score"
comment = "/rating/comment"
TOML
  "$BIN" --config "$dir/csatwatch.toml" serve 2>"$dir/log" &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  sleep 2
  idle=$(rss_kib "$pid")
  peak=$idle
  seq 1 "$REQUESTS" | xargs -P "$PARALLEL" -I{} bash -c 'post_one {}' > "$dir/codes" &
  load=$!
  while kill -0 "$load" 2>/dev/null; do
    now=$(rss_kib "$pid"); (( now > peak )) && peak=$now; sleep 0.05
  done
  wait "$load"
  ok=$(grep -c '^200$' "$dir/codes" || true)
  after=$(rss_kib "$pid")
  kill -TERM "$pid"; wait "$pid" || true
  echo "run $run: idle ${idle} KiB, peak during burst ${peak} KiB, after ${after} KiB; ${ok}/${REQUESTS} answered 200"
  idle_all+=("$idle"); burst_all+=("$peak")
  rm -rf "$dir"
done
echo "median idle RSS: $(printf '%s\n' "${idle_all[@]}" | median) KiB"
echo "median burst peak RSS: $(printf '%s\n' "${burst_all[@]}" | median) KiB"
