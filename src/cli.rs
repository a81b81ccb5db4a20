//! The command line: `serve` (the default), `migrate`, `check-config`,
//! `send-test-alert`, `reprocess`, `report` and `healthcheck`.

mod report;
pub use report::ReportArgs;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::clock::{Clock as _, SystemClock};
use crate::domain::{Scale, Sentiment, Via};
use crate::intake::{Retried, retry_delivery};
use crate::rules::{RatingFacts, Rules};
use crate::settings::{ConfigError, Settings};
use crate::sinks::{Sink, slack::SlackClient};
use crate::sources::SourceRegistry;
use crate::store::Store;

/// csatwatch turns a bad CSAT rating into a Slack alert within seconds, and
/// keeps every rating for reporting.
#[derive(Debug, Parser)]
#[command(
    name = "csatwatch",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("CSATWATCH_COMMIT"), ")"),
    about,
    long_about = None
)]
pub struct Cli {
    /// The settings file. Default: $CSATWATCH_CONFIG, else config/csatwatch.toml
    /// (environment variables CSATWATCH__SECTION__KEY override it).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "CSATWATCH_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: receive webhooks and deliver alerts (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the settings and exit 0 (valid) or 1 (with every problem listed).
    CheckConfig {
        /// Also show how the rules route a sample negative rating from each source.
        #[arg(long)]
        explain: bool,
        /// Also call Slack: auth.test, and every configured channel exists
        /// and the bot can post there. Exits 1 when something must be fixed.
        #[arg(long)]
        online: bool,
        /// Explain how one sample rating is routed, e.g.
        /// `source=zendesk,score=1,tags=vip|refund,team=Billing,comment=yes`
        /// (keys: source, scale, score, survey, tags, team, brand, agent, comment).
        #[arg(long, value_name = "KEY=VALUE,…")]
        sample: Option<String>,
    },
    /// Post a clearly labelled sample alert through the configured sink.
    SendTestAlert {
        /// The channel (default: slack.default_channel).
        #[arg(long)]
        channel: Option<String>,
    },
    /// Copy every rating, delivery and alert from one database to another
    /// (e.g. SQLite to PostgreSQL); the target must be new and empty.
    MigrateData {
        /// The database to read, e.g. sqlite://data/csatwatch.db
        #[arg(long, value_name = "URL")]
        from: String,
        /// The database to fill, e.g. postgres://csatwatch@db/csatwatch
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Import a source's rating history from its API, for reports. Never
    /// alerts; resumable (run it again with the same dates to continue).
    Backfill {
        /// The [[sources]] name.
        #[arg(long)]
        source: String,
        /// From this date (YYYY-MM-DD or RFC 3339).
        #[arg(long, value_name = "DATE")]
        since: String,
        /// Up to this date (default: now).
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
    },
    /// Figures for a range: CSAT %, NPS, CES and follow-up, grouped by
    /// period, agent, team, … (docs/reports.md).
    Report(ReportArgs),
    /// Parse again the stored deliveries that failed, and record what now parses.
    Reprocess {
        /// Only this source's deliveries.
        #[arg(long)]
        source: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Print a shell completion script, e.g.
    /// `csatwatch completions bash > /etc/bash_completion.d/csatwatch`.
    Completions {
        /// bash, zsh, fish, powershell or elvish.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `csatwatch man | man -l -`; with
    /// --dir, write it and one page per command (csatwatch-serve.1, …) there.
    Man {
        /// Write every page into this folder instead of printing the main one.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print a JSON Schema of the settings file (for editors and CI
    /// validation); config/csatwatch.schema.json is its output.
    ConfigSchema,
    /// Ask a running daemon whether it is ready (GET /readyz); exit 0 if so,
    /// 1 if not. For container health checks: the image needs no curl.
    Healthcheck {
        /// The URL to ask. Default: /readyz on server.listen (127.0.0.1 when
        /// it listens on every address).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
}

impl Cli {
    /// Commands that need no settings (they describe the program itself).
    /// Runs one and returns its exit code, or `None` for any other command.
    pub fn run_without_settings(&self) -> Option<ExitCode> {
        // Rendered into memory first: clap_complete panics on a write error.
        let mut text = Vec::new();
        match self.command.as_ref()? {
            Command::Completions { shell } => {
                clap_complete::generate(*shell, &mut Self::command(), "csatwatch", &mut text);
            }
            Command::Man { dir: Some(dir) } => {
                return Some(match clap_mangen::generate_to(Self::command(), dir) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!(
                            "csatwatch: cannot write the manual pages to {}: {e}",
                            dir.display()
                        );
                        ExitCode::FAILURE
                    }
                });
            }
            Command::ConfigSchema => text = crate::config_schema::render().into_bytes(),
            Command::Man { dir: None } => clap_mangen::Man::new(Self::command())
                .render(&mut text)
                .expect("writing to memory cannot fail"),
            _ => return None,
        }
        use std::io::Write as _;
        Some(match std::io::stdout().lock().write_all(&text) {
            // `csatwatch man | head`: the reader has what it wanted.
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("csatwatch: cannot write to standard output: {e}");
                ExitCode::FAILURE
            }
        })
    }

    /// Loads and validates the settings this command line names, sources
    /// included: every problem is listed at once, with its key and fix.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        load_settings(self.config.as_deref())
    }
}

/// Loads and validates the settings at `path` (or the default search), as
/// start-up and a reload do: every problem, sources included, at once.
pub fn load_settings(path: Option<&std::path::Path>) -> Result<Settings, ConfigError> {
    let (settings, mut problems) = Settings::load(path)?.checked();
    // The sources are checked even when other keys have problems, so one
    // run lists them all.
    if let Err(mut found) = SourceRegistry::from_settings(&settings) {
        problems.append(&mut found.problems);
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(ConfigError { problems })
    }
}

/// An error and its causes on one line, each said once: many errors repeat
/// their source in their own message (`"database migration failed: {0}"`),
/// so the plain `{:#}` chain says the same thing two or three times.
pub fn describe_error(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Runs a command. Logging is already set up.
pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<ExitCode> {
    if let Some(code) = cli.run_without_settings() {
        return Ok(code);
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let starting = crate::shutdown::ignore_hangup();
            let deadline = crate::shutdown::deadline(&settings.server);
            let app = App::build(settings).await?;
            let listener = app.bind().await?;
            let cancel = CancellationToken::new();
            tokio::spawn(crate::shutdown::cancel_on_signal(cancel.clone()));
            tokio::spawn(crate::shutdown::exit_after_deadline(
                cancel.clone(),
                deadline,
            ));
            // From here SIGHUP reloads the settings.
            crate::reload::listen(
                crate::reload::Reloader::new(cli.config.clone(), app.clone()),
                cancel.clone(),
            );
            if let Some(starting) = starting {
                starting.abort();
            }
            app.serve(listener, cancel).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let store = Store::connect(&settings.database).await?;
            store.migrate().await.context(
                "cannot apply database migrations (is database.url reachable and writable?)",
            )?;
            let rollup = store
                .ensure_rollup(&settings.reports.timezone)
                .await
                .context("cannot build the report rollup")?;
            println!("migrations applied ({})", store.backend_name());
            if rollup.rebuilt {
                println!(
                    "report rollup rebuilt ({}): {} ratings in {} rows",
                    rollup.reason.unwrap_or(""),
                    rollup.ratings,
                    rollup.rows
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig {
            explain,
            online,
            sample,
        } => {
            print_check(&settings, explain);
            if let Some(sample) = sample {
                match explain_sample(&settings, &sample) {
                    Ok(line) => println!("  sample {sample}: {line}"),
                    Err(e) => {
                        eprintln!("--sample: {e}");
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            if online {
                println!("online checks:");
                let result = crate::sinks::slack::preflight::check(&settings).await;
                for line in &result.lines {
                    println!("{line}");
                }
                if result.problems > 0 {
                    return Ok(ExitCode::FAILURE);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::SendTestAlert { channel } => {
            let sink = match SlackClient::new(&settings.slack)? {
                Some(client) => Sink::Slack(client),
                None => Sink::Log,
            };
            let channel = channel
                .or_else(|| settings.slack.default_channel.clone())
                .unwrap_or_else(|| "default".to_string());
            match crate::dispatcher::send_test_alert(&sink, &channel, SystemClock.now_ms()).await {
                Ok(posted) => {
                    println!(
                        "test alert sent through {} to {}{}",
                        sink.name(),
                        posted.channel.as_deref().unwrap_or(&channel),
                        posted
                            .ts
                            .map(|ts| format!(" (ts {ts})"))
                            .unwrap_or_default()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("the test alert was not delivered: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Reprocess { source, limit } => reprocess(settings, source.as_deref(), limit).await,
        Command::MigrateData { from, to } => migrate_data(&settings, &from, &to).await,
        Command::Backfill {
            source,
            since,
            until,
        } => backfill(settings, &source, &since, until.as_deref()).await,
        Command::Healthcheck { url } => Ok(healthcheck(&settings, url).await),
        Command::Report(args) => report::report(&settings, &args).await,
        Command::Completions { .. } | Command::Man { .. } | Command::ConfigSchema => {
            unreachable!("answered above")
        }
    }
}

/// `/readyz` on the address the daemon listens on.
fn readyz_url(settings: &Settings) -> String {
    let mut addr = settings.server.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}/readyz")
}

async fn healthcheck(settings: &Settings, url: Option<String>) -> ExitCode {
    let url = url.unwrap_or_else(|| readyz_url(settings));
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("healthcheck: cannot build an HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => {
            println!("ready ({url})");
            ExitCode::SUCCESS
        }
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            eprintln!("not ready ({url}): {status} {body}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("not ready ({url}): {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_check(settings: &Settings, explain: bool) {
    println!("settings are valid");
    println!(
        "  database: {}",
        if settings.database.url_is_sqlite() {
            "SQLite"
        } else {
            "PostgreSQL"
        }
    );
    println!("  alerts go to: {}", settings.sink_description());
    if settings.slack.webhook_url.is_some() {
        println!(
            "  note: an incoming webhook posts to its own fixed channel only (rule channels are ignored) and can never update a message; use a bot token for more"
        );
    }
    println!("  sources:");
    for s in &settings.sources {
        let name = s.name().unwrap_or_default();
        let kind = s.kind().unwrap_or_default();
        println!("    - {name} ({kind}): POST /webhooks/{name}");
    }
    if settings.sources.is_empty() {
        println!("    (none: add a [[sources]] table, see docs/helpdesks/)");
    }
    if explain {
        let schedules = crate::reports::scheduler::explain(settings, SystemClock.now_ms());
        println!(
            "  reports in {} (min_sample {}):",
            settings.reports.timezone, settings.reports.min_sample
        );
        if schedules.is_empty() {
            println!("    (no [[digests]] or [[drop_alerts]] configured)");
        }
        for line in schedules {
            println!("    - {line}");
        }
        println!(
            "  read API (/api/v1): {}",
            if settings.api.tokens.is_empty() {
                "off (no [[api.tokens]])".to_string()
            } else {
                format!("on, {} token(s)", settings.api.tokens.len())
            }
        );
        let rules = Rules::from_settings(settings);
        println!("  routing of a sample rating from each source:");
        for name in settings.sources.iter().filter_map(|s| s.name()) {
            for (sentiment, value) in [(Sentiment::Negative, 1), (Sentiment::Neutral, 3)] {
                let facts = RatingFacts {
                    source: &name,
                    sentiment,
                    survey: Scale::FivePoint.survey(),
                    score: value,
                    tags: &[],
                    team: None,
                    brand: None,
                    agent: None,
                    company: None,
                    previous_negative_ms_ago: None,
                    has_comment: true,
                };
                println!(
                    "    - {} {} ({}/5, with a comment): {}",
                    name,
                    sentiment,
                    value,
                    rules.explain(&facts)
                );
            }
        }
    }
}

/// Routes one sample rating given as `key=value,…`.
fn explain_sample(settings: &Settings, sample: &str) -> Result<String, String> {
    let mut source = settings
        .sources
        .first()
        .and_then(|s| s.name())
        .unwrap_or_default();
    let (mut scale, mut score, mut survey) = (Scale::FivePoint, 1, None);
    let (mut tags, mut team, mut brand, mut agent, mut comment) =
        (Vec::new(), None, None, None, true);
    for pair in sample.split(',').filter(|p| !p.trim().is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not key=value"))?;
        let value = value.trim().to_string();
        match key.trim() {
            "source" => source = value,
            "scale" => scale = value.parse()?,
            "score" => {
                score = value
                    .parse()
                    .map_err(|_| format!("score {value:?} is not a number"))?
            }
            "survey" => survey = Some(value.parse()?),
            "tags" => tags = value.split('|').map(str::to_string).collect(),
            "team" => team = Some(value),
            "brand" => brand = Some(value),
            "agent" => agent = Some(value),
            "comment" => comment = matches!(value.as_str(), "yes" | "true" | "1"),
            other => return Err(format!("unknown key {other:?}")),
        }
    }
    let threshold = SourceRegistry::from_settings(settings)
        .ok()
        .and_then(|sources| sources.get(&source)?.negative_at_or_below);
    let facts = RatingFacts {
        source: &source,
        sentiment: scale.sentiment(score, threshold),
        survey: survey.unwrap_or(scale.survey()),
        score,
        tags: &tags,
        team: team.as_deref(),
        brand: brand.as_deref(),
        agent: agent.as_deref(),
        has_comment: comment,
        company: None,
        previous_negative_ms_ago: None,
    };
    Ok(format!(
        "{} ({}): {}",
        facts.sentiment,
        scale.label(score),
        Rules::from_settings(settings).explain(&facts)
    ))
}

async fn reprocess(settings: Settings, only: Option<&str>, limit: i64) -> anyhow::Result<ExitCode> {
    let app = App::build(settings).await?;
    let failed = app.store.failed_deliveries(only, limit).await?;
    let (mut recorded, mut still_failing, mut skipped) = (0, 0, 0);
    for delivery in &failed {
        let outcome = retry_delivery(
            &app.sources,
            &app.pipeline,
            &app.store,
            &app.http,
            delivery,
            Via::Reprocess,
            |_| None,
        )
        .await?;
        match outcome {
            Retried::Recorded => recorded += 1,
            Retried::Failed | Retried::StillPending => still_failing += 1,
            Retried::UnknownSource => skipped += 1,
        }
    }
    let report = app.flush_alerts().await?;
    println!(
        "reprocessed {}: {recorded} recorded, {still_failing} still failing, {skipped} of sources no longer configured; {} alert(s) sent",
        failed.len(),
        report.sent
    );
    Ok(if still_failing > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn migrate_data(settings: &Settings, from: &str, to: &str) -> anyhow::Result<ExitCode> {
    use secrecy::SecretString;
    let connect = |url: &str| {
        let url = SecretString::from(url.to_string());
        let db = settings.database.clone();
        async move { Store::connect_url_with(&url, &db).await }
    };
    let source = connect(from).await?;
    let target = connect(to).await?;
    // Both ends at the newest schema, so the columns line up.
    source.migrate().await?;
    target.migrate().await?;
    println!(
        "copying {} -> {}",
        source.backend_name(),
        target.backend_name()
    );
    let report = source
        .copy_into(&target, |table, n| {
            if n % 5000 == 0 {
                println!("  {table}: {n} rows");
            }
        })
        .await?;
    for (table, n) in &report {
        println!("  {table}: {n} rows copied");
    }
    println!("done; point database.url at the new database and start csatwatch");
    Ok(ExitCode::SUCCESS)
}

/// Reads `2026-01-31` (midnight UTC) or an RFC 3339 time, as Unix ms.
pub fn parse_date(text: &str) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim();
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .map(|d| d.midnight().assume_utc().unix_timestamp() * 1000)
        .map_err(|_| {
            format!("{text:?} is not a date; write it like 2026-01-31 or 2026-01-31T08:00:00Z")
        })
}

async fn backfill(
    settings: Settings,
    name: &str,
    since: &str,
    until: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let since_ms = parse_date(since).map_err(anyhow::Error::msg)?;
    let until_ms = until
        .map(parse_date)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let app = App::build(settings).await?;
    let Some(source) = &app.sources.get(name) else {
        anyhow::bail!("no [[sources]] entry is named {name:?}");
    };
    let cancel = CancellationToken::new();
    tokio::spawn(crate::shutdown::cancel_on_signal(cancel.clone()));
    let started = std::time::Instant::now();
    let mut progress = crate::polling::Progress::default();
    let result = app
        .pollers
        .backfill(source, since_ms, until_ms, &cancel, &mut |r| {
            progress.update(r)
        })
        .await;
    progress.finish();
    match result {
        Ok(report) => {
            let secs = started.elapsed().as_secs_f64().max(0.001);
            println!(
                "backfill of {name}: {} rating(s) in {} page(s) ({} new, {} changed), {:.0} ratings/s; no alerts were raised",
                report.ratings,
                report.pages,
                report.new,
                report.changed,
                report.ratings as f64 / secs
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(crate::polling::PollError::Cancelled) => {
            eprintln!("backfill stopped; run the same command again to continue where it stopped");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!(
                "backfill of {name} stopped: {e}; run the same command again to continue where it stopped"
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
