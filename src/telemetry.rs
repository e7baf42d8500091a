//! Logging on stderr, filtered by `KEYPLANE_LOG` (default `info,sqlx=warn`; rustls's notes on
//! clients' handshakes are quieted unless it names rustls), in the format of
//! `KEYPLANE_LOG_FORMAT`: `human` (default) or `json`, one object per line with the fields of
//! the event and of the spans around it (for a request: `request_id`, `method`, `route`,
//! `path`, `client_request_id`, `actor`) at the top level.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

impl LogFormat {
    /// `human` or `json`, any case (also the config file's spelling).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!(
                "the log format must be \"human\" or \"json\", not {s:?}"
            )),
        }
    }

    /// `KEYPLANE_LOG_FORMAT`, `human` when unset.
    pub fn from_env() -> Result<Self, String> {
        std::env::var("KEYPLANE_LOG_FORMAT").map_or(Ok(LogFormat::Human), |v| Self::parse(&v))
    }
}

/// rustls reports a client's odd handshake at `warn`: an IP address sent as SNI (wrk and many
/// internal clients do), a duplicate or malformed host name. The client's quirk, answered by
/// rustls as the protocol says, is not the server's problem, and under load it was hundreds of
/// lines per run. Quieted unless the filter names rustls itself (`rustls=debug` shows them).
const QUIET_CLIENT_HANDSHAKES: &str = "rustls::msgs::handshake=error";

/// The filter for `KEYPLANE_LOG` (`info,sqlx=warn` when unset or invalid).
pub fn filter_from(spec: Option<String>) -> EnvFilter {
    let spec = spec.filter(|s| !s.trim().is_empty() && EnvFilter::try_new(s).is_ok());
    let mut spec = spec.unwrap_or_else(|| "info,sqlx=warn".to_owned());
    if !spec.contains("rustls") {
        spec = format!("{spec},{QUIET_CLIENT_HANDSHAKES}");
    }
    EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"))
}

pub fn init() {
    let format = LogFormat::from_env().unwrap_or_else(|e| {
        eprintln!("keyplane: KEYPLANE_LOG_FORMAT: {e}; logging in the human format");
        LogFormat::Human
    });
    let filter = filter_from(std::env::var("KEYPLANE_LOG").ok());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A second init (tests) is harmless; ignore its error.
    let _ = init_with(format, filter, std::io::stderr, ansi);
}

/// Installs the global subscriber writing to `writer` (tests capture logs through this).
pub fn init_with<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Result<(), tracing_subscriber::util::TryInitError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::util::SubscriberInitExt;
    match format {
        LogFormat::Human => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(ansi)
            .finish()
            .try_init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .finish()
            .try_init(),
    }
}

/// One JSON object per event: `timestamp`, `level`, `target`, then the fields of every
/// enclosing span (outermost first) and of the event itself, all at the top level, so a log
/// shipper sees `request_id` or `status` without digging.
struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut obj = Map::new();
        let mut ts = String::new();
        SystemTime.format_time(&mut Writer::new(&mut ts))?;
        obj.insert("timestamp".into(), Value::String(ts));
        let meta = event.metadata();
        obj.insert("level".into(), Value::String(meta.level().as_str().into()));
        obj.insert("target".into(), Value::String(meta.target().into()));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                // Span fields are kept as JSON text by `JsonFields`.
                let fields = ext.get::<FormattedFields<N>>();
                if let Some(Ok(Value::Object(fields))) =
                    fields.map(|f| serde_json::from_str::<Value>(f.as_str()))
                {
                    obj.extend(fields);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut obj));
        writeln!(writer, "{}", Value::Object(obj))
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::{filter_from, LogFormat};

    #[test]
    fn client_handshake_notes_are_quiet_unless_rustls_is_named() {
        let shown = |spec: Option<&str>| filter_from(spec.map(str::to_owned)).to_string();
        assert!(shown(None).contains("rustls::msgs::handshake=error"));
        assert!(shown(Some("debug")).contains("rustls::msgs::handshake=error"));
        assert!(shown(Some("")).contains("sqlx=warn"));
        assert!(!shown(Some("info,rustls=debug")).contains("handshake"));
    }

    #[test]
    fn log_formats_parse_in_any_case_and_refuse_the_unknown() {
        assert_eq!(LogFormat::parse("JSON"), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse("human"), Ok(LogFormat::Human));
        assert_eq!(LogFormat::parse(""), Ok(LogFormat::Human));
        assert!(LogFormat::parse("xml").is_err());
    }
}
