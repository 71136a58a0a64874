//! Log output: to the journal with structured fields under systemd, plain lines without timestamp or colour when stderr is not a terminal under systemd, and timestamped lines on a terminal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber, span};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// journald's native protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// The journal's native socket: one datagram per event, its fields structured.
    Journal,
    /// stderr without timestamp or colour (systemd, or any service manager, stamps it).
    Plain,
    /// stderr as a person reads it: timestamps, colour on a terminal.
    Terminal,
}

/// Chooses the sink from `$JOURNAL_STREAM`: the journal when stderr is the
/// very stream systemd connected to it (device:inode match) and its socket
/// is there; plain stderr when the variable is set otherwise (stderr was
/// redirected, or no journal socket); else the terminal format.
pub fn choose(journal_stream: Option<&str>, journal_socket: &Path) -> Sink {
    let Some(stream) = journal_stream.filter(|s| !s.is_empty()) else {
        return Sink::Terminal;
    };
    if stderr_is(stream) && journal_socket.exists() {
        Sink::Journal
    } else {
        Sink::Plain
    }
}

/// Whether stderr is the file `dev:inode` names (systemd's JOURNAL_STREAM format).
fn stderr_is(stream: &str) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    match std::fs::File::from(fd).metadata() {
        Ok(m) => m.dev() == dev && m.ino() == ino,
        Err(_) => false,
    }
}

/// Installs the global subscriber for the sink `$JOURNAL_STREAM` selects;
/// `RUST_LOG` filters (default `info`).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // async-imap's trace lines are the wire, LOGIN and AUTHENTICATE
        // (passwords, tokens) included: never shown, whatever RUST_LOG says.
        .add_directive("async_imap=off".parse().expect("a valid directive"));
    let stream = std::env::var("JOURNAL_STREAM").ok();
    let sink = choose(stream.as_deref(), Path::new(JOURNAL_SOCKET));
    let journal = match sink {
        Sink::Journal => JournalLayer::connect(Path::new(JOURNAL_SOCKET)).ok(),
        _ => None,
    };
    let registry = tracing_subscriber::registry().with(filter);
    match (sink, journal) {
        (Sink::Journal, Some(j)) => registry.with(j).init(),
        (Sink::Terminal, _) => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .init(),
        // Plain, or the journal socket could not be opened.
        _ => registry.with(plain_layer()).init(),
    }
}

/// stderr lines with level, spans and fields, but no timestamp and no colour.
fn plain_layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
}

/// Sends each event to journald as one datagram of the native protocol, with
/// the fields of its spans (`MAILBOX`, `UID`, `TICKET`, `OUTBOX`, ...) and its
/// own fields as journal fields, `PRIORITY` from the level and
/// `SYSLOG_IDENTIFIER=ticketd`. `MESSAGE` also carries the fields as
/// `key=value`, so `journalctl` without `-o verbose` shows them too.
pub struct JournalLayer {
    socket: UnixDatagram,
}

/// A span's fields, kept in its extensions.
struct SpanFields(Vec<(String, String)>);

impl JournalLayer {
    /// Connects to the journal's socket at `path`.
    pub fn connect(path: &Path) -> std::io::Result<JournalLayer> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(JournalLayer { socket })
    }
}

#[derive(Default)]
struct Collect {
    message: String,
    fields: Vec<(String, String)>,
}

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .push((field.name().to_string(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }
}

impl<S> Layer<S> for JournalLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut c = Collect::default();
        attrs.record(&mut c);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(c.fields));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let mut c = Collect::default();
        values.record(&mut c);
        if let Some(span) = ctx.span(id)
            && let Some(f) = span.extensions_mut().get_mut::<SpanFields>()
        {
            f.0.extend(c.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // Outer spans first, so an inner span's value of a field wins.
        let mut structured: BTreeMap<String, String> = BTreeMap::new();
        let mut context = String::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &f.0 {
                        if structured.insert(k.clone(), v.clone()).as_ref() != Some(v) {
                            let _ = write!(context, "{k}={v} ");
                        }
                    }
                }
            }
        }
        let mut c = Collect::default();
        event.record(&mut c);
        let mut message = format!("{context}{}", c.message);
        for (k, v) in &c.fields {
            let _ = write!(message, " {k}={v}");
            structured.insert(k.clone(), v.clone());
        }
        let meta = event.metadata();
        let mut datagram = Vec::with_capacity(256 + message.len());
        field(&mut datagram, "PRIORITY", priority(*meta.level()));
        field(&mut datagram, "SYSLOG_IDENTIFIER", "ticketd");
        field(&mut datagram, "MESSAGE", &message);
        field(&mut datagram, "TARGET", meta.target());
        for (k, v) in &structured {
            if let Some(name) = journal_name(k) {
                field(&mut datagram, &name, v);
            }
        }
        if self.socket.send(&datagram).is_err() {
            // Too big for a datagram, or the journal is gone: the line still goes out.
            eprintln!("{message}");
        }
    }
}

