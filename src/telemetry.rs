//! Logging and metrics set-up. Logs are JSON lines in production and
//! human-readable on a terminal (`log.format`). Nothing here ever formats a
//! secret or a customer comment: callers log ids and scores.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use secrecy::ExposeSecret as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::settings::{LogFormat, LogSettings, TelemetrySettings};

/// Sets the log filter of the running subscriber (a settings reload).
type SetLevel = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static SET_LEVEL: OnceLock<SetLevel> = OnceLock::new();

/// Whether spans are exported (`telemetry.otlp_endpoint` is set and the
/// exporter was built): without it no trace context is computed or stored.
static TRACING: AtomicBool = AtomicBool::new(false);

/// Installs the global tracing subscriber. `RUST_LOG` overrides `log.level`.
pub fn init_logging(settings: &LogSettings) {
    init(settings, None);
}

/// The trace exporter of a running daemon: [`Traces::shutdown`] flushes
/// the spans still queued.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
    timeout: std::time::Duration,
}

impl Traces {
    /// Exports what is queued and stops the exporter, waiting at most
    /// `telemetry.export_timeout` (plus a second). Blocks: call it from a
    /// blocking thread.
    pub fn shutdown(self) {
        if let Err(e) = self
            .provider
            .shutdown_with_timeout(self.timeout + std::time::Duration::from_secs(1))
        {
            tracing::warn!(error = %e, "traces still queued at shutdown were not all exported");
        }
    }
}

/// Installs the global subscriber: logs as [`init_logging`] does, plus,
/// when `telemetry.otlp_endpoint` is set, OpenTelemetry spans exported in
/// batches over OTLP/HTTP. Returns the exporter to shut down at exit.
pub fn init(settings: &LogSettings, telemetry: Option<&TelemetrySettings>) -> Option<Traces> {
    let from_rust_log = std::env::var("RUST_LOG").ok().map(|f| log_filter(&f));
    let from_env = from_rust_log.is_some();
    let filter = match &from_rust_log {
        Some(Ok(filter)) => Some(filter.clone()),
        _ => log_filter(&settings.level).ok(),
    }
    .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    // The log filter is the fmt layer's own (reloadable); spans for traces
    // have theirs, so `log.level = "warn"` does not turn traces off.
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            // `span` (the innermost span's fields: a request's method, path
            // and request_id) and not also `spans`, the same fields again.
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };
    let mut problem = None;
    let provider = telemetry.and_then(|t| {
        t.otlp_endpoint.as_ref()?;
        match tracer_provider(t) {
            Ok(provider) => Some((provider, t.export_timeout)),
            Err(e) => {
                problem = Some(e);
                None
            }
        }
    });
    let traces = provider.as_ref().map(|(provider, _)| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("csatwatch"))
            .with_threads(false)
            .with_tracked_inactivity(false)
            // csatwatch's own spans and events only: the libraries' are
            // noise here, and the exporter's own would loop.
            .with_filter(Targets::new().with_target("csatwatch", tracing::Level::INFO))
    });
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces)
        .try_init();
    if let Some(Err(e)) = from_rust_log {
        tracing::warn!(error = %e, "RUST_LOG is not a log filter csatwatch reads; log.level is used instead");
    }
    if let Some(problem) = problem {
        tracing::error!(problem = %problem, "traces are off: the OTLP exporter could not be built; check telemetry.otlp_endpoint and telemetry.headers");
    }
    let set_level: SetLevel = Box::new(move |level| {
        let filter = log_filter(level)?;
        handle.reload(filter).map_err(|e| e.to_string())
    });
    // RUST_LOG wins over log.level at start; it keeps winning on reload.
    if !from_env {
        let _ = SET_LEVEL.set(set_level);
    }
    provider.map(|(provider, timeout)| {
        TRACING.store(true, Ordering::Relaxed);
        Traces { provider, timeout }
    })
}

/// A log filter: a default level and per-target levels, such as `info`,
/// `debug` or `csatwatch=debug,sqlx=warn` (the `target=level` form of
/// `RUST_LOG`, without its span and field filters). As with `RUST_LOG`,
/// targets no directive names are off unless a default level is given.
pub(crate) fn log_filter(text: &str) -> Result<Targets, String> {
    text.trim()
        .parse::<Targets>()
        .map_err(|e| format!("{e} (expected e.g. `info` or `csatwatch=debug,sqlx=warn`)"))
}

/// The OTLP/HTTP (protobuf) exporter behind a batch processor: spans are
/// queued (at most `max_queue_size`; more are dropped) and sent from a
/// thread of its own, never on a request's path.
fn tracer_provider(t: &TelemetrySettings) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler};
    let base = t.otlp_endpoint.as_deref().unwrap_or_default();
    let endpoint = format!("{}/v1/traces", base.trim_end_matches('/'));
    let headers: HashMap<String, String> = match &t.headers {
        Some(headers) => crate::settings::parse_otlp_headers(headers.expose_secret())?
            .into_iter()
            .collect(),
        None => HashMap::new(),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(t.export_timeout)
        .with_headers(headers)
        .build()
        .map_err(|e| e.to_string())?;
    let batch = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(t.max_queue_size)
                .with_max_export_batch_size(t.max_queue_size.min(512))
                .build(),
        )
        .build();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(t.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(batch)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            t.sample_ratio,
        ))))
        .with_resource(resource)
        .build())
}

