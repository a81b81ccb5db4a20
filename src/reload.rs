//! Reloading the settings on SIGHUP (`systemctl reload csatwatch`).
//!
//! The settings file and the environment are read again and validated the
//! way start-up does, secrets files included. A file with any problem
//! changes nothing: each problem is logged at ERROR, the running settings
//! stay, and `csatwatch_config_reloads_total{outcome="failed"}` counts it.
//! A valid file is applied to what can change while running (see
//! [`apply`]); every other changed key is logged as needing a restart.
//! Connections, in-flight requests and queued alerts are untouched: the
//! outbox is in the database, and nothing is rebuilt but the rules, the
//! sources, the log filter, the dispatcher's paces and Slack credentials,
//! and the scheduler's digests and drop alerts (whose messages stay keyed
//! by kind, name and period, so a reload never sends one twice).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::settings::{ConfigProblem, Settings};
use crate::sources::SourceRegistry;

/// The counter of reloads, labelled `outcome`: `applied` or `failed`.
pub const RELOADS: &str = "csatwatch_config_reloads_total";

/// What one reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The new settings are in force; `restart` names changed keys that
    /// only a restart applies.
    Applied { restart: Vec<&'static str> },
    /// The file has problems; nothing changed.
    Failed { problems: Vec<ConfigProblem> },
}

/// Reloads the settings of one running [`App`].
#[derive(Debug)]
pub struct Reloader {
    config: Option<PathBuf>,
    app: App,
    /// The settings in force (the last that applied).
    current: Mutex<Arc<Settings>>,
}

impl Reloader {
    /// `config` is the path the daemon started with (`--config`), `None`
    /// for the default search.
    pub fn new(config: Option<PathBuf>, app: App) -> Reloader {
        let current = Mutex::new(app.settings.clone());
        Reloader {
            config,
            app,
            current,
        }
    }

    /// Reads, validates and applies the settings once; logs and counts the
    /// outcome.
    pub fn reload(&self) -> Outcome {
        // As start-up: every key checked, sources built (their secret files
        // read now: a missing one is a problem of this reload).
        let loaded = crate::cli::load_settings(self.config.as_deref()).and_then(|settings| {
            SourceRegistry::from_settings(&settings).map(|sources| (settings, sources))
        });
        let (new, sources) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                for problem in &error.problems {
                    tracing::error!(
                        key = %problem.key,
                        problem = %problem.message,
                        "settings not reloaded: fix this in the settings file and reload again; the running settings stay"
                    );
                }
                metrics::counter!(RELOADS, "outcome" => "failed").increment(1);
                return Outcome::Failed {
                    problems: error.problems,
                };
            }
        };
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let restart = apply(&self.app, &current, &new, sources);
        for key in &restart {
            tracing::warn!(
                key,
                "this setting changed but applies only after a restart (systemctl restart csatwatch)"
            );
        }
        tracing::info!(
            rules = new.rules.len(),
            needs_restart = restart.len(),
            "settings reloaded"
        );
        metrics::counter!(RELOADS, "outcome" => "applied").increment(1);
        *current = Arc::new(new);
        Outcome::Applied { restart }
    }
}

/// Applies `new` to the running app and returns the changed keys it could
/// not apply. Applied while running: `[[rules]]` (channels, mentions,
/// mutes, escalations, `dm_agent`), `[[digests]]` and `[[drop_alerts]]`
/// (from the scheduler's next tick), `[alerts]` but `history_window` and
/// `name_cache_ttl` (pacing, storms, retries, settle, max_age, VIPs),
/// `[slack]` but `request_timeout` and `signing_secret` (a rotated bot
/// token or token file, the webhook URL, the default channel, the API base
/// URL, `max_per_minute`), `log.level`, and the `[[sources]]` with their
/// secrets for webhooks and fetches (the pollers keep the sources they
/// started with).
pub fn apply(
    app: &App,
    old: &Settings,
    new: &Settings,
    sources: SourceRegistry,
) -> Vec<&'static str> {
    app.pipeline.apply_settings(new);
    app.sources.replace(sources);
    let mut restart = Vec::new();
    // Pacing, storms, retries; a rotated bot token or webhook URL, a new
    // default channel: the dispatcher's sink is shared with the scheduler.
    if let Some(key) = app.dispatcher.apply_settings(&new.alerts, &new.slack) {
        restart.push(key);
    }
    // The interactions' client (modals, replies) follows the token too.
    if let Some(slack) = &app.slack
        && let Err(key) = slack.update(&new.slack)
        && !restart.contains(&key)
    {
        restart.push(key);
    }
    // Digests and drop alerts: the scheduler reads these at each tick.
    app.live.set(Arc::new(new.clone()));
    if old.log.level != new.log.level {
        match crate::telemetry::set_log_level(&new.log.level) {
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "log.level not applied; the previous level stays"),
        }
    }
    restart.extend(restart_needed(old, new));
    restart
}

