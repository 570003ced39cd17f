//! Logging: human-readable in development, JSON lines in production. Request logs carry the
//! request id, method, route and status; never a query string, header or body (they can hold
//! codes, tokens and secrets).

use tracing_subscriber::EnvFilter;

use crate::config::Config;

/// Installs the process-wide subscriber (once; later calls are ignored, as in tests).
pub fn init(config: &Config) {
    let filter = EnvFilter::try_new(&config.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.json_logs() {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
}
