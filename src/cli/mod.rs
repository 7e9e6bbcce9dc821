//! Command-line front ends. The binaries in `src/bin` only call into these.

pub mod args;
pub mod jail;
pub mod jailctl;
pub mod jaildaemon;
pub mod manage;

/// Log to stderr, filtered by `RUST_LOG` (default: warnings).
pub fn init_logging() {
    crate::logging::to_stderr("warn");
}
