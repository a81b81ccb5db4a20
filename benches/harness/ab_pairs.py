#!/usr/bin/env python3
"""Interleaved A/B pairs of two csatwatch builds under the harness's burst.

Each run starts one build the way the side-by-side harness does
(`start_csatwatch.sh`: a fresh SQLite file or PostgreSQL database), sends
signed Zendesk webhooks from wrk at 64 connections for 10 s (a third of the
ratings bad, so the alert path runs beside the writes), then reads from the
daemon before stopping it:

- the requests wrk completed (all must be 2xx),
- the Slack posts the mock received by the end of the load,
- the writer's time per batch step and the batch size (`/metrics`:
  `csatwatch_write_batch_step_seconds`, `csatwatch_write_batch_size`),
- csatwatch's CPU seconds and the machine's busy share during the load.

Runs alternate A, B, A, B, ... so a drift of the machine hits both builds
alike; the spread between two runs of one build is often 10% on a shared
machine, and one build once drifted 20% within minutes (docs/performance.md),
so judge a change by most pairs, not by one. An untimed warm-up run
comes first (`--warmup`). Prints every run, then the medians per build and
the ratio of B's requests to A's, pair by pair.

  $PEERS_DIR/venv/bin/python benches/harness/ab_pairs.py \\
      --a /tmp/perf/csatwatch-OLD --b /tmp/perf/csatwatch-NEW --db postgres --pairs 3

Needs the harness set up (`../shared/bench/nodered/setup.sh`, see
docs/performance.md "How to measure") and its venv's python (the mock Slack
needs aiohttp). 127.0.0.1 only.
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HARNESS = os.path.join(REPO, "..", "shared", "bench")
NODERED = os.path.join(HARNESS, "nodered")
START = os.path.join(HARNESS, "csatwatch", "start_csatwatch.sh")
CONFIG = os.path.join(REPO, "benches", "harness", "csatwatch.bench.toml")
PORT, SLACK_PORT = 18080, 18081
# Distinct signed requests generated for a run: 10 s at 30,000/s.
REQUESTS = 300_000
TICK = os.sysconf("SC_CLK_TCK")
sys.path.insert(0, NODERED)
from run_bench import port_open  # noqa: E402  (the harness's own probe)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine():
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    return sum(v), v[3] + v[4]


def slack_posts():
    body = urllib.request.urlopen(f"http://127.0.0.1:{SLACK_PORT}/_stats", timeout=5).read()
    return int(re.search(rb'"count":\s*(\d+)', body).group(1))


def steps(metrics):
    sums = dict(re.findall(r'csatwatch_write_batch_step_seconds_sum\{step="(\w+)"\} (\S+)', metrics))
    counts = dict(re.findall(r'csatwatch_write_batch_step_seconds_count\{step="(\w+)"\} (\S+)', metrics))
    out = {k: 1000 * float(sums[k]) / float(counts[k]) for k in sums if float(counts.get(k, 0)) > 0}
    size = dict(re.findall(r"csatwatch_write_batch_size_(sum|count) (\S+)", metrics))
    if size and float(size["count"]) > 0:
        out["batch_size"] = float(size["sum"]) / float(size["count"])
    return out


def run_once(binary, db, requests, work):
    mock = subprocess.Popen(
        [sys.executable, os.path.join(NODERED, "mock_slack.py"), "--port", str(SLACK_PORT),
         "--out", os.path.join(work, "mock.csv")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, PORT=str(PORT), ZENDESK_WEBHOOK_SECRET="s3cret",
               SLACK_BOT_TOKEN="xoxb-test-token", CSATWATCH_BIN=binary, CW_DB=db,
               CW_CONFIG_TEMPLATE=CONFIG, CW_WORK=os.path.join(work, "cw"),
               SLACK_API_URL=f"http://127.0.0.1:{SLACK_PORT}/api/chat.postMessage")
    daemon = None
    try:
        deadline = time.monotonic() + 10
        while not port_open(SLACK_PORT):
            if mock.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the mock Slack did not start (run with the harness venv's python)")
            time.sleep(0.05)
        daemon = subprocess.Popen(["bash", "-c", "exec " + START], env=env,
                                  stdout=open(os.path.join(work, "daemon.log"), "w"),
                                  stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not port_open(PORT):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{binary} did not start: see {work}/daemon.log")
            time.sleep(0.05)
        time.sleep(1)
        cpu0, (tot0, idle0) = cpu_seconds(daemon.pid), machine()
        wrk = subprocess.run(
            ["wrk", "-t1", "-c64", "-d10s", "--timeout", "10s", "-s",
             os.path.join(NODERED, "wrk_replay.lua"), f"http://127.0.0.1:{PORT}/webhooks/zendesk"],
            env=dict(os.environ, WRK_REQ_FILE=requests, WRK_THREADS="1"),
            capture_output=True, text=True, timeout=60)
        cpu1, (tot1, idle1) = cpu_seconds(daemon.pid), machine()
        summary = [l for l in wrk.stdout.splitlines() if l.startswith("WRKJSON")]
        if not summary:
            raise SystemExit(f"wrk printed no summary:\n{wrk.stdout}\n{wrk.stderr}")
        done = int(re.search(r'"requests":(\d+)', summary[0]).group(1))
        bad = sum(int(n) for n in re.findall(r'"err_\w+":(\d+)', summary[0]))
        if int(re.search(r'"wraps":(\d+)', summary[0]).group(1)):
            # Past the end of the file wrk sends the same bodies again, which
            # are only looked up as duplicates: the count would overstate.
            raise SystemExit(f"wrk used up the {REQUESTS:,} requests; raise REQUESTS")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{PORT}/metrics", timeout=10).read().decode()
        return {
            "requests": done,
            "errors": bad,
            "posts": slack_posts(),
            "cpu_s": cpu1 - cpu0,
            "busy_pct": 100 * (1 - (idle1 - idle0) / (tot1 - tot0)),
            **steps(metrics),
        }
    finally:
        for proc in (daemon, mock):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def show(label, run):
    step_names = [k for k in run if k not in ("requests", "errors", "posts", "cpu_s", "busy_pct", "batch_size")]
    steps_text = " ".join(f"{k}={run[k]:.2f}" for k in sorted(step_names))
    print(f"{label}: {run['requests']} requests ({run['errors']} errors), {run['posts']} posts, "
          f"csatwatch {run['cpu_s']:.1f} s CPU, machine {run['busy_pct']:.0f}% busy, "
          f"batch {run.get('batch_size', 0):.1f}; ms per batch: {steps_text}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="the build before (a release binary)")
    ap.add_argument("--b", required=True, help="the build after")
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed runs of A first (the first run after a build is often slower)")
    args = ap.parse_args()
    for binary in (args.a, args.b):
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"not an executable: {binary}")
    with tempfile.TemporaryDirectory(prefix="csatwatch-ab-") as work:
        requests = os.path.join(work, "requests.tsv")
        subprocess.run([sys.executable, os.path.join(NODERED, "loadgen.py"), "gen-wrk", "--n", str(REQUESTS),
                        "--id-base", "80000000", "--out", requests],
                       check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, BENCH_BODY="zendesk"))
        for n in range(args.warmup):
            show(f"warm-up {n + 1} (not counted)", run_once(args.a, args.db, requests, work))
        runs = {"A": [], "B": []}
        for pair in range(1, args.pairs + 1):
            for label, binary in (("A", args.a), ("B", args.b)):
                run = run_once(binary, args.db, requests, work)
                runs[label].append(run)
                show(f"pair {pair} {label}", run)
        print(f"medians over {args.pairs} runs each ({args.db}):")
        for label, binary in (("A", args.a), ("B", args.b)):
            keys = runs[label][0].keys()
            median = {k: statistics.median(r.get(k, 0) for r in runs[label]) for k in keys}
            median["requests"] = int(median["requests"])
            median["errors"] = int(median["errors"])
            median["posts"] = int(median["posts"])
            show(f"{label} {os.path.basename(binary)}", median)
        a = statistics.median(r["requests"] for r in runs["A"])
        b = statistics.median(r["requests"] for r in runs["B"])
        print(f"B/A requests: {b / a:.3f} (pairs: "
              + " ".join(f"{rb['requests'] / ra['requests']:.3f}" for ra, rb in zip(runs["A"], runs["B"]))
              + ")")


if __name__ == "__main__":
    main()
