//! The operator's files in `deploy/` hold up: the Grafana dashboard and the
//! Prometheus alert rules name only metrics the exporter has, their PromQL
//! parses (`promtool check rules`), and the rules fire as their unit tests
//! say (`promtool test rules`).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::exporter::parse_exposition;

/// Every family the exporter can show: the catalogue of csatwatch's own,
/// and the `process_*` ones a render shows.
fn exported_families() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = csatwatch::exporter::FAMILIES
        .iter()
        .map(|f| f.name.to_string())
        .collect();
    let handle = csatwatch::exporter::handle().expect("the Prometheus recorder");
    let text = csatwatch::exporter::render(&handle);
    let parsed = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    names.extend(parsed.types.into_keys());
    assert!(names.contains("process_resident_memory_bytes"), "{names:?}");
    names
}

/// The metric names a PromQL expression uses (ours and the process ones).
fn metrics_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !is_ident(bytes[i - 1]);
        if starts_word && (expr[i..].starts_with("csatwatch_") || expr[i..].starts_with("process_"))
        {
            let end = expr[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(expr.len(), |n| i + n);
            out.push(expr[i..end].to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// `name` is an exported family, or one of a histogram's series.
fn is_exported(name: &str, families: &BTreeSet<String>) -> bool {
    families.contains(name)
        || ["_bucket", "_sum", "_count"].iter().any(|s| {
            name.strip_suffix(s)
                .is_some_and(|stem| families.contains(stem))
        })
}

fn promtool(args: &[&str]) -> Option<(bool, String)> {
    match Command::new("promtool").args(args).output() {
        Ok(out) => Some((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )),
        Err(_) => {
            assert!(
                std::env::var_os("CSATWATCH_REQUIRE_TOOLS").is_none(),
                "promtool is not installed (apt-get install prometheus; scripts/test.sh does it)"
            );
            eprintln!(
                "promtool checks skipped: promtool is not installed (apt-get install prometheus)"
            );
            None
        }
    }
}

/// Every panel of the dashboard, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

#[test]
fn the_grafana_dashboard_shows_only_exported_metrics_with_valid_promql() {
    let text = std::fs::read_to_string("deploy/grafana/csatwatch.json").unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "csatwatch");
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["name"] == "datasource" && v["type"] == "datasource"),
        "the data source is a variable, so the file imports anywhere"
    );
    let families = exported_families();
    let mut ids = BTreeSet::new();
    let mut exprs = Vec::new();
    let mut shown = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or("?");
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "id twice: {title}"
        );
        for key in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][key].is_u64(), "{title}: gridPos.{key}");
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{title}: no targets"));
        assert!(!targets.is_empty(), "{title}: no targets");
        let mut refs = BTreeSet::new();
        for target in targets {
            assert!(
                refs.insert(target["refId"].as_str().unwrap()),
                "{title}: refId twice"
            );
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{title}: no expr"));
            let names = metrics_in(expr);
            assert!(!names.is_empty(), "{title}: {expr} names no metric");
            for name in names {
                assert!(
                    is_exported(&name, &families),
                    "{title}: {name} is not exported"
                );
                shown.insert(name);
            }
            exprs.push((title.to_string(), expr.to_string()));
        }
    }
    // What the issue asks the dashboard to show.
    for wanted in [
        "csatwatch_ratings_total",
        "csatwatch_alerts_total",
        "csatwatch_alert_latency_seconds_bucket",
        "csatwatch_outbox_pending",
        "csatwatch_outbox_oldest_pending_age_seconds",
        "csatwatch_sink_errors_total",
        "csatwatch_poll_lag_seconds",
    ] {
        assert!(
            shown.contains(wanted),
            "the dashboard does not show {wanted}"
        );
    }

    // PromQL syntax: each expression as a recording rule, with Grafana's
    // variables replaced by what they expand to.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (n, (_, expr)) in exprs.iter().enumerate() {
        let expr = expr.replace("$__rate_interval", "5m").replace("$job", ".*");
        rules.push_str(&format!(
            "      - record: dashboard:expr_{n}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-rules.yaml");
    std::fs::write(&path, rules).unwrap();
    if let Some((ok, report)) = promtool(&["check", "rules", path.to_str().unwrap()]) {
        assert!(ok, "a dashboard query does not parse:\n{report}");
    }
}

