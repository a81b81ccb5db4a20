//! Logging and metrics set-up. Logs are JSON lines in production and
//! human-readable on a terminal (`log.format`). Nothing here ever formats a
//! secret or a customer comment: callers log ids and scores.

use std::io::IsTerminal;
use std::sync::OnceLock;

use metrics_exporter_prometheus::PrometheusHandle;
use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

/// Sets the log filter of the running subscriber (a settings reload).
type SetLevel = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static SET_LEVEL: OnceLock<SetLevel> = OnceLock::new();

/// Installs the global tracing subscriber. `RUST_LOG` overrides `log.level`.
pub fn init_logging(settings: &LogSettings) {
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // The two formats are two subscriber types; each keeps its reload
    // handle behind the same closure.
    let set_level: SetLevel = if json {
        let builder = builder
            .json()
            .flatten_event(true)
            // `span` (the innermost span's fields: a request's method, path
            // and request_id) and not also `spans`, the same fields again.
            .with_current_span(true)
            .with_span_list(false)
            .with_filter_reloading();
        let handle = builder.reload_handle();
        let _ = builder.try_init();
        Box::new(move |level| {
            let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
            handle.reload(filter).map_err(|e| e.to_string())
        })
    } else {
        let builder = builder.with_filter_reloading();
        let handle = builder.reload_handle();
        let _ = builder.try_init();
        Box::new(move |level| {
            let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
            handle.reload(filter).map_err(|e| e.to_string())
        })
    };
    // RUST_LOG wins over log.level at start; it keeps winning on reload.
    if !from_env {
        let _ = SET_LEVEL.set(set_level);
    }
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
