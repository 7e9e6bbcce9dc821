//! The jaildaemon daemon (`jaildaemon -D`).
//!
//! - [`startup`]: daemonizing, pidfile, socket, the fork before the runtime;
//! - [`server`]: the accept loop, the connection limit, peer credentials;
//! - [`handler`]: requests to registry calls and results to responses (the only code
//!   that knows the wire's `Response`);
//! - [`registry`]: the registered probes ([`registry::ProbeRegistry`]);
//! - [`supervisor`]: one task per probe, its state machine (single-shot, `-r`, `-R`,
//!   backoff, re-arm by jail name);
//! - [`command`]: running a probe's host command (rate limit, coalescing, cap);
//! - [`reaper`]: the daemon is a subreaper and reaps every probe and command itself;
//!   [`children`]: which pid-only children it may still signal (none once reaped);
//! - [`pidfile`], [`client`]: the pidfile lock, the utility's side of the socket;
//! - [`state`], [`durable`]: the state file, restoring probes after a restart;
//!   [`config`]: the probes the administrator declares (reloaded on SIGHUP).

pub mod children;
pub mod client;
pub mod command;
pub mod config;
pub mod durable;
pub mod handler;
pub mod jailwatch;
pub mod pidfile;
pub mod reaper;
pub mod registry;
pub mod server;
pub mod startup;
pub mod state;
pub mod supervisor;
pub mod trusted;

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::sys::unix as sys;

/// Default socket of the original jaildaemon.
pub const DEFAULT_SOCKET: &str = "/var/run/jaildaemon.pipe";
/// Default pidfile of the original jaildaemon.
pub const DEFAULT_PIDFILE: &str = "/var/run/jaildaemon.pid";

#[derive(Debug, Clone)]
pub struct Options {
    pub socket: PathBuf,
    pub pidfile: PathBuf,
    /// `-F`: stay in the foreground, log to stderr.
    pub foreground: bool,
    /// `-s`: the state file.
    pub state: PathBuf,
    /// `-C`: the configuration file; `config_given`: named with `-C` (then it must exist).
    pub config: PathBuf,
    pub config_given: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("another jaildaemon (pid {pid}) is running on {}", socket.display())]
    AlreadyRunning { pid: u32, socket: PathBuf },
    #[error("pidfile {} is locked by another jaildaemon{}", path.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    PidfileLocked { path: PathBuf, pid: Option<i32> },
    #[error("pidfile {}: {source}", path.display())]
    Pidfile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} exists and is not a socket; refusing to replace it", .0.display())]
    NotASocket(PathBuf),
    #[error("socket {}: {source}", path.display())]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("the daemon failed to start: {0}")]
    Child(String),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("configuration file {}: {}", path.display(), errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Config {
        path: PathBuf,
        errors: Vec<config::ConfigError>,
    },
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::Io {
        what: what.to_string(),
        source,
    }
}

/// Run the daemon until SIGTERM or SIGINT.
pub fn run(opts: &Options) -> Result<(), DaemonError> {
    startup::run(opts)
}

/// Probes the daemon can hold with `nofile` descriptors: one pidfd each, less a
/// reserve for connections, commands' pipes and the runtime (at least a quarter of
/// the limit is left for probes).
pub fn probe_capacity(nofile: u64) -> usize {
    nofile
        .saturating_sub(server::MAX_CONNECTIONS as u64 + 256)
        .max(nofile / 4) as usize
}

/// What start-up read before the runtime: the state file (locked) and the declared probes.
pub(crate) struct Durable {
    pub state: Arc<state::StateFile>,
    pub saved: state::SavedState,
    pub declared: Vec<jaildaemon_proto::ProbeSpec>,
}

/// Read the configuration file of `opts` (a missing default file declares nothing).
pub fn load_config(opts: &Options) -> Result<Vec<jaildaemon_proto::ProbeSpec>, DaemonError> {
    config::load(&opts.config, !opts.config_given)
        .map(|d| d.into_iter().map(|d| d.spec).collect())
        .map_err(|errors| DaemonError::Config {
            path: opts.config.clone(),
            errors,
        })
}

async fn main_loop(
    listener: std::os::unix::net::UnixListener,
    ready: &mut Option<fs::File>,
    opts: &Options,
    capacity: usize,
    nofile_soft: u64,
    durable: Durable,
) -> Result<(), DaemonError> {
    let reaper = Arc::new(reaper::Reaper::default());
    let mut sigchld = signal(SignalKind::child()).map_err(io("SIGCHLD handler"))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
    let mut sighup = signal(SignalKind::hangup()).map_err(io("SIGHUP handler"))?;
    let listener = tokio::net::UnixListener::from_std(listener).map_err(io("socket"))?;
    let registry =
        registry::ProbeRegistry::new(reaper.clone(), sys::own_exe(), capacity, nofile_soft);
    registry.start_spawner();
    let r2 = reaper.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = sigchld.recv() => {}
                _ = tick.tick() => {}
            }
            r2.reap();
        }
    });
    registry.persist_to(durable.state.clone());
    registry.restore(durable.saved, &durable.declared).await;
    registry.apply_config(durable.declared).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(listener, registry.clone(), stop_rx));
    if let Some(mut r) = ready.take() {
        let _ = r.write_all(b"R");
    }
    tracing::info!(pid = std::process::id(), socket = %opts.socket.display(), pidfile = %opts.pidfile.display(), "jaildaemon ready");
    // reloads run off the signal loop (SIGTERM is never held up by one); SIGHUPs
    // during a reload are coalesced into one more
    let hup = Arc::new(tokio::sync::Notify::new());
    let reloader = {
        let (hup, o, r) = (hup.clone(), opts.clone(), registry.clone());
        tokio::spawn(async move {
            loop {
                hup.notified().await;
                reload(&o, &r).await;
            }
        })
    };
    let why = loop {
        tokio::select! {
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
            _ = sighup.recv() => {
                tracing::info!(config = %opts.config.display(), "SIGHUP: reloading the configuration");
                hup.notify_one();
            }
        }
    };
    tracing::info!(signal = why, "shutting down: terminating every probe");
    let _ = stop_tx.send(true);
    registry.shutdown().await;
    reloader.abort();
    let _ = server.await;
    reaper.reap();
    Ok(())
}

/// SIGHUP: read the configuration again and apply it; a file with errors changes
/// nothing.
async fn reload(opts: &Options, registry: &Arc<registry::ProbeRegistry>) {
    let o = opts.clone();
    match tokio::task::spawn_blocking(move || load_config(&o)).await {
        Ok(Ok(declared)) => registry.apply_config(declared).await,
        Ok(Err(e)) => tracing::error!("{e}; the probes are left as they are"),
        Err(e) => tracing::error!(error = %e, "reloading failed"),
    }
}
