//! The command line: `serve` (the default), `migrate`, `check-config`,
//! `send-test-alert`, `reprocess` and `healthcheck`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::clock::{Clock as _, SystemClock};
use crate::domain::{Scale, Sentiment, Via};
use crate::intake::{Retried, retry_delivery};
use crate::rules::{RatingFacts, Rules};
use crate::settings::{ConfigError, Settings};
use crate::sinks::{Sink, slack::SlackClient};
use crate::store::Store;

/// csatwatch turns a bad CSAT rating into a Slack alert within seconds, and
/// keeps every rating for reporting.
#[derive(Debug, Parser)]
#[command(name = "csatwatch", version, about, long_about = None)]
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
    },
    /// Post a clearly labelled sample alert through the configured sink.
    SendTestAlert {
        /// The channel (default: slack.default_channel).
        #[arg(long)]
        channel: Option<String>,
    },
    /// Parse again the stored deliveries that failed, and record what now parses.
    Reprocess {
        /// Only this source's deliveries.
        #[arg(long)]
        source: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
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
    /// Loads and validates the settings this command line names.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        Settings::load(self.config.as_deref()).and_then(Settings::validate)
    }
}

/// Runs a command. Logging is already set up.
pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = App::build(settings).await?;
            let listener = app.bind().await?;
            let cancel = CancellationToken::new();
            tokio::spawn(crate::shutdown::cancel_on_signal(cancel.clone()));
            app.serve(listener, cancel).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let store = Store::connect(&settings.database).await?;
            store.migrate().await?;
            println!("migrations applied ({})", store.backend_name());
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { explain } => {
            print_check(&settings, explain);
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
        Command::Healthcheck { url } => Ok(healthcheck(&settings, url).await),
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
        println!("    - {} ({}): POST /webhooks/{}", s.name, s.kind, s.name);
    }
    if settings.sources.is_empty() {
        println!("    (none: add a [[sources]] table, see docs/helpdesks/)");
    }
    if explain {
        let rules = Rules::from_settings(settings);
        println!("  routing of a sample rating from each source:");
        for s in &settings.sources {
            for (sentiment, value) in [(Sentiment::Negative, 1), (Sentiment::Neutral, 3)] {
                let facts = RatingFacts {
                    source: &s.name,
                    sentiment,
                    survey: Scale::FivePoint.survey(),
                    score: value,
                    tags: &[],
                    team: None,
                    brand: None,
                    agent: None,
                    has_comment: true,
                };
                println!(
                    "    - {} {} ({}/5, with a comment): {}",
                    s.name,
                    sentiment,
                    value,
                    rules.explain(&facts)
                );
            }
        }
    }
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
