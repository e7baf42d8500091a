//! Logging: human-readable lines on stderr, filtered by `KEYPLANE_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_env("KEYPLANE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // A second init (tests) is harmless; ignore its error.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
