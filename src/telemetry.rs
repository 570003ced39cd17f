//! Logging: human-readable in development, JSON lines in production. Request logs carry the
//! request id, method, route and status; never a query string, header or body (they can hold
//! codes, tokens and secrets).
//!
//! No logged value can forge a line or drive a terminal (log injection, SECURITY.md 39): in the
//! human-readable format every field of events and spans is written by [`EscapedFields`], which
//! escapes control characters (newline, carriage return, ESC...), Unicode line separators and
//! bidirectional overrides; JSON escapes them by itself. Colours only on a terminal.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::Subscriber;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::Config;

/// Installs the process-wide subscriber (once; later calls are ignored, as in tests).
pub fn init(config: &Config) {
    let _ = subscriber(config, std::io::stderr, std::io::stderr().is_terminal()).try_init();
}

/// The subscriber `init` installs, writing to `writer` (tests give their own).
pub fn subscriber<W>(config: &Config, writer: W, ansi: bool) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&config.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if config.json_logs() {
        Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        )
    } else {
        Box::new(builder.with_ansi(ansi).fmt_fields(EscapedFields).finish())
    }
}

/// Formats fields as `message key=value key=value`, every value escaped ([`Escaped`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'writer> {
    writer: Writer<'writer>,
    empty: bool,
    result: fmt::Result,
}

impl EscapingVisitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let separator = if self.empty { "" } else { " " };
        self.empty = false;
        let name = field.name();
        self.result = if name == "message" {
            write!(self.writer, "{separator}{}", Escaped(value))
        } else {
            // `r#type` and friends: the raw identifier prefix is not part of the name.
            let name = name.strip_prefix("r#").unwrap_or(name);
            write!(self.writer, "{separator}{name}={}", Escaped(value))
        };
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(field, value);
        } else {
            // Quoted, as the default format does for strings.
            self.write(field, &format!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(s) = source {
            let _ = write!(text, ": {s}");
            source = s.source();
        }
        self.write(field, &text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, &format!("{value:?}"));
    }
}

/// A value with its control characters written as escapes: `\n`, `\r`, `\t`, `\x1b`...
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() || is_invisible_formatting(c) => {
                    if (c as u32) < 0x100 {
                        write!(f, "\\x{:02x}", c as u32)?;
                    } else {
                        write!(f, "\\u{{{:x}}}", c as u32)?;
                    }
                }
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Line and paragraph separators, and the bidirectional controls that reorder what a reader
/// sees (CVE-2021-42574).
fn is_invisible_formatting(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::config::LogFormat;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(format: LogFormat, log: impl FnOnce()) -> String {
        let mut config = Config::load_from(
            None,
            figment::providers::Env::prefixed("TECHPASS_LOGTEST_NONE_"),
        )
        .unwrap();
        config.log.format = format;
        let buffer = Buffer::default();
        let out = buffer.clone();
        let subscriber = subscriber(&config, move || out.clone(), false);
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    const FORGED: &str = "openid\n2026-12-05T00:00:00Z  INFO request: signed in as admin\r\x1b[31mred\x1b[0m\u{202e}";

    fn log_everything() {
        let span = tracing::info_span!("request", path = FORGED, method = %FORGED);
        let _entered = span.enter();
        let error = std::io::Error::other(FORGED);
        tracing::warn!(
            scope = %FORGED,
            client_id = FORGED,
            debug = ?FORGED,
            error = &error as &(dyn std::error::Error + 'static),
            "token request {FORGED}"
        );
    }

    #[test]
    fn every_field_is_escaped_in_the_human_format() {
        let out = logged(LogFormat::Pretty, log_everything);
        assert_eq!(out.lines().count(), 1, "one event, one line: {out}");
        assert!(out.ends_with('\n'));
        for forbidden in ['\r', '\x1b', '\u{202e}'] {
            assert!(!out.contains(forbidden), "{forbidden:?} in {out}");
        }
        assert!(out.contains("scope=openid\\n2026-12-05"), "{out}");
        assert!(out.contains("\\x1b[31mred"), "{out}");
        assert!(out.contains("\\u{202e}"), "{out}");
        assert!(out.contains("token request openid\\n"), "{out}");
        assert!(
            out.contains("request{path="),
            "the span's fields too: {out}"
        );
    }

    #[test]
    fn every_field_is_escaped_in_json() {
        let out = logged(LogFormat::Json, log_everything);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(!out.contains('\x1b') && !out.contains('\r'), "{out}");
        let line: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(line["scope"], FORGED);
        assert_eq!(line["span"]["path"], FORGED);
    }

    #[test]
    fn plain_values_are_unchanged() {
        assert_eq!(
            Escaped("app_1 openid email é ü 中").to_string(),
            "app_1 openid email é ü 中"
        );
        assert_eq!(Escaped("a\u{0}b\u{85}c").to_string(), "a\\x00b\\x85c");
    }
}
