//! `App::build` wires everything from validated settings; `main` and the
//! tests build the same `App`. Background work can be driven by hand
//! (`flush_alerts`) so tests never sleep to synchronise.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::{Clock, SystemClock};
use crate::dispatcher::{Dispatcher, FlushReport};
use crate::http::{self, AppState};
use crate::intake::Fetcher;
use crate::pipeline::Pipeline;
use crate::polling::Pollers;
use crate::settings::Settings;
use crate::sinks::{Sink, slack::SlackClient};
use crate::sources::SourceRegistry;
use crate::sources::actions::ActionRegistry;
use crate::store::{Store, StoreResult};

/// Raw deliveries retention deletes per statement (each its own
/// transaction): 1,000 over 200,000 history rows held SQLite's write lock
/// for 0.03 s with migration 0019's index (11 s without it).
pub const RETENTION_CHUNK: u32 = 1_000;

/// The wired application.
#[derive(Debug, Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub pipeline: Pipeline,
    pub dispatcher: Arc<Dispatcher>,
    pub sources: Arc<SourceRegistry>,
    pub clock: Arc<dyn Clock>,
    /// Retries deliveries whose ratings must be fetched from an API.
    pub fetcher: Arc<Fetcher>,
    /// For sources' API calls (fetches and polls).
    pub http: reqwest::Client,
    /// Polls helpdesk APIs and runs backfills.
    pub pollers: Arc<Pollers>,
    /// What each source's helpdesk lets a person do from an alert.
    pub actions: Arc<ActionRegistry>,
    /// The bot-token Slack client for interactions (modals, ephemeral
    /// replies, user lookups); `None` without a bot token.
    pub slack: Option<SlackClient>,
    /// Who may read the dashboard; built once so a per-process session key
    /// is the same for every request.
    pub access: Arc<crate::dashboard::Access>,
    /// The settings in force for what reads them while running (the
    /// digests' scheduler); a settings reload replaces them.
    pub live: Arc<crate::reports::scheduler::LiveSettings>,
}

