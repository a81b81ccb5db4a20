//! `GET /metrics` as a Prometheus server reads it: a scrape of the real
//! binary after real requests, parsed line by line by the exposition
//! format's rules, and by `promtool check metrics` (Prometheus' own parser
//! and linter) where it is installed.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::ops::{Daemon, SECRET, canary_body, wait_for_posts};
use crate::support::*;

/// One parsed sample: its series name, labels and value.
#[derive(Debug)]
pub(crate) struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition: each family's TYPE and HELP, and every sample.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    pub types: BTreeMap<String, String>,
    pub help: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// The samples of `name` whose labels include every pair in `with`.
    pub fn value(&self, name: &str, with: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && with
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }
}

/// Reads `name{k="v",…} value` with the format's escapes (`\\`, `\"`,
/// `\n`) inside label values, which may hold `{`, `}` and `,`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        loop {
            // A label name, '=', a quoted value, then ',' or '}'.
            let start = chars.peek().ok_or("unterminated labels")?.0;
            if after[start..].starts_with('}') {
                chars.next();
                break;
            }
            let eq = after[start..].find('=').ok_or("label without '='")? + start;
            let key = &after[start..eq];
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad label name {key:?}"));
            }
            while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("label {key} is not quoted"));
            }
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated label value")?.1 {
                    '"' => break,
                    '\\' => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        other => return Err(format!("bad escape \\{other}")),
                    },
                    c => value.push(c),
                }
            }
            if labels.insert(key.to_string(), value).is_some() {
                return Err(format!("label {key} twice"));
            }
            match chars.next().ok_or("unterminated labels")?.1 {
                ',' => {}
                '}' => break,
                other => return Err(format!("unexpected {other:?} after a label")),
            }
        }
        let consumed = chars.peek().map(|(i, _)| *i).unwrap_or(after.len());
        rest = &after[consumed..];
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing text".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The family a series belongs to, given the families declared so far.
fn family_of<'a>(series: &'a str, types: &BTreeMap<String, String>) -> &'a str {
    if types.contains_key(series) {
        return series;
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(stem) = series.strip_suffix(suffix)
            && types
                .get(stem)
                .is_some_and(|t| t == "histogram" || t == "summary")
        {
            return stem;
        }
    }
    series
}

/// Parses text format 0.0.4 strictly: every sample after its family's
/// `# TYPE`, every family with a `# HELP`, no family declared twice.
pub(crate) fn parse_exposition(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start().splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), Some(help))
                    if out.help.insert(name.into(), help.into()).is_some() =>
                {
                    return Err(at("HELP twice".into()));
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown type {kind}")));
                    }
                    if out
                        .samples
                        .iter()
                        .any(|s| family_of(&s.name, &out.types) == name)
                    {
                        return Err(at("TYPE after its samples".into()));
                    }
                    if out.types.insert(name.into(), kind.into()).is_some() {
                        return Err(at("TYPE twice".into()));
                    }
                }
                _ => {}
            }
            continue;
        }
        let sample = parse_sample(line).map_err(at)?;
        let family = family_of(&sample.name, &out.types);
        if !out.types.contains_key(family) {
            return Err(at(format!(
                "sample of {family} before (or without) its TYPE"
            )));
        }
        if out.types[family] == "histogram" && sample.name.ends_with("_bucket") {
            sample
                .labels
                .get("le")
                .ok_or_else(|| at("a bucket without le".into()))?;
        }
        out.samples.push(sample);
    }
    for family in out.types.keys() {
        if !out.help.contains_key(family) {
            return Err(format!("{family} has no # HELP"));
        }
    }
    Ok(out)
}

/// `promtool check metrics` over `text`: None when promtool is not
/// installed (and `CSATWATCH_REQUIRE_TOOLS` is unset), else its verdict.
pub(crate) fn promtool_check_metrics(text: &str) -> Option<(bool, String)> {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("CSATWATCH_REQUIRE_TOOLS").is_none(),
            "promtool is not installed (apt-get install prometheus; scripts/test.sh does it)"
        );
        eprintln!("promtool check skipped: promtool is not installed (apt-get install prometheus)");
        return None;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[test]
