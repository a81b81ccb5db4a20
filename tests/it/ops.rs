//! Running it in production: the real binary under a systemd-style
//! `NOTIFY_SOCKET`, its `/metrics` after real deliveries, its logs after a
//! full run, the container health check, and the shipped systemd unit.
//!
//! These tests start `csatwatch` as a separate process, so each has its own
//! metrics recorder and its numbers can be asserted exactly.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use csatwatch::clock::{Clock as _, ManualClock};
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::support::*;

pub(crate) const TOKEN: &str = "xoxb-CANARY-token-5f1d9e";
pub(crate) const SECRET: &str = "CANARY-webhook-secret-a83c";
pub(crate) const COMMENT: &str = "CANARY comment: the blender caught fire twice";
pub(crate) const CUSTOMER: &str = "Zebulon Canaryfield";

/// The real binary, running with a settings file in a temp folder and its
/// stderr captured to a file.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) addr: String,
}

impl Daemon {
    /// Starts `csatwatch serve` on port 0 with JSON logs at `debug`, and
    /// waits until it logs the address it listens on.
    pub(crate) fn start(db_url: &str, slack: &MockServer, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with(&Daemon::config(db_url, slack, ""), env)
    }

    /// The settings `start` uses, with `extra` TOML appended.
    pub(crate) fn config(db_url: &str, slack: &MockServer, extra: &str) -> String {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"{db_url}\"\n\
             [log]\nformat = \"json\"\nlevel = \"debug\"\n\
             [slack]\nbot_token = \"{TOKEN}\"\ndefault_channel = \"#csat\"\napi_base_url = \"{}/api\"\n\
             [alerts]\nchannel_interval = \"10ms\"\n\
             [[sources]]\nname = \"zendesk\"\nkind = \"zendesk\"\nsecret = \"{SECRET}\"\n{extra}",
            slack.uri()
        )
    }

    /// The settings file the daemon reads (to rewrite it before a reload).
    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("csatwatch.toml")
    }

    /// Starts `csatwatch serve` with `config` as its settings file.
    pub(crate) fn start_with(config: &str, env: &[(&str, &str)]) -> Daemon {
        install_crypto();
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("csatwatch.toml");
        std::fs::write(&config_path, config).unwrap();
        let config = config_path;
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_csatwatch"));
        command
            .args(["--config", config.to_str().unwrap(), "serve"])
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        let mut daemon = Daemon {
            child,
            dir,
            addr: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while daemon.addr.is_empty() {
            assert!(
                Instant::now() < deadline,
                "no ready line:\n{}",
                daemon.logs()
            );
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("csatwatch exited {status}:\n{}", daemon.logs());
            }
            if let Some(line) = daemon
                .log_lines()
                .into_iter()
                .find(|l| l["message"] == "csatwatch is ready")
            {
                daemon.addr = line["listen"].as_str().unwrap().to_string();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// One scrape of `/metrics`, as text.
    pub(crate) async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub(crate) fn logs(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("stderr.log")) {
            f.read_to_string(&mut text).unwrap();
        }
        text
    }

    /// Every log line, each parsed as JSON (a line that is not JSON fails).
    pub(crate) fn log_lines(&self) -> Vec<Value> {
        self.logs()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// Posts a Zendesk delivery signed with `secret` now.
    pub(crate) async fn post(&self, body: &Value, secret: &str, request_id: Option<&str>) -> u16 {
        let body = serde_json::to_vec(body).unwrap();
        let now = ManualClock::starting_now().now_ms();
        let mut request = reqwest::Client::new()
            .post(self.url("/webhooks/zendesk"))
            .header("content-type", "application/json")
            .body(body.clone());
        for (k, v) in zendesk_headers(secret, now, &body) {
            request = request.header(k, v);
        }
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        request.send().await.unwrap().status().as_u16()
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub(crate) fn terminate(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit {status}:\n{}", self.logs());
                break;
            }
            assert!(Instant::now() < deadline, "did not stop:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
        self.logs()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A negative Zendesk rating from the canary customer, with the canary comment.
pub(crate) fn canary_body(ticket: u64) -> Value {
    let mut body = zendesk_body(ticket, "bad", COMMENT);
    body["requester"]["name"] = json!(CUSTOMER);
    body
}

/// Waits until Slack has received `n` posts.
pub(crate) async fn wait_for_posts(slack: &MockServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while slack_posts(slack).await.len() < n {
        assert!(
            Instant::now() < deadline,
            "Slack received fewer than {n} posts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_full_run_logs_no_secret_no_comment_and_no_customer_name() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let daemon = Daemon::start(&db.url, &slack, &[]);
        assert_eq!(
            daemon
                .post(&canary_body(71), SECRET, Some("req-canary-71"))
                .await,
            200
        );
        assert_eq!(
            daemon.post(&canary_body(72), "a-wrong-secret", None).await,
            401
        );
        wait_for_posts(&slack, 1).await;
        // The alert did carry the comment and the name to Slack: the logs
        // are clean because nothing logs them, not because they were absent.
        let posted = slack_posts(&slack).await[0].to_string();
        assert!(posted.contains("blender caught fire") && posted.contains(CUSTOMER));
        let logs = daemon.terminate();

        for canary in [TOKEN, SECRET, COMMENT, "blender", CUSTOMER, "Canaryfield"] {
            assert!(
                !logs.contains(canary),
                "{backend:?}: {canary:?} is in the logs:\n{logs}"
            );
        }
        // Every line is JSON; the webhook's lines carry its request id.
        let lines: Vec<Value> = logs
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let recorded = lines
            .iter()
            .find(|l| l["message"] == "rating recorded")
            .unwrap_or_else(|| panic!("no 'rating recorded' line:\n{logs}"));
        assert_eq!(
            recorded["span"]["request_id"], "req-canary-71",
            "{recorded}"
        );
        // One copy of the span's fields: `span`, never also `spans`.
        for line in &lines {
            assert!(line.get("spans").is_none(), "{line}");
        }
        assert!(
            lines
                .iter()
                .any(|l| l["message"] == "webhook refused: bad signature")
        );
    }
}

/// The samples of a Prometheus text exposition, keyed by
/// `name{label="value",…}` with labels sorted.
pub(crate) fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let key = match series.split_once('{') {
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => series.to_string(),
        };
        out.insert(key, value.parse().unwrap());
    }
    out
}

#[tokio::test]
async fn metrics_count_deliveries_ratings_alerts_and_time_to_slack() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = slack_ok().await;
    let daemon = Daemon::start(&db.url, &slack, &[]);
    assert_eq!(daemon.post(&canary_body(1), SECRET, None).await, 200);
    assert_eq!(daemon.post(&canary_body(2), SECRET, None).await, 200);
    assert_eq!(
        daemon
            .post(&zendesk_body(3, "good", "Great"), SECRET, None)
            .await,
        200
    );
    assert_eq!(daemon.post(&canary_body(1), SECRET, None).await, 200); // a replay
    assert_eq!(daemon.post(&canary_body(4), "wrong", None).await, 401);
    wait_for_posts(&slack, 2).await;
    let client = reqwest::Client::new();
    assert!(
        client
            .get(daemon.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );

    // The gauges are refreshed right after the dispatcher's flush; wait for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let m = loop {
        let text = daemon.metrics().await;
        let m = samples(&text);
        if m.get(r#"csatwatch_alerts_stored{state="sent"}"#) == Some(&2.0) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "gauges never showed 2 sent alerts:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in {m:#?}"));
    let z = r#"source="zendesk""#;
    assert_eq!(
        get(&format!(
            r#"csatwatch_deliveries_total{{outcome="recorded",{z}}}"#
        )),
        3.0
    );
    assert_eq!(
        get(&format!(
            r#"csatwatch_deliveries_total{{outcome="duplicate",{z}}}"#
        )),
        1.0
    );
    assert_eq!(
        get(&format!(
            r#"csatwatch_deliveries_total{{outcome="unauthorized",{z}}}"#
        )),
        1.0
    );
    assert_eq!(
        get(&format!(
            r#"csatwatch_ratings_total{{outcome="new",sentiment="negative",{z}}}"#
        )),
        2.0
    );
    assert_eq!(
        get(&format!(
            r#"csatwatch_ratings_total{{outcome="new",sentiment="positive",{z}}}"#
        )),
        1.0
    );
    assert_eq!(
        get(&format!(r#"csatwatch_alerts_total{{{z},state="raised"}}"#)),
        2.0
    );
    assert_eq!(
        get(&format!(r#"csatwatch_alerts_total{{{z},state="sent"}}"#)),
        2.0
    );
    assert_eq!(
        get(&format!(r#"csatwatch_alert_latency_seconds_count{{{z}}}"#)),
        2.0
    );
    assert_eq!(
        get(&format!(
            r#"csatwatch_alert_latency_seconds_bucket{{le="+Inf",{z}}}"#
        )),
        2.0
    );
    assert!(get(&format!(r#"csatwatch_alert_latency_seconds_sum{{{z}}}"#)) < 10.0);
    assert_eq!(get(r#"csatwatch_alerts_stored{state="pending"}"#), 0.0);
    assert_eq!(get(r#"csatwatch_alerts_stored{state="dead"}"#), 0.0);
    assert_eq!(get("csatwatch_outbox_pending"), 0.0);
    assert_eq!(get("csatwatch_outbox_oldest_pending_age_seconds"), 0.0);
    // Three recorded deliveries and one replay: four webhook transactions.
    assert_eq!(
        get(r#"csatwatch_db_latency_seconds_count{op="record"}"#),
        4.0
    );
    assert_eq!(
        get(r#"csatwatch_db_latency_seconds_bucket{le="+Inf",op="record"}"#),
        4.0
    );
    assert!(get(r#"csatwatch_db_latency_seconds_count{op="ping"}"#) >= 1.0);

    // Every batch of the writer (the four above, and on SQLite any holding
    // only the dispatcher's sends) times each of its steps once, within its
    // transaction's time. A batch may still be recording: wait until the
    // figures agree.
    let steps = [
        "begin",
        "deliveries",
        "ratings",
        "history",
        "alerts",
        "changed",
        "sends",
        "rollup",
        "commit",
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = daemon.metrics().await;
        let m = samples(&text);
        let value = |k: String| m.get(&k).copied().unwrap_or(0.0);
        let db = |what: &str| {
            value(format!(
                r#"csatwatch_db_latency_seconds_{what}{{op="record"}}"#
            )) + value(format!(
                r#"csatwatch_db_latency_seconds_{what}{{op="record_sends"}}"#
            ))
        };
        let step = |what: &str, step: &str| {
            value(format!(
                r#"csatwatch_write_batch_step_seconds_{what}{{step="{step}"}}"#
            ))
        };
        let counts: Vec<f64> = steps.iter().map(|s| step("count", s)).collect();
        let steps_sum: f64 = steps.iter().map(|s| step("sum", s)).sum();
        if counts.iter().all(|&n| n == db("count")) {
            assert!(db("count") >= 4.0, "{text}");
            assert!(
                steps_sum > 0.0 && steps_sum <= db("sum") + 1e-9,
                "the steps took {steps_sum} s of the batches' {} s",
                db("sum")
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "each step should be timed once per batch ({} batches): {counts:?}\n{text}",
            db("count")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.terminate();
}

#[tokio::test]
async fn the_outbox_gauges_report_depth_and_the_oldest_pending_age() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), ""),
            ManualClock::starting_now(),
        )
        .await;
        assert_eq!(app.post_zendesk(&zendesk_body(1, "bad", "x")).await.0, 200);
        app.clock.advance(Duration::from_secs(60));
        assert_eq!(app.post_zendesk(&zendesk_body(2, "bad", "y")).await.0, 200);
        app.clock.advance(Duration::from_secs(30));
        let g = app.app.refresh_gauges().await.unwrap();
        assert_eq!(
            (g.outbox_pending, g.oldest_pending_age_seconds),
            (2, 90.0),
            "{backend:?}"
        );
        app.app.flush_alerts().await.unwrap();
        let g = app.app.refresh_gauges().await.unwrap();
        assert_eq!((g.outbox_pending, g.oldest_pending_age_seconds), (0, 0.0));
        assert_eq!(
            g.alerts,
            vec![("pending", 0), ("sent", 2), ("dead", 0), ("superseded", 0)]
        );
        app.stop().await;
    }
}

/// Reads notify datagrams until one contains `wanted`; returns everything read.
fn read_until(socket: &UnixDatagram, wanted: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|m| m.lines().any(|l| l == wanted)) {
        assert!(Instant::now() < deadline, "no {wanted} in {seen:?}");
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

#[tokio::test]
async fn under_systemd_it_reports_ready_pings_the_watchdog_and_reports_stopping() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = slack_ok().await;
    let sock_dir = tempfile::tempdir().unwrap();
    let sock_path = sock_dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&sock_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let daemon = Daemon::start(
        &db.url,
        &slack,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut seen = Vec::new();
    read_until(&socket, "READY=1", &mut seen);
    // READY comes first: no watchdog ping before the service manager knows
    // the daemon started.
    let ready = &seen[0];
    assert!(ready.contains("READY=1"), "{seen:?}");
    assert!(
        ready.contains(&format!("STATUS=listening on {}", daemon.addr)),
        "{ready}"
    );
    // Ready means ready: the health check passes at once.
    let check = Command::new(env!("CARGO_BIN_EXE_csatwatch"))
        .args(["healthcheck", "--url", &daemon.url("/readyz")])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    read_until(&socket, "WATCHDOG=1", &mut seen);
    let before_stop = seen.len();
    let pid = daemon.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    read_until(&socket, "STOPPING=1", &mut seen);
    assert!(seen[before_stop..].iter().any(|m| m.contains("STOPPING=1")));
    daemon.terminate_after_signal();
}

impl Daemon {
    /// Waits for the exit a signal already asked for.
    pub(crate) fn terminate_after_signal(mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "did not stop:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(self.child.wait().unwrap().success(), "{}", self.logs());
    }
}

#[test]
fn healthcheck_fails_when_nothing_answers() {
    // A port that was free a moment ago and that nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_csatwatch"))
        .args([
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{port}/readyz"),
        ])
        .env_remove("CSATWATCH_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ready"));
}

/// The shipped unit, with its binary paths pointed at the one just built
/// (`systemd-analyze verify` checks that they exist).
fn unit_for_verify(dir: &Path) -> PathBuf {
    let unit = std::fs::read_to_string("deploy/systemd/csatwatch.service").unwrap();
    let unit = unit.replace("/usr/local/bin/csatwatch", env!("CARGO_BIN_EXE_csatwatch"));
    let path = dir.join("csatwatch.service");
    std::fs::write(&path, unit).unwrap();
    path
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_verify(dir.path());
    let out = Command::new(analyze)
        .args(["verify", "--man=no", unit.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}
