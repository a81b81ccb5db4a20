//! The `csatwatch` binary: parse the command line, load settings, set up
//! logging, run. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser as _;
use csatwatch::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    // reqwest is built without a default TLS provider; ring is the one
    // sqlx uses too, so only one is compiled in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("csatwatch: {e}");
            return ExitCode::FAILURE;
        }
    };
    // check-config, healthcheck and report answer on stdout/stderr; log lines
    // would only clutter them.
    if !matches!(
        cli.command,
        Some(Command::CheckConfig { .. } | Command::Healthcheck { .. } | Command::Report(_))
    ) {
        csatwatch::telemetry::init_logging(&settings.log);
    }
    match csatwatch::cli::run(cli, settings).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("csatwatch: {e:#}");
            ExitCode::FAILURE
        }
    }
}