fn the_exposition_parser_refuses_what_prometheus_refuses() {
    let ok =
        "# HELP a_total A.\n# TYPE a_total counter\na_total{route=\"/w/{s}\",x=\"a\\\"b,c\"} 1\n";
    let parsed = parse_exposition(ok).unwrap();
    assert_eq!(parsed.samples[0].labels["route"], "/w/{s}");
    assert_eq!(parsed.samples[0].labels["x"], "a\"b,c");
    for bad in [
        "# TYPE a gauge\na 1\n",                         // no HELP
        "# HELP a A.\na 1\n",                            // no TYPE
        "# HELP a A.\n# TYPE a gauge\na{b=1} 1\n",       // unquoted
        "# HELP a A.\n# TYPE a gauge\na one\n",          // not a number
        "# HELP a A.\n# TYPE a gauge\n# TYPE a gauge\n", // twice
        "# HELP a A.\n# TYPE a gauge\na{b=\"1\" 1\n",    // unterminated
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
    }
}

#[tokio::test]
async fn a_scrape_is_valid_exposition_with_help_build_info_process_and_http_metrics() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = slack_ok().await;
    let daemon = Daemon::start(&db.url, &slack, &[]);
    assert_eq!(daemon.post(&canary_body(1), SECRET, None).await, 200);
    assert_eq!(daemon.post(&canary_body(2), "wrong", None).await, 401);
    let client = reqwest::Client::new();
    let unknown = client
        .post(daemon.url("/webhooks/nosuchsource"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        client
            .get(daemon.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    wait_for_posts(&slack, 1).await;
    daemon.metrics().await;
    let text = daemon.metrics().await;

    let m = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // Families: declared once each, and none is another's `_total` twin
    // (OpenMetrics would read them as one family).
    for name in m.types.keys() {
        if let Some(stem) = name.strip_suffix("_total") {
            assert!(!m.types.contains_key(stem), "{stem} and {name} clash");
        }
    }
    assert_eq!(m.types["csatwatch_alerts_total"], "counter");
    assert_eq!(m.types["csatwatch_alerts_stored"], "gauge");

    // Build info: this package's version, and the commit --version shows.
    let build = m
        .samples
        .iter()
        .find(|s| s.name == "csatwatch_build_info")
        .unwrap_or_else(|| panic!("no build info:\n{text}"));
    assert_eq!(build.value, 1.0);
    assert_eq!(build.labels["version"], env!("CARGO_PKG_VERSION"));
    let commit = &build.labels["commit"];
    assert!(
        commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "commit {commit:?}"
    );
    let version = Command::new(env!("CARGO_BIN_EXE_csatwatch"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).contains(commit.as_str()));

    // Process metrics, with plausible values.
    let get = |name: &str| {
        m.value(name, &[])
            .unwrap_or_else(|| panic!("no {name}:\n{text}"))
    };
    assert!(get("process_resident_memory_bytes") > 1e6);
    let (open, max) = (get("process_open_fds"), get("process_max_fds"));
    assert!(open > 3.0 && open < max, "{open} fds of {max}");
    assert!(get("process_cpu_seconds_total") >= 0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = get("process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 600.0,
        "{started} vs {now}"
    );

    // HTTP by matched route and status: the source name is not a label.
    let http = |route: &str, method: &str, status: &str| {
        let labels = [("route", route), ("method", method), ("status", status)];
        (
            m.value("csatwatch_http_requests_total", &labels),
            m.value("csatwatch_http_request_duration_seconds_count", &labels),
        )
    };
    assert_eq!(
        http("/webhooks/{source}", "POST", "200"),
        (Some(1.0), Some(1.0))
    );
    assert_eq!(
        http("/webhooks/{source}", "POST", "401"),
        (Some(1.0), Some(1.0))
    );
    assert_eq!(
        http("/webhooks/{source}", "POST", "404"),
        (Some(1.0), Some(1.0))
    );
    assert_eq!(http("/healthz", "GET", "200"), (Some(1.0), Some(1.0)));
    assert_eq!(http("/metrics", "GET", "200").0, Some(1.0));
    assert!(
        !text.contains("nosuchsource"),
        "a path segment leaked into the labels"
    );

    // Prometheus' own parser and linter agree.
    if let Some((ok, report)) = promtool_check_metrics(&text) {
        assert!(ok && report.trim().is_empty(), "promtool: {report}\n{text}");
    }
    daemon.terminate();
}