/// The changed keys that only a restart applies. Destructured without
/// `..`: a new settings section does not compile until it is sorted here.
fn restart_needed(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let Settings {
        server,
        database,
        slack,
        alerts,
        log,
        retention,
        sources,
        rules: _,
        reports,
        api,
        digests,
        drop_alerts,
        dashboard,
        telemetry,
    } = new;
    let changed =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    let mut keys = Vec::new();
    if server.listen != old.server.listen {
        keys.push("server.listen");
    }
    let mut server_old = old.server.clone();
    server_old.listen = server.listen;
    if changed(server, &server_old) {
        keys.push("server");
    }
    {
        use secrecy::ExposeSecret as _;
        if database.url.expose_secret() != old.database.url.expose_secret() {
            keys.push("database.url");
        }
    }
    if changed(database, &old.database) {
        keys.push("database");
    }
    // Applied: the token (or token file's content), the webhook URL, the
    // default channel, the API base URL, max_per_minute (see `apply`). A
    // restart: the HTTP timeout, and the signing secret the interactions
    // endpoint checks.
    if slack.request_timeout != old.slack.request_timeout {
        keys.push("slack.request_timeout");
    }
    {
        use secrecy::ExposeSecret as _;
        let secret = |s: &crate::settings::SlackSettings| {
            s.signing_secret
                .as_ref()
                .map(|v| v.expose_secret().to_string())
        };
        if secret(slack) != secret(&old.slack) {
            keys.push("slack.signing_secret");
        }
    }
    // Applied: everything the pipeline, the rules and the dispatcher read
    // per rating or per pass. A restart: what the enrichment was built with.
    if alerts.history_window != old.alerts.history_window {
        keys.push("alerts.history_window");
    }
    if alerts.name_cache_ttl != old.alerts.name_cache_ttl {
        keys.push("alerts.name_cache_ttl");
    }
    if log.format != old.log.format {
        keys.push("log.format");
    }
    if changed(retention, &old.retention) {
        keys.push("retention");
    }
    // The table itself, secrets included (compared, never printed).
    // As JSON (maps with sorted keys): the raw tables' own Debug follows a
    // hash map's order, which differs from one read of the file to the next.
    let tables = |s: &[crate::settings::RawSource]| {
        s.iter()
            .map(|r| {
                r.value()
                    .clone()
                    .try_deserialize::<serde_json::Value>()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|_| format!("{:?}", r.value()))
            })
            .collect::<Vec<_>>()
    };
    if tables(sources) != tables(&old.sources) {
        keys.push("sources (the pollers)");
    }
    if changed(reports, &old.reports) {
        keys.push("reports");
    }
    if changed(api, &old.api) {
        keys.push("api");
    }
    // `[[digests]]` and `[[drop_alerts]]` are applied (the scheduler's
    // next tick); listed so the destructuring above stays complete.
    let _ = (digests, drop_alerts);
    if changed(dashboard, &old.dashboard) {
        keys.push("dashboard");
    }
    // The exporter is built once at start (headers compared as secrets).
    {
        use secrecy::ExposeSecret as _;
        let headers = |t: &crate::settings::TelemetrySettings| {
            t.headers.as_ref().map(|h| h.expose_secret().to_string())
        };
        if changed(telemetry, &old.telemetry) || headers(telemetry) != headers(&old.telemetry) {
            keys.push("telemetry");
        }
    }
    keys
}

/// Reloads on every SIGHUP until `cancel`, from a task it spawns. The
/// signal is registered before this returns, so no SIGHUP after it is
/// missed. Registering also keeps SIGHUP from terminating the process.
#[cfg(unix)]
pub fn listen(reloader: Reloader, cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(hangups) => {
            tokio::spawn(run_on_sighup(reloader, hangups, cancel));
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload by restarting");
        }
    }
}

#[cfg(unix)]
async fn run_on_sighup(
    reloader: Reloader,
    mut hangups: tokio::signal::unix::Signal,
    cancel: CancellationToken,
) {
    let reloader = Arc::new(reloader);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            received = hangups.recv() => {
                if received.is_none() {
                    break;
                }
                tracing::info!("SIGHUP received; reloading the settings");
                let reloader = reloader.clone();
                // Reading files and secrets blocks; keep it off the workers.
                let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
            }
        }
    }
}

/// Without Unix signals there is nothing to listen for.
#[cfg(not(unix))]
pub fn listen(_reloader: Reloader, _cancel: CancellationToken) {}