fn priority(level: Level) -> &'static str {
    match level {
        Level::ERROR => "3",
        Level::WARN => "4",
        Level::INFO => "6",
        Level::DEBUG | Level::TRACE => "7",
    }
}

/// A tracing field name as a journal field name (upper case letters, digits
/// and `_`, not starting with `_` or a digit), or `None` when it would be
/// empty or name a field the journal or this layer sets itself.
pub fn journal_name(name: &str) -> Option<String> {
    let n: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let n = n.trim_start_matches(|c: char| c == '_' || c.is_ascii_digit());
    let reserved = [
        "MESSAGE",
        "PRIORITY",
        "SYSLOG_IDENTIFIER",
        "TARGET",
        "MESSAGE_ID",
        "CODE_FILE",
        "CODE_LINE",
        "CODE_FUNC",
    ];
    (!n.is_empty() && !reserved.contains(&n)).then(|| n.chars().take(64).collect())
}

/// Appends one field in the native protocol: `NAME=value\n`, or for a value
/// with a line break `NAME\n`, its length as 64-bit little endian, the value, `\n`.
fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::{info, info_span, warn};

    /// Reads the native protocol back into (name, value) pairs.
    fn fields(datagram: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = datagram;
        while !rest.is_empty() {
            let nl = rest.iter().position(|&b| b == b'\n').unwrap();
            let line = &rest[..nl];
            if let Some(eq) = line.iter().position(|&b| b == b'=') {
                out.push((
                    String::from_utf8_lossy(&line[..eq]).into_owned(),
                    String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
                ));
                rest = &rest[nl + 1..];
            } else {
                let len = u64::from_le_bytes(rest[nl + 1..nl + 9].try_into().unwrap()) as usize;
                let value = &rest[nl + 9..nl + 9 + len];
                out.push((
                    String::from_utf8_lossy(line).into_owned(),
                    String::from_utf8_lossy(value).into_owned(),
                ));
                rest = &rest[nl + 10 + len..];
            }
        }
        out
    }

    fn get<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
        f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn events_reach_the_journal_socket_with_their_span_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let layer = JournalLayer::connect(&path).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let outer = info_span!("mailbox", mailbox = "support");
            let _o = outer.enter();
            let inner = info_span!("message", mailbox = "support", uid = 7u32, ticket = 42i64);
            let _i = inner.enter();
            info!(outcome = "new", replies = 1, "processed");
            warn!("two\nlines");
        });
        let mut buf = vec![0u8; 65536];
        let n = server.recv(&mut buf).unwrap();
        let f = fields(&buf[..n]);
        assert_eq!(get(&f, "MAILBOX"), Some("support"));
        assert_eq!(get(&f, "UID"), Some("7"));
        assert_eq!(get(&f, "TICKET"), Some("42"));
        assert_eq!(get(&f, "OUTCOME"), Some("new"));
        assert_eq!(get(&f, "PRIORITY"), Some("6"));
        assert_eq!(get(&f, "SYSLOG_IDENTIFIER"), Some("ticketd"));
        let message = get(&f, "MESSAGE").unwrap();
        assert_eq!(
            message,
            "mailbox=support uid=7 ticket=42 processed outcome=new replies=1"
        );
        let n = server.recv(&mut buf).unwrap();
        let f = fields(&buf[..n]);
        assert_eq!(get(&f, "PRIORITY"), Some("4"));
        assert!(get(&f, "MESSAGE").unwrap().ends_with("two\nlines"));
    }

    #[test]
    fn field_names_follow_the_journal_rules() {
        assert_eq!(journal_name("retry_in_ms").as_deref(), Some("RETRY_IN_MS"));
        assert_eq!(journal_name("log.target").as_deref(), Some("LOG_TARGET"));
        assert_eq!(journal_name("_x").as_deref(), Some("X"));
        assert_eq!(journal_name("message"), None);
        assert_eq!(journal_name("__"), None);
    }

    #[test]
    fn the_sink_follows_journal_stream() {
        let missing = Path::new("/nonexistent/journal.sock");
        assert_eq!(choose(None, missing), Sink::Terminal);
        assert_eq!(choose(Some(""), missing), Sink::Terminal);
        // Set but not naming our stderr: plain lines.
        assert_eq!(choose(Some("1:1"), missing), Sink::Plain);
        assert_eq!(choose(Some("garbage"), missing), Sink::Plain);
    }
}