#[test]
fn the_alert_rules_pass_promtool_and_name_only_exported_metrics() {
    let path = Path::new("deploy/prometheus/alerts.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let families = exported_families();
    let mut named = 0;
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for name in metrics_in(line) {
            assert!(
                is_exported(&name, &families),
                "alerts.yaml: {name} is not exported"
            );
            named += 1;
        }
    }
    assert!(named >= 10, "alerts.yaml names only {named} metrics");
    // The rules docs/operations.md documents are the ones in the file.
    let docs = std::fs::read_to_string("docs/operations.md").unwrap();
    for line in text.lines() {
        if let Some(alert) = line.trim().strip_prefix("- alert: ") {
            assert!(
                docs.contains(alert),
                "docs/operations.md does not mention {alert}"
            );
        }
    }
    if let Some((ok, report)) = promtool(&["check", "rules", path.to_str().unwrap()]) {
        assert!(ok, "{report}");
    }
    if let Some((ok, report)) = promtool(&["test", "rules", "deploy/prometheus/alerts_test.yaml"]) {
        assert!(ok, "{report}");
    }
}

/// Every Markdown file of the repository's docs (README, docs/, deploy/).
fn markdown_files() -> Vec<std::path::PathBuf> {
    let mut out = vec![std::path::PathBuf::from("README.md")];
    let mut dirs = vec![
        std::path::PathBuf::from("docs"),
        std::path::PathBuf::from("deploy"),
    ];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    out
}

/// The anchors GitHub gives a Markdown file's headings: the heading's text
/// lower-cased, without punctuation, spaces as hyphens, and `-1`, `-2`, …
/// after a repeated one. Headings inside code fences are not headings.
fn heading_anchors(markdown: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut in_fence = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        if in_fence {
            continue;
        }
        let text = heading.trim_start_matches('#');
        if !text.starts_with(' ') {
            continue;
        }
        let slug: String = text
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let mut anchor = slug.clone();
        let mut n = 0;
        while anchors.contains(&anchor) {
            n += 1;
            anchor = format!("{slug}-{n}");
        }
        anchors.insert(anchor);
    }
    anchors
}

#[test]
fn heading_anchors_follow_githubs_rules() {
    let anchors = heading_anchors(
        "# Performance\n## Why the p99 at 200/s misses\n```sh\n# not a heading\n```\n\
         ## Changes measured A/B\n### `log.level`, and what it costs\n## Notes\n## Notes\n#tag\n",
    );
    let expected = [
        "performance",
        "why-the-p99-at-200s-misses",
        "changes-measured-ab",
        "loglevel-and-what-it-costs",
        "notes",
        "notes-1",
    ];
    assert_eq!(anchors, expected.iter().map(|a| a.to_string()).collect());
}

#[test]
fn every_relative_link_in_the_docs_and_manifests_names_a_file_and_heading_that_exist() {
    let mut checked = 0;
    let mut anchors_checked = 0;
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let dir = file.parent().unwrap();
        for (at, _) in text.match_indices("](") {
            let rest = &text[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            let (target, fragment) = match rest[..end].split_once('#') {
                Some((target, fragment)) => (target, Some(fragment)),
                None => (&rest[..end], None),
            };
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            if !target.is_empty() {
                assert!(
                    dir.join(target).exists(),
                    "{}: the link {target:?} names no file",
                    file.display()
                );
                checked += 1;
            }
            // A heading in a Markdown file (this one when no file is named).
            let linked = if target.is_empty() {
                file.clone()
            } else {
                dir.join(target)
            };
            if let Some(fragment) = fragment
                && linked.extension().is_some_and(|e| e == "md")
            {
                let headings = heading_anchors(&std::fs::read_to_string(&linked).unwrap());
                assert!(
                    headings.contains(fragment),
                    "{}: the link to {}#{fragment} names no heading there",
                    file.display(),
                    linked.display()
                );
                anchors_checked += 1;
            }
        }
    }
    assert!(checked > 20, "only {checked} links found");
    assert!(
        anchors_checked > 5,
        "only {anchors_checked} links to headings found"
    );
    // The manifests' comments point to their README.
    for entry in std::fs::read_dir("deploy/kubernetes").unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("README.md here") {
            assert!(
                Path::new("deploy/kubernetes/README.md").exists(),
                "{}",
                path.display()
            );
        }
    }
}
