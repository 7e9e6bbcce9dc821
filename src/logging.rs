//! Logging set-up: `tracing` to stderr (foreground, utilities) or to syslog(3) (the
//! detached daemon). The level comes from `RUST_LOG` (default given by the caller).

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

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

/// Buffers one formatted event and hands it to syslog(3) when dropped.
struct SyslogLine(Vec<u8>);

impl Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let text = text.trim_end();
        if !text.is_empty() {
            let prio = if text.contains("ERROR") {
                libc::LOG_ERR
            } else if text.contains("WARN") {
                libc::LOG_WARNING
            } else {
                libc::LOG_INFO
            };
            crate::sys::unix::syslog(prio, text);
        }
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;
    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine(Vec::new())
    }
}
