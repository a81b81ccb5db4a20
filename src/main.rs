//! The `csatwatch` binary: parse the command line, load settings, set up
//! logging, run. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser as _;
use csatwatch::cli::{Cli, Command};

/// mimalloc instead of glibc's malloc: under a 64-connection burst a fifth
/// of the process's CPU time went to glibc's malloc and free (webhook
/// bodies, rows, JSON, freed on another thread than the one that allocated
/// them); with mimalloc the same load runs 17-22% more webhooks/s on SQLite
/// and about 10% more on PostgreSQL, for about 1.3 MiB more idle RSS
/// (docs/performance.md). Built without transparent huge pages: with them
/// idle RSS doubled. SQLite allocates from mimalloc too (store/sqlite_alloc.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // reqwest is built without a default TLS provider; ring is the one
    // sqlx uses too, so only one is compiled in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if let Some(code) = cli.run_without_settings() {
        return code;
    }
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("csatwatch: {e}");
            return ExitCode::FAILURE;
        }
    };
    // check-config, healthcheck and report answer on stdout/stderr; log lines
    // would only clutter them.
    let logging = !matches!(
        cli.command,
        Some(Command::CheckConfig { .. } | Command::Healthcheck { .. } | Command::Report(_))
    );
    // The daemon's output is its log (JSON under a service manager); every
    // other command answers on standard error. Either way, once.
    let daemon = matches!(cli.command, None | Some(Command::Serve));
    // Traces (telemetry.otlp_endpoint) are the daemon's only.
    let traces = if logging {
        csatwatch::telemetry::init(&settings.log, daemon.then_some(&settings.telemetry))
    } else {
        None
    };
    let code = run(cli, settings, daemon, logging).await;
    // Spans still queued are exported before exit (bounded by
    // telemetry.export_timeout).
    if let Some(traces) = traces {
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    code
}

async fn run(
    cli: Cli,
    settings: csatwatch::settings::Settings,
    daemon: bool,
    logging: bool,
) -> ExitCode {
    match csatwatch::cli::run(cli, settings).await {
        Ok(code) => code,
        Err(e) if daemon && logging => {
            let error = csatwatch::cli::describe_error(&e);
            tracing::error!(%error, "csatwatch stopped on an error; fix what it names and start it again");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("csatwatch: {}", csatwatch::cli::describe_error(&e));
            ExitCode::FAILURE
        }
    }
}
