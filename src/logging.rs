//! Logging set-up: `tracing` to stderr (foreground, utilities) or to syslog(3) (the
//! detached daemon). The level comes from `RUST_LOG` (default given by the caller).

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::sys::unix::Priority;

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// Log to stderr.
pub fn to_stderr(default: &str) {
    let ansi = crate::sys::unix::stderr_is_tty();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(default))
        .with_ansi(ansi)
        .with_writer(io::stderr)
        .try_init();
}

/// Log to syslog (facility daemon), one record per event.
pub fn to_syslog() {
    crate::sys::unix::openlog(c"jaildaemon");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter("info"))
        .with_ansi(false)
        .without_time()
        .with_writer(Syslog)
        .try_init();
}

struct Syslog;

/// Buffers one formatted event and hands it to syslog(3), at the priority of the
/// event's level, when dropped.
struct SyslogLine {
    buf: Vec<u8>,
    prio: Priority,
}

impl Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end();
        if !text.is_empty() {
            crate::sys::unix::syslog(self.prio, text);
        }
    }
}

/// The syslog priority of a tracing level (never guessed from the text, which may
/// quote a command's output).
fn priority(level: &tracing::Level) -> Priority {
    match *level {
        tracing::Level::ERROR => Priority::Err,
        tracing::Level::WARN => Priority::Warning,
        tracing::Level::INFO => Priority::Info,
        _ => Priority::Debug,
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;
    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine {
            buf: Vec::new(),
            prio: Priority::Info,
        }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SyslogLine {
        SyslogLine {
            buf: Vec::new(),
            prio: priority(meta.level()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn priority_comes_from_the_level() {
        assert_eq!(
            super::priority(&tracing::Level::ERROR),
            super::Priority::Err
        );
        assert_eq!(
            super::priority(&tracing::Level::WARN),
            super::Priority::Warning
        );
        assert_eq!(
            super::priority(&tracing::Level::INFO),
            super::Priority::Info
        );
        assert_eq!(
            super::priority(&tracing::Level::DEBUG),
            super::Priority::Debug
        );
    }
}
