//! Logging: a `RUST_LOG`-style filter (`CAJA_LOG` or `RUST_LOG`, default `info`), human
//! lines by default, JSON lines on request. Everything goes to stderr so stdout stays for
//! output scripts read (e.g. `caja keys create`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

mod line;

use line::Line;

pub fn init(format: LogFormat) {
    let filter = std::env::var("CAJA_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info,sqlx=warn"));
    let line = match format {
        LogFormat::Human => Line::Human {
            ansi: std::io::stderr().is_terminal(),
        },
        LogFormat::Json => Line::Json,
    };
    // try_init: a second call (tests, nested commands) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(line)
        .try_init();
}