impl App {
    /// Connects to the database, applies migrations and builds every part.
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// As [`App::build`], with a clock of the caller's (tests).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<App> {
        let sources = Arc::new(SourceRegistry::from_settings(&settings)?);
        let store = Store::connect(&settings.database).await?;
        store.migrate().await.context(
            "cannot apply database migrations (is database.url reachable and writable?)",
        )?;
        store
            .ensure_rollup(&settings.reports.timezone)
            .await
            .context("cannot build the report rollup (is database.url writable?)")?;
        let sink = match SlackClient::new(&settings.slack)? {
            Some(client) => Sink::Slack(client),
            None => Sink::Log,
        };
        let wake = Arc::new(Notify::new());
        let pipeline = Pipeline::new(store.clone(), &settings, clock.clone(), wake.clone());
        let http = reqwest::Client::builder()
            .user_agent(concat!("csatwatch/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(15))
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .context("cannot build the HTTP client for helpdesk APIs")?;
        let actions = Arc::new(ActionRegistry::from_sources(
            &sources,
            settings.alerts.name_cache_ttl,
        ));
        let slack = SlackClient::new(&settings.slack)?.filter(SlackClient::can_update);
        let dispatcher = Arc::new(
            Dispatcher::with_workspace_cap(
                store.clone(),
                sink,
                clock.clone(),
                settings.alerts.clone(),
                wake,
                &sources,
                settings.slack.max_per_minute,
            )
            .with_enrichment(crate::dispatcher::Enrichment {
                actions: actions.clone(),
                http: http.clone(),
                history_window: settings.alerts.history_window,
                rules: pipeline.shared_rules(),
            })
            .with_lane(pipeline.lane())
            .with_sends(pipeline.sends_recorder()),
        );
        let fetcher = Arc::new(Fetcher {
            sources: sources.clone(),
            pipeline: pipeline.clone(),
            store: store.clone(),
            http: http.clone(),
            clock: clock.clone(),
            wake: Arc::new(Notify::new()),
        });
        let access = Arc::new(crate::dashboard::Access::from_settings(&settings));
        let settings = Arc::new(settings);
        let live = crate::reports::scheduler::LiveSettings::new(settings.clone());
        let pollers = Arc::new(Pollers::new(
            store.clone(),
            pipeline.clone(),
            sources.clone(),
            http.clone(),
            clock.clone(),
            settings.clone(),
        ));
        Ok(App {
            settings,
            store,
            pipeline,
            dispatcher,
            sources,
            clock,
            fetcher,
            http,
            pollers,
            actions,
            slack,
            access,
            live,
        })
    }

    /// The HTTP routes, for serving or for in-process requests.
    pub fn router(&self) -> axum::Router {
        http::router(AppState::new(http::Shared {
            settings: self.settings.clone(),
            store: self.store.clone(),
            pipeline: self.pipeline.clone(),
            sources: self.sources.clone(),
            clock: self.clock.clone(),
            metrics: crate::telemetry::metrics_handle(),
            http: self.http.clone(),
            fetch_wake: self.fetcher.wake.clone(),
            actions: self.actions.clone(),
            slack: self.slack.clone(),
            alerts_wake: self.dispatcher.wake(),
            access: self.access.clone(),
        }))
    }

    /// Delivers every alert due now (what the background dispatcher does
    /// when woken).
    pub async fn flush_alerts(&self) -> StoreResult<FlushReport> {
        self.dispatcher.flush().await
    }

    /// The digests' and drop alerts' scheduler, sending through the
    /// alerts' sink.
    pub fn scheduler(&self) -> crate::reports::scheduler::Scheduler {
        crate::reports::scheduler::Scheduler::live(
            self.store.clone(),
            self.live.clone(),
            self.clock.clone(),
            self.dispatcher.sink().clone(),
        )
    }

    /// Writes the digests and evaluates the drop alerts due now, then sends
    /// what is due (what the background task does every 30 s).
    pub async fn run_report_schedules(
        &self,
    ) -> Result<(crate::reports::scheduler::TickReport, u64), crate::reports::ReportError> {
        let scheduler = self.scheduler();
        let tick = scheduler.tick().await?;
        let sent = scheduler.send_due().await?;
        Ok((tick, sent))
    }

    /// Reads the database-derived gauges now (the background task does it
    /// every 15 s).
    pub async fn refresh_gauges(&self) -> StoreResult<crate::gauges::Gauges> {
        crate::gauges::refresh(&self.store, self.clock.now_ms()).await
    }

    /// Deletes raw deliveries older than `retention.raw_deliveries`, in
    /// chunks of [`RETENTION_CHUNK`]; their
    /// ratings stay. Returns how many were deleted.
    pub async fn apply_retention(&self) -> StoreResult<u64> {
        let before = self.clock.now_ms() - crate::clock::ms(self.settings.retention.raw_deliveries);
        let deleted = self
            .store
            .delete_deliveries_before(before, RETENTION_CHUNK)
            .await?;
        metrics::counter!("csatwatch_retention_deleted_total").increment(deleted);
        if deleted > 0 {
            tracing::info!(
                deleted,
                "deleted raw deliveries past retention.raw_deliveries"
            );
        }
        Ok(deleted)
    }

    /// Applies retention at start and then hourly, until `cancel`.
    async fn run_retention(self, cancel: CancellationToken) {
        loop {
            if let Err(e) = self.apply_retention().await {
                tracing::warn!(error = %e, "retention could not run; it will try again in an hour");
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            }
        }
    }

    /// Binds `server.listen`.
    pub async fn bind(&self) -> anyhow::Result<TcpListener> {
        let addr = self.settings.server.listen;
        TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (server.listen); is another process using it?")
        })
    }

    /// Serves HTTP on `listener` and runs the dispatcher until `cancel`; then
    /// stops accepting, finishes in-flight requests and the alert being
    /// sent, and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        self.serve_with(listener, cancel, true).await
    }

    /// As [`App::serve`]; with `background = false` the dispatcher does not
    /// run on its own and alerts go out only through [`App::flush_alerts`]
    /// (tests that count what each flush does).
    pub async fn serve_with(
        self,
        listener: TcpListener,
        cancel: CancellationToken,
        background: bool,
    ) -> anyhow::Result<()> {
        let tasks = TaskTracker::new();
        if background {
            tasks.spawn(self.dispatcher.clone().run(cancel.clone()));
            tasks.spawn(self.clone().run_retention(cancel.clone()));
            tasks.spawn(self.fetcher.clone().run(cancel.clone()));
            tasks.spawn(self.pollers.clone().run(cancel.clone()));
            tasks.spawn(self.scheduler().run(cancel.clone()));
            tasks.spawn(
                self.store
                    .clone()
                    .watch_file(std::time::Duration::from_secs(5), cancel.clone()),
            );
            tasks.spawn(crate::gauges::run(
                self.store.clone(),
                self.clock.clone(),
                crate::telemetry::metrics_handle(),
                cancel.clone(),
            ));
        }
        let local: SocketAddr = listener.local_addr()?;
        // Bounded: a PostgreSQL that is down must not delay readiness.
        let durability = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            self.store.commit_durability(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| "unknown (the database does not answer yet)".into());
        tracing::info!(
            listen = %local,
            database = self.store.backend_name(),
            synchronous = %durability,
            sources = self.sources.len(),
            sink = self.dispatcher.sink().name(),
            "csatwatch is ready"
        );
        if self.access.enabled() {
            tracing::info!(path = "/dashboard", "the dashboard is on");
        } else {
            tracing::info!(
                "the dashboard and the read API are off: no [[api.tokens]] are configured"
            );
        }
        // Migrations ran in `build` and the listener is bound: connections
        // queue in the backlog from here on. READY before the first
        // watchdog ping, as the service manager expects.
        crate::service::notify_ready(&format!("listening on {local}"));
        if let Some(interval) = crate::service::watchdog_interval() {
            tasks.spawn(crate::service::run_watchdog(
                self.store.clone(),
                interval,
                cancel.clone(),
            ));
        }
        tasks.close();
        let stopping = cancel.clone();
        tokio::spawn(async move {
            stopping.cancelled().await;
            crate::service::notify_stopping();
        });
        let open_files = http::server::raise_open_file_limit();
        let reserved =
            http::server::RESERVED_FILES + u64::from(self.settings.database.max_connections);
        let limits = http::server::Limits::new(&self.settings.server, open_files, reserved);
        http::server::serve(listener, self.router(), limits, cancel.clone())
            .await
            .context("the HTTP server failed")?;
        // The server returns once in-flight requests are answered; give the
        // dispatcher the grace period to finish the alert it is sending.
        cancel.cancel();
        if tokio::time::timeout(self.settings.server.shutdown_grace, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "background tasks did not stop within server.shutdown_grace; exiting anyway"
            );
        }
        self.store.close().await;
        tracing::info!("csatwatch stopped");
        Ok(())
    }
}
