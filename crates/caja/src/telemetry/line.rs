//! One log line per event, written straight into the subscriber's line buffer.
//!
//! The server writes an access-log line for every request. tracing-subscriber's own
//! formatters spent 12k instructions on such a line (human) and 20k (JSON, through
//! serde_json): 4–6% of everything a checkout costs the server, by callgrind
//! (`scripts/callgrind-checkout`). These write the same lines, with the same JSON keys
//! (`timestamp`, `level`, the event's fields with `message` among them, `target`), with
//! no intermediate values: a timestamp written digit by digit, strings escaped as they are
//! copied, numbers written as they are.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How lines look.
#[derive(Debug, Clone, Copy)]
pub enum Line {
    /// `2026-11-30T04:34:03.123456Z  INFO caja_server::request: request status=201 …`,
    /// the level coloured when `ansi`.
    Human { ansi: bool },
    /// `{"timestamp":…,"level":"INFO","message":"request","status":201,…,"target":…}`.
    Json,
}

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Events bridged from the `log` crate carry their real target in fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let at = caja_core::time::format(&chrono::Utc::now());
        match self {
            Line::Json => {
                w.write_str("{\"timestamp\":\"")?;
                w.write_str(&at)?;
                w.write_str("\",\"level\":\"")?;
                w.write_str(meta.level().as_str())?;
                w.write_char('"')?;
                record(&mut w, event, true)?;
                w.write_str(",\"target\":")?;
                json_str(&mut w, meta.target())?;
                w.write_str("}\n")
            }
            Line::Human { ansi } => {
                w.write_str(&at)?;
                w.write_char(' ')?;
                let level = meta.level();
                if *ansi {
                    w.write_str(colour(level))?;
                }
                // Right-aligned to five characters, as `INFO` and `ERROR` line up.
                for _ in level.as_str().len()..5 {
                    w.write_char(' ')?;
                }
                w.write_str(level.as_str())?;
                if *ansi {
                    w.write_str("\x1b[0m")?;
                }
                w.write_char(' ')?;
                w.write_str(meta.target())?;
                w.write_str(":")?;
                record(&mut w, event, false)?;
                w.write_char('\n')
            }
        }
    }
}

/// The event's fields, as JSON (`true`) or for people.
fn record(w: &mut Writer<'_>, event: &Event<'_>, json: bool) -> fmt::Result {
    let mut fields = Fields {
        w,
        json,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result
}

fn colour(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "\x1b[31m",
        Level::WARN => "\x1b[33m",
        Level::INFO => "\x1b[32m",
        Level::DEBUG => "\x1b[34m",
        Level::TRACE => "\x1b[35m",
    }
}

/// Fields bridged from `log` (`log.target`, `log.file` …) are metadata, not content.
fn shown(field: &Field) -> bool {
    !field.name().starts_with("log.")
}

/// Writes each field as the line's format wants it. JSON: `,"name":value`, numbers and
/// booleans bare, everything else a JSON string escaped as it is written. Human:
/// ` message name=value …`, strings quoted and escaped as Rust shows them, anything
/// recorded with `%` as it displays itself.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    json: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>, bool) -> fmt::Result) {
        if self.result.is_err() || !shown(field) {
            return;
        }
        let json = self.json;
        self.result = (|| {
            if json {
                self.w.write_char(',')?;
                json_str(self.w, field.name())?;
                self.w.write_char(':')?;
            } else if field.name() == "message" {
                self.w.write_char(' ')?;
            } else {
                write!(self.w, " {}=", field.name())?;
            }
            value(self.w, json)
        })();
    }
}

impl Visit for Fields<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, |w, json| match json {
            true if value.is_finite() => write!(w, "{value}"),
            true => w.write_str("null"),
            false => write!(w, "{value:?}"),
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w, _| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w, _| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w, _| {
            w.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let message = field.name() == "message";
        self.field(field, |w, json| match json {
            true => json_str(w, value),
            false if message => w.write_str(value),
            false => write!(w, "{value:?}"),
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w, json| {
            if !json {
                return write!(w, "{value:?}");
            }
            w.write_char('"')?;
            write!(Escaped(&mut *w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

fn json_str(w: &mut impl Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(&mut *w).write_str(s)?;
    w.write_char('"')
}

/// Writes what it is given as the inside of a JSON string.
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Nearly every piece needs no escape; counting (no early exit) lets the compiler
        // check many bytes at a time.
        let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        if s.bytes().filter(|&b| needs(b)).count() == 0 {
            return self.0.write_str(s);
        }
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn lines(line: Line, emit: impl FnOnce()) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .event_format(line)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn access_line() {
        let id = "req_1";
        tracing::info!(
            request_id = %id, method = %"POST", route = %"/v1/orders", status = 201u16,
            latency_ms = 1.5, key_id = "key_\"x\"\n", ok = true, delta = -3i64,
            "request"
        );
    }

    #[test]
    fn a_json_line_is_one_object_with_every_field_escaped() {
        let text = lines(Line::Json, access_line);
        assert!(text.ends_with("}\n") && text.lines().count() == 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "request");
        assert_eq!(v["request_id"], "req_1");
        assert_eq!(v["route"], "/v1/orders");
        assert_eq!(v["status"], 201);
        assert_eq!(v["latency_ms"], 1.5);
        assert_eq!(v["key_id"], "key_\"x\"\n");
        assert_eq!(v["ok"], true);
        assert_eq!(v["delta"], -3);
        assert_eq!(v["target"], module_path!());
        let at = v["timestamp"].as_str().unwrap();
        assert!(caja_core::time::parse("timestamp", at).is_ok(), "{at}");
    }

    #[test]
    fn control_characters_in_a_json_line_are_escaped() {
        let text = lines(Line::Json, || {
            tracing::warn!(detail = "a\u{1}b\tc\\", "odd {}", "message\r")
        });
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["detail"], "a\u{1}b\tc\\");
        assert_eq!(v["message"], "odd message\r");
        assert_eq!(v["level"], "WARN");
    }

    #[test]
    fn a_human_line_has_the_time_the_level_the_target_and_the_fields() {
        let text = lines(Line::Human { ansi: false }, access_line);
        let (at, rest) = text.split_once(' ').unwrap();
        assert!(caja_core::time::parse("timestamp", at).is_ok(), "{at}");
        assert_eq!(
            rest,
            format!(
                " INFO {}: request request_id=req_1 method=POST route=/v1/orders status=201 \
                 latency_ms=1.5 key_id=\"key_\\\"x\\\"\\n\" ok=true delta=-3\n",
                module_path!()
            )
        );
        let coloured = lines(Line::Human { ansi: true }, || tracing::error!("boom"));
        assert!(coloured.contains("\x1b[31mERROR\x1b[0m"), "{coloured}");
    }
}