/// Whether spans are exported (`telemetry.otlp_endpoint` set and its
/// exporter built): a span that only traces would read can be skipped.
pub fn traces_on() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// The W3C `traceparent` of `span`, to carry it across a hop the span
/// cannot follow (an outbox row); `None` when traces are off.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !traces_on() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the span `traceparent` names (see
/// [`traceparent`]); nothing when traces are off or it is `None`.
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    if !traces_on() {
        return;
    }
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let _ = span.set_parent(TraceContextPropagator::new().extract(&carrier));
}

/// What a reload did to the log level.
#[derive(Debug, PartialEq, Eq)]
pub enum LevelChange {
    Applied,
    /// `RUST_LOG` is set, or logging was never initialised (tests).
    NotManaged,
}

/// Applies a new `log.level` to the running subscriber.
pub fn set_log_level(level: &str) -> Result<LevelChange, String> {
    match SET_LEVEL.get() {
        Some(set) => set(level).map(|()| LevelChange::Applied),
        None => Ok(LevelChange::NotManaged),
    }
}

/// The histogram of store calls' durations, labelled by `op`.
pub use crate::exporter::DB_LATENCY;

/// Records how long a store call took, from `started`.
pub fn observe_db(op: &'static str, started: std::time::Instant) {
    metrics::histogram!(DB_LATENCY, "op" => op).record(started.elapsed().as_secs_f64());
}

/// The process-wide Prometheus recorder, installed on first use (see
/// [`crate::exporter`]).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    crate::exporter::handle()
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    #[test]
    fn the_log_filter_takes_a_level_and_target_levels_as_rust_log_does() {
        let both = super::log_filter("csatwatch=debug,sqlx=warn").unwrap();
        assert!(both.would_enable("csatwatch::dispatcher", &Level::DEBUG));
        assert!(!both.would_enable("csatwatch::dispatcher", &Level::TRACE));
        assert!(both.would_enable("sqlx::query", &Level::WARN));
        assert!(!both.would_enable("sqlx::query", &Level::INFO));
        // No default level given: other targets are off.
        assert!(!both.would_enable("hyper", &Level::ERROR));
        let level = super::log_filter(" info ").unwrap();
        assert!(level.would_enable("hyper", &Level::INFO));
        assert!(!level.would_enable("csatwatch", &Level::DEBUG));
        let mixed = super::log_filter("warn,csatwatch=info").unwrap();
        assert!(mixed.would_enable("csatwatch::pipeline", &Level::INFO));
        assert!(!mixed.would_enable("sqlx", &Level::INFO));
        let error = super::log_filter("csatwatch=loud").unwrap_err();
        assert!(error.contains("csatwatch=debug,sqlx=warn"), "{error}");
    }

    /// The message of every `tracing::error!` in `src/`: its last string
    /// literal.
    fn error_messages() -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                // Production code only: test modules log what they like.
                let text = text.split("#[cfg(test)]").next().unwrap();
                for (at, _) in text.match_indices("error!(") {
                    // `tracing::error!(` or a bare `error!(`, not `…_error!(`.
                    let before = text[..at].chars().last();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        continue;
                    }
                    let call = macro_call(&text[at + "error!".len()..]);
                    if let Some(close) = call.rfind('"')
                        && let Some(open) = call[..close].rfind('"')
                    {
                        out.push((
                            path.display().to_string(),
                            call[open + 1..close].to_string(),
                        ));
                    }
                }
            }
        }
        out
    }

    /// The arguments of a macro call: from its `(` to the matching `)`,
    /// parentheses inside string literals aside.
    fn macro_call(from_paren: &str) -> &str {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for (i, c) in from_paren.char_indices() {
            match (in_string, c) {
                (true, '\\') if !escaped => escaped = true,
                (true, '"') if !escaped => in_string = false,
                (true, _) => escaped = false,
                (false, '"') => in_string = true,
                (false, '(') => depth += 1,
                (false, ')') => {
                    depth -= 1;
                    if depth == 0 {
                        return &from_paren[..=i];
                    }
                }
                _ => {}
            }
        }
        from_paren
    }

    #[test]
    fn every_error_line_says_what_the_operator_should_do() {
        let messages = error_messages();
        assert!(messages.len() >= 5, "{messages:?}");
        // ERROR means someone must act (STYLE.md): each message names the
        // action, with one of these words.
        let actions = [
            "check", "fix", "run ", "restart", "invite", "set ", "see ", "start it", "report",
            "restore", "Restore",
        ];
        let mut silent = Vec::new();
        for (file, message) in messages {
            // A message built elsewhere (`"{problem}"`) is read where it is
            // built; a test of that module checks it.
            if message.starts_with('{') && message.ends_with('}') && !message.contains(' ') {
                continue;
            }
            if !actions.iter().any(|a| message.contains(a)) {
                silent.push(format!("{file}: {message:?}"));
            }
        }
        assert!(
            silent.is_empty(),
            "these ERROR lines do not say what to do:\n{}",
            silent.join("\n")
        );
    }
}
